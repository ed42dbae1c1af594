"""The one error type for input a service refuses: ``InvalidInput(errors)``.

``errors`` is a list of ``{"field", "rule", "message"}`` (``message`` in Chinese; extra keys such
as ``line`` or ``item`` locate the problem in a batch); ``status`` is the HTTP status an edge
answers with (400 unless a subclass or the raiser says otherwise, e.g. 409 for another
patient's visit). A service that raises it has written nothing. Machine APIs turn it into their
one error body (``hospital_interop.integrations.api``); pages show the messages.
"""

from __future__ import annotations

import re

# characters no text may hold: PostgreSQL stores neither a NUL nor a lone surrogate (the JSON
# parser of the HTTP edges, the interface specs and the dictionaries' import all refuse them)
BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def field_error(field: str, rule: str, message: str, en: str = "", **extra) -> dict:
    """One ``{field, rule, message}``; ``en`` adds an English gloss in brackets (the platform
    interface errors carry both, for the vendors' logs)."""
    return {**extra, "field": field, "rule": rule, "message": f"{message} ({en})" if en else message}


class InvalidInput(Exception):
    status = 400

    def __init__(self, errors: list[dict], status: int | None = None):
        self.errors = list(errors)
        if status is not None:
            self.status = status
        super().__init__("; ".join(f"{e.get('field', '')}: {e.get('message', '')}" for e in self.errors[:5]))
