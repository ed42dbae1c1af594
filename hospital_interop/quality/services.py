"""Writes of the data-quality feedback loop (interfaces.md §G).

``pull`` asks the platform for new findings (QC_FEEDBACK_QUERY, paged by the cursor kept in
``PullCursor``) and stores them, idempotent on the feedback id (a re-issued finding, newer
``issuedAt``, opens again); ``answer`` enqueues QC_FEEDBACK_REPLY through the outbox
(``enqueue_many``, the only door); ``assign`` hands a finding to a role.

Fixing the data is not here: ops use the outbox's fix-and-re-drive (``uploads.services.redrive``
with ``payload_fix``), which sends an accepted record again as its next version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hospital_interop.audit import services as audit
from hospital_interop.errors import InvalidInput, field_error
from hospital_interop.municipal import envelope
from hospital_interop.municipal.client import Outcome
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import retention
from hospital_interop.uploads import services as outbox
from hospital_interop.uploads.models import OutboxRecord, State

from .models import Assignee, FindingState, PullCursor, QcFinding, ReplyResult

log = logging.getLogger(__name__)

QUERY, REPLY = "QC_FEEDBACK_QUERY", "QC_FEEDBACK_REPLY"
PAGE_SIZE = 200  # the platform allows at most 500
MAX_PAGES = 50  # per run; the next run goes on from the kept cursor
NOTE_MAX = 500


class PullFailed(Exception):
    """The platform did not answer the query (the cursor is unchanged; the next run retries)."""


@dataclass
class Pulled:
    pages: int = 0
    received: int = 0
    created: int = 0
    reissued: int = 0
    unchanged: int = 0


def default_assignee(interface: str) -> str:
    """Who handles a finding on this interface: the lab its reports, the EMR team the EMR
    records, ops everything else (exam, recognition, summaries)."""
    try:
        document = load_catalogue().interface(interface).document
    except KeyError:
        return Assignee.OPS
    if document == "lab" or interface.startswith("PUB_LAB_"):
        return Assignee.LAB
    if document.startswith("emr_"):
        return Assignee.EMR
    return Assignee.OPS


def _time(value: str) -> datetime:
    """yyyyMMddHHmmss in platform time → aware datetime."""
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=envelope.PLATFORM_TZ)


def latest_record(interface: str, business_key: str) -> OutboxRecord | None:
    return (
        OutboxRecord.objects.filter(interface=interface, business_key=business_key)
        .defer("payload")
        .order_by("-version")
        .first()
    )


# --- pull ----------------------------------------------------------------------------------------
def pull(client, *, org_code: str | None = None) -> Pulled:
    """Fetch findings from the kept cursor on; store each page and the cursor after it in one
    transaction. When the platform says it is done (empty ``nextCursor``) the cursor of that last
    page is kept, so the next run reads it again (harmless: items are matched by feedback id) and
    anything issued since."""
    org_code = org_code or settings.PLATFORM["ORG_CODE"]
    row, _ = PullCursor.objects.get_or_create(feed=QUERY)
    cursor, done = row.cursor, Pulled()
    for _ in range(MAX_PAGES):
        result = client.call(QUERY, {"orgCode": org_code, "cursor": cursor, "pageSize": PAGE_SIZE})
        if result.outcome != Outcome.ACCEPTED:
            problem = f"{result.code or result.http_status or '无应答'} {result.message}".strip()
            PullCursor.objects.filter(pk=row.pk).update(last_error=problem[:2000])
            raise PullFailed(f"数据质量反馈查询失败：{problem}")
        data = result.data  # checked against the interface's response spec by the client
        following = data.get("nextCursor") or ""
        with transaction.atomic():
            for item in data["items"]:
                outcome = _store(item)
                setattr(done, outcome, getattr(done, outcome) + 1)
            done.received += len(data["items"])
            done.pages += 1
            PullCursor.objects.filter(pk=row.pk).update(
                cursor=following or cursor, pulled_at=timezone.now(), last_error=""
            )
        if not following:
            break
        cursor = following
    log.info(
        "quality feedback pulled: %d page(s), %d item(s), %d new, %d re-issued",
        done.pages,
        done.received,
        done.created,
        done.reissued,
    )
    return done


def _store(item: dict) -> str:
    """One finding of the feed: "created", "reissued" or "unchanged" (the newest issue wins)."""
    issued_at = _time(item["issuedAt"])
    fields = {
        "issuer": item["issuer"],
        "kind": item["kind"],
        "level": item["level"],
        "interface": item["serviceCode"],
        "business_key": item["businessKey"],
        "field": item.get("field") or "",
        "rule": item["rule"],
        "message": item["message"],
        "issued_at": issued_at,
        "reply_by": _time(item["replyBy"]),
    }
    found = QcFinding.objects.select_for_update().filter(feedback_id=item["feedbackId"]).first()
    if found is not None and (
        found.issued_at > issued_at  # an older issue than the one held: the newest wins
        or all(getattr(found, name) == value for name, value in fields.items())  # read again
    ):
        return "unchanged"
    # a finding points to hot rows: a key the retention job archived comes back to the outbox
    retention.restore_key(fields["interface"], fields["business_key"])
    record = latest_record(fields["interface"], fields["business_key"])
    link = {
        "record": record,
        "record_version": record.version if record else None,
        "patient_id_hash": record.patient_id_hash if record else "",
        "received_at": timezone.now(),
    }
    if found is None:
        QcFinding.objects.create(
            feedback_id=item["feedbackId"],
            assignee=default_assignee(fields["interface"]),
            **fields,
            **link,
        )
        return "created"
    # re-issued after a reply that did not satisfy: open again, the earlier reply is cleared
    for name, value in {**fields, **link}.items():
        setattr(found, name, value)
    found.times_issued += 1
    found.state = FindingState.OPEN
    found.reply_result, found.reply_note, found.resent_at = "", "", None
    found.replied_at, found.replied_by, found.reply_record = None, "", None
    found.save()
    return "reissued"


# --- reply ---------------------------------------------------------------------------------------
def resent_at(finding: QcFinding) -> datetime | None:
    """When the record this finding names was sent again after the finding came in: a newer
    version than the one the finding was raised on (or any version, for a missing record), or
    the same version re-driven by ops since. None if it was not."""
    latest = latest_record(finding.interface, finding.business_key)
    if latest is None or latest.state in (State.VOIDED, State.ATTENTION, State.SUPERSEDED):
        return None
    if finding.record_version is None or latest.version > finding.record_version:
        return latest.enqueued_at
    if latest.redriven_at and latest.redriven_at >= finding.received_at:
        return latest.redriven_at
    return None


def answer(pk: int, *, result: str, note: str, user) -> QcFinding:
    """Reply to a finding: QC_FEEDBACK_REPLY enqueued through the outbox, the finding answered.
    InvalidInput (precise Chinese messages, nothing written) for a reply the rules refuse."""
    note = (note or "").strip()
    with transaction.atomic():
        finding = QcFinding.objects.select_for_update().get(pk=pk)
        errors = []
        if finding.state != FindingState.OPEN:
            errors.append(field_error("", "state", "该反馈已回复；平台再次发布后才能再次回复"))
        if result not in ReplyResult.values:
            errors.append(
                field_error("result", "valueSet", "请选择处理结果：已修正并重传、无需修改或无法修改")
            )
        elif result != ReplyResult.FIXED and not note:
            label = ReplyResult(result).label
            errors.append(field_error("note", "required", f"处理结果为“{label}”时必须填写处理说明"))
        if len(note) > NOTE_MAX:
            errors.append(field_error("note", "length", f"处理说明最多 {NOTE_MAX} 字，当前 {len(note)} 字"))
        resent = None
        if result == ReplyResult.FIXED:
            resent = resent_at(finding)
            if resent is None:
                errors.append(
                    field_error(
                        "result",
                        "resend",
                        "该记录在收到反馈后尚未重新上传（或重传被退回）："
                        "请先在上传记录中“修正并重推”，或由业务系统重新上传后，再选择“已修正并重传”",
                    )
                )
        if errors:
            raise InvalidInput(errors)
        handled_by = (user.get_username() or "")[:20]
        payload = {
            "orgCode": settings.PLATFORM["ORG_CODE"],
            "feedbackId": finding.feedback_id,
            "result": result,
            "handledBy": handled_by,
        }
        if note:
            payload["note"] = note
        if resent is not None:
            payload["resentAt"] = timezone.localtime(resent, envelope.PLATFORM_TZ).strftime("%Y%m%d%H%M%S")
        [reply] = outbox.enqueue_many([outbox.Item(REPLY, payload)], source="quality")
        before = finding.state
        finding.state = FindingState.ANSWERED
        finding.reply_result, finding.reply_note, finding.resent_at = result, note, resent
        finding.replied_at, finding.replied_by, finding.reply_record = timezone.now(), handled_by, reply
        finding.save()
        audit.record(
            audit.Action.UPDATE,
            "quality.QcFinding",
            finding.pk,
            patient=finding.patient_id_hash,
            changes={"state": [before, finding.state], "reply_result": ["", result]},
            detail={"feedbackId": finding.feedback_id, "interface": finding.interface, "reply": reply.pk},
        )
    return finding


def assign(pk: int, *, assignee: str) -> QcFinding:
    if assignee not in Assignee.values:
        raise InvalidInput([field_error("assignee", "valueSet", "请选择负责角色：检验科、运维或电子病历")])
    with transaction.atomic():
        finding = QcFinding.objects.select_for_update().get(pk=pk)
        before = finding.assignee
        if before != assignee:
            finding.assignee = assignee
            finding.save(update_fields=["assignee", "updated_at"])
            audit.record(
                audit.Action.UPDATE,
                "quality.QcFinding",
                finding.pk,
                patient=finding.patient_id_hash,
                changes={"assignee": [before, assignee]},
                detail={"feedbackId": finding.feedback_id},
            )
    return finding
