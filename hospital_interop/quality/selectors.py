"""Reads of the data-quality findings: counts for the dashboards, the list with its filters and
one finding's detail. A list read and a detail read are audited (findings name patients' records)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from hospital_interop.audit import services as audit
from hospital_interop.uploads.models import OutboxRecord

from .models import FindingState, QcFinding
from .services import latest_record, resent_at

LIST_LIMIT = 500
DUE_SOON = timedelta(hours=24)


def counts(now=None) -> dict:
    """Open findings, those due within 24 h and those past their reply deadline."""
    now = now or timezone.now()
    return QcFinding.objects.filter(state=FindingState.OPEN).aggregate(
        open=Count("pk"),
        due_24h=Count("pk", filter=Q(reply_by__gte=now, reply_by__lt=now + DUE_SOON)),
        overdue=Count("pk", filter=Q(reply_by__lt=now)),
    )


@dataclass(frozen=True)
class FindingFilter:
    state: str = ""
    kind: str = ""
    assignee: str = ""
    due: str = ""  # "24h" | "overdue" | ""

    @property
    def criteria(self) -> dict:
        return {k: v for k, v in vars(self).items() if v}


def search(f: FindingFilter, *, only_assignee: str | None = None, now=None) -> list[QcFinding]:
    """Findings by the filter, deadline first; ``only_assignee`` limits a role to its own."""
    now = now or timezone.now()
    qs = QcFinding.objects.select_related("record").defer("record__payload")
    if f.state:
        qs = qs.filter(state=f.state)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.assignee:
        qs = qs.filter(assignee=f.assignee)
    if only_assignee:
        qs = qs.filter(assignee=only_assignee)
    if f.due == "overdue":
        qs = qs.filter(state=FindingState.OPEN, reply_by__lt=now)
    elif f.due == "24h":
        qs = qs.filter(state=FindingState.OPEN, reply_by__gte=now, reply_by__lt=now + DUE_SOON)
    rows = list(qs.order_by("state", "reply_by", "pk")[:LIST_LIMIT])
    audit.record(
        audit.Action.SEARCH,
        "quality.QcFinding",
        detail={
            "filter": f.criteria,
            "found": len(rows),
            **({"role": only_assignee} if only_assignee else {}),
        },
    )
    return rows


def finding_detail(pk: int) -> dict:
    """One finding, the record it names (the version it was raised on and the latest), and
    whether a re-send since the finding is known (for the reply "fixed")."""
    finding = QcFinding.objects.select_related("record", "reply_record").get(pk=pk)
    latest = latest_record(finding.interface, finding.business_key)
    audit.record(
        audit.Action.VIEW,
        "quality.QcFinding",
        finding.pk,
        patient=finding.patient_id_hash or (latest.patient_id_hash if latest else ""),
        detail={"feedbackId": finding.feedback_id, "interface": finding.interface},
    )
    return {
        "finding": finding,
        "latest": latest,
        "resent_at": resent_at(finding) if finding.state == FindingState.OPEN else finding.resent_at,
    }


def findings_of_record(record: OutboxRecord) -> list[QcFinding]:
    """The findings on this record's key (any version), for the record's own page."""
    return list(
        QcFinding.objects.filter(interface=record.interface, business_key=record.business_key).order_by(
            "state", "reply_by"
        )
    )
