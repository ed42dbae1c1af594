"""Staff searches by a patient's ID number, with the number never in a URL.

A page that searches by ID number posts its search form; the view answers with a redirect to the
same page whose query carries the patient key (``id_key``, the digest the records are searched
by) in place of the number: ``?p=<key>&<the other filters>``. The results stay bookmarkable and
pageable, and the number reaches no address bar, browser history, Referer or access log. (Searches
that must send the number on, such as the platform's report list by ID number, answer the post
itself instead.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlencode

from django.http import HttpResponseRedirect

from .models import id_key

KEY_PARAM = "p"
_KEY = re.compile(r"[0-9a-f]{16,128}")


def redirect_with_patient_key(
    path: str, data, *, keep: Iterable[str] = (), id_field: str = "idNo", id_type: str = "01"
) -> HttpResponseRedirect:
    """The redirect answering a posted search: ``keep`` fields as they are, the ID number as its key."""
    query = {name: data.get(name, "").strip() for name in keep if data.get(name, "").strip()}
    id_no = data.get(id_field, "").strip()
    if id_no:
        query[KEY_PARAM] = id_key(id_type, id_no)
    return HttpResponseRedirect(f"{path}?{urlencode(query)}" if query else path)


def patient_key(query) -> str:
    """The patient key of a search's query (``?p=``), or "" when absent or not a key."""
    value = query.get(KEY_PARAM, "").strip().lower()
    return value if _KEY.fullmatch(value) else ""
