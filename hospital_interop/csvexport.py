"""CSV downloads: one streaming writer for every export, with cells a spreadsheet cannot run.

Hospital staff open exports in Excel or WPS, which evaluate a cell that starts with ``=``, ``+``,
``-`` or ``@`` (and, after a tab or carriage return, what follows) as a formula: a platform
message or an audited object name could then fetch a URL or run a command when opened (CSV
injection, CWE-1236). Such text cells are written with a leading apostrophe, which the
spreadsheet shows as text (OWASP's advice); numbers are written as numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from django.http import StreamingHttpResponse
from django.utils import timezone

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    """A value as a CSV cell: text that a spreadsheet would take for a formula is made text."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


class _Echo:
    def write(self, value):
        return value


def download(name: str, header: Sequence[str], rows: Iterable[Sequence]) -> StreamingHttpResponse:
    """``rows`` streamed as ``<name>-<local time>.csv``, UTF-8 with a BOM (Excel reads it as
    UTF-8), every cell through ``cell``."""

    def lines():
        yield "\ufeff"
        writer = csv.writer(_Echo())
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.localtime():%Y%m%d-%H%M}.csv"'
    return response
