"""Pages for integrators: the record types with links to Swagger UI, and the integrator's guide."""

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from hospital_interop.integrations.selectors import counts_by_system

from .mapping import record_types

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "emr-intake.md"


@login_required
def integration(request):
    groups = [
        {
            "title": title,
            "types": [
                {
                    "rt": rt,
                    "spec": rt.spec,
                    "key": rt.key_fields,
                    "parents": [p.interface for p in rt.spec.parents],
                    "anchor": f"/{rt.group_title}/{rt.slug.replace('-', '_')}_create",
                }
                for rt in types
            ],
        }
        for _, title, types in record_types().grouped()
    ]
    show_counts = request.user.is_staff or request.user.has_perm("hospital_interop.view_uploads")
    return render(
        request,
        "emr_sharing/integration.html",
        {
            "groups": groups,
            "total": len(record_types()),
            "system_counts": counts_by_system() if show_counts else None,
        },
    )


@login_required
def guide(request):
    try:
        text = GUIDE.read_text(encoding="utf-8")
    except OSError as exc:
        raise Http404("接入指南文件缺失") from exc
    return render(request, "emr_sharing/guide.html", {"text": text})
