from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from . import selectors

PERM = "hospital_interop.maintain_dictionaries"


@permission_required(PERM, raise_exception=True)
def unmapped(request):
    sections = selectors.unmapped_report()
    if request.GET.get("format") == "xlsx":
        import tablib

        book = tablib.Databook()
        for s in sections:
            ds = tablib.Dataset(
                *[(r["code"], r["name"]) for r in s["rows"]], headers=["代码", "名称"], title=s["title"][:31]
            )
            book.add_sheet(ds)
        response = HttpResponse(
            book.export("xlsx"),
            content_type=("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )
        stamp = timezone.localtime().strftime("%Y%m%d")
        response["Content-Disposition"] = f'attachment; filename="unmapped-{stamp}.xlsx"'
        return response
    total = sum(s["count"] for s in sections)
    return render(request, "dictionaries/unmapped.html", {"sections": sections, "total": total})
