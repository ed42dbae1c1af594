"""The one base of the machine APIs (HIS, EMR, LIS, RIS/PACS call these; people never do).

``MachineApiView``
    DRF view: calling-system tokens only (no session cookie, so no other site's page can use a
    clinician's login), the view's interface scope, the strict JSON parser with a per-endpoint
    body limit, JSON answers, and one exception handler.

``ApiError(status, message, errors)``
    The one error a machine API raises. Every error answer, whatever caused it, has one body::

        {"code": "invalid", "message": "中文说明", "errors": [{"field", "rule", "message"}, ...]}

    ``code`` follows the HTTP status (``CODES``); ``errors`` may be empty. Services raise their
    ``InvalidInput`` (``hospital_interop.errors``), which the handler answers with its status (400,
    or 409 for ``PatientConflict``); views raise ``ApiError`` for what only they know (404, 413).

Body limits (``settings.INTEGRATION_BODY_LIMITS``, bytes) are named per endpoint kind: a view
sets ``body_limit = "report"`` and an over-long body is a JSON 413 before it is read.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import Http404
from rest_framework import exceptions
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital_interop.errors import InvalidInput, field_error
from hospital_interop.params import url_errors
from hospital_interop.patients.services import PatientConflict

from . import strictjson

__all__ = [
    "ApiError",
    "MachineApiView",
    "StrictJsonParser",
    "body_limits",
    "error_body",
    "exception_handler",
    "field_error",
    "parse_json",
    "read_limited",
]
from .authentication import IntegrationTokenAuthentication
from .permissions import HasIntegrationScope
from .schema import MachineSchema

log = logging.getLogger(__name__)

CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
    503: "unavailable",
}

BODY_LIMIT_DEFAULTS = {
    "default": 1024 * 1024,  # events, prompts, decisions, withdrawals
    "report": 30 * 1024 * 1024,  # an exam or lab report with its PDF (a 20 MiB PDF is ~27 MiB of Base64)
    "record": 32 * 1024 * 1024,  # one EMR record (may carry a PDF)
    "bulk": 64 * 1024 * 1024,  # an EMR bulk load
}


def body_limits() -> dict[str, int]:
    return {**BODY_LIMIT_DEFAULTS, **getattr(settings, "INTEGRATION_BODY_LIMITS", {})}


class ApiError(exceptions.APIException):
    """An error answer: HTTP status, a Chinese message, and the field errors behind it."""

    def __init__(
        self, status_code: int, message: str, errors: list[dict] | None = None, code: str | None = None
    ):
        self.status_code = status_code
        self.errors = list(errors or [])
        super().__init__(message, code or CODES.get(status_code, "error"))

    @classmethod
    def invalid(cls, errors: list[dict], what: str = "请求") -> ApiError:
        return cls(400, f"{what}有误，共 {len(errors)} 处错误；未保存任何内容", errors)


def error_body(
    status_code: int, message: str, errors: list[dict] | None = None, code: str | None = None
) -> dict:
    return {"code": code or CODES.get(status_code, "error"), "message": message, "errors": list(errors or [])}


_DRF_MESSAGES = {
    exceptions.NotAuthenticated: "缺少令牌：请求头应为 Authorization: Token <令牌>",
    exceptions.PermissionDenied: "该接入系统无权调用此接口",
    exceptions.UnsupportedMediaType: "Content-Type 应为 application/json",
    exceptions.NotAcceptable: "只能返回 application/json",
}


def exception_handler(exc, context):
    """Every exception of a machine API view → the one error body; anything unknown stays a 500."""
    if isinstance(exc, PatientConflict):
        exc.record()  # the view's transaction was rolled back: leave the refusal for ops
        exc = ApiError(409, "请求中的就诊、医嘱、申请单或报告单号属于另一位患者；未保存任何内容", exc.errors)
    elif isinstance(exc, InvalidInput):  # a service refused the input and wrote nothing
        exc = (
            ApiError.invalid(exc.errors)
            if exc.status == 400
            else ApiError(
                exc.status, "；".join(e["message"] for e in exc.errors[:3]) or "请求无法处理", exc.errors
            )
        )
    elif isinstance(exc, Http404):
        exc = ApiError(404, str(exc) or "不存在")
    if isinstance(exc, ApiError):
        return Response(
            error_body(exc.status_code, str(exc.detail), exc.errors, exc.get_codes()), status=exc.status_code
        )
    if not isinstance(exc, exceptions.APIException):
        return None
    message = next((m for cls, m in _DRF_MESSAGES.items() if isinstance(exc, cls)), None)
    if isinstance(exc, exceptions.MethodNotAllowed):
        message = f"不支持的请求方法 {context['request'].method}"
    if message is None:
        message = exc.detail if isinstance(exc.detail, str) else "请求有误"
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return Response(error_body(exc.status_code, str(message)), status=exc.status_code, headers=headers)


def read_limited(stream, meta: dict, limit: int) -> bytes:
    """The body, or a 413 before reading when its declared length (or its actual one) exceeds ``limit``.
    Read from the stream, never through ``request.body`` (Django's own 2.5 MB cap answers HTML)."""
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large(declared, limit)
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise too_large(len(raw), limit)
    return raw


def parse_json(raw: bytes, *, top: str = "object", **extra):
    """``strictjson.loads`` with its refusal as an ApiError (400) naming the path; ``extra`` (a
    line number) goes into the field error."""
    try:
        return strictjson.loads(raw, top=top)
    except strictjson.JsonRefused as refused:
        raise ApiError(
            400, f"请求体不是可接受的 JSON：{refused.message}", [{**extra, **refused.as_error()}]
        ) from None


class StrictJsonParser(BaseParser):
    """application/json through ``strictjson``, within the view's body limit."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        view, request = (parser_context or {}).get("view"), (parser_context or {}).get("request")
        raw = read_limited(
            stream,
            request.META if request is not None else {},
            body_limits()[getattr(view, "body_limit", "default")],
        )
        return parse_json(raw, top=getattr(view, "json_top", "object"))


def too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        f"请求体超过 {limit} 字节上限",
        [field_error("", "tooLarge", f"请求体 {size} 字节，超过上限 {limit} 字节")],
    )


class MachineApiView(APIView):
    """Base of every machine API view. Subclasses set ``integration_scope`` (a service code or
    scope name, or a method returning one), and ``body_limit`` when they take large bodies. Their
    OpenAPI documents every error answer with the one body (``schema.MachineSchema``); a view
    names the statuses only it knows in ``error_answers`` ({409: "中文说明"}). A NUL in a path or
    query parameter is a 400 naming it, before the view runs."""

    authentication_classes = [IntegrationTokenAuthentication]
    permission_classes = [HasIntegrationScope]
    parser_classes = [StrictJsonParser]
    renderer_classes = [JSONRenderer]
    body_limit = "default"
    json_top = "object"
    schema = MachineSchema()
    error_answers: dict[int, str] = {}

    def get_exception_handler(self):
        return exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticated and allowed first
        errors = url_errors(kwargs, request.query_params)
        if errors:
            raise ApiError.invalid(errors)
