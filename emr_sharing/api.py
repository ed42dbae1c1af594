"""The intake REST API: one generic view set, parameterised by record type (see api_urls.py).

    POST /api/emr/v1/records/{recordType}                 one record (application/json)
    POST /api/emr/v1/records/{recordType}/bulk            many (application/x-ndjson or a JSON array), all or nothing
    GET  /api/emr/v1/records/{recordType}/{businessKey}   where the record is in delivery
    GET  /api/emr/v1/record-types                         the record types, their keys and ordering

Callers are calling systems with a token; the view base, strict JSON parsing, body limits and
the one error body (``{"code", "message", "errors": [{field, rule, message, (line)}]}``) are
``hospital_interop.integrations.api``'s. Bulk bodies are parsed here line by line, so that each
problem carries its line number.
"""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import BaseParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.viewsets import ViewSet

from hospital_interop.errors import InvalidInput
from hospital_interop.integrations import strictjson
from hospital_interop.integrations.api import (
    ApiError,
    MachineApiView,
    body_limits,
    error_body,
    field_error,
    parse_json,
    read_limited,
)
from hospital_interop.integrations.authentication import IntegrationTokenAuthentication

from . import selectors, services
from .conf import intake_limits
from .mapping import RecordType, record_types
from .openapi import RECORD_TYPE_LIST, RecordSchema

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)
NDJSON_TYPES = (
    "application/x-ndjson",
    "application/jsonl",
    "application/jsonlines",
    "application/x-jsonlines",
)


def _status_url(rt: RecordType, key: str) -> str:
    return reverse(f"emr_api:status-{rt.slug}", kwargs={"businessKey": key})


def _invalid(errors: list[dict], many: bool = False) -> ApiError:
    return ApiError.invalid(errors, "记录" if not many else f"{len({e.get('line') for e in errors})} 行记录")


class BulkParser(BaseParser):
    """The bulk body as it came (NDJSON or a JSON array), within the bulk limit; ``_bulk_items``
    parses it line by line."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        view, request = parser_context["view"], parser_context["request"]
        if (request.content_type or "").lower() not in JSON_TYPES + NDJSON_TYPES:
            raise ApiError(
                415,
                f"Content-Type 应为 {' 或 '.join(JSON_TYPES + NDJSON_TYPES)}",
                [
                    field_error(
                        "", "contentType", f"不支持的 Content-Type：{request.content_type or '（缺失）'}"
                    )
                ],
            )
        return read_limited(stream, request.META, body_limits()[view.body_limit])


class RecordViewSet(ViewSet, MachineApiView):
    """Submit records of one record type and ask where they are. ``record_type`` is set per URL."""

    record_type: str | None = None
    schema = RecordSchema()

    def get_record_type(self) -> RecordType:
        return record_types().get(self.record_type)

    def integration_scope(self, request) -> str:
        return self.get_record_type().interface

    def _is_bulk(self) -> bool:  # parsers are chosen before DRF sets self.action
        request = getattr(self, "request", None)
        return request is not None and getattr(self, "action_map", {}).get(request.method.lower()) == "bulk"

    def get_parsers(self):
        return [BulkParser()] if self._is_bulk() else super().get_parsers()

    @property
    def body_limit(self) -> str:
        return "bulk" if self._is_bulk() else "record"

    def create(self, request):
        rt = self.get_record_type()
        try:
            result = services.submit(rt, request.data, source=request.auth.code)
        except InvalidInput as exc:
            if exc.status != 400:  # another patient's visit: the handler's 409
                raise
            raise _invalid(exc.errors) from None
        if result.held is not None:  # valid, but a hospital code is not mapped yet: kept, not sent
            body = {
                "created": result.created,
                "held": True,
                "statusUrl": _status_url(rt, result.key),
                "status": selectors.held_status(rt, result.held),
            }
            return Response(body, status=status.HTTP_202_ACCEPTED)
        body = {
            "created": result.created,
            "statusUrl": _status_url(rt, result.key),
            "status": selectors.status_of(rt, result.record),
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    def bulk(self, request):
        rt = self.get_record_type()
        raw = request.data if isinstance(request.data, bytes) else b""  # no body at all: DRF parses nothing
        items, errors = _bulk_items(
            rt,
            raw,
            json_array=(request.content_type or "").lower() in JSON_TYPES,
            max_records=intake_limits()["MAX_BULK_RECORDS"],
        )
        try:
            results = services.submit_many(items, source=request.auth.code, errors=errors)
        except InvalidInput as exc:
            if exc.status != 400:
                raise
            raise _invalid(exc.errors, many=True) from None
        created = sum(1 for r in results if r.created)
        return Response(
            {
                "received": len(results),
                "created": created,
                "unchanged": len(results) - created,
                "held": sum(1 for r in results if r.held is not None),
                "results": [_bulk_result(rt, r) for r in results],
            }
        )

    def retrieve(self, request, businessKey: str):
        rt = self.get_record_type()
        key = rt.parse_key(businessKey)
        found = selectors.record_status(rt, key)
        if found is None:
            raise ApiError(
                404,
                f"没有{rt.spec.name}记录 {key}",
                [field_error("businessKey", "notFound", f"没有主键为 {key} 的记录")],
            )
        return Response(found)


def _bulk_result(rt: RecordType, r: services.Submission) -> dict:
    out = {"line": r.line, "businessKey": r.key, "created": r.created}
    if r.held is not None:
        out.update(
            version=None,
            state=r.held.state,
            stateName=r.held.get_state_display(),
            problems=r.held.problems,
        )
    else:
        out.update(version=r.record.version, state=r.record.state, stateName=r.record.get_state_display())
    out["statusUrl"] = _status_url(rt, r.key)
    return out


def _bulk_items(rt: RecordType, raw: bytes, *, json_array: bool, max_records: int):
    """[(record_type, record, line)] and parse errors (with line numbers)."""
    errors: list[dict] = []
    if json_array:
        rows = list(enumerate(parse_json(raw, top="array"), 1))
    else:
        rows = []
        for n, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                rows.append(
                    (n, strictjson.loads(line.removeprefix(b"\xef\xbb\xbf") if n == 1 else line, top="any"))
                )
            except strictjson.JsonRefused as refused:
                errors.append({"line": n, **refused.as_error()})
            if len(rows) + len(errors) > max_records:
                break
    if len(rows) + len(errors) > max_records:
        raise ApiError(
            413,
            f"每次至多提交 {max_records} 条记录",
            [field_error("", "lines", f"记录数超过上限 {max_records}")],
        )
    if not rows and not errors:
        return [], [field_error("", "lines", "请求体中没有记录")]
    return [(rt, record, n) for n, record in rows], errors


class RecordTypeList(MachineApiView):
    """The record types this API accepts (readable by any calling system and by staff sessions)."""

    authentication_classes = [IntegrationTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    error_answers = {401: "未登录或令牌无效"}

    @extend_schema(
        operation_id="record_types_list",
        summary="记录类型列表",
        tags=["记录类型"],
        description="本接口接受的全部记录类型：对应的市平台服务、主键字段、上级记录（顺序依赖），"
        "以及当前令牌是否有权提交（allowed）。",
        responses={200: OpenApiResponse(RECORD_TYPE_LIST, description="记录类型")},
    )
    def get(self, request):
        system = request.auth if hasattr(request.auth, "allows") else None
        return Response(
            [
                {
                    "recordType": rt.slug,
                    "interface": rt.interface,
                    "name": rt.spec.name,
                    "group": rt.group_title,
                    "document": rt.spec.document,
                    "version": rt.spec.version,
                    "section": rt.spec.section,
                    "key": list(rt.key_fields),
                    "parents": [p.interface for p in rt.spec.parents],
                    "allowed": system.allows(rt.interface) if system is not None else None,
                    "url": reverse(f"emr_api:create-{rt.slug}"),
                }
                for rt in record_types()
            ]
        )


def unknown_record_type(request, *args, **kwargs):
    slugs = ", ".join(rt.slug for rt in record_types())
    return JsonResponse(
        error_body(
            404, "未知的记录类型或地址", [field_error("recordType", "notFound", f"可用的记录类型：{slugs}")]
        ),
        status=404,
        json_dumps_params={"ensure_ascii": False},
    )
