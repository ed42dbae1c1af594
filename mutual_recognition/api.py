"""Machine API for the HIS (prompt, events, decisions) and the exam / lab systems (results).

Callers are calling systems (``hospital_interop.integrations``): ``Authorization: Token <token>``
(``Bearer`` is accepted too) with the scope ``recognition.prompt`` (HIS) or
``recognition.results`` (exam and lab systems); session cookies are not accepted here. Parsing,
limits and the one error body are ``integrations.api``'s; the OpenAPI document (``openapi.py``) is
served at /recognition/api/schema, Swagger UI at /recognition/api/docs. The prompt endpoint is the hot path: one
cache round trip, no database query when the visit was pre-loaded (see docs/recognition.md).
"""

from __future__ import annotations

from functools import lru_cache

from django.urls import reverse
from rest_framework import status
from rest_framework.response import Response

from hospital_interop.integrations.api import ApiError, MachineApiView, field_error

from . import selectors, services
from .links import OrderedItem
from .models import id_key
from .openapi import DECISIONS_DOC, EVENTS_DOC, PROMPT_DOC, RESULTS_DOC, RESULTS_POST_DOC, RecognitionSchema

PROMPT_SCOPE, RESULTS_SCOPE = "recognition.prompt", "recognition.results"
KINDS, STATES = ("exam", "lab"), ("all", "recognized")  # the results' filters


@lru_cache(maxsize=1)
def _embed_path() -> str:
    return reverse("recognition:embed")


def prompt_answer(request, data) -> dict:
    """The prompt answer with the absolute link to the embedded page (API and demo HIS page)."""
    answer, query = services.answer_prompt(data)
    if query:
        answer["promptUrl"] = request.build_absolute_uri(_embed_path()) + "?" + query
    return answer


class RecognitionApi(MachineApiView):
    integration_scope = staticmethod(lambda request: PROMPT_SCOPE)
    schema = RecognitionSchema()


class PromptView(RecognitionApi):
    """For each ordered item: recognisable external results? With a signed link to the page."""

    openapi = PROMPT_DOC

    def post(self, request):
        return Response(prompt_answer(request, request.data))


class EventsView(RecognitionApi):
    """Registration / admission / appointment: store the visit and pre-load its external results."""

    openapi = EVENTS_DOC

    def post(self, request):
        enc = services.register_event(request.data)
        return Response(
            {"ok": True, "visitId": enc.visit_id, "preload": "scheduled"}, status=status.HTTP_202_ACCEPTED
        )


def _query(request, name: str, limit: int) -> str:
    value = request.query_params.get(name, "")  # a NUL was refused by MachineApiView
    if len(value) > limit:
        raise ApiError.invalid([field_error(name, "length", f"{name} 长度超过上限 {limit} 个字符")])
    return value


def _choice(request, name: str, values: tuple[str, ...]) -> str:
    """An optional query parameter from its value set ("" when absent)."""
    value = request.query_params.get(name, "")
    if value and value not in values:
        raise ApiError.invalid([field_error(name, "valueSet", f"{name} 应为 {' 或 '.join(values)}")])
    return value


class DecisionsView(RecognitionApi):
    """The HIS reads back what the doctor decided for a visit (same shape as the save answer)."""

    openapi = DECISIONS_DOC

    def get(self, request):
        visit_id = _query(request, "visitId", 32)
        enc, decisions = selectors.visit_decisions(visit_id)
        if enc is None:
            raise ApiError(
                404, f"未找到就诊 {visit_id}", [field_error("visitId", "unknown", f"未找到就诊 {visit_id}")]
            )
        seen, items = set(), []
        for d in decisions:
            if d.order_id not in seen:
                seen.add(d.order_id)
                items.append(OrderedItem(d.kind, d.order_item_code, "", d.order_id))
        return Response({"ok": True, "visitId": visit_id, "orders": services.order_summaries(enc, items)})


class ResultsView(MachineApiView):
    """Recognised (and refused) external results for the exam and lab systems, per visit or patient.

    ``GET ?visitId=`` for a visit. For a patient, ``POST`` the ID number in the JSON body
    (``{"idNo", "idTypeCode"?, "visitId"?, "kind"?, "status"?}``): a number in a URL ends up in
    access logs, proxies and histories, so ``GET ?idNo=`` is refused (400, rule ``location``)."""

    integration_scope = staticmethod(lambda request: RESULTS_SCOPE)
    schema = RecognitionSchema()
    openapi = {"get": RESULTS_DOC, "post": RESULTS_POST_DOC}

    def get(self, request):
        if "idNo" in request.query_params:
            raise ApiError.invalid([field_error("idNo", "location", ID_IN_URL)])
        visit_id = _query(request, "visitId", 32)
        if not visit_id:
            raise ApiError.invalid(
                [field_error("visitId", "required", "需要 visitId；按患者查询请用 POST，在请求体中提交 idNo")]
            )
        return self.answer(visit_id, "", _choice(request, "kind", KINDS), _choice(request, "status", STATES))

    def post(self, request):
        errors: list[dict] = []
        body = {
            name: services.bounded(errors, name, request.data.get(name), limit)
            for name, limit in (("idNo", 32), ("idTypeCode", 2), ("visitId", 32), ("kind", 8), ("status", 16))
        }
        if not errors and not body["idNo"] and not body["visitId"]:
            errors.append(field_error("idNo", "required", "需要 idNo（或 visitId）"))
        for name, values in (("kind", KINDS), ("status", STATES)):
            if body[name] and body[name] not in values:
                errors.append(field_error(name, "valueSet", f"{name} 应为 {' 或 '.join(values)}"))
        if errors:
            raise ApiError.invalid(errors)
        key = id_key(body["idTypeCode"] or "01", body["idNo"]) if body["idNo"] else ""
        return self.answer(body["visitId"], key, body["kind"], body["status"])

    @staticmethod
    def answer(visit_id: str, patient_key: str, kind: str, state: str) -> Response:
        decisions = selectors.decisions_for(
            visit_id=visit_id,
            patient_key=patient_key,
            kind=kind,
            recognized_only=state == "recognized",
        )
        codes = selectors.charge_codes() if any(d.kind == "lab" for d in decisions) else {}
        return Response({"ok": True, "results": [selectors.result_row(d, codes) for d in decisions]})


ID_IN_URL = "证件号码不能放在网址中（会进入访问日志和浏览器历史）：请用 POST /recognition/api/results，在 JSON 请求体中提交 idNo"
