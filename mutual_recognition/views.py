"""Pages: the embedded prompt page (signed link, no login) and its actions; the patient view,
statistics and audit search for logged-in staff; a demo HIS ordering screen."""

from __future__ import annotations

import json
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission

from dictionaries.models import Doctor
from dictionaries.selectors import Unmapped, refusal_reasons, standard_department
from hospital_interop import spreadsheets
from hospital_interop.charts import bar_chart
from hospital_interop.errors import InvalidInput
from hospital_interop.integrations import strictjson
from hospital_interop.integrations.api import ApiError, body_limits, read_limited
from hospital_interop.municipal import envelope
from hospital_interop.params import page_number
from hospital_interop.patients import lookup

from . import api, conf, external, links, payloads, selectors, services
from .links import LinkContext, LinkError
from .models import AuditEntry, Decision, Encounter, mask_id

# --------------------------------------------------------------------------- embedded page


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _frame_headers(response):
    """Headers of the prompt page and its requests: only this page may be framed, and only by
    'self' and the configured HIS origins; nothing is cached or sent on as a Referer."""
    # the site's policy (settings.CONTENT_SECURITY_POLICY, django-csp), framing opened to the HIS origins
    response._csp_replace = {"frame-ancestors": ["'self'", *conf.frame_ancestors()]}
    # an external report opens as a blob: tab, which inherits this policy: it may read its own PDF
    response._csp_update = {"connect-src": ["blob:"]}
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the link's query never leaves in a Referer
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _refusal(request, reason: str, message: str, status: int = 403):
    response = render(
        request, "recognition/link_refused.html", {"reason": reason, "message": message}, status=status
    )
    return _frame_headers(response)


def _fmt_dt(s: str) -> str:
    s = str(s or "")
    if len(s) >= 12:
        return f"{s[0:4]}-{s[4:6]}-{s[6:8]} {s[8:10]}:{s[10:12]}"
    return f"{s[0:4]}-{s[4:6]}-{s[6:8]}" if len(s) >= 8 else s


def _fmt_d(s: str) -> str:
    s = str(s or "")
    return f"{s[0:4]}-{s[4:6]}-{s[6:8]}" if len(s) >= 8 else s


def _days_left(until: str, today: date) -> int | None:
    if len(until) < 8 or until == "99991231":
        return None
    return (date(int(until[:4]), int(until[4:6]), int(until[6:8])) - today).days


def page_model(ctx: LinkContext, enc: Encounter, bundle: dict) -> list[dict]:
    """Cards of the prompt page: one per ordered item, recognisable ones first."""
    snap = services.current_snapshot()
    today_s, today = external.today_d8(), timezone.localdate()
    current = {}
    for d in Decision.objects.filter(
        encounter=enc, current=True, order_id__in=[i.order_id for i in ctx.items]
    ):
        current[(d.order_id, d.standard_code, d.external_report_id)] = d
    cards = []
    for item in ctx.items:
        card = {"order_id": item.order_id, "kind": item.kind, "code": item.code, "rows": [], "reports": []}
        if item.kind == "exam":
            target = snap.exam_target(item.code, item.body_part)
            card["name"] = target.order_name if target else snap.exam_names.get(item.code, item.code)
            results = external.valid(bundle["exam"].get(target.std_code, []), today_s) if target else []
            for n, r in enumerate(results[:1]):
                d = current.get((item.order_id, target.std_code, r["reportId"]))
                card["rows"].append(
                    {
                        "std_code": target.std_code,
                        "std_name": target.std_name,
                        "report_id": r["reportId"],
                        "org": r["org"],
                        "org_name": r["orgName"],
                        "date": _fmt_dt(r["at"]),
                        "report_at": _fmt_dt(r["reportAt"]),
                        "category": r["category"],
                        "body_part": r["bodyPart"],
                        "findings": r["findings"],
                        "impression": r["impression"],
                        "result_name": r["resultName"],
                        "abnormal": r["resultCode"] == "2",
                        "images": r.get("images"),
                        "valid_until": _fmt_d(r["validUntil"]),
                        "days_left": _days_left(r["validUntil"], today),
                        "decision": d.decision if d else "",
                        "reason": d.reason_code if d else "",
                        "note": d.note if d else "",
                        "others": len(results) - 1 - n,
                    }
                )
            card["std_name"] = target.std_name if target else ""
        else:
            panel = snap.lab.get(item.code)
            card["name"] = panel.order_name if panel else item.code
            reports = {}
            for line in panel.lines if panel else ():
                row = {
                    "sub_code": line.sub_code,
                    "sub_name": line.sub_name,
                    "std_code": line.std_code,
                    "std_name": line.std_name,
                    "result": None,
                }
                results = (
                    external.valid(bundle["lab"].get(line.std_code, []), today_s) if line.std_code else []
                )
                if results:
                    r = results[0]
                    d = current.get((item.order_id, line.std_code, r["reportId"]))
                    row.update(
                        result=True,
                        report_id=r["reportId"],
                        org=r["org"],
                        org_name=r["orgName"],
                        date=_fmt_dt(r["at"]),
                        value=r["value"],
                        unit=r["unit"],
                        range=r["range"],
                        flag=r["flag"],
                        flag_name=r["flagName"],
                        valid_until=_fmt_d(r["validUntil"]),
                        days_left=_days_left(r["validUntil"], today),
                        others=len(results) - 1,
                        decision=d.decision if d else "",
                        reason=d.reason_code if d else "",
                        note=d.note if d else "",
                    )
                    reports.setdefault(
                        (r["org"], r["reportId"]),
                        {
                            "org": r["org"],
                            "org_name": r["orgName"],
                            "report_id": r["reportId"],
                            "title": r["title"],
                            "date": _fmt_dt(r["at"]),
                        },
                    )
                card["rows"].append(row)
            card["reports"] = list(reports.values())
            card["line_count"] = len(card["rows"])
            card["recognizable_count"] = sum(1 for r in card["rows"] if r["result"])
        card["recognizable"] = any(r.get("result", True) and r.get("report_id") for r in card["rows"])
        cards.append(card)
    cards.sort(key=lambda c: not c["recognizable"])
    return cards


def _patient_line(enc: Encounter) -> dict:
    patient = payloads.patient_facts(enc)
    sex, age = {"1": "男", "2": "女"}.get(patient["sexCode"], ""), patient.get("ageYears")
    return {
        "name": enc.name,
        "sex": sex,
        "age": age,
        "id_masked": mask_id(enc.id_no),
        "type": {"1": "门诊", "2": "急诊", "3": "住院"}.get(enc.patient_type_code, ""),
        "no": enc.inpatient_no or enc.outpatient_no or enc.visit_id,
    }


@xframe_options_exempt
@never_cache
@require_GET
def embed(request):
    """The prompt page the HIS opens in an iframe or pop-up with a signed, expiring link."""
    try:
        ctx = links.verify(request.GET)
    except LinkError as exc:
        return _refusal(request, exc.reason, exc.message)
    enc = services.page_encounter(ctx)
    if enc is None:
        return _refusal(
            request, "unknown", "未找到本次就诊的患者信息，请从医生工作站重新打开互认提示。", status=404
        )
    bundle, _ = services.ensure_bundle(enc)
    doctor = Doctor.objects.select_related("department").filter(staff_no=ctx.doctor).first()
    cards = page_model(ctx, enc, bundle)
    reasons = refusal_reasons()
    problems = []
    if doctor is None:
        problems.append(f"医师工号 {ctx.doctor} 不在医师字典中，暂不能保存互认决定，请联系信息中心。")
    try:
        standard_department(ctx.dept or (doctor.department.code if doctor and doctor.department_id else ""))
    except Unmapped as exc:
        problems.append(exc.message + "，暂不能保存互认决定，请联系信息中心。")
    response = render(
        request,
        "recognition/embed.html",
        {
            "ctx_token": ctx.to_token(),
            "cards": cards,
            "patient": _patient_line(enc),
            "doctor": doctor,
            "reasons": reasons,
            "reasons_json": json.dumps({r.code: {"needsNote": r.needs_note} for r in reasons}),
            "problems": problems,
            "platform_errors": bundle.get("errors") or [],
            "targets_json": json.dumps(conf.frame_ancestors()),
            "visit_id": enc.visit_id,
            "any_recognizable": any(c["recognizable"] for c in cards),
            "plain": [c for c in cards if not c["recognizable"]],
        },
    )
    return _frame_headers(response)


def _page_error(status: int, field: str, rule: str, message: str) -> JsonResponse:
    """An error answer to the page's own requests (save, report views): {ok, errors[{field, rule, message}]}."""
    response = JsonResponse(
        {"ok": False, "errors": [{"field": field, "rule": rule, "message": message}]},
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )
    return _frame_headers(response)


class _PageRequestError(Exception):
    def __init__(self, status: int, field: str, rule: str, message: str):
        self.response = _page_error(status, field, rule, message)


def _page_request(request, *required: str) -> tuple[LinkContext, dict]:
    """The page token and fields of a request from the prompt page: a JSON object in the POST
    body. The token is never accepted in the URL (access logs, history, Referer), nor is anything
    else: these endpoints take no query parameters."""
    if request.GET:
        name = "ctx" if "ctx" in request.GET else next(iter(request.GET))
        raise _PageRequestError(
            400, name, "location", "页面凭据和报告参数不能放在网址中，请从互认提示页面打开。"
        )
    try:
        data = strictjson.loads(read_limited(request, request.META, body_limits()["default"]) or b"{}")
    except strictjson.JsonRefused as refused:
        raise _PageRequestError(400, refused.field, refused.rule, refused.message) from None
    except ApiError as exc:  # too large
        raise _PageRequestError(exc.status_code, "", "tooLarge", str(exc.detail)) from None
    for name in required:
        if not isinstance(data.get(name), str) or not data[name]:
            raise _PageRequestError(400, name, "required", f"请求缺少 {name}（外院机构代码或报告号）")
    try:
        ctx = LinkContext.from_token(str(data.get("ctx") or ""))
    except LinkError as exc:
        raise _PageRequestError(403, "ctx", exc.reason, exc.message) from None
    return ctx, data


@csrf_exempt  # cross-site iframe: no CSRF cookie; the signed context token authenticates the request
@require_POST
def embed_save(request):
    try:
        ctx, data = _page_request(request)
        result = services.save_decisions(
            ctx,
            data.get("decisions"),
            bulk=bool(data.get("bulk")),
            user=request.user,
            client_ip=_client_ip(request),
        )
    except _PageRequestError as exc:
        return exc.response
    except InvalidInput as exc:
        return _frame_headers(
            JsonResponse(
                {"ok": False, "errors": exc.errors}, status=400, json_dumps_params={"ensure_ascii": False}
            )
        )
    return _frame_headers(
        JsonResponse({**result, "type": "hr-recognition:saved"}, json_dumps_params={"ensure_ascii": False})
    )


def _safe_filename(report_id: str) -> str:
    return (
        "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in report_id)[:100]
        or "report"
    )


@csrf_exempt  # fetched by the prompt page (cross-site iframe, no cookies): the context token authenticates
@require_POST
def embed_lab_pdf(request):
    """An external lab report as PDF (3.5 检验报告pdf预览), for the page's fetch; the view is audited.
    Body: {"ctx", "org", "report"}."""
    try:
        ctx, data = _page_request(request, "org", "report")
    except _PageRequestError as exc:
        return exc.response
    org, report_id = data["org"], data["report"]
    doctor = Doctor.objects.filter(staff_no=ctx.doctor).first()
    enc = Encounter.objects.filter(visit_id=ctx.visit_id).first()
    if enc is None:
        return _page_error(404, "visitId", "unknown", "未找到本次就诊，请从医生工作站重新打开互认提示。")
    bundle, _ = services.ensure_bundle(enc)
    if not any(r["reportId"] == report_id and r["org"] == org for rs in bundle["lab"].values() for r in rs):
        return _page_error(404, "reportId", "unknown", "该患者没有这份外院检验报告。")
    try:
        pdf = external.lab_report_pdf(
            org, report_id, doctor_id=ctx.doctor, doctor_name=doctor.name if doctor else ctx.doctor
        )
    except InvalidInput as exc:
        return _page_error(400, exc.errors[0]["field"], exc.errors[0]["rule"], exc.errors[0]["message"])
    except external.PdfUnavailable as exc:
        return _page_error(502, "", "platform", exc.message)
    services.record_view(
        ctx, kind="lab", org_code=org, report_id=report_id, user=request.user, client_ip=_client_ip(request)
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{_safe_filename(report_id)}.pdf"'
    return _frame_headers(response)


@csrf_exempt  # fetched by the prompt page (cross-site iframe, no cookies): the context token authenticates
@require_POST
def embed_exam_view(request):
    """The platform viewer's address for an external exam report and its images, with a browse
    signature (2.4), for the page's fetch; the view is audited. Body: {"ctx", "org", "report"};
    answer: {"ok": true, "url"}."""
    try:
        ctx, data = _page_request(request, "org", "report")
        org, report_id = data["org"], data["report"]
        services.record_view(
            ctx,
            kind="exam",
            org_code=org,
            report_id=report_id,
            images=True,
            user=request.user,
            client_ip=_client_ip(request),
        )
    except _PageRequestError as exc:
        return exc.response
    except (InvalidInput, Encounter.DoesNotExist):
        return _page_error(404, "reportId", "unknown", "该患者没有这份外院检查报告。")
    client = external.platform_client()
    profile = payloads.spec("EXAM_RECOGNIZABLE_ITEMS").profile
    url = envelope.make_browse_link(
        client.config.viewer_url or settings.PLATFORM["VIEWER_URL"],
        {"orgCode": org, "reportId": report_id, "doctorId": ctx.doctor},
        private_key=client.config.private_key,
        profile=profile,
        now=client.platform_now(),
    )
    return _frame_headers(JsonResponse({"ok": True, "url": url}))


# --------------------------------------------------------------------------- staff pages


NEED_REASON = (
    "查询的不是您当前接诊的患者：请选择查询事由（选择“其他”时填写说明），本次查询将连同事由记入审计日志。"
)


@login_required
@permission_required("hospital_interop.use_recognition", raise_exception=True)
@require_http_methods(["GET", "POST"])
def patient_view(request):
    """A patient's recognised external results (HR) and refusals, by ID number or visit. The ID
    number is posted and answered with a redirect to the patient's key (``patients.lookup``).
    Outside the doctor's current visit (``selectors.current_visit``) the lookup needs a stated
    reason, kept in the session for that patient and in the audit entry of each read."""
    staff_no = request.user.get_username()
    if request.method == "POST":
        key, visit_id = lookup.key_of(request.POST), request.POST.get("visitId", "").strip()
        what = lookup.target(patient_key=key, visit_id=visit_id)
        reason, error = lookup.reason_from(request.POST)
        if what and not error and reason is None:
            if not selectors.current_visit(staff_no, patient_key=key, visit_id=visit_id):
                error = NEED_REASON
        if error:
            return _patient_page(request, visit_id=visit_id, error=error)
        if what and reason:
            lookup.grant(request.session, what, reason)
        return lookup.redirect_with_patient_key(request.path, request.POST, keep=("visitId",))
    patient_key, visit_id = lookup.patient_key(request.GET), request.GET.get("visitId", "").strip()
    what = lookup.target(patient_key=patient_key, visit_id=visit_id)
    if not what:
        return _patient_page(request)
    reason = lookup.granted(request.session, what)
    if reason is None and selectors.current_visit(staff_no, patient_key=patient_key, visit_id=visit_id):
        reason = {"context": "current-visit"}
    if reason is None:  # a bookmarked or shared result whose reason has lapsed: ask again
        return _patient_page(request, visit_id=visit_id, error=NEED_REASON)
    decisions = selectors.decisions_for(visit_id=visit_id, patient_key=patient_key, reason=reason)
    enc = decisions[0].encounter if decisions else None
    return _patient_page(
        request,
        visit_id=visit_id,
        by_id=bool(patient_key),
        searched=True,
        reason=reason,
        patient=_patient_line(enc) if enc else None,
        recognized=[d for d in decisions if d.recognized],
        refused=[d for d in decisions if not d.recognized],
    )


def _patient_page(request, **context):
    return render(
        request,
        "recognition/patient.html",
        {"visit_id": "", "searched": False, "reasons": lookup.REASONS, "error": "", **context},
    )


def _parse_date(value: str, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


def _stats_filter(request) -> selectors.StatsFilter:
    today = timezone.localdate()
    start = _parse_date(request.GET.get("start", ""), today - timedelta(days=29))
    end = _parse_date(request.GET.get("end", ""), today)
    if end < start:
        start, end = end, start
    kind = request.GET.get("kind", "")
    return selectors.StatsFilter(
        start, end, kind if kind in ("exam", "lab") else "", request.GET.get("dept", "")
    )


@login_required
@permission_required("hospital_interop.view_recognition_stats", raise_exception=True)
def stats(request):
    f = _stats_filter(request)
    data = selectors.statistics(f)
    if request.GET.get("format") == "xlsx":
        return _stats_xlsx(f, data)
    chart = bar_chart(
        data["series"],
        keys=(("recognized", "互认", "#1d8a4a"), ("refused", "不互认", "#c0392b")),
        label_format=lambda r: r["label"],
        height=200,
        title="每日互认与不互认决定",
    )
    depts = (
        Decision.objects.filter(current=True)
        .values_list("dept_code", "dept_name")
        .distinct()
        .order_by("dept_code")
    )
    peak = max((r["total"] for r in data["by_dept"]), default=0) or 1
    return render(
        request,
        "recognition/stats.html",
        {"f": f, "d": data, "chart": chart, "depts": depts, "peak": peak, "query": request.GET.urlencode()},
    )


def _stats_xlsx(f, data) -> HttpResponse:
    def rate(r):
        return "" if r is None else f"{r}%"

    t = data["totals"]
    common = ["互认", "不互认", "互认率", "避免收费（元）"]

    def counts(r):
        return (r["recognized"], r["refused"], rate(r["rate"]), float(r["charge"]))

    summary = (
        f"{f.start}~{f.end}",
        t["total"],
        t["recognized"],
        t["refused"],
        rate(t["rate"]),
        t["patients"],
    )
    sheets = [
        (
            "汇总",
            ["统计期间", "决定总数", "互认", "不互认", "互认率", "涉及患者", "避免收费（元，估算）"],
            [(*summary, float(t["charge"]))],
        ),
        (
            "按科室",
            ["科室代码", "科室", "标准科室", *common],
            [(r["dept_code"], r["dept_name"], r["std_dept_name"], *counts(r)) for r in data["by_dept"]],
        ),
        (
            "按医师",
            ["工号", "医师", "科室", *common],
            [(r["doctor_staff_no"], r["doctor_name"], r["dept_name"], *counts(r)) for r in data["by_doctor"]],
        ),
        (
            "按项目",
            ["类别", "互认项目代码", "互认项目", *common],
            [
                (
                    "检查" if r["kind"] == "exam" else "检验",
                    r["standard_code"],
                    r["standard_name"],
                    *counts(r),
                )
                for r in data["by_item"]
            ],
        ),
        (
            "按日期",
            ["日期", "互认", "不互认"],
            [(r["label"], r["recognized"], r["refused"]) for r in data["series"]],
        ),
        (
            "不互认原因",
            ["原因代码", "原因", "次数", "占比"],
            [
                (r["platform_reason_code"], r["reason_name"], r["n"], f"{r['share']}%")
                for r in data["reasons"]
            ],
        ),
    ]
    return spreadsheets.xlsx_download(f"recognition-stats-{f.start}-{f.end}.xlsx", sheets)


AUDIT_FILTERS = ("start", "end", "action", "doctor", "reportId", "visitId")


@login_required
@permission_required("hospital_interop.view_audit_log", raise_exception=True)
@require_http_methods(["GET", "POST"])
def audit(request):
    """Search of the audit log. The filters are posted and answered with a redirect to the same
    search in the query, an ID number replaced by the patient's key (``patients.lookup``); a
    patient filter already in force stays until removed (its key is posted back)."""
    if request.method == "POST":
        return lookup.redirect_with_patient_key(
            request.path, request.POST, keep=(*AUDIT_FILTERS, lookup.KEY_PARAM)
        )
    g = request.GET
    f = selectors.AuditFilter(
        start=_parse_date(g.get("start", ""), None) if g.get("start") else None,
        end=_parse_date(g.get("end", ""), None) if g.get("end") else None,
        action=g.get("action", ""),
        doctor=g.get("doctor", "").strip(),
        patient_key=lookup.patient_key(g),
        report_id=g.get("reportId", ""),
        visit_id=g.get("visitId", ""),
    )
    page = page_number(g.get("page", ""))
    entries, total = selectors.search_audit(f, offset=(page - 1) * 50)
    query = g.copy()
    query.pop("page", None)
    other = query.copy()
    other.pop(lookup.KEY_PARAM, None)
    return render(
        request,
        "recognition/audit.html",
        {
            "entries": entries,
            "total": total,
            "page": page,
            "f": f,
            "actions": AuditEntry.Action.choices,
            "has_next": page * 50 < total,
            "query": query.urlencode(),
            "query_without_patient": other.urlencode(),
        },
    )


@login_required
@permission_required("hospital_interop.use_recognition", raise_exception=True)
def demo_his(request):
    """A stand-in for the HIS ordering screen: calls the prompt API and embeds the page."""
    from dictionaries.models import ExamOrderItem, LabOrder

    return render(
        request,
        "recognition/demo_his.html",
        {
            "doctors": Doctor.objects.filter(active=True).select_related("department")[:20],
            "exam_items": ExamOrderItem.objects.filter(active=True, mappings__isnull=False).distinct()[:30],
            "lab_orders": LabOrder.objects.filter(active=True)[:30],
        },
    )


USE_RECOGNITION = "hospital_interop.use_recognition"


class _UsesRecognition(BasePermission):
    message = "需要临床医生账号"

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(USE_RECOGNITION))


class _DemoHis:
    """The demo HIS page's own calls: the same code as the machine API, but for a logged-in
    clinician's session (CSRF checked), since the page stands in for the HIS in the browser."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [_UsesRecognition]


class DemoHisPrompt(_DemoHis, api.PromptView):
    pass


class DemoHisEvents(_DemoHis, api.EventsView):
    pass


demo_his_prompt = DemoHisPrompt.as_view()
demo_his_events = DemoHisEvents.as_view()
