"""Request parameters as every edge reads them: what no page or API may be given, and page numbers.

* A NUL (U+0000) in a path, query or form parameter is refused before any view runs, naming the
  parameter: PostgreSQL cannot hold one in a string (the look-up raised, a 500), and no identifier,
  code or search term has one. Pages answer the Chinese 400 page (or the page's JSON error body
  when the request asks for JSON), ``ParameterGuardMiddleware``; the machine APIs answer their one
  error body after authenticating the caller (``integrations.api``).
* ``page_number``, ``row_ids``, ``small_int``: numbers from parameters, within what an offset or a
  primary key can hold.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render

from . import access
from .errors import field_error

MAX_PAGE = 10**6


def nul_errors(named_values) -> list[dict]:
    """One error per (name, value) whose name or value holds a NUL, named."""
    return [
        field_error(_shown(name), "nul", f"{_shown(name)} 不能包含空字符（U+0000）")
        for name, value in named_values
        if "\x00" in name or (isinstance(value, str) and "\x00" in value)
    ]


def _shown(name: str) -> str:
    return name.replace("\x00", "\\u0000")


def url_errors(path_parameters: dict, query) -> list[dict]:
    """A NUL in a path or query parameter (``query``: a ``QueryDict``), named."""
    return nul_errors([*path_parameters.items(), *_pairs(query)])


def _pairs(params) -> list[tuple[str, str]]:
    return [(name, value) for name in params for value in params.getlist(name)]


def small_int(value: str, maximum: int) -> int | None:
    """``value`` as a number 1..``maximum`` when it is written in ASCII digits, else None. ``int``
    alone takes other scripts' digits ("١") and raises a ValueError past 4,300 digits (a 500)."""
    value = value or ""
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(maximum)):
        return None
    return int(value) if 0 < int(value) <= maximum else None


def page_number(value: str) -> int:
    """The page number of a page parameter: 1 when missing, not a positive number, or past
    ``MAX_PAGE`` (an offset from it would overflow the database's integers)."""
    return small_int((value or "").strip(), MAX_PAGE) or 1


BIGINT = 2**63 - 1


def row_ids(values) -> list[int]:
    """Row ids from a form's list (the ticked rows): those within a primary key's range, the rest
    dropped (no row has them)."""
    return [n for n in (small_int(v, BIGINT) for v in values) if n is not None]


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class ParameterGuardMiddleware:
    """Refuses a page request with a NUL in a path, query or form parameter (a 400 naming it), after
    the access check and before the view. Token APIs check their parameters themselves, after the
    token (their own error body)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if _section_kind(request) == access.TOKEN:
            return None
        named = [*view_kwargs.items(), *_pairs(request.GET)]
        # a form as CSRF reads it; a CSRF-exempt page (a signed link's frame) reads its JSON body
        # itself, within its limit, through the JSON parser that refuses a NUL
        if (
            request.method == "POST"
            and request.content_type in FORMS
            and not getattr(view_func, "csrf_exempt", False)
        ):
            named += _pairs(request.POST)
        errors = nul_errors(named)
        return bad_request_answer(request, errors) if errors else None


def _section_kind(request) -> str | None:
    try:
        return access.request_section(request).kind
    except access.Unlisted:  # refused by the access middleware before this one runs
        return None


def wants_json(request) -> bool:
    return (
        "application/json" in request.headers.get("Accept", "") or request.content_type == "application/json"
    )


def bad_request_answer(request, errors: list[dict]):
    """The 400 of a page: its JSON error body ``{ok, errors}`` to a request that asks for JSON,
    else the Chinese page listing each parameter and what is wrong with it."""
    if wants_json(request):
        return JsonResponse(
            {"ok": False, "errors": errors}, status=400, json_dumps_params={"ensure_ascii": False}
        )
    return render(request, "400.html", {"errors": errors}, status=400)
