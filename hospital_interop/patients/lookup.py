"""Staff searches by a patient's ID number, with the number never in a URL.

A page that searches by ID number posts its search form; the view answers with a redirect to the
same page whose query carries the patient key (``id_key``, the digest the records are searched
by) in place of the number: ``?p=<key>&<the other filters>``. The results stay bookmarkable and
pageable, and the number reaches no address bar, browser history, Referer or access log. (Searches
that must send the number on, such as the platform's report list by ID number, answer the post
itself instead.)

A lookup outside the user's current visit needs a stated reason (``REASONS``, issue 15 "least
privilege"): the view asks for it, ``grant`` keeps it in the session for ``LOOKUP_REASON_MINUTES``
for that one patient (or visit), and the audit entry of the read carries it (``audit_detail``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponseRedirect
from django.utils import timezone

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


def key_of(data, *, id_field: str = "idNo", id_type: str = "01") -> str:
    """The patient key of a posted search's ID number (as ``redirect_with_patient_key`` puts it)."""
    id_no = data.get(id_field, "").strip()
    return id_key(id_type, id_no) if id_no else ""


def patient_key(query) -> str:
    """The patient key of a search's query (``?p=``), or "" when absent or not a key."""
    value = query.get(KEY_PARAM, "").strip().lower()
    return value if _KEY.fullmatch(value) else ""


# --------------------------------------------------------------------------- reasons for a lookup

REASONS = (
    ("consult", "会诊"),
    ("referral", "转诊、转科接诊"),
    ("follow-up", "复诊或随访"),
    ("quality", "医疗质量检查"),
    ("other", "其他（请填写说明）"),
)
REASON_LABELS = dict(REASONS)
SESSION_KEY = "lookup_reasons"
NOTE_MAX = 200


def reason_from(data) -> tuple[dict | None, str]:
    """(reason, error) of a posted form's ``reason`` and ``reasonNote``; (None, "") when none given."""
    code, note = data.get("reason", "").strip(), " ".join(data.get("reasonNote", "").split())[:NOTE_MAX]
    if not code:
        return None, ""
    if code not in REASON_LABELS:
        return None, "查询事由无效，请从列表中选择。"
    if code == "other" and len(note) < 2:
        return None, "查询事由选择“其他”时，请填写说明。"
    return {"reason": code, "reasonName": REASON_LABELS[code], **({"reasonNote": note} if note else {})}, ""


def target(*, patient_key: str = "", visit_id: str = "") -> str:
    return f"p:{patient_key}" if patient_key else (f"v:{visit_id}" if visit_id else "")


def grant(session, what: str, reason: dict) -> None:
    """Keep a stated reason for one patient (or visit) in the session (``what``: ``target(...)``)."""
    kept = {k: v for k, v in session.get(SESSION_KEY, {}).items() if _fresh(v)}
    kept[what] = {**reason, "at": timezone.now().isoformat()}
    session[SESSION_KEY] = kept


def granted(session, what: str) -> dict | None:
    """The reason stated in this session for ``what`` while it holds, else None."""
    entry = session.get(SESSION_KEY, {}).get(what) if what else None
    if not entry or not _fresh(entry):
        return None
    return {k: v for k, v in entry.items() if k != "at"}


def _fresh(entry: dict) -> bool:
    try:
        at = datetime.fromisoformat(entry["at"])
    except (KeyError, TypeError, ValueError):
        return False
    return timezone.now() - at < timedelta(minutes=settings.LOOKUP_REASON_MINUTES)
