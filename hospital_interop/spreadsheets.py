"""Spreadsheet downloads (CSV and Excel): one writer each, with cells a spreadsheet cannot run.

Hospital staff open exports in Excel or WPS, which evaluate a cell that starts with ``=``, ``+``,
``-`` or ``@`` (and, after a tab or carriage return, what follows) as a formula, and openpyxl
writes a text starting with ``=`` as a formula: a platform message, an audited object or a code
name from another system could then fetch a URL or run a command when opened (CSV injection,
CWE-1236). Such text cells are written with a leading apostrophe, which the spreadsheet shows as
text (OWASP's advice); numbers stay numbers. ``uncell`` reads such a cell back (the dictionaries'
export → edit → import round trip).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def cell(value):
    """A value as a spreadsheet cell: text that a spreadsheet would take for a formula is made text."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def uncell(value):
    """The inverse of ``cell`` for a cell read back from an exported sheet."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


class _Echo:
    def write(self, value):
        return value


def csv_download(name: str, header: Sequence[str], rows: Iterable[Sequence]) -> StreamingHttpResponse:
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


def xlsx_download(
    filename: str, sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence]]]
) -> HttpResponse:
    """An Excel workbook of (title, headers, rows) sheets (titles cut to Excel's 31 characters),
    every cell through ``cell``."""
    import tablib

    book = tablib.Databook()
    for title, headers, rows in sheets:
        book.add_sheet(
            tablib.Dataset(*([cell(v) for v in r] for r in rows), headers=headers, title=title[:31])
        )
    response = HttpResponse(book.export("xlsx"), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
