"""Reads of the EMR intake: where a record stands in delivery (each status read is audited)."""

from __future__ import annotations

from django.utils import timezone

from hospital_interop.audit import services as audit
from hospital_interop.uploads.models import OutboxRecord, State

from .mapping import RecordType

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


def record_status(record_type: RecordType, business_key: str) -> dict | None:
    """Status of the latest version of a key, with the list of its versions; None if unknown."""
    versions = list(
        OutboxRecord.objects.filter(interface=record_type.interface, business_key=business_key)
        .defer("payload")
        .order_by("-version")
    )
    if not versions:
        return None
    latest = versions[0]
    audit.record(
        audit.Action.VIEW,
        "uploads.OutboxRecord",
        latest.pk,
        patient=latest.patient_id_hash,
        detail={"what": "投递状态", "recordType": record_type.slug, "versions": len(versions)},
    )
    return status_of(record_type, latest, versions=versions)
