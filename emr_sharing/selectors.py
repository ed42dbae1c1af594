"""Reads of the EMR intake: where a record stands in delivery, held records and the codes they
wait for (each read of a record is audited)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Min, Q
from django.utils import timezone

from hospital_interop.audit import services as audit
from hospital_interop.uploads.models import ArchivedRecord, OutboxRecord, State

from .mapping import RecordType, record_types
from .models import HeldCode, HeldRecord

STATE_NAMES = dict(State.choices)


def _time(value) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def status_of(
    record_type: RecordType, record: OutboxRecord, *, versions: list[OutboxRecord] | None = None
) -> dict:
    """The status document of one record (its latest version) as the API returns it."""
    out = {
        "recordType": record_type.slug,
        "interface": record.interface,
        "businessKey": record.business_key,
        "version": record.version,
        "state": record.state,
        "stateName": STATE_NAMES.get(record.state, record.state),
        "attempts": record.attempts,
        "lastCode": record.last_code,
        "lastMessage": record.last_message,
        "lastErrors": [
            {**e, "field": record_type.intake_path(e.get("field", ""))} for e in record.last_errors or []
        ],
        "waitingFor": list(record.waits_for or []) if record.state in (State.PENDING, State.RETRY) else [],
        "source": record.source,
        "enqueuedAt": _time(record.enqueued_at),
        "nextAttemptAt": _time(record.next_attempt_at),
        "acceptedAt": _time(record.accepted_at),
        "receipt": record.receipt,
    }
    if versions is not None:
        out["versions"] = [
            {
                "version": v.version,
                "state": v.state,
                "stateName": STATE_NAMES.get(v.state, v.state),
                "enqueuedAt": _time(v.enqueued_at),
                "acceptedAt": _time(v.accepted_at),
            }
            for v in versions
        ]
    return out


def held_status(record_type: RecordType, held: HeldRecord) -> dict:
    """The status document of a record held for code mapping (待对照)."""
    return {
        "recordType": record_type.slug,
        "interface": held.interface,
        "businessKey": held.business_key,
        "version": None,
        "state": held.state,
        "stateName": held.get_state_display(),
        "problems": held.problems,
        "source": held.source,
        "heldAt": _time(held.received_at),
        "updatedAt": _time(held.updated_at),
    }


def record_status(record_type: RecordType, business_key: str) -> dict | None:
    """Status of the latest version of a key, with the list of its versions; None if unknown.
    A version held for code mapping (or refused after mapping) is the latest: its status says
    so, with the problems, and the versions list what was stored before it."""
    versions = sorted(  # hot and archived (the outbox's retention job moves old accepted versions)
        (
            v
            for model in (OutboxRecord, ArchivedRecord)
            for v in model.objects.filter(interface=record_type.interface, business_key=business_key).defer(
                "payload"
            )
        ),
        key=lambda v: -v.version,
    )
    held = (
        HeldRecord.objects.filter(
            interface=record_type.interface,
            business_key=business_key,
            state__in=(HeldRecord.State.HELD, HeldRecord.State.REJECTED),
        )
        .defer("record")
        .order_by("-updated_at")
        .first()
    )
    if (
        held is not None
        and versions
        and versions[0].enqueued_at
        and versions[0].enqueued_at > held.updated_at
    ):
        held = None  # a newer version went out since
    if not versions and held is None:
        return None
    if held is not None:
        audit.record(
            audit.Action.VIEW,
            "emr_sharing.HeldRecord",
            held.pk,
            patient=held.patient_id_hash,
            detail={"what": "投递状态（待对照）", "recordType": record_type.slug, "versions": len(versions)},
        )
        out = held_status(record_type, held)
        out["versions"] = (
            status_of(record_type, versions[0], versions=versions)["versions"] if versions else []
        )
        return out
    latest = versions[0]
    audit.record(
        audit.Action.VIEW,
        "uploads.OutboxRecord",
        latest.pk,
        patient=latest.patient_id_hash,
        detail={"what": "投递状态", "recordType": record_type.slug, "versions": len(versions)},
    )
    return status_of(record_type, latest, versions=versions)


# --------------------------------------------------------------------------- held records (ops)

DICTIONARY_TITLES = {"department": "院内科室（含标准科室对照）", "valueSet": "院内代码对照（值域）"}


def _value_set_title(set_id: str) -> str:
    from hospital_interop.municipal.specs import load_catalogue

    try:
        return load_catalogue().value_set(set_id).title
    except KeyError:
        return set_id


def waiting_codes(limit: int = 500) -> list[dict]:
    """The hospital codes held records wait for: dictionary, value set, code, hospital name, the
    fields it came in, how many records wait, since when."""
    rows = (
        HeldCode.objects.filter(held__state=HeldRecord.State.HELD)
        .values("dictionary", "value_set", "code")
        .annotate(records=Count("held", distinct=True), since=Min("held__received_at"))
        .order_by("-records", "dictionary", "value_set", "code")[:limit]
    )
    out = []
    for r in rows:
        detail = HeldCode.objects.filter(
            held__state=HeldRecord.State.HELD,
            dictionary=r["dictionary"],
            value_set=r["value_set"],
            code=r["code"],
        )
        names = sorted({n for n in detail.values_list("name", flat=True) if n})
        fields = sorted({f for f in detail.values_list("field", flat=True)})
        out.append(
            {
                **r,
                "dictionary_title": DICTIONARY_TITLES.get(r["dictionary"], r["dictionary"]),
                "value_set_title": _value_set_title(r["value_set"]),
                "name": "、".join(names),
                "fields": fields,
            }
        )
    return out


def held_codes_report() -> list[dict]:
    """Sections of the dictionaries' unmapped report (/dictionaries/unmapped/)."""
    codes = waiting_codes()
    sections = []
    for what, title in (
        ("department", "电子病历待对照的院内科室（记录暂缓发送）"),
        ("valueSet", "电子病历待对照的院内代码（记录暂缓发送）"),
    ):
        rows = [
            {
                "code": c["code"] if what == "department" else f"{c['value_set']} {c['code']}",
                "name": (f"{c['name']} · " if c["name"] else "")
                + f"{c['value_set_title']} · 字段 {'、'.join(c['fields'][:3])} · {c['records']} 条记录待发送",
            }
            for c in codes
            if c["dictionary"] == what
        ]
        sections.append({"title": title, "what": f"emr_{what}", "count": len(rows), "rows": rows})
    return sections


@dataclass
class HeldFilter:
    state: str = HeldRecord.State.HELD
    record_type: str = ""


def held_records(filt: HeldFilter, limit: int = 200) -> list[HeldRecord]:
    """Held records for the ops page (masked patient name only; the list is audited as a search)."""
    rows = HeldRecord.objects.defer("record").order_by("-updated_at")
    if filt.state:
        rows = rows.filter(state=filt.state)
    if filt.record_type:
        rows = rows.filter(record_type=filt.record_type)
    found = list(rows[:limit])
    audit.record(
        audit.Action.SEARCH,
        "emr_sharing.HeldRecord",
        detail={
            "what": "待对照记录",
            "state": filt.state,
            "recordType": filt.record_type,
            "rows": len(found),
        },
    )
    return found


def held_counts() -> dict[str, int]:
    counts = dict(HeldRecord.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    return {s.value: counts.get(s.value, 0) for s in HeldRecord.State}


def held_detail(pk: int) -> dict | None:
    """One held record for ops: its problems and where it stands (audited, with the patient digest)."""
    held = HeldRecord.objects.defer("record").select_related("released_record").filter(pk=pk).first()
    if held is None:
        return None
    audit.record(
        audit.Action.VIEW,
        "emr_sharing.HeldRecord",
        held.pk,
        patient=held.patient_id_hash,
        detail={"what": "待对照记录", "recordType": held.record_type},
    )
    try:
        rt = record_types().get(held.record_type)
        name = rt.spec.name
    except KeyError:
        name = held.record_type
    return {"held": held, "record_type_name": name}


def held_total() -> int:
    return HeldRecord.objects.filter(Q(state=HeldRecord.State.HELD)).count()
