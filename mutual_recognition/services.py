"""Writes of mutual recognition: encounters, pre-loading, decisions, audit entries.

``register_encounter``   registration / admission / appointment event → Encounter + pre-load task
``preload``              (task body) ask the platform (2.3.2.1 + 3.1) and cache the bundle
``ensure_bundle``        the bundle of a visit: from the cache, else fetched now (visit time)
``page_encounter``       the visit a signed link opens the prompt page on (the opening is audited)
``save_decisions``       a doctor's decisions → Decision rows, audit, and 2.3.2.3 / 3.2 through the outbox
``record_view``          an external report or image was opened → audit entry

Audit: ``AuditEntry`` is this app's domain log (调阅与互认审计: which doctor opened or decided on
which external report, for doctors' managers, with the masked patient, searchable by doctor and
report). What it records also reaches the security trail (``hospital_interop.audit``), the one
chained record an assessor checks for every read and write of patient data: a report opened is
one entry (``record_report_view``), a decision made or changed one entry with its before and
after (``save_decisions``); opening the prompt page is one entry too (``page_encounter``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from dictionaries import selectors as dicts
from dictionaries.models import Doctor, HospitalDepartment
from dictionaries.selectors import VERSION_KEY, Unmapped
from hospital_interop import cachesafe
from hospital_interop.audit import services as audit
from hospital_interop.audit.context import link_actor
from hospital_interop.errors import InvalidInput, field_error
from hospital_interop.municipal.specs import identity_errors
from hospital_interop.patients import services as patients
from hospital_interop.patients.models import RefKind
from hospital_interop.patients.services import Identity, Ref
from hospital_interop.uploads import leases
from hospital_interop.uploads import services as outbox

from . import external, links, payloads, prompt, snapshot
from .external import valid
from .links import LinkContext, OrderedItem
from .models import AuditEntry, Decision, Encounter, id_key, mask_id

log = logging.getLogger(__name__)

PATIENT_TYPES = ("1", "2", "3", "9")


# --------------------------------------------------------------------------- encounters


# Stored lengths of the visit's fields (Encounter): over-length is refused, never cut.
PATIENT_LIMITS = (
    ("patientId", "patient_id", 32),
    ("name", "name", 50),
    ("idTypeCode", "id_type_code", 2),
    ("idNo", "id_no", 32),
    ("sexCode", "sex_code", 1),
    ("birthDate", "birth_date", 8),
    ("phone", "phone", 20),
)
VISIT_LIMITS = (
    ("visitId", "visit_id", 32),
    ("outpatientNo", "outpatient_no", 18),
    ("inpatientNo", "inpatient_no", 18),
)
STAFF_LIMIT = 20  # dept and doctor codes


def bounded(errors: list[dict], path: str, value, limit: int) -> str:
    """``value`` as a stripped string; a non-string or one longer than ``limit`` adds an error."""
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        errors.append(field_error(path, "type", "应为字符串"))
        return ""
    text = str(value).strip()
    if len(text) > limit:
        errors.append(field_error(path, "length", f"长度 {len(text)} 超过上限 {limit} 个字符"))
    return text


def encounter_fields(data: dict) -> dict:
    """Validate the patient/visit part of an event or prompt request; InvalidInput lists every problem.
    Nothing is cut: an over-length identifier is an error naming the field and its limit."""
    errors = []
    patient, visit = data.get("patient", {}), data.get("visit", {})
    for path, value in (("patient", patient), ("visit", visit)):
        if not isinstance(value, dict):
            errors.append(field_error(path, "type", "应为对象"))
    patient = patient if isinstance(patient, dict) else {}
    visit = visit if isinstance(visit, dict) else {}
    fields = {
        attr: bounded(errors, f"patient.{key}", patient.get(key), limit)
        for key, attr, limit in PATIENT_LIMITS
    }
    fields.update(
        {attr: bounded(errors, f"visit.{key}", visit.get(key), limit) for key, attr, limit in VISIT_LIMITS}
    )
    for path, attr in (("patient.name", "name"), ("patient.idNo", "id_no"), ("visit.visitId", "visit_id")):
        if not fields[attr] and not any(e["field"] == path for e in errors):
            errors.append(field_error(path, "required", "必填"))
    ptype = str(visit.get("patientTypeCode") or "1")
    if ptype not in PATIENT_TYPES:
        errors.append(
            field_error("visit.patientTypeCode", "valueSet", "患者类型应为 1 门诊、2 急诊、3 住院 或 9 其他")
        )
    fields["dept"] = bounded(errors, "dept", data.get("dept"), STAFF_LIMIT)
    fields["doctor"] = bounded(errors, "doctor", data.get("doctor"), STAFF_LIMIT)
    if not errors:  # the same identity rules as the platform's: check digit, real dates, value sets
        errors += identity_errors(
            {
                "idTypeCode": fields["id_type_code"],
                "idNo": fields["id_no"],
                "sexCode": fields["sex_code"],
                "birthDate": fields["birth_date"],
            }
        )
    if errors:
        raise InvalidInput(errors)
    fields.update(
        id_type_code=fields["id_type_code"] or "01", id_no=fields["id_no"].upper(), patient_type_code=ptype
    )
    return fields


def upsert_encounter(fields: dict, *, event: str) -> Encounter:
    """Store the visit. Its patient is fixed by its first event: a request naming the visit with
    another patient raises PatientConflict (409, nothing written)."""
    fields = dict(fields)
    visit_id, dept, doctor = fields.pop("visit_id"), fields.pop("dept", ""), fields.pop("doctor", "")
    patients.bind(
        Identity(fields["id_type_code"], fields["id_no"], fields["patient_id"]),
        [Ref(RefKind.VISIT, visit_id, "visit.visitId")],
        source=f"recognition-{event}",
    )
    defaults = {
        k: v for k, v in fields.items() if v or k not in ("patient_id",)
    }  # a blank never erases the id
    defaults["event"] = event
    if dept:
        defaults["dept_code"] = dept
    if doctor:
        defaults["doctor_staff_no"] = doctor
    enc, _ = Encounter.objects.update_or_create(visit_id=visit_id, defaults=defaults)
    return enc


def register_encounter(data: dict, *, event: str = "registration") -> Encounter:
    """A registration / admission / appointment event: store the visit and schedule the pre-load."""
    fields = encounter_fields(data)
    with transaction.atomic():
        enc = upsert_encounter(fields, event=event)
        transaction.on_commit(lambda: _schedule_preload(enc.pk))
    return enc


def _schedule_preload(encounter_id: int) -> None:
    """Ask a worker to pre-load (without a broker the prompt still fetches at ordering time)."""
    from .tasks import preload as preload_task

    leases.wake(
        preload_task,
        encounter_id,
        what=f"pre-load of encounter {encounter_id}",
        otherwise="the fetch at ordering time",
    )


def current_snapshot() -> snapshot.Snapshot:
    return snapshot.get(cachesafe.cached(lambda: cache.get(VERSION_KEY), what="dictionaries version")[0])


def preload(encounter_id: int) -> dict:
    enc = Encounter.objects.get(pk=encounter_id)
    bundle = external.fetch(enc, current_snapshot().valid_days)
    external.store(bundle)
    Encounter.objects.filter(pk=enc.pk).update(
        preloaded_at=timezone.now(), preload_error="；".join(e["message"] for e in bundle["errors"])[:300]
    )
    return bundle


def ensure_bundle(enc: Encounter, *, bundle: dict | None = None) -> tuple[dict, str]:
    """(bundle, source): the cached one if it belongs to this patient, else fetched now."""
    bundle = bundle if bundle is not None else external.cached(enc.visit_id)
    if bundle is not None and bundle.get("idKey") == enc.id_key:
        return bundle, "cache"
    bundle = external.fetch(enc, current_snapshot().valid_days)
    external.store(bundle)
    return bundle, "platform"


def page_encounter(ctx: LinkContext) -> Encounter | None:
    """The visit a signed link opens the prompt page on; None when it is unknown or the link's
    patient id is not the visit's. The opening is audited, with the link's doctor as the actor."""
    enc = Encounter.objects.filter(visit_id=ctx.visit_id).first()
    if enc is None or (
        ctx.patient_id not in ("", "-") and enc.patient_id and enc.patient_id != ctx.patient_id
    ):
        return None
    audit.record(
        audit.Action.VIEW,
        "mutual_recognition.Encounter",
        enc.pk,
        patient=enc.id_key,
        detail={"page": "互认提示", "orders": len(ctx.items)},
        actor=link_actor(ctx.doctor),
    )
    return enc


ITEM_LIMITS = {"itemCode": 20, "bodyPartCode": 20, "orderId": 32}  # hospital codes and HIS order ids


def parse_items(raw) -> list[OrderedItem]:
    """The ordered items of a prompt request; InvalidInput names each bad one."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput([field_error("items", "required", "至少一个医嘱项目")])
    items, errors = [], []
    for i, it in enumerate(raw):
        if not isinstance(it, dict):
            errors.append(field_error(f"items[{i}]", "type", "应为对象"))
            continue
        kind = it.get("kind")
        if kind not in ("exam", "lab"):
            errors.append(field_error(f"items[{i}].kind", "valueSet", "应为 exam 或 lab"))
            continue
        before = len(errors)
        values = {k: bounded(errors, f"items[{i}].{k}", it.get(k), limit) for k, limit in ITEM_LIMITS.items()}
        for key in ("itemCode", "orderId"):
            if not values[key] and not any(e["field"] == f"items[{i}].{key}" for e in errors):
                errors.append(field_error(f"items[{i}].{key}", "required", "必填"))
        for key, value in values.items():
            if value and len(errors) == before:
                try:
                    links.check_value(key, value)
                except links.LinkValueError as exc:
                    errors.append(field_error(f"items[{i}].{key}", "format", exc.message))
        if len(errors) == before:
            items.append(OrderedItem(kind, values["itemCode"], values["bodyPartCode"], values["orderId"]))
    if errors:
        raise InvalidInput(errors)
    return items


def answer_prompt(data: dict) -> tuple[dict, str | None]:
    """The prompt API's answer for one order (HIS or the demo page) and the query of the signed link
    to the page when anything is recognisable. The hot path: a visit pre-loaded for this patient is
    answered from one cache round trip, with no database query."""
    items = parse_items(data.get("items"))
    fields = encounter_fields(data)  # every value checked on the quick path too (no database query)
    visit_id = fields["visit_id"]
    bundle, version, cache_ok = external.read_for_prompt(visit_id, VERSION_KEY)
    snap = snapshot.get(version)
    source = "cache"
    if bundle is None or bundle.get("idKey") != id_key(fields["id_type_code"], fields["id_no"]):
        bundle, source = ensure_bundle(encounter_for_prompt(fields), bundle=bundle)
    answers = prompt.evaluate(items, bundle, snap, external.today_d8())
    doctor, dept = fields["doctor"], fields["dept"]
    warnings = []
    if doctor not in snap.doctors:
        warnings.append(field_error("doctor", "mapping.unknown", f"医师工号 {doctor} 不在医师字典中"))
    if dept and not snap.depts.get(dept, ("", "", ""))[1]:
        warnings.append(field_error("dept", "mapping.unmapped", f"科室 {dept} 未对照标准科室"))
    answer = {
        "ok": True,
        "visitId": visit_id,
        "source": source,
        "anyRecognizable": any(a["recognizable"] for a in answers),
        "items": answers,
    }
    if bundle.get("errors"):
        answer["platformErrors"] = bundle["errors"]
    if warnings:
        answer["warnings"] = warnings
    if not cache_ok:  # answered from the database and the platform: slower, and said so
        answer["degraded"] = {
            "cache": False,
            "message": "缓存服务暂不可用：本次结果直接查询市平台，响应较慢；预加载暂停。",
        }
    if not answer["anyRecognizable"]:
        return answer, None
    try:
        query = links.make_query(
            patient_id=fields["patient_id"] or "-", visit_id=visit_id, doctor=doctor, dept=dept, items=items
        )
    except links.LinkValueError as exc:
        field = {"patient_id": "patient.patientId", "visit_id": "visit.visitId"}.get(exc.field, exc.field)
        raise InvalidInput([field_error(field, "format", exc.message)]) from None
    return answer, query


EVENTS = ("registration", "admission", "appointment")


def register_event(data: dict) -> Encounter:
    """A registration / admission / appointment event from the HIS."""
    event = data.get("eventType") or "registration"
    if event not in EVENTS:
        raise InvalidInput(
            [field_error("eventType", "valueSet", "应为 registration、admission 或 appointment")]
        )
    return register_encounter(data, event=event)


def encounter_for_prompt(fields: dict) -> Encounter:
    """The prompt API's slow path: the visit was not pre-loaded (or its patient changed)."""
    with transaction.atomic():
        return upsert_encounter(fields, event="prompt")


# --------------------------------------------------------------------------- decisions


@dataclass
class DecisionInput:
    order_id: str
    standard_code: str
    report_id: str
    decision: str  # "1" recognise, "2" refuse
    reason_code: str = ""
    note: str = ""


# DecisionInput's fields in order, with the lengths Decision stores
DECISION_LIMITS = (
    ("orderId", 32),
    ("standardCode", 20),
    ("reportId", 20),
    ("decision", 1),
    ("reasonCode", 10),
    ("note", 500),
)


def parse_decisions(raw) -> list[DecisionInput]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput([field_error("decisions", "required", "没有需要保存的互认决定")])
    out, errors = [], []
    for i, d in enumerate(raw):
        if not isinstance(d, dict):
            errors.append(field_error(f"decisions[{i}]", "type", "应为对象"))
            continue
        item = DecisionInput(
            *(bounded(errors, f"decisions[{i}].{key}", d.get(key), limit) for key, limit in DECISION_LIMITS)
        )
        for key, name in (
            ("orderId", "order_id"),
            ("standardCode", "standard_code"),
            ("reportId", "report_id"),
        ):
            if not getattr(item, name) and not any(e["field"] == f"decisions[{i}].{key}" for e in errors):
                errors.append(field_error(f"decisions[{i}].{key}", "required", "必填"))
        if item.decision not in ("1", "2"):
            errors.append(field_error(f"decisions[{i}].decision", "valueSet", "应为 1（互认）或 2（不互认）"))
        out.append(item)
    if errors:
        raise InvalidInput(errors)
    return out


def _lines_for(ctx_item, snap) -> list:
    if ctx_item.kind == "exam":
        target = snap.exam_target(ctx_item.code, ctx_item.body_part)
        return [target] if target else []
    panel = snap.lab.get(ctx_item.code)
    return list(panel.lines) if panel else []


def _find_result(bundle: dict, kind: str, std_code: str, report_id: str, today: str) -> dict | None:
    return next((r for r in valid(bundle[kind].get(std_code, []), today) if r["reportId"] == report_id), None)


def _as_datetime(value: str):
    v = "".join(ch for ch in str(value or "") if (ch.isascii() and ch.isdigit()))
    if len(v) < 12:
        return None
    from datetime import datetime

    return timezone.make_aware(datetime(int(v[:4]), int(v[4:6]), int(v[6:8]), int(v[8:10]), int(v[10:12])))


def _as_date(value: str):
    from datetime import date

    v = "".join(ch for ch in str(value or "") if (ch.isascii() and ch.isdigit()))
    return date(int(v[:4]), int(v[4:6]), int(v[6:8])) if len(v) >= 8 and v != "99991231" else None


def save_decisions(ctx: LinkContext, raw_decisions, *, bulk: bool = False, user=None, client_ip=None) -> dict:
    """Record a doctor's decisions for the ordered items of one prompt, all or none.

    Each decision must name an ordered item of the link, one of its standard items and a still
    valid external result of the patient for it; a refusal needs an active reason (and a note
    when the reason asks for one). Re-deciding replaces the previous decision (撤销 + new action).
    Every changed decision is enqueued as 2.3.2.3 (exam) or 3.2 (lab) in the same transaction.
    """
    inputs = parse_decisions(raw_decisions)
    enc = Encounter.objects.filter(visit_id=ctx.visit_id).first()
    if enc is None:
        raise InvalidInput(
            [field_error("visitId", "unknown", f"未找到就诊 {ctx.visit_id}，请从医生工作站重新打开互认提示")]
        )
    errors = []
    try:
        doc = dicts.doctor(ctx.doctor)
    except Unmapped as exc:
        raise InvalidInput([exc.as_error("doctor")]) from None
    dept_code = ctx.dept or (doc.department.code if doc.department_id else "")
    try:
        std_dept = dicts.standard_department(dept_code)
    except Unmapped as exc:
        raise InvalidInput([exc.as_error("dept")]) from None
    dept_name = doc.department.name if doc.department_id and doc.department.code == dept_code else dept_code
    if ctx.dept:
        dept_name = (
            HospitalDepartment.objects.filter(code=dept_code).values_list("name", flat=True).first()
            or dept_code
        )
    reasons = {r.code: r for r in dicts.refusal_reasons()}
    snap = current_snapshot()
    bundle, _ = ensure_bundle(enc)
    today = external.today_d8()
    resolved = []
    for i, d in enumerate(inputs):
        item = ctx.item(d.order_id)
        if item is None:
            errors.append(
                field_error(f"decisions[{i}].orderId", "unknown", f"医嘱 {d.order_id} 不在本次提示中")
            )
            continue
        line = next((ln for ln in _lines_for(item, snap) if ln.std_code == d.standard_code), None)
        if line is None:
            errors.append(
                field_error(
                    f"decisions[{i}].standardCode",
                    "unknown",
                    f"互认项目 {d.standard_code} 不属于医嘱 {d.order_id}",
                )
            )
            continue
        result = _find_result(bundle, item.kind, d.standard_code, d.report_id, today)
        if result is None:
            errors.append(
                field_error(
                    f"decisions[{i}].reportId",
                    "unknown",
                    f"外院报告 {d.report_id} 的 {line.std_name} 已不可互认（已过期或已作废）",
                )
            )
            continue
        reason = None
        if d.decision == "2":
            reason = reasons.get(d.reason_code)
            if reason is None:
                errors.append(
                    field_error(
                        f"decisions[{i}].reasonCode", "required", f"{line.std_name}：请选择不互认原因"
                    )
                )
                continue
            if reason.needs_note and not d.note:
                errors.append(
                    field_error(f"decisions[{i}].note", "required", f"{line.std_name}：该原因须填写说明")
                )
                continue
        resolved.append((d, item, line, result, reason))
    if errors:
        raise InvalidInput(errors)

    now = timezone.now()
    batch = uuid.uuid4().hex
    changed: list[Decision] = []
    trail: list[audit.Event] = []
    touched_orders: dict[str, object] = {}
    with transaction.atomic():
        for d, item, line, result, reason in resolved:
            touched_orders[item.order_id] = item
            previous = (
                Decision.objects.select_for_update()
                .filter(
                    encounter=enc,
                    kind=item.kind,
                    order_id=item.order_id,
                    external_report_id=d.report_id,
                    standard_code=d.standard_code,
                    current=True,
                )
                .first()
            )
            same = (
                previous is not None
                and previous.decision == d.decision
                and (d.decision == "1" or (previous.reason_code == reason.code and previous.note == d.note))
            )
            if same:
                continue
            decision = Decision(
                encounter=enc,
                kind=item.kind,
                order_id=item.order_id,
                order_item_code=item.code,
                order_item_name=line.order_name if item.kind == "exam" else snap.lab[item.code].order_name,
                sub_item_code=getattr(line, "sub_code", ""),
                sub_item_name=getattr(line, "sub_name", ""),
                standard_code=line.std_code,
                standard_name=line.std_name,
                external_org_code=result["org"],
                external_org_name=result["orgName"],
                external_report_id=result["reportId"],
                external_at=_as_datetime(result["at"]),
                valid_until=_as_date(result["validUntil"]),
                result=result,
                decision=d.decision,
                reason_code=reason.code if reason else "",
                platform_reason_code=reason.platform_code if reason else "",
                reason_name=reason.name if reason else "",
                note=d.note if reason else "",
                doctor_staff_no=doc.staff_no,
                doctor_name=doc.name,
                dept_code=dept_code,
                dept_name=dept_name,
                std_dept_code=std_dept.code,
                std_dept_name=std_dept.name,
                bulk=bulk and d.decision == "1",
                decided_at=now,
            )
            if previous is not None:
                previous.current = False
                previous.save(update_fields=["current"])
                _audit(
                    AuditEntry.Action.REVOKE_RECOGNIZED
                    if previous.recognized
                    else AuditEntry.Action.REVOKE_REFUSED,
                    enc,
                    doc,
                    previous,
                    user=user,
                    client_ip=client_ip,
                    detail={"batch": batch},
                )
            decision.save()
            if previous is not None:
                previous.replaced_by = decision
                previous.save(update_fields=["replaced_by"])
            action = (
                (AuditEntry.Action.BULK_RECOGNIZED if decision.bulk else AuditEntry.Action.RECOGNIZED)
                if decision.recognized
                else AuditEntry.Action.REFUSED
            )
            _audit(
                action,
                enc,
                doc,
                decision,
                user=user,
                client_ip=client_ip,
                detail={"batch": batch, "reason": decision.reason_name, "note": decision.note},
            )
            changed.append(decision)
            trail.append(_decision_event(enc, previous, decision, batch))
        patient = outbox.Patient(enc.id_no, enc.name, enc.id_type_code)
        records = outbox.enqueue_many(  # one call: the batch's key locks are taken in the global order
            [outbox.Item(*payloads.decision_payload(d), now, patient) for d in changed], source="recognition"
        )
        for decision, record in zip(changed, records, strict=True):
            decision.outbox_record_id = record.pk
        Decision.objects.bulk_update(changed, ["outbox_record_id"])
        for item in touched_orders.values():
            _apply_charges(enc, item, snap)
        audit.record_many(trail, actor=link_actor(ctx.doctor))  # last: the trail's lock is held to commit
    return {
        "ok": True,
        "visitId": enc.visit_id,
        "batch": batch,
        "changed": len(changed),
        "orders": order_summaries(enc, ctx.items, snap),
    }


def _decided(d: Decision | None) -> dict:
    return {"decision": d.get_decision_display(), "reason": d.reason_name, "note": d.note} if d else {}


def _decision_event(enc: Encounter, previous: Decision | None, decision: Decision, batch: str) -> audit.Event:
    """A decision made or changed, for the security trail: before and after."""
    return audit.Event(
        audit.Action.DECIDE,
        "mutual_recognition.Decision",
        str(decision.pk),
        patient=enc.id_key,
        changes=audit.changed_fields(_decided(previous), _decided(decision)),
        detail={
            "visit": enc.visit_id,
            "order": decision.order_id,
            "item": decision.standard_code,
            "report": decision.external_report_id,
            "replaces": previous.pk if previous else None,
            "batch": batch,
        },
    )


def _apply_charges(enc: Encounter, item, snap) -> None:
    """Estimated charges avoided for one order, spread over its current recognised decisions.

    Exam: the order item's price when recognised. Lab: each charge item all of whose lines in
    the panel are recognised (a shared panel charge only when every line is).
    """
    decisions = list(Decision.objects.filter(encounter=enc, order_id=item.order_id, current=True))
    for d in decisions:
        d.charge_avoided = Decimal(0)
    recognised = [d for d in decisions if d.recognized]
    if item.kind == "exam":
        target = snap.exam_target(item.code, item.body_part)
        if recognised and target:
            recognised[0].charge_avoided = target.price
    else:
        panel = snap.lab.get(item.code)
        done = {d.standard_code for d in recognised}
        by_charge: dict[str, list] = {}
        for line in panel.lines if panel else ():
            if line.charge_code:
                by_charge.setdefault(line.charge_code, []).append(line)
        for lines in by_charge.values():
            if all(ln.std_code and ln.std_code in done for ln in lines):
                owners = [d for d in recognised if d.standard_code in {ln.std_code for ln in lines}]
                if not owners:
                    continue
                share = (lines[0].price / len(owners)).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
                for d in owners:
                    d.charge_avoided += share
                owners[0].charge_avoided += lines[0].price - share * len(owners)
    for d in decisions:
        Decision.objects.filter(pk=d.pk).update(charge_avoided=d.charge_avoided)


def order_summaries(enc: Encounter, items, snap=None) -> list[dict]:
    """Per ordered item what the HIS should do now: cancel (all recognised), reduce, or keep."""
    snap = snap or current_snapshot()
    current = {}
    for d in Decision.objects.filter(encounter=enc, current=True, order_id__in=[i.order_id for i in items]):
        current.setdefault(d.order_id, []).append(d)
    out = []
    for item in items:
        ds = current.get(item.order_id, [])
        recognised = {d.standard_code: d for d in ds if d.recognized}
        refused = {d.standard_code: d for d in ds if not d.recognized}
        entry = {
            "orderId": item.order_id,
            "kind": item.kind,
            "itemCode": item.code,
            "chargeAvoided": str(sum((d.charge_avoided for d in ds), Decimal(0))),
        }
        if item.kind == "exam":
            target = snap.exam_target(item.code, item.body_part)
            entry["itemName"] = target.order_name if target else snap.exam_names.get(item.code, "")
            entry["action"] = "cancel" if recognised else "keep"
            entry["recognized"] = [_decision_ref(d) for d in recognised.values()]
            entry["refused"] = [_decision_ref(d) for d in refused.values()]
        else:
            panel = snap.lab.get(item.code)
            lines = list(panel.lines) if panel else []
            entry["itemName"] = panel.order_name if panel else ""
            keep = [ln for ln in lines if ln.std_code not in recognised]
            entry["action"] = "keep" if len(keep) == len(lines) else ("cancel" if not keep else "reduce")
            entry["recognized"] = [
                {
                    **_decision_ref(recognised[ln.std_code]),
                    "subItemCode": ln.sub_code,
                    "subItemName": ln.sub_name,
                }
                for ln in lines
                if ln.std_code in recognised
            ]
            entry["refused"] = [_decision_ref(d) for d in refused.values()]
            entry["keepSubItems"] = [
                {"subItemCode": ln.sub_code, "subItemName": ln.sub_name, "chargeItemCode": ln.charge_code}
                for ln in keep
            ]
        out.append(entry)
    return out


def _decision_ref(d: Decision) -> dict:
    ref = {
        "standardCode": d.standard_code,
        "standardName": d.standard_name,
        "reportId": d.external_report_id,
        "externalOrgName": d.external_org_name,
        "decision": d.decision,
    }
    if not d.recognized:
        ref.update(reasonCode=d.platform_reason_code, reasonName=d.reason_name, note=d.note)
    return ref


# --------------------------------------------------------------------------- audit


def _audit(
    action,
    enc: Encounter,
    doc,
    decision: Decision | None = None,
    *,
    user=None,
    client_ip=None,
    kind: str = "",
    org_code: str = "",
    org_name: str = "",
    report_id: str = "",
    item: str = "",
    detail: dict | None = None,
) -> AuditEntry:
    if decision is not None:
        kind, org_code, org_name = decision.kind, decision.external_org_code, decision.external_org_name
        report_id, item = decision.external_report_id, decision.sub_item_name or decision.standard_name
    return AuditEntry.objects.create(
        action=action,
        doctor_staff_no=getattr(doc, "staff_no", "") or "",
        doctor_name=getattr(doc, "name", "") or "",
        user=user if getattr(user, "is_authenticated", False) else None,
        patient_name=enc.name,
        patient_id_masked=mask_id(enc.id_no),
        patient_key=enc.id_key,
        visit_id=enc.visit_id,
        kind=kind,
        external_org_code=org_code,
        external_org_name=org_name,
        report_id=report_id,
        item=item[:100],
        order_id=decision.order_id if decision else "",
        client_ip=client_ip,
        detail=detail or {},
    )


def record_report_view(
    *,
    kind: str,
    org_code: str,
    report_id: str,
    org_name: str = "",
    item: str = "",
    images: bool = False,
    enc: Encounter | None = None,
    doctor=None,
    doctor_staff_no: str = "",
    doctor_name: str = "",
    user=None,
    client_ip=None,
    detail: dict | None = None,
) -> AuditEntry:
    """The one audit call for a report (or its images) being opened, from the prompt page or a
    staff page: the domain log's entry, written through to the security trail (as the logged-in
    user, else as the doctor of the signed link)."""
    action = AuditEntry.Action.VIEW_IMAGES if images else AuditEntry.Action.VIEW_REPORT
    entry = AuditEntry.objects.create(
        action=action,
        doctor_staff_no=(getattr(doctor, "staff_no", "") or doctor_staff_no)[:20],
        doctor_name=(getattr(doctor, "name", "") or doctor_name)[:50],
        user=user if getattr(user, "is_authenticated", False) else None,
        patient_name=enc.name if enc else "",
        patient_id_masked=mask_id(enc.id_no) if enc else "",
        patient_key=enc.id_key if enc else "",
        visit_id=enc.visit_id if enc else "",
        kind=kind,
        external_org_code=org_code[:22],
        external_org_name=org_name[:70],
        report_id=report_id[:20],
        item=item[:100],
        client_ip=client_ip,
        detail=detail or {},
    )
    audit.record(
        audit.Action.VIEW,
        f"platform.{kind}-report",
        f"{org_code}/{report_id}",
        patient=entry.patient_key,
        detail={"what": entry.get_action_display(), "visit": entry.visit_id, "domainLog": entry.pk},
        actor=None if getattr(user, "is_authenticated", False) else link_actor(entry.doctor_staff_no),
    )
    return entry


def record_view(
    ctx: LinkContext,
    *,
    kind: str,
    org_code: str,
    report_id: str,
    images: bool = False,
    user=None,
    client_ip=None,
) -> AuditEntry:
    """An external report (lab PDF, exam report) or its images was opened from the prompt page:
    it must be one of this visit's patient's external results."""
    enc = Encounter.objects.get(visit_id=ctx.visit_id)
    bundle, _ = ensure_bundle(enc)
    found = next(
        (
            r
            for rs in bundle[kind].values()
            for r in rs
            if r["reportId"] == report_id and r["org"] == org_code
        ),
        None,
    )
    if found is None:
        raise InvalidInput([field_error("reportId", "unknown", f"该患者没有外院报告 {report_id}")])
    return record_report_view(
        kind=kind,
        org_code=org_code,
        report_id=report_id,
        org_name=found["orgName"],
        item=found.get("title") or found.get("name") or "",
        images=images,
        enc=enc,
        doctor=Doctor.objects.filter(staff_no=ctx.doctor).first(),
        doctor_staff_no=ctx.doctor,
        user=user,
        client_ip=client_ip,
    )
