"""Reads of the integrations app: what each calling system has sent and where it stands."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone

from hospital_interop.uploads.models import OutboxRecord, State

from .models import CallingSystem


def counts_by_system() -> list[dict]:
    """One row per calling system (plus sources without a system row): record counts by state."""
    since = timezone.now() - timedelta(hours=24)
    rows = {
        r["source"]: r
        for r in OutboxRecord.objects.exclude(source="")
        .values("source")
        .annotate(
            total=Count("pk"),
            last_24h=Count("pk", filter=Q(enqueued_at__gte=since)),
            waiting=Count("pk", filter=Q(state__in=(State.PENDING, State.SENDING, State.RETRY))),
            attention=Count("pk", filter=Q(state=State.ATTENTION)),
            done=Count("pk", filter=Q(state=State.DONE)),
            last_enqueued=Max("enqueued_at"),
        )
    }
    out = []
    for system in CallingSystem.objects.all():
        r = rows.pop(system.code, {})
        out.append({"system": system, "code": system.code, "name": system.name, **_counts(r)})
    for code, r in sorted(rows.items()):  # e.g. the backfill or the puller
        out.append({"system": None, "code": code, "name": "", **_counts(r)})
    return out


def _counts(r: dict) -> dict:
    return {k: r.get(k, 0) for k in ("total", "last_24h", "waiting", "attention", "done")} | {
        "last_enqueued": r.get("last_enqueued")
    }
