"""Reads of the audit trail: the security officer's search and export, and the chain check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from . import chain
from .models import AuditRecord, ChainHead


@dataclass(frozen=True)
class TrailFilter:
    start: date | None = None
    end: date | None = None
    user: str = ""  # login name (or system:/doctor:/process: name), exact or its beginning
    action: str = ""
    patient: str = ""  # a digest: the page computes it from the ID number typed into its form
    object_type: str = ""
    object_id: str = ""

    @property
    def criteria(self) -> dict:
        """The filter as the search entry records it (the patient only as its digest)."""
        return {k: str(v) for k, v in self.__dict__.items() if v}


def _midnight(d: date) -> datetime:
    return timezone.make_aware(datetime.combine(d, time.min))


def search(f: TrailFilter) -> QuerySet[AuditRecord]:
    qs = AuditRecord.objects.all()
    if f.start:
        qs = qs.filter(at__gte=_midnight(f.start))
    if f.end:
        qs = qs.filter(at__lt=_midnight(f.end + timedelta(days=1)))
    if f.user:
        qs = qs.filter(Q(username=f.user) | Q(username__startswith=f.user))
    if f.action:
        qs = qs.filter(action=f.action)
    if f.patient:
        qs = qs.filter(patient=f.patient)
    if f.object_type:
        qs = qs.filter(object_type__istartswith=f.object_type)
    if f.object_id:
        qs = qs.filter(object_id=f.object_id)
    return qs.order_by("-seq")


def verify_chain() -> chain.Report:
    """Check the whole chain against its head, without holding appends up. The last entry's
    number is read before the head: an entry and the head move in one transaction, so an entry
    seen then beyond the head read after is a real anomaly, not an append in between."""
    last_seen = _last_seq()
    head = ChainHead.objects.filter(pk=1).first()
    entries = (
        AuditRecord.objects.filter(seq__lte=max(head.seq if head else 0, last_seen))
        .order_by("seq")
        .values("pk", "prev_mac", "mac", *chain.CONTENT_FIELDS)
        .iterator(chunk_size=2000)
    )
    report = chain.verify(chain.key(), head or ChainHead(), entries)
    if head is None and report.checked:
        report.problems.insert(0, chain.Problem(None, None, "审计链头缺失（被删除）"))
    return report


def _last_seq() -> int:
    return AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
