"""Leases: a worker takes rows of a job table for a limited time, so that no two workers run one
row and the rows of a worker that died come back on their own.

Two tables are worked this way, each described by one :class:`Lease`:

* the outbox (``uploads.models.OutboxRecord``: pending/retry → sending → done, retry, …), leased
  by ``uploads.services.claim`` for one delivery batch;
* the DICOM study-sync jobs (``mutual_recognition.exam.models.StudySync``: pending/retry →
  running → …), leased by ``exam.services.claim_study_job`` for one run, renewed while it sends.

A leased table has the columns ``state``, ``next_attempt_at``, ``lease_until``, ``claimed_by``
and ``updated_at``. The life of a lease:

* ``claim`` locks due rows with ``SELECT … FOR UPDATE SKIP LOCKED`` (a row another worker is
  claiming is skipped, never waited for) and leases them to this worker until now + the lease;
* ``renew`` extends the lease of a long run; ``release`` ends it and moves the row on. Both act
  only while this worker still holds the row: a worker whose lease ran out and was reclaimed
  changes nothing, whatever it finally learns;
* ``reclaim`` (the periodic sweep) makes rows whose lease ran out (their worker died) due again.

``wake`` asks a worker to run a task now and never fails or waits when the broker is down: the
sweep finds due rows by itself, so a lost message only delays.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)

RECLAIMED = "处理进程中断，已重新排队"
_HOST = socket.gethostname()


def worker_id() -> str:
    """This process's name in ``claimed_by`` (host:pid). Taken when asked, not at import: the
    processes of Celery's prefork pool are forked after the worker imported everything."""
    return f"{_HOST}:{os.getpid()}"


@dataclass(frozen=True)
class Lease:
    """How the rows of one table are leased to workers."""

    model: type[models.Model]
    due_states: tuple[str, ...]  # a row in one of these states may be claimed once next_attempt_at has come
    held_state: str  # the state of a leased row
    retry_state: str  # where ``reclaim`` puts a row whose worker died
    seconds: Callable[[], float]  # the lease's length, read at each claim (settings may change)
    note_field: str  # the row's text column that says why it is due again

    def due(self, now: datetime) -> Q:
        return Q(state__in=self.due_states, next_attempt_at__lte=now)

    def claim(
        self,
        rows: models.QuerySet,
        *,
        limit: int,
        first: int | None = None,
        worker: str | None = None,
        columns: tuple[str, ...] = (),
        admit: Callable[[list[tuple]], list[int]] | None = None,
        seconds_for: Callable[[list[tuple]], float] | None = None,
        now: datetime | None = None,
        **also,
    ) -> list[int]:
        """Lease up to ``limit`` due rows of ``rows`` to ``worker`` (this process by default) and
        return their ids: row ``first`` before the others, then the longest due. Rows another
        worker holds locked are skipped. ``admit`` may keep fewer of the locked candidates (an
        interface's rate limit): it gets ``(pk, *columns)`` tuples and returns the ids to lease.
        ``seconds_for``: the lease's length for the leased rows' tuples (large work, longer lease).
        ``also``: more columns to set on the leased rows (attempt counters, start times)."""
        now = now or timezone.now()
        with transaction.atomic():
            due = rows.filter(self.due(now))
            picked: list[tuple] = []
            if first is not None:
                picked = list(
                    due.filter(pk=first).select_for_update(skip_locked=True).values_list("pk", *columns)
                )
            if limit > len(picked):
                picked += list(
                    due.exclude(pk__in=[row[0] for row in picked])
                    .order_by("next_attempt_at")
                    .select_for_update(skip_locked=True)
                    .values_list("pk", *columns)[: limit - len(picked)]
                )
            ids = admit(picked) if admit is not None else [row[0] for row in picked]
            if ids:
                taken = set(ids)
                seconds = (
                    seconds_for([row for row in picked if row[0] in taken]) if seconds_for else self.seconds()
                )
                self.model.objects.filter(pk__in=ids).update(
                    state=self.held_state,
                    claimed_by=worker or worker_id(),
                    lease_until=now + timedelta(seconds=seconds),
                    updated_at=now,
                    **also,
                )
        return ids

    def renew(self, pk: int, worker: str, **also) -> bool:
        """Extend the lease of a row this worker still holds (a long run that makes progress);
        ``also``: progress columns written with it. False: the lease was lost."""
        until = timezone.now() + timedelta(seconds=self.seconds())
        return bool(self.model.objects.filter(pk=pk, claimed_by=worker).update(lease_until=until, **also))

    def release(self, pk: int, worker: str, *, now: datetime | None = None, **fields) -> int:
        """End this worker's lease of a row and move the row on (``fields``: its next state, next
        attempt, note). 0 when the worker no longer held it: the row was reclaimed meanwhile."""
        return self.model.objects.filter(pk=pk, claimed_by=worker).update(
            claimed_by="", lease_until=None, updated_at=now or timezone.now(), **fields
        )

    def holders(self, pks: Iterable[int]) -> set[tuple[int, str]]:
        """(id, worker) of those of these rows that are still leased, locked until the caller's
        transaction ends: outcomes are recorded only for rows their worker still holds."""
        meta = self.model._meta
        quote = connection.ops.quote_name
        with connection.cursor() as cur:  # plain SQL: it runs once per recorded group of answers
            cur.execute(
                f"SELECT {quote(meta.pk.column)}, claimed_by FROM {quote(meta.db_table)}"
                f" WHERE {quote(meta.pk.column)} = ANY(%s) AND state = %s"
                f" ORDER BY {quote(meta.pk.column)} FOR UPDATE",
                [sorted(pks), self.held_state],
            )
            return {(pk, worker) for pk, worker in cur.fetchall()}

    def expired(self, now: datetime) -> models.QuerySet:
        """Leased rows whose lease ran out: their worker died (or hangs)."""
        return self.model.objects.filter(state=self.held_state, lease_until__lt=now)

    def reclaim(self, now: datetime | None = None) -> int:
        """The sweep's part: rows whose lease ran out are due again at once (running a row twice
        is safe: the platform and the front-end processor keep one copy per key)."""
        now = now or timezone.now()
        return self.expired(now).update(
            state=self.retry_state,
            next_attempt_at=now,
            claimed_by="",
            lease_until=None,
            updated_at=now,
            **{self.note_field: RECLAIMED},
        )


def wake(task, *args, what: str, otherwise: str = "the sweep") -> bool:
    """Send ``task(*args)`` to a worker now. With the broker down this neither raises nor waits
    (no publish retries: it runs inside web requests); it logs that ``what`` is left to
    ``otherwise`` and returns False. ``what`` names ids only, never a patient."""
    try:
        task.apply_async(args, retry=False)
    except Exception as exc:  # broker down or unreachable
        log.warning("broker unavailable, %s left for %s: %s", what, otherwise, exc)
        return False
    return True
