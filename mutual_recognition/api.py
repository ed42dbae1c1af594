"""JSON API for the HIS (prompt, events, decisions) and the exam / lab systems (results).

Authentication: ``Authorization: Bearer <token>`` (RECOGNITION_API_TOKENS), or a logged-in user
with ``hospital_interop.use_recognition``. The prompt endpoint is the hot path: one cache round
trip, no database query when the visit was pre-loaded (see docs/recognition.md).
"""

from __future__ import annotations

import hmac
import json
from functools import lru_cache

from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from dictionaries.selectors import VERSION_KEY
from hospital_interop.patients.services import PatientConflict

from . import conf, external, links, prompt, selectors, services, snapshot
from .links import OrderedItem
from .models import Encounter, id_key

PERMISSION = "hospital_interop.use_recognition"


def _json(data, status=200) -> HttpResponse:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return HttpResponse(body, status=status, content_type="application/json; charset=utf-8")


def _error(status: int, errors: list[dict]) -> HttpResponse:
    return _json({"ok": False, "errors": errors}, status=status)


def authorized(request) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Bearer "):
        token = header[7:].strip().encode()
        return any(hmac.compare_digest(token, t.encode()) for t in conf.api_tokens())
    user = request.user
    return user.is_authenticated and user.has_perm(PERMISSION)


def _conflict(exc: PatientConflict) -> HttpResponse:
    """The request named a visit of another patient: 409, after its transaction was rolled back."""
    exc.record()
    return _error(409, exc.errors)


def _unauthorized() -> HttpResponse:
    return _error(401, [{"field": "Authorization", "rule": "auth", "message": "未认证：需要 Bearer 令牌或已登录的临床账号"}])


def _body(request) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise services.InputError([{"field": "", "rule": "type", "message": "请求体应为 JSON"}]) from None
    if not isinstance(data, dict):
        raise services.InputError([{"field": "", "rule": "type", "message": "请求体应为 JSON 对象"}])
    return data


def parse_items(raw) -> list[OrderedItem]:
    if not isinstance(raw, list) or not raw:
        raise services.InputError([{"field": "items", "rule": "required", "message": "至少一个医嘱项目"}])
    items, errors = [], []
    for i, it in enumerate(raw):
        if not isinstance(it, dict):
            errors.append({"field": f"items[{i}]", "rule": "type", "message": "应为对象"})
            continue
        kind = it.get("kind")
        if kind not in ("exam", "lab"):
            errors.append({"field": f"items[{i}].kind", "rule": "valueSet", "message": "应为 exam 或 lab"})
            continue
        try:
            items.append(OrderedItem(kind, links.check_value("itemCode", str(it.get("itemCode") or "")),
                                     str(it.get("bodyPartCode") or ""),
                                     links.check_value("orderId", str(it.get("orderId") or ""))))
            if items[-1].body_part:
                links.check_value("bodyPartCode", items[-1].body_part)
        except ValueError as exc:
            errors.append({"field": f"items[{i}]", "rule": "format", "message": str(exc)})
    if errors:
        raise services.InputError(errors)
    return items


@lru_cache(maxsize=1)
def _embed_path() -> str:
    return reverse("recognition:embed")


@csrf_exempt
@require_POST
def prompt_view(request):
    """For each ordered item: recognisable external results? With a signed link to the page."""
    if not authorized(request):
        return _unauthorized()
    try:
        data = _body(request)
        items = parse_items(data.get("items"))
        patient, visit = data.get("patient"), data.get("visit")
        if not (isinstance(patient, dict) and isinstance(visit, dict) and visit.get("visitId") and patient.get("idNo")):
            services.encounter_fields(data)  # raises with the precise field errors
        visit_id, id_no = str(visit["visitId"]).strip(), str(patient["idNo"]).strip().upper()
        bundle, version = external.read_for_prompt(visit_id, VERSION_KEY)
        snap = snapshot.get(version)
        source = "cache"
        if bundle is None or bundle.get("idKey") != id_key(str(patient.get("idTypeCode") or "01"), id_no):
            enc = services.encounter_for_prompt(data)
            bundle, source = services.ensure_bundle(enc, bundle=bundle)
    except services.InputError as exc:
        return _error(400, exc.errors)
    except PatientConflict as exc:
        return _conflict(exc)
    answers = prompt.evaluate(items, bundle, snap, external.today_d8())
    doctor, dept = str(data.get("doctor") or ""), str(data.get("dept") or "")
    warnings = []
    if doctor not in snap.doctors:
        warnings.append({"field": "doctor", "rule": "mapping.unknown", "message": f"医师工号 {doctor} 不在医师字典中"})
    if dept and not snap.depts.get(dept, ("", "", ""))[1]:
        warnings.append({"field": "dept", "rule": "mapping.unmapped", "message": f"科室 {dept} 未对照标准科室"})
    answer = {"ok": True, "visitId": visit_id, "source": source,
              "anyRecognizable": any(a["recognizable"] for a in answers), "items": answers}
    if bundle.get("errors"):
        answer["platformErrors"] = bundle["errors"]
    if warnings:
        answer["warnings"] = warnings
    if answer["anyRecognizable"]:
        try:
            query = links.make_query(patient_id=str(patient.get("patientId") or "-"), visit_id=visit_id,
                                     doctor=doctor, dept=dept, items=items)
        except links.LinkValueError as exc:
            field = {"patient_id": "patient.patientId", "visit_id": "visit.visitId"}.get(exc.field, exc.field)
            return _error(400, [{"field": field, "rule": "format", "message": exc.message}])
        answer["promptUrl"] = request.build_absolute_uri(_embed_path()) + "?" + query
    return _json(answer)


@csrf_exempt
@require_POST
def events_view(request):
    """Registration / admission / appointment: store the visit and pre-load its external results."""
    if not authorized(request):
        return _unauthorized()
    try:
        data = _body(request)
        event = str(data.get("eventType") or "registration")
        if event not in ("registration", "admission", "appointment"):
            raise services.InputError([{"field": "eventType", "rule": "valueSet",
                                        "message": "应为 registration、admission 或 appointment"}])
        enc = services.register_encounter(data, event=event)
    except services.InputError as exc:
        return _error(400, exc.errors)
    except PatientConflict as exc:
        return _conflict(exc)
    return _json({"ok": True, "visitId": enc.visit_id, "preload": "scheduled"}, status=202)


@require_GET
def decisions_view(request):
    """The HIS reads back what the doctor decided for a visit (same shape as the save answer)."""
    if not authorized(request):
        return _unauthorized()
    visit_id = request.GET.get("visitId", "")
    enc = Encounter.objects.filter(visit_id=visit_id).first()
    if enc is None:
        return _error(404, [{"field": "visitId", "rule": "unknown", "message": f"未找到就诊 {visit_id}"}])
    seen, items = set(), []
    for d in enc.decisions.filter(current=True).order_by("decided_at", "id"):
        if d.order_id not in seen:
            seen.add(d.order_id)
            items.append(OrderedItem(d.kind, d.order_item_code, "", d.order_id))
    return _json({"ok": True, "visitId": visit_id, "orders": services.order_summaries(enc, items)})


@require_GET
def results_view(request):
    """Recognised (and refused) external results for the exam and lab systems, per visit or patient."""
    if not authorized(request):
        return _unauthorized()
    visit_id, id_no = request.GET.get("visitId", ""), request.GET.get("idNo", "")
    if not visit_id and not id_no:
        return _error(400, [{"field": "visitId", "rule": "required", "message": "需要 visitId 或 idNo"}])
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    decisions = selectors.decisions_for(visit_id=visit_id, id_no=id_no, id_type=request.GET.get("idTypeCode", "01"),
                                        kind=kind if kind in ("exam", "lab") else "",
                                        recognized_only=status == "recognized")
    codes = selectors.charge_codes() if any(d.kind == "lab" for d in decisions) else {}
    return _json({"ok": True, "results": [selectors.result_row(d, codes) for d in decisions]})
