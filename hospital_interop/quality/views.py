"""Ops pages of the data-quality feedback: the list, one finding, its reply and its assignment.
Thin: forms parse, selectors read, services write. Ops see every finding; the lab sees and
answers the findings assigned to it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hospital_interop.errors import InvalidInput

from . import selectors, services
from .forms import FindingFilterForm
from .models import Assignee, FindingState, QcFinding, ReplyResult

VIEW_ALL = "hospital_interop.view_uploads"
OPERATE = "hospital_interop.operate_uploads"
LAB = "quality.handle_lab_findings"


def _scope(user) -> str | None:
    """None: every finding; "lab": only the lab's; PermissionDenied otherwise."""
    if user.has_perm(VIEW_ALL):
        return None
    if user.has_perm(LAB):
        return Assignee.LAB
    raise PermissionDenied


def _finding_or_404(request, pk: int) -> dict:
    scope = _scope(request.user)
    if scope and not QcFinding.objects.filter(pk=pk, assignee=scope).exists():
        raise Http404("数据质量反馈不存在")
    try:
        return selectors.finding_detail(pk)
    except QcFinding.DoesNotExist as exc:
        raise Http404("数据质量反馈不存在") from exc


@login_required
def findings(request):
    scope = _scope(request.user)
    data = request.GET if request.GET else {"state": FindingState.OPEN}
    form = FindingFilterForm(data)
    rows = selectors.search(form.to_filter(), only_assignee=scope) if form.is_valid() else []
    return render(
        request,
        "quality/findings.html",
        {"form": form, "rows": rows, "counts": selectors.counts(), "scope": scope},
    )


@login_required
def finding(request, pk: int):
    detail = _finding_or_404(request, pk)
    f = detail["finding"]
    scope = _scope(request.user)
    return render(
        request,
        "quality/finding_detail.html",
        {
            **detail,
            "can_reply": f.state == FindingState.OPEN
            and (request.user.has_perm(OPERATE) or scope == Assignee.LAB),
            "can_assign": request.user.has_perm(OPERATE),
            "can_fix": request.user.has_perm(OPERATE),
            "results": ReplyResult.choices,
            "assignees": Assignee.choices,
        },
    )


@require_POST
@login_required
def reply(request, pk: int):
    scope = _scope(request.user)
    if scope is None and not request.user.has_perm(OPERATE):
        raise PermissionDenied
    if scope and not QcFinding.objects.filter(pk=pk, assignee=scope).exists():
        raise Http404("数据质量反馈不存在")
    try:
        services.answer(
            pk, result=request.POST.get("result", ""), note=request.POST.get("note", ""), user=request.user
        )
    except QcFinding.DoesNotExist as exc:
        raise Http404("数据质量反馈不存在") from exc
    except InvalidInput as exc:
        messages.error(request, "未回复：" + "；".join(e["message"] for e in exc.errors))
    else:
        messages.success(request, "已回复，处理结果将通过上传队列回传平台。")
    return redirect("quality:finding", pk=pk)


@require_POST
@login_required
def assign(request, pk: int):
    if not request.user.has_perm(OPERATE):
        raise PermissionDenied
    try:
        f = services.assign(pk, assignee=request.POST.get("assignee", ""))
    except QcFinding.DoesNotExist as exc:
        raise Http404("数据质量反馈不存在") from exc
    except InvalidInput as exc:
        messages.error(request, "；".join(e["message"] for e in exc.errors))
    else:
        messages.success(request, f"已分派给{f.get_assignee_display()}。")
    return redirect("quality:finding", pk=pk)
