"""Pages for integrators (the record types with links to Swagger UI, the integrator's guide) and
for ops and dictionary staff (records held for a code mapping). Thin: selectors read (and audit),
services write."""

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hospital_interop.integrations.selectors import counts_by_system
from hospital_interop.params import row_ids

from . import selectors, services
from .mapping import record_types
from .models import HeldRecord

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


HELD_VIEW_PERMS = ("hospital_interop.view_uploads", "hospital_interop.maintain_dictionaries")
HELD_RELEASE_PERMS = ("hospital_interop.operate_uploads", "hospital_interop.maintain_dictionaries")


def _require(request, perms) -> None:
    if not any(request.user.has_perm(p) for p in perms):
        raise PermissionDenied


@login_required
def held(request):
    """Records held for a code mapping, and the hospital codes they wait for."""
    _require(request, HELD_VIEW_PERMS)
    state = request.GET.get("state", HeldRecord.State.HELD)
    filt = selectors.HeldFilter(
        state=state if state in HeldRecord.State.values or state == "" else HeldRecord.State.HELD,
        record_type=request.GET.get("recordType", "").strip(),
    )
    return render(
        request,
        "emr_sharing/held.html",
        {
            "rows": selectors.held_records(filt),
            "codes": selectors.waiting_codes(),
            "counts": selectors.held_counts(),
            "filt": filt,
            "states": HeldRecord.State,
            "can_release": any(request.user.has_perm(p) for p in HELD_RELEASE_PERMS),
        },
    )


@login_required
def held_detail(request, pk: int):
    _require(request, HELD_VIEW_PERMS)
    found = selectors.held_detail(pk)
    if found is None:
        raise Http404("没有该待对照记录")
    return render(
        request,
        "emr_sharing/held_detail.html",
        {**found, "can_release": any(request.user.has_perm(p) for p in HELD_RELEASE_PERMS)},
    )


@require_POST
@login_required
def held_release(request):
    """Map held records again now (after a mapping was fixed) instead of waiting for the re-check."""
    _require(request, HELD_RELEASE_PERMS)
    ids = row_ids(request.POST.getlist("ids"))
    outcome = services.release_held(ids or None)
    text = f"重新对照：{outcome.released} 条记录已排队发送，{outcome.held} 条仍待对照"
    if outcome.rejected:
        text += f"，{outcome.rejected} 条对照后校验未通过（见详情）"
    messages.success(request, text + "。")
    if len(ids) == 1:
        return redirect("emr_sharing:held-detail", pk=ids[0])
    return redirect("emr_sharing:held")
