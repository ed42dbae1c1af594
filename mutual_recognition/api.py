"""Machine API for the HIS (prompt, events, decisions) and the exam / lab systems (results).

Callers are calling systems (``hospital_interop.integrations``): ``Authorization: Token <token>``
(``Bearer`` is accepted too) with the scope ``recognition.prompt`` (HIS) or
``recognition.results`` (exam and lab systems); session cookies are not accepted here. Parsing,
limits and the one error body are ``integrations.api``'s. The prompt endpoint is the hot path: one
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

PROMPT_SCOPE, RESULTS_SCOPE = "recognition.prompt", "recognition.results"


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


class PromptView(RecognitionApi):
    """For each ordered item: recognisable external results? With a signed link to the page."""

    def post(self, request):
        return Response(prompt_answer(request, request.data))


class EventsView(RecognitionApi):
    """Registration / admission / appointment: store the visit and pre-load its external results."""

    def post(self, request):
        enc = services.register_event(request.data)
        return Response(
            {"ok": True, "visitId": enc.visit_id, "preload": "scheduled"}, status=status.HTTP_202_ACCEPTED
        )


def _query(request, name: str, limit: int) -> str:
    value = request.query_params.get(name, "")
    if len(value) > limit or "\x00" in value:
        raise ApiError.invalid(
            [field_error(name, "length", f"{name} 长度超过上限 {limit} 个字符或含有空字符")]
        )
    return value


class DecisionsView(RecognitionApi):
    """The HIS reads back what the doctor decided for a visit (same shape as the save answer)."""

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
    """Recognised (and refused) external results for the exam and lab systems, per visit or patient."""

    integration_scope = staticmethod(lambda request: RESULTS_SCOPE)

    def get(self, request):
        visit_id, id_no = _query(request, "visitId", 32), _query(request, "idNo", 32)
        if not visit_id and not id_no:
            raise ApiError.invalid([field_error("visitId", "required", "需要 visitId 或 idNo")])
        kind, state = request.query_params.get("kind", ""), request.query_params.get("status", "")
        decisions = selectors.decisions_for(
            visit_id=visit_id,
            id_no=id_no,
            id_type=_query(request, "idTypeCode", 2) or "01",
            kind=kind if kind in ("exam", "lab") else "",
            recognized_only=state == "recognized",
        )
        codes = selectors.charge_codes() if any(d.kind == "lab" for d in decisions) else {}
        return Response({"ok": True, "results": [selectors.result_row(d, codes) for d in decisions]})
