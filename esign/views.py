"""Pages of the e-signature app. Thin: forms parse, selectors read, services write and talk to
the CA. JSON endpoints answer {"ok", "message", ...} for the pages' scripts."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from functools import wraps
from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from hospital_interop.errors import InvalidInput
from hospital_interop.integrations import strictjson
from hospital_interop.integrations.api import ApiError, body_limits, read_limited
from hospital_interop.params import row_ids
from hospital_interop.redirects import safe_next

from . import embed, selectors, services
from .client import CAError
from .client.base import FINISH
from .forms import AutoSignForm, MobileForm, ParametersForm, RegisterForm, StaffCAForm
from .models import ReportSignature, ReviewReport, SigningSession
from .signals import _WS, WS_COOKIE

REVIEW = "hospital_interop.review_lab_reports"
AUTOSIGN_QR = "esign_autosign_qr"  # the QR code of the grant waiting for the phone (session)
MANAGE = "esign.manage_ca"


def workstation(view):
    """Identify the management workstation: a long-lived cookie set on first visit (+ client IP)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        ws = request.COOKIES.get(WS_COOKIE, "")
        new = not _WS.fullmatch(ws)
        request.esign_ws = services.new_workstation_id() if new else ws
        response = view(request, *args, **kwargs)
        if origin := _agent_origin():
            # the page's scripts talk to the UKey agent on the workstation (CONTENT_SECURITY_POLICY)
            response._csp_update = {"connect-src": [origin]}
        if new:
            response.set_cookie(
                WS_COOKIE, request.esign_ws, max_age=10 * 365 * 86400, httponly=True, samesite="Lax"
            )
        return response

    return wrapper


def _agent_origin() -> str:
    """scheme://host:port of the UKey agent (parameter UKEY_AGENT_URL), "" when it is not http(s)."""
    parts = urlsplit(selectors.parameter("UKEY_AGENT_URL") or "")
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return ""


def _next(request) -> str:
    return safe_next(request, reverse("esign:home"))


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _qr_svg(content: str) -> str:
    img = qrcode.make(content, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    out = io.BytesIO()
    img.save(out)
    svg = out.getvalue().decode()
    return mark_safe(svg[svg.index("<svg") :])


def _status(request, *, with_autosign: bool = False) -> dict:
    user = request.user
    profile = selectors.profile_for(user)
    session = selectors.active_session(user, request.esign_ws)
    status = {
        "ca_enabled": selectors.ca_enabled(),
        "profile": profile,
        "session": session,
        "person_ca_enabled": selectors.person_ca_enabled(user),
        "ukey_elsewhere": selectors.active_sessions(user)
        .filter(kind=SigningSession.Kind.UKEY)
        .exclude(workstation_id=request.esign_ws)
        .first(),
        "agent_url": selectors.parameter("UKEY_AGENT_URL"),
        "autosign": None,
        "autosign_error": "",
    }
    if with_autosign and status["ca_enabled"] and profile and profile.registered:
        try:
            status["autosign"] = task = services.auto_sign_status(user)
        except CAError as exc:
            status["autosign_error"] = exc.message
        else:
            if task and task.is_open and task.valid_to:
                status["autosign_until"] = timezone.localtime(services.parse_time(task.valid_to))
    return {"st": status}


def _local(iso: str) -> str:
    return timezone.localtime(services.parse_time(iso)).strftime("%H:%M:%S") if iso else ""


def _json_error(message: str, http_status: int = 400, /, **extra) -> JsonResponse:
    """``extra`` may carry the page's own ``status`` field (e.g. "NONE"): the HTTP status is positional."""
    return JsonResponse(
        {"ok": False, "message": message, **extra},
        status=http_status,
        json_dumps_params={"ensure_ascii": False},
    )


def _json_ok(**data) -> JsonResponse:
    return JsonResponse({"ok": True, **data}, json_dumps_params={"ensure_ascii": False})


class _Body(dict):
    """The page's JSON request, its fields read with ``text``."""

    def text(self, name: str) -> str:
        """A text field ("" when missing); any other JSON type is refused, naming the field (a
        number or a list reached base64 and ``str.strip``: a 500)."""
        value = self.get(name, "")
        if not isinstance(value, str):
            raise services.SigningRefused(
                f"请求中的 {name} 必须是文本。", "bad_input", status=400, field=name
            )
        return value


def _body(request) -> _Body:
    """The page's JSON request; anything strictjson refuses reads as empty (the fields it needs are
    then reported missing)."""
    try:
        data = strictjson.loads(read_limited(request, request.META, body_limits()["default"]) or b"{}")
    except (strictjson.JsonRefused, ApiError):
        data = {}
    return _Body(data)


def _refused(exc: services.SigningRefused, **extra) -> JsonResponse:
    """A signing refusal as the pages' JSON error: its status, code and (for bad input) field."""
    return _json_error(
        exc.message, exc.status, code=exc.code, **({"field": exc.field} if exc.field else {}), **extra
    )


# -- 电子签名 home, logout ------------------------------------------------------------------------


@permission_required(REVIEW, raise_exception=True)
@workstation
def home(request):
    ctx = _status(request, with_autosign=True)
    ctx["sessions"] = list(selectors.active_sessions(request.user))
    return render(request, "esign/home.html", ctx)


@permission_required(REVIEW, raise_exception=True)
@require_POST
@workstation
def esign_logout(request):
    everywhere = request.POST.get("everywhere") == "1" or _body(request).get("everywhere") is True
    reason = "UKey 已拔出" if request.POST.get("reason") == "ukey_removed" else "退出电子签名"
    n = services.end_sessions(
        request.user, workstation_id=None if everywhere else request.esign_ws, reason=reason
    )
    text = (
        f"已退出电子签名（关闭 {n} 个 UKey / 二维码签名会话）。" if n else "当前没有需要退出的电子签名会话。"
    )
    if request.headers.get("Accept", "").startswith("application/json"):
        return _json_ok(message=text, closed=n)
    messages.success(request, text)
    return redirect("esign:home")


# -- UKey login -------------------------------------------------------------------------------


@permission_required(REVIEW, raise_exception=True)
@workstation
def ukey_login(request):
    return render(request, "esign/ukey_login.html", _status(request))


@permission_required(REVIEW, raise_exception=True)
@require_POST
@workstation
def ukey_challenge(request):
    profile = selectors.profile_for(request.user)
    if profile is None or not profile.registered:
        return _json_error("您尚未注册签名用户，请先在“签名用户注册”中完成注册。")
    challenge = services.issue_challenge()
    request.session["esign_challenge"] = challenge
    return _json_ok(challenge=challenge["challenge"])


@permission_required(REVIEW, raise_exception=True)
@require_POST
@workstation
def ukey_verify(request):
    body = _body(request)
    challenge = request.session.pop("esign_challenge", None)
    try:
        session = services.ukey_login(
            request.user,
            challenge=challenge,
            signed_challenge=body.text("challenge"),
            certificate=body.text("certificate"),
            signature=body.text("signature"),
            key_serial=body.text("keySerial"),
            workstation_id=request.esign_ws,
            client_ip=_ip(request),
            django_session_key=request.session.session_key or "",
        )
    except services.SigningRefused as exc:
        return _refused(exc)
    except CAError as exc:
        return _json_error(exc.message, 502, code=exc.kind)
    messages.success(request, f"UKey 电子签名登录成功（证书序列号 {session.cert_sn}）。")
    return _json_ok(message="UKey 电子签名登录成功", redirect=_next(request))


# -- QR login ---------------------------------------------------------------------------------


@permission_required(REVIEW, raise_exception=True)
@workstation
def qr_login(request):
    ctx = _status(request)
    try:
        txn = services.start_qr_login(request.user)
    except services.SigningRefused as exc:
        ctx["error"] = exc.message
    except CAError as exc:
        ctx["error"] = exc.message
    else:
        request.session["esign_qr_login"] = txn.transaction_id
        ctx.update(
            qr_svg=_qr_svg(txn.qr_content),
            qr_content=txn.qr_content,
            expires_at=_local(txn.expires_at),
            transaction_id=txn.transaction_id,
        )
    return render(request, "esign/qr_login.html", ctx)


@permission_required(REVIEW, raise_exception=True)
@require_GET
@workstation
def qr_status(request):
    txn = request.session.get("esign_qr_login")
    if not txn:
        return _json_error("没有进行中的扫码登录，请刷新页面。", 404, status="NONE")
    try:
        status, session = services.poll_qr_login(
            request.user,
            txn,
            workstation_id=request.esign_ws,
            client_ip=_ip(request),
            django_session_key=request.session.session_key or "",
        )
    except services.SigningRefused as exc:
        request.session.pop("esign_qr_login", None)
        return _refused(exc, status="REFUSED")
    except CAError as exc:
        return _json_error(exc.message, 502, status="ERROR")
    if status == FINISH:
        request.session.pop("esign_qr_login", None)
        messages.success(request, f"二维码电子签名登录成功（证书序列号 {session.cert_sn}）。")
        return _json_ok(status=status, message="扫码登录成功", redirect=_next(request))
    text = {
        "TOSIGN": "等待扫码确认…",
        "REFUSE": "已在协同签名 APP 上拒绝登录。",
        "EXPIRE": "二维码已过期，请刷新。",
    }
    return _json_ok(status=status, message=text.get(status, status))


# -- registration, phone number, certificate download, auto-sign --------------------------------


def _apply_errors(form, errors):
    for e in errors:
        form.add_error(e["field"] if e["field"] in form.fields else None, e["message"])


@permission_required(REVIEW, raise_exception=True)
@workstation
def register(request):
    reg_form, mobile_form = RegisterForm(), MobileForm()
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "register":
                reg_form = RegisterForm(request.POST)
                reg_form.is_valid()
                d = reg_form.cleaned_data
                profile = services.register_signer(
                    request.user,
                    staff_no=d.get("staff_no", ""),
                    name=d.get("name", ""),
                    id_number=d.get("id_number", ""),
                    mobile=d.get("mobile", ""),
                )
                messages.success(
                    request,
                    f"注册用户成功：{profile.name}（工号 {profile.staff_no}），"
                    f"CA 用户标识 {profile.ca_user_id}。",
                )
                return redirect("esign:register")
            if action == "mobile":
                mobile_form = MobileForm(request.POST)
                mobile_form.is_valid()
                profile = services.change_mobile(request.user, mobile_form.cleaned_data.get("mobile", ""))
                messages.success(request, f"修改手机号成功：{profile.mobile}。")
                return redirect("esign:register")
        except InvalidInput as exc:
            _apply_errors(reg_form if action == "register" else mobile_form, exc.errors)
        except CAError as exc:
            messages.error(request, exc.message)
    return render(
        request, "esign/register.html", {**_status(request), "reg_form": reg_form, "mobile_form": mobile_form}
    )


@permission_required(REVIEW, raise_exception=True)
@workstation
def cert_download(request):
    ctx = _status(request)
    if request.method == "POST":
        try:
            txn = services.start_certificate_download(request.user)
        except (services.SigningRefused, CAError) as exc:
            messages.error(request, exc.message)
        else:
            request.session["esign_certdown"] = txn.transaction_id
            ctx.update(
                qr_svg=_qr_svg(txn.qr_content), qr_content=txn.qr_content, expires_at=_local(txn.expires_at)
            )
    return render(request, "esign/cert_download.html", ctx)


@permission_required(REVIEW, raise_exception=True)
@require_GET
@workstation
def cert_download_status(request):
    txn = request.session.get("esign_certdown")
    if not txn:
        return _json_error("没有进行中的证书下载。", 404, status="NONE")
    try:
        result = services.poll_certificate_download(request.user, txn)
    except (services.SigningRefused, CAError) as exc:
        return _json_error(exc.message, 502, status="ERROR")
    text = {
        "TOSIGN": "等待协同签名 APP 扫码…",
        "FINISH": f"移动证书已下载到协同签名 APP（证书序列号 {result.cert_sn}）。",
        "REFUSE": "已在 APP 上取消下载。",
        "EXPIRE": "二维码已过期，请重新生成。",
    }
    return _json_ok(status=result.status, message=text.get(result.status, result.status))


@permission_required(REVIEW, raise_exception=True)
@workstation
def autosign(request):
    """开启/关闭自动签名, post/redirect/get: a POST that opens a grant redirects to this page, which
    shows the grant's QR code (kept in the session) until the phone confirms it. Reloading the page
    never posts again, so it never replaces a grant with a new unconfirmed one."""
    form = AutoSignForm(request.POST or None)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "disable":
                services.disable_auto_sign(request.user)
                request.session.pop(AUTOSIGN_QR, None)
                messages.success(request, "已关闭自动签名。")
                return redirect("esign:autosign")
            if form.is_valid():
                task = services.enable_auto_sign(request.user, form.cleaned_data["minutes"])
                request.session[AUTOSIGN_QR] = {"qr": task.qr_content, "minutes": task.minutes}
                return redirect("esign:autosign")
        except InvalidInput as exc:
            _apply_errors(form, exc.errors)
        except (services.SigningRefused, CAError) as exc:
            messages.error(request, exc.message)
    status = _status(request, with_autosign=True)
    ctx = {}
    waiting = request.session.get(AUTOSIGN_QR)
    task = status["st"]["autosign"]
    if waiting and task is not None and task.status == "TOSIGN" and not task.is_open:
        ctx.update(
            qr_svg=_qr_svg(waiting["qr"]), qr_content=waiting["qr"], task={"minutes": waiting.get("minutes")}
        )
    elif waiting:
        request.session.pop(AUTOSIGN_QR, None)  # confirmed, refused or expired: the QR is done
    return render(request, "esign/autosign.html", {**status, **ctx, "form": form})


@permission_required(REVIEW, raise_exception=True)
@require_GET
@workstation
def autosign_status(request):
    try:
        task = services.auto_sign_status(request.user)
    except CAError as exc:
        return _json_error(exc.message, 502)
    if task is None:
        return _json_error("尚未注册签名用户。", 404)
    return _json_ok(
        status=task.status,
        open=task.is_open,
        validTo=task.valid_to,
        message="自动签名已开启"
        if task.is_open
        else {
            "TOSIGN": "等待协同签名 APP 确认授权…",
            "REFUSE": "已在 APP 上拒绝授权。",
            "EXPIRE": "授权已过期。",
        }.get(task.status, "未开启"),
    )


# -- review modules ---------------------------------------------------------------------------


@permission_required(REVIEW, raise_exception=True)
@workstation
def review_index(request):
    return render(
        request,
        "esign/review_index.html",
        {**_status(request, with_autosign=True), "modules": selectors.module_counts()},
    )


def _module(code: str) -> tuple[str, str]:
    names = dict(ReviewReport.Module.choices)
    if code not in names:
        raise Http404("审核模块不存在")
    return code, names[code]


@permission_required(REVIEW, raise_exception=True)
@workstation
def review_module(request, module: str):
    code, name = _module(module)
    return render(
        request,
        "esign/review_module.html",
        {
            **_status(request, with_autosign=True),
            "module": code,
            "module_name": name,
            "modules": selectors.module_counts(),
            **selectors.module_reports(code),
        },
    )


@permission_required(REVIEW, raise_exception=True)
@workstation
def report_detail(request, pk: int):
    report = selectors.report_for_review(pk)
    if report is None:
        raise Http404("报告不存在")
    return render(
        request,
        "esign/report_detail.html",
        {
            **_status(request, with_autosign=True),
            "report": report,
            "module": report.module,
            "module_name": report.get_module_display(),
            "signature": selectors.latest_signature(report),
        },
    )


@permission_required(REVIEW, raise_exception=True)
@require_POST
@workstation
def report_sign_data(request, pk: int):
    get_object_or_404(ReviewReport, pk=pk)
    try:
        prepared = services.prepare_ukey_signing(pk, request.user, workstation_id=request.esign_ws)
    except services.SigningRefused as exc:
        return _refused(exc)
    request.session["esign_prepared"] = prepared
    return _json_ok(data=prepared["data"], certSn=prepared["certSn"])


@permission_required(REVIEW, raise_exception=True)
@require_POST
@workstation
def report_approve(request, pk: int):
    report = get_object_or_404(ReviewReport, pk=pk)
    wants_json = request.content_type == "application/json"
    body = _body(request) if wants_json else _Body()
    try:
        approval = services.approve_report(
            pk,
            request.user,
            workstation_id=request.esign_ws,
            prepared=request.session.get("esign_prepared"),
            ukey_signature=body.text("signature"),
            ukey_certificate=body.text("certificate"),
        )
    except (services.SigningRefused, CAError) as exc:
        if wants_json:
            return (
                _refused(exc) if isinstance(exc, services.SigningRefused) else _json_error(exc.message, 403)
            )
        messages.error(request, exc.message)
        return redirect("esign:report", pk=pk)
    request.session.pop("esign_prepared", None)
    target = (
        reverse("esign:report", args=[pk])
        if approval.outcome == "pending_phone"
        else reverse("esign:module", args=[report.module])
    )
    if wants_json:
        messages.success(request, approval.message)
        return _json_ok(message=approval.message, outcome=approval.outcome, redirect=target)
    (messages.info if approval.outcome == "pending_phone" else messages.success)(request, approval.message)
    return redirect(target)


@permission_required(REVIEW, raise_exception=True)
@require_POST
@workstation
def report_withdraw(request, pk: int):
    """撤销审核 (with a reason): the version goes back to the queue; its upload is voided or re-sent."""
    get_object_or_404(ReviewReport, pk=pk)
    try:
        report = services.withdraw_approval(pk, request.user, reason=request.POST.get("reason", ""))
    except InvalidInput as exc:
        messages.error(request, exc.errors[0]["message"])
    except services.SigningRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"已撤销报告 {report.report_id} 第 {report.report_version} 版的审核：未发送的上传已作废，重新审核签名后再上传。",
        )
    return redirect("esign:report", pk=pk)


@permission_required(REVIEW, raise_exception=True)
@require_GET
@workstation
def report_sign_status(request, pk: int):
    report = get_object_or_404(ReviewReport, pk=pk)
    try:
        approval = services.finish_sign_job(pk, request.user)
    except (services.SigningRefused, CAError) as exc:
        return _json_error(exc.message, 403, status="ERROR")
    if approval is None:
        return _json_ok(status="TOSIGN", message="等待协同签名 APP 确认签名…")
    messages.success(request, approval.message) if approval.outcome == "signed" else messages.error(
        request, approval.message
    )
    return _json_ok(
        status=approval.outcome,
        message=approval.message,
        redirect=reverse("esign:module", args=[report.module]),
    )


@permission_required(REVIEW, raise_exception=True)
@require_POST
@workstation
def batch_approve(request, module: str):
    code, _ = _module(module)
    ids = row_ids(request.POST.getlist("report"))
    ids = list(ReviewReport.objects.filter(module=code, pk__in=ids).values_list("pk", flat=True))
    try:
        results = services.batch_approve(ids, request.user, workstation_id=request.esign_ws)
    except InvalidInput as exc:
        messages.error(request, exc.errors[0]["message"])
        return redirect("esign:module", module=code)
    except (services.SigningRefused, CAError) as exc:
        messages.error(request, exc.message)
        return redirect("esign:module", module=code)
    done = [r for r in results if isinstance(r, services.Approval)]
    failed = [r for r in results if isinstance(r, services.SigningRefused)]
    if done:
        how = "并完成自动签名" if done[0].outcome == "signed" else "（CA 未启用，未进行电子签名）"
        messages.success(request, f"批量审核 {len(done)} 份报告{how}。")
    if failed:
        messages.error(request, f"{len(failed)} 份报告未审核：{failed[0].message}")
    return redirect("esign:module", module=code)


@permission_required(REVIEW, raise_exception=True)
@workstation
def verify(request, pk: int):
    signature = get_object_or_404(ReportSignature.objects.select_related("report"), pk=pk)
    result = services.verify_signature(signature)
    return render(
        request,
        "esign/verify.html",
        {
            **_status(request),
            "sig": signature,
            "report": signature.report,
            "result": result,
            "module": signature.report.module,
            "module_name": signature.report.get_module_display(),
        },
    )


# -- staff management and parameters ------------------------------------------------------------


@permission_required(MANAGE, raise_exception=True)
@workstation
def staff(request):
    from django.contrib.auth import get_user_model

    errors, edited = {}, None
    if request.method == "POST":
        user = get_object_or_404(get_user_model(), pk=request.POST.get("user"))
        form = StaffCAForm(request.POST)
        form.is_valid()
        try:
            services.set_staff_ca(
                user,
                ukey_serial=form.cleaned_data.get("ukey_serial", ""),
                ca_enabled=form.cleaned_data.get("ca_enabled", False),
            )
        except InvalidInput as exc:
            errors, edited = {e["field"]: e["message"] for e in exc.errors}, user.pk
        else:
            messages.success(request, f"已保存 {user.get_full_name() or user.username} 的 CA 设置。")
            return redirect("esign:staff")
    return render(
        request,
        "esign/staff.html",
        {
            **_status(request),
            "people": selectors.lab_staff(),
            "errors": errors,
            "edited": edited,
            "posted": request.POST if edited else {},
        },
    )


@permission_required(MANAGE, raise_exception=True)
@workstation
def parameters(request):
    current = {p["key"]: p["value"] for p in selectors.parameters_for_display()}
    form = ParametersForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        try:
            services.set_parameters({k: v for k, v in form.cleaned_data.items()}, actor=request.user.username)
        except InvalidInput as exc:
            _apply_errors(form, exc.errors)
        else:
            messages.success(request, "统一代码表参数已保存。")
            return redirect("esign:parameters")
    return render(
        request,
        "esign/parameters.html",
        {**_status(request), "form": form, "rows": selectors.parameters_for_display(), "now": timezone.now()},
    )


# -- the embedded signing page (esign.embed): opened by the LIS, credential = the token in the path --


def _embed_headers(response, origin: str = ""):
    """Only the LIS origin of the link (and this server) may frame the page; nothing is cached or
    sent on as a Referer (the path holds the link's token)."""
    response["Content-Security-Policy"] = "frame-ancestors " + " ".join(
        ["'self'", *([origin] if origin else [])]
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def embedded(view):
    """Resolve the link's token (a refusal page or JSON error when it is bad), exempt the page from
    X-Frame-Options (its CSP names who may frame it) and from CSRF (cross-site frames get no
    cookies; the unguessable token in the path stands in for both login and CSRF token)."""

    @wraps(view)
    @csrf_exempt
    @xframe_options_exempt
    def wrapper(request, token: str, *args, **kwargs):
        try:
            ctx = embed.context(token)
        except embed.EmbedLinkError as exc:
            if request.method == "GET" and "application/json" not in request.headers.get("Accept", ""):
                page = render(
                    request, "esign/embed_refused.html", {"message": exc.message}, status=exc.status
                )
                return _embed_headers(page)
            return _embed_headers(_json_error(exc.message, exc.status))
        if not ReviewReport.objects.filter(pk=ctx.review_id).exists():
            return _embed_headers(_json_error("报告不存在。", 404))
        return _embed_headers(view(request, ctx, *args, **kwargs), ctx.origin)

    return wrapper


def _embed_result(approval: services.Approval | None, report: ReviewReport, status: str = "") -> JsonResponse:
    report.refresh_from_db()
    sig = selectors.latest_signature(report) if report.signed else None
    return _json_ok(
        status=status or report.status,
        message=approval.message if approval else report.get_status_display(),
        reportId=report.report_id,
        version=report.report_version,
        signature=selectors.signature_payload(sig) if sig else None,
    )


@require_GET
@embedded
def embed_page(request, ctx):
    report = selectors.report_for_review(ctx.review_id)
    sig = selectors.latest_signature(report) if report.signed else None
    return render(
        request,
        "esign/embed.html",
        {
            "report": report,
            "origin": ctx.origin,
            "expires": timezone.localtime(datetime.fromtimestamp(ctx.expires, tz=UTC)),
            "agent_url": selectors.parameter("UKEY_AGENT_URL"),
            "ca_enabled": selectors.ca_enabled(),
            "signature": sig,
            "signature_json": selectors.signature_payload(sig) if sig else None,
        },
    )


@require_POST
@embedded
def embed_sign_data(request, ctx):
    body = _body(request)
    try:
        prepared = services.embed_sign_data(
            ctx.review_id, certificate=body.text("certificate"), key_serial=body.text("keySerial")
        )
    except services.SigningRefused as exc:
        return _refused(exc)
    return _json_ok(**prepared)


@require_POST
@embedded
def embed_sign(request, ctx):
    body = _body(request)
    try:
        approval = services.embed_sign_ukey(
            ctx.review_id,
            certificate=body.text("certificate"),
            signature=body.text("signature"),
            key_serial=body.text("keySerial"),
        )
    except services.SigningRefused as exc:
        return _refused(exc)
    except CAError as exc:
        return _json_error(exc.message, 502, code=exc.kind)
    return _embed_result(approval, approval.report)


@require_POST
@embedded
def embed_qr(request, ctx):
    try:
        txn = services.embed_qr_start()
    except CAError as exc:
        return _json_error(exc.message, 502, code=exc.kind)
    return _json_ok(
        transactionId=txn.transaction_id,
        qrSvg=str(_qr_svg(txn.qr_content)),
        qrContent=txn.qr_content,
        expiresAt=_local(txn.expires_at),
    )


@require_POST
@embedded
def embed_qr_status(request, ctx):
    txn = _body(request).get("transactionId", "")
    if not isinstance(txn, str) or not txn or len(txn) > 128:
        return _json_error("缺少扫码事务号，请重新生成二维码。", 400)
    report = ReviewReport.objects.get(pk=ctx.review_id)
    try:
        status, approval = services.embed_qr_poll(ctx.review_id, txn)
    except services.SigningRefused as exc:
        return _refused(exc, status="REFUSED")
    except CAError as exc:
        return _json_error(exc.message, 502, code=exc.kind, status="ERROR")
    if approval is None:
        text = {
            "TOSIGN": "等待扫码确认…",
            "REFUSE": "已在协同签名 APP 上拒绝。",
            "EXPIRE": "二维码已过期，请重新生成。",
        }
        return _json_ok(status=status, message=text.get(status, status))
    return _embed_result(approval, report, "SIGNING" if approval.outcome == "pending_phone" else "")


@require_GET
@embedded
def embed_status(request, ctx):
    report = ReviewReport.objects.get(pk=ctx.review_id)
    if report.status == ReviewReport.Status.SIGNING:
        try:
            approval = services.embed_poll_sign_job(ctx.review_id)
        except services.SigningRefused as exc:
            return _refused(exc)
        except CAError as exc:
            return _json_error(exc.message, 502, code=exc.kind)
        if approval is None:
            return _json_ok(status="SIGNING", message="等待协同签名 APP 确认签名…")
        return _embed_result(approval, report)
    return _embed_result(None, report)
