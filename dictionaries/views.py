from django.contrib.auth.decorators import permission_required
from django.shortcuts import render
from django.utils import timezone

from hospital_interop import spreadsheets

from . import selectors

PERM = "hospital_interop.maintain_dictionaries"


@permission_required(PERM, raise_exception=True)
def unmapped(request):
    sections = selectors.unmapped_report()
    if request.GET.get("format") == "xlsx":
        return spreadsheets.xlsx_download(
            f"unmapped-{timezone.localtime():%Y%m%d}.xlsx",
            [(s["title"], ["代码", "名称"], [(r["code"], r["name"]) for r in s["rows"]]) for s in sections],
        )
    total = sum(s["count"] for s in sections)
    return render(request, "dictionaries/unmapped.html", {"sections": sections, "total": total})
