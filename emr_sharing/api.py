"""The intake REST API: one generic view set, parameterised by record type (see api_urls.py).

    POST /api/emr/v1/records/{recordType}                 one record (application/json)
    POST /api/emr/v1/records/{recordType}/bulk            many (application/x-ndjson or a JSON array), all or nothing
    GET  /api/emr/v1/records/{recordType}/{businessKey}   where the record is in delivery
    GET  /api/emr/v1/record-types                         the record types, their keys and ordering

Callers are calling systems with a token (hospital_interop.integrations). Every error answers
``{"code", "message", "errors": [{field, rule, message, (line)}]}``. The body is read and parsed
here rather than by DRF parsers, so that size limits, JSON problems and line numbers are
reported in that same shape.
"""

from __future__ import annotations

import json
import logging

from django.http import JsonResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from hospital_interop.integrations.authentication import IntegrationTokenAuthentication
from hospital_interop.integrations.permissions import HasIntegrationScope
from hospital_interop.patients.services import PatientConflict

from . import selectors, services
from .conf import intake_limits
from .mapping import RecordType, record_types
from .openapi import ERROR_REF, RECORD_TYPE_LIST, RecordSchema

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines")


def _error(field: str, rule: str, zh: str, en: str, **extra) -> dict:
    return {**extra, "field": field, "rule": rule, "message": f"{zh} ({en})"}


class IntakeError(exceptions.APIException):
    """An error answer in the intake's shape: status, code, message and field errors."""

    def __init__(self, status_code: int, code: str, message: str, errors: list[dict] | None = None):
        self.status_code = status_code
        self.code = code
        self.errors = errors or []
        super().__init__(message, code)


_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          406: "not_acceptable", 409: "conflict", 413: "too_large", 415: "unsupported_media_type", 429: "throttled"}


def intake_exception_handler(exc, context):
    """DRF exceptions -> ``{"code", "message", "errors"}``; anything else stays a 500."""
    if isinstance(exc, IntakeError):
        return Response({"code": exc.code, "message": str(exc.detail), "errors": exc.errors}, status=exc.status_code)
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        message = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
        if isinstance(exc, exceptions.NotAuthenticated):
            message = "缺少令牌：请求头应为 Authorization: Token <令牌>"
        elif isinstance(exc, exceptions.MethodNotAllowed):
            message = f"不支持的请求方法 {context['request'].method}"
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return Response({"code": _CODES.get(exc.status_code, "error"), "message": str(message), "errors": []},
                        status=exc.status_code, headers=headers)
    return None


class IntakeAPIView(APIView):
    authentication_classes = [IntegrationTokenAuthentication]
    permission_classes = [HasIntegrationScope]
    renderer_classes = [JSONRenderer]
    parser_classes: list = []  # bodies are read in _read_body with the intake's own limits and errors

    def get_exception_handler(self):
        return intake_exception_handler


def _status_url(rt: RecordType, key: str) -> str:
    return reverse(f"emr_api:status-{rt.slug}", kwargs={"businessKey": key})


def _read_body(request, allowed: tuple[str, ...], limit: int) -> str:
    content_type = (request.content_type or "").lower()
    if content_type not in allowed:
        raise IntakeError(415, "unsupported_media_type", f"Content-Type 应为 {' 或 '.join(allowed)}",
                          [_error("", "contentType", f"不支持的 Content-Type：{content_type or '（缺失）'}",
                                  "unsupported content type")])
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise IntakeError(413, "too_large", f"请求体超过 {limit} 字节上限",
                          [_error("", "tooLarge", f"请求体 {length} 字节，超过上限 {limit} 字节", "body too large")])
    raw = request._request.read(limit + 1)
    if len(raw) > limit:
        raise IntakeError(413, "too_large", f"请求体超过 {limit} 字节上限",
                          [_error("", "tooLarge", f"请求体超过上限 {limit} 字节", "body too large")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IntakeError(400, "invalid", "请求体不是有效的 UTF-8 文本",
                          [_error("", "json", f"第 {exc.start + 1} 字节起不是有效的 UTF-8", "not UTF-8")]) from None


def _reject_constant(name: str):
    raise ValueError(f"{name} 不是有效的 JSON 数值")


def _loads(text: str):
    return json.loads(text, parse_constant=_reject_constant)


def _json_error(exc: Exception, **extra) -> dict:
    if isinstance(exc, json.JSONDecodeError):
        return _error("", "json", f"不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列 {exc.msg}", "invalid JSON", **extra)
    return _error("", "json", f"不是有效的 JSON：{exc}", "invalid JSON", **extra)


def _conflict(exc: PatientConflict) -> IntakeError:
    """Records naming a visit, stay or order of another patient: 409, nothing saved."""
    exc.record()
    return IntakeError(409, "conflict", f"{len(exc.errors)} 处就诊或医嘱编号属于另一位患者；未保存任何内容", exc.errors)


def _invalid(errors: list[dict], many: bool = False) -> IntakeError:
    what = "记录" if not many else f"{len({e.get('line') for e in errors})} 行记录"
    return IntakeError(400, "invalid", f"{what}有误，共 {len(errors)} 处错误；未保存任何内容", errors)


class RecordViewSet(ViewSet, IntakeAPIView):
    """Submit records of one record type and ask where they are. ``record_type`` is set per URL."""

    record_type: str | None = None
    schema = RecordSchema()

    def get_record_type(self) -> RecordType:
        return record_types().get(self.record_type)

    def integration_scope(self, request) -> str:
        return self.get_record_type().interface

    def create(self, request):
        rt = self.get_record_type()
        text = _read_body(request, JSON_TYPES, intake_limits()["MAX_RECORD_BYTES"])
        try:
            record = _loads(text)
        except ValueError as exc:
            raise _invalid([_json_error(exc)]) from None
        try:
            result = services.submit(rt, record, source=request.auth.code)
        except services.RecordInvalid as exc:
            raise _invalid(exc.errors) from None
        except PatientConflict as exc:
            raise _conflict(exc) from None
        body = {"created": result.created, "statusUrl": _status_url(rt, result.key),
                "status": selectors.status_of(rt, result.record)}
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    def bulk(self, request):
        rt = self.get_record_type()
        limits = intake_limits()
        text = _read_body(request, JSON_TYPES + NDJSON_TYPES, limits["MAX_BULK_BYTES"])
        items, errors = _bulk_items(rt, text, json_array=(request.content_type or "").lower() in JSON_TYPES,
                                    max_records=limits["MAX_BULK_RECORDS"])
        try:
            results = services.submit_many(items, source=request.auth.code, errors=errors)
        except services.RecordInvalid as exc:
            raise _invalid(exc.errors, many=True) from None
        except PatientConflict as exc:
            raise _conflict(exc) from None
        created = sum(1 for r in results if r.created)
        return Response({
            "received": len(results), "created": created, "unchanged": len(results) - created,
            "results": [{"line": r.line, "businessKey": r.key, "created": r.created, "version": r.record.version,
                         "state": r.record.state, "stateName": r.record.get_state_display(),
                         "statusUrl": _status_url(rt, r.key)} for r in results],
        })

    def retrieve(self, request, businessKey: str):
        rt = self.get_record_type()
        key = rt.parse_key(businessKey)
        found = selectors.record_status(rt, key)
        if found is None:
            raise IntakeError(404, "not_found", f"没有{rt.spec.name}记录 {key}",
                              [_error("businessKey", "notFound", f"没有主键为 {key} 的记录", "no such record")])
        return Response(found)


def _bulk_items(rt: RecordType, text: str, *, json_array: bool, max_records: int):
    """[(record_type, record, line)] and parse errors (with line numbers)."""
    errors: list[dict] = []
    if json_array:
        try:
            data = _loads(text)
        except ValueError as exc:
            return [], [_json_error(exc)]
        if type(data) is not list:
            return [], [_error("", "type", "JSON 格式的批量请求体应为记录数组", "expected a JSON array")]
        rows = [(n, record) for n, record in enumerate(data, 1)]
    else:
        rows = []
        for n, line in enumerate(text.split("\n"), 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append((n, _loads(line)))
            except ValueError as exc:
                errors.append(_json_error(exc, line=n))
            if len(rows) + len(errors) > max_records:
                break
    if len(rows) + len(errors) > max_records:
        raise IntakeError(413, "too_large", f"每次至多提交 {max_records} 条记录",
                          [_error("", "lines", f"记录数超过上限 {max_records}", "too many records")])
    if not rows and not errors:
        return [], [_error("", "lines", "请求体中没有记录", "no records")]
    return [(rt, record, n) for n, record in rows], errors


class RecordTypeList(IntakeAPIView):
    """The record types this API accepts (readable by any calling system and by staff sessions)."""

    authentication_classes = [IntegrationTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="record_types_list", summary="记录类型列表", tags=["记录类型"],
                   description="本接口接受的全部记录类型：对应的市平台服务、主键字段、上级记录（顺序依赖），"
                               "以及当前令牌是否有权提交（allowed）。",
                   responses={200: OpenApiResponse(RECORD_TYPE_LIST, description="记录类型"),
                              401: OpenApiResponse(ERROR_REF, description="未登录或令牌无效")})
    def get(self, request):
        system = request.auth if hasattr(request.auth, "allows") else None
        return Response([{
            "recordType": rt.slug, "interface": rt.interface, "name": rt.spec.name, "group": rt.group_title,
            "document": rt.spec.document, "version": rt.spec.version, "section": rt.spec.section,
            "key": list(rt.key_fields), "parents": [p.interface for p in rt.spec.parents],
            "allowed": system.allows(rt.interface) if system is not None else None,
            "url": reverse(f"emr_api:create-{rt.slug}"),
        } for rt in record_types()])


def unknown_record_type(request, *args, **kwargs):
    slugs = ", ".join(rt.slug for rt in record_types())
    return JsonResponse({"code": "not_found", "message": "未知的记录类型或地址",
                         "errors": [_error("recordType", "notFound", f"可用的记录类型：{slugs}", "unknown record type")]},
                        status=404, json_dumps_params={"ensure_ascii": False})
