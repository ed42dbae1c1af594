"""Writes of the delivery engine: enqueue, claim, deliver, re-drive, void.

The life of a record::

    enqueue ──► pending ──claim──► sending ──► done
                  ▲  ▲                │
                  │  └── retry ◄──────┤ (5xx, timeout, 3001, 5000, an answer not believed)
                  │                   └──► attention (2001 field errors, config errors, too old)
                  └───────── redrive (ops, after fixing the data)

Retry timing lives in the row (``next_attempt_at``); workers and the sweep only ever send rows
that are due, leased with ``SELECT … FOR UPDATE SKIP LOCKED`` so no two workers send one row
(``leases.py``, shared with the DICOM study-sync jobs).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing.util
import os
import random
import re
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, connections, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from hospital_interop import bulkinsert
from hospital_interop.atrest import SealBroken
from hospital_interop.audit import services as audit
from hospital_interop.cachesafe import cached
from hospital_interop.errors import field_error
from hospital_interop.logmask import mask_name
from hospital_interop.municipal import envelope
from hospital_interop.municipal.client import CallResult, Outcome
from hospital_interop.municipal.specs import InterfaceSpec, load_catalogue
from hospital_interop.patients.models import id_key
from hospital_interop.patients.services import Claim, Identity, Ref, bind_many

from . import leases, retention
from .models import DUE_STATES, Attempt, AttemptFields, Dependency, InterfacePolicy, OutboxRecord, State

log = logging.getLogger(__name__)

WAIT_RECHECK = timedelta(seconds=60)  # a child waiting for its parent is looked at again after this
CLAIM_BATCH = settings.DELIVERY["CLAIM_BATCH"]
LEASE = leases.Lease(
    OutboxRecord,
    due_states=DUE_STATES,
    held_state=State.SENDING,
    retry_state=State.RETRY,
    seconds=lambda: settings.DELIVERY["LEASE_SECONDS"],
    note_field="last_message",
)


class PayloadInvalid(Exception):
    """Raised by enqueue: the payload breaks its interface spec. ``errors`` = [{field, rule, message}]."""

    def __init__(self, interface: str, errors: list[dict]):
        self.interface, self.errors = interface, errors
        super().__init__(
            f"{interface}: {len(errors)} error(s): "
            + "; ".join(f"{e['field']} {e['rule']}" for e in errors[:5])
        )


@dataclass(frozen=True)
class Patient:
    id_number: str = ""
    name: str = ""
    id_type: str = "01"

    @property
    def id_hash(self) -> str:
        """The patient digest (``patients.models.id_key``) stored with a row and searched by."""
        return id_key(self.id_type or "01", self.id_number) if self.id_number else ""


POLICY_CACHE_SECONDS = 5.0
_policy_cache: dict = {"at": -POLICY_CACHE_SECONDS, "items": {}}


def policies(*, fresh: bool = False) -> dict[str, InterfacePolicy]:
    """All stored policies, re-read at most every few seconds (they change rarely, by ops);
    ``fresh`` re-reads now (a claim must see a pause or resume at once)."""
    now = time.monotonic()
    if fresh or now - _policy_cache["at"] > POLICY_CACHE_SECONDS:
        _policy_cache["items"] = {p.interface: p for p in InterfacePolicy.objects.all()}
        _policy_cache["at"] = now
    return _policy_cache["items"]


def forget_policies(**kwargs) -> None:
    _policy_cache["at"] = -POLICY_CACHE_SECONDS


def policy_for(interface: str) -> InterfacePolicy:
    return policies().get(interface) or InterfacePolicy(interface=interface)


def business_key(spec, payload: dict) -> str:
    return "|".join(str(v) for v in spec.key_of(payload))


def _parent_refs(spec, payload: dict) -> list[tuple[str, str]]:
    """(parent interface, parent business key) for each ordering parent this payload names."""
    return [
        (code, "|".join(map(str, key)))
        for code, key in spec.parent_keys_of(payload)
        if all(v not in (None, "") for v in key)
    ]


ID_NUMBER_DE, NAME_DE, ID_TYPE_DE = "DE02.01.030.00", "DE02.01.039.00", "DE02.01.031.00"


@dataclass(frozen=True)
class _PatientPaths:
    id_no: tuple[str, ...]
    id_type: tuple[str, ...]  # () when the spec has no ID type field next to the number
    name: tuple[str, ...]


@functools.cache
def _patient_paths(code: str) -> _PatientPaths | None:
    """Where a spec keeps the patient's ID number, ID type and name: found by data element, not by name."""
    spec = load_catalogue().interface(code)
    for path, f in spec.request.walk():
        if f.de == ID_NUMBER_DE and "[]" not in path:
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            siblings = spec.request.fields if not parent else _field_at(spec, parent).fields
            prefix = tuple(parent.split(".")) if parent else ()
            found = {
                de: (*prefix, n) for n, s in siblings.items() for de in (ID_TYPE_DE, NAME_DE) if s.de == de
            }
            return _PatientPaths((*prefix, f.name), found.get(ID_TYPE_DE, ()), found.get(NAME_DE, ()))
    return None


def _field_at(spec, path: str):
    node = spec.request
    for part in path.split("."):
        node = node.fields[part]
    return node


def _dig(payload: dict, path: tuple[str, ...]) -> str:
    value = payload
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


def patient_of(code: str, payload: dict) -> Patient:
    """The patient a payload of this interface names (ID number, its type, name), found by data element."""
    paths = _patient_paths(code)
    if not paths:
        return Patient()
    return Patient(
        id_number=_dig(payload, paths.id_no),
        name=_dig(payload, paths.name) if paths.name else "",
        id_type=(_dig(payload, paths.id_type) if paths.id_type else "") or "01",
    )


def _identity_of(spec, payload: dict) -> Identity | None:
    """The patient a payload names (ID type + number), if it names one."""
    paths = _patient_paths(spec.code)
    id_no = _dig(payload, paths.id_no) if paths else ""
    if not id_no:
        return None
    return Identity((_dig(payload, paths.id_type) if paths.id_type else "") or "01", id_no)


def patient_key_of(interface: str, payload: dict) -> str:
    """The patient key (``patients.models.id_key``) of the patient a payload names, "" if none:
    what the audit trail records for a read or a change of this payload."""
    try:
        identity = _identity_of(load_catalogue().interface(interface), payload)
    except KeyError:
        return ""
    return identity.key if identity else ""


# How the audit trail masks identity values in a payload's before/after, by data element
AUDIT_MASKS = {
    ID_NUMBER_DE: "id",
    NAME_DE: "name",
    "DE02.01.010.00": "phone",  # 联系电话
    "DE02.01.005.01": "hidden",  # 出生日期
    "DE02.01.009.04": "hidden",  # 地址-门牌号
}


@functools.cache
def _masked_paths(code: str) -> dict[str, str]:
    spec = load_catalogue().interface(code)
    return {path: AUDIT_MASKS[f.de] for path, f in spec.request.walk() if f.de in AUDIT_MASKS}


def payload_changes(code: str, before: dict, after: dict) -> dict:
    """{field path: [before, after]} of a payload change for the audit trail, identity values masked."""
    paths = _masked_paths(code)
    return audit.changed_fields(before, after, identity=lambda p: paths.get(re.sub(r"\[\d+\]", "[]", p)))


def patient_claim(spec, payload: dict, item: int | None = None) -> Claim | None:
    """What a payload says about which patient owns the visits, orders and reports it names
    (fields marked ``binds`` in its spec); None when it names no patient or no such identifier."""
    refs = spec.bound_refs(payload)
    identity = _identity_of(spec, payload) if refs else None
    if identity is None:
        return None
    return Claim(identity, [Ref(kind, value, path) for kind, value, path in refs], item=item)


def _patient_claims(indexed: list[tuple[int, Checked]]) -> list[Claim]:
    """The claims of these items, each with the item's index in the caller's batch."""
    claims = (patient_claim(c.spec, c.payload, i) for i, c in indexed)
    return [c for c in claims if c is not None]


# --- enqueue -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One record version handed to ``enqueue_many``."""

    interface: str
    payload: dict
    event_at: datetime | None = None
    patient: Patient | None = None


@dataclass(frozen=True)
class Checked:
    """An item its interface spec accepts, made by ``check``. ``enqueue_many`` stores it without
    validating it again: a caller that reports errors record by record (the EMR intake) checks
    each record first and hands over the checked ones."""

    item: Item
    spec: InterfaceSpec
    key: str  # the business key

    @property
    def interface(self) -> str:
        return self.spec.code

    @property
    def payload(self) -> dict:
        return self.item.payload


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue_many(..., skip_unchanged=True)`` did with one item."""

    record: OutboxRecord  # the item's new version, or the latest version it is identical to
    created: bool  # False: identical to the latest version of its key, nothing stored


def check(item: Item) -> tuple[Checked | None, list[dict]]:
    """Validate an item against its interface spec: ``(Checked, [])``, or ``(None, errors)`` with
    ``{field, rule, message}`` in the platform's field names. A validator that fails on odd input
    (a type the spec never expected) reports that as an error instead of raising."""
    spec = load_catalogue().interface(item.interface)
    try:
        errors = spec.validate(item.payload)
    except Exception:  # must not turn odd input into a 500 (and ops should hear of it)
        log.exception("spec validator of %s failed on a payload", spec.code)
        errors = [
            field_error(
                "", "type", "记录中有字段的类型不符合接口规范，无法逐项校验", "payload could not be validated"
            )
        ]
    if errors:
        return None, errors
    return Checked(item, spec, business_key(spec, item.payload)), []


def enqueue(
    interface: str,
    payload: dict,
    *,
    event_at: datetime | None = None,
    source: str = "",
    patient: Patient | None = None,
    wake_worker: bool = True,
) -> OutboxRecord:
    """Store one record version for delivery, inside the caller's transaction.

    Validates against the interface spec (PayloadInvalid on error, nothing written), supersedes
    older unsent versions of the same key, records ordering dependencies, and wakes a worker
    once the caller's transaction commits. Nothing is sent here.
    """
    try:
        return enqueue_many(
            [Item(interface, payload, event_at, patient)], source=source, wake_worker=wake_worker
        )[0]
    except BatchInvalid as exc:
        raise exc.failures[0][1] from None  # the single record's own errors, without item indexes


class BatchInvalid(PayloadInvalid):
    """Raised by enqueue_many: ``failures`` = [(index in the batch, PayloadInvalid)]; nothing
    written. ``errors`` holds every failure's errors, each with its ``item`` index."""

    def __init__(self, failures: list[tuple[int, PayloadInvalid]]):
        self.failures = failures
        codes = sorted({e.interface for _, e in failures})
        super().__init__(",".join(codes), [{**err, "item": i} for i, e in failures for err in e.errors])


def enqueue_many(
    items: Sequence[Item | Checked],
    *,
    source: str = "",
    wake_worker: bool = True,
    skip_unchanged: bool = False,
) -> list[OutboxRecord] | list[Enqueued]:
    """Store many record versions in a few statements (bulk loaders, backfills, intake APIs),
    inside the caller's transaction; all or nothing. The only way into the outbox.

    Same rules as ``enqueue``, which is this function for one item: each item is validated
    (BatchInvalid lists every invalid one; a ``Checked`` item is not validated again), the
    patient it names must own the visits, orders and reports it references (PatientConflict,
    errors with the ``item`` index), a later item of the same key in the batch is a newer
    version. A transaction that stores several records should store them with one call (its key
    locks are then taken in the global order). Bulk loaders that leave delivery to the sweep
    pass ``wake_worker=False``.

    Returns the new rows in item order. With ``skip_unchanged`` an item identical to the latest
    version of its key (stored, or earlier in this batch) is not stored again, and the answer is
    one ``Enqueued`` per item: the row that holds its latest version and whether it was created
    (a repeated submission or backfill answers "unchanged"; such items were bound when stored).
    """
    checked = _check_all(items)
    if not checked:
        return []
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        pairs = {(c.interface, c.key) for c in checked}
        _lock_keys(pairs)
        if skip_unchanged:
            latest = _latest_rows(pairs)
            version = {pair: row.version for pair, row in latest.items()}
        else:
            latest, version = {}, _latest_versions(pairs)
        stored = set(version)
        records, fresh, outcome = [], [], []
        for i, c in enumerate(checked):
            pair = (c.interface, c.key)
            if skip_unchanged and pair in latest and _same_payload(latest[pair], c.payload):
                outcome.append(Enqueued(latest[pair], created=False))
                continue
            version[pair] = version.get(pair, 0) + 1
            record = latest[pair] = _new_version(c, version[pair], source, now)
            records.append(record)
            fresh.append((i, c))
            outcome.append(Enqueued(record, created=True))
        if records:
            # the patient each payload names must own the visits, orders and reports it references
            bind_many(_patient_claims(fresh), source=source or "outbox")
            changed = {(r.interface, r.business_key) for r in records}
            _supersede_unsent({pair: version[pair] for pair in stored & changed}, now)
            _insert(records, [c for _, c in fresh], now)
    if wake_worker:
        modes = policies()
        for record in records:
            policy = modes.get(record.interface)
            if record.state == State.PENDING and (
                policy is None or policy.mode == InterfacePolicy.Mode.IMMEDIATE
            ):
                _wake_after_commit(record.pk)
    return outcome if skip_unchanged else records


def _same_payload(row: OutboxRecord, payload: dict) -> bool:
    """Is this stored version's payload the given one? (One that does not open is not: the new
    version replaces it.)"""
    try:
        return row.payload == payload
    except SealBroken:
        return False


def _check_all(items: Sequence[Item | Checked]) -> list[Checked]:
    """Every item checked against its spec, or BatchInvalid naming each invalid one."""
    checked, failures = [], []
    for i, item in enumerate(items):
        if isinstance(item, Checked):
            checked.append(item)
            continue
        ok, errors = check(item)
        if errors:
            failures.append((i, PayloadInvalid(item.interface, errors)))
        else:
            checked.append(ok)
    if failures:
        raise BatchInvalid(failures)
    return checked


class _WakeBatch:
    """Record ids enqueued in one transaction: after commit, one message per claim batch."""

    def __init__(self):
        self.ids: list[int] = []

    def flush(self) -> None:
        for i in range(0, len(self.ids), CLAIM_BATCH):
            wake(self.ids[i])


def _wake_after_commit(record_id: int) -> None:
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        wake(record_id)
        return
    batch = getattr(conn, "_outbox_wake_batch", None)
    if batch is None or not any(entry[1] == batch.flush for entry in conn.run_on_commit):
        batch = conn._outbox_wake_batch = _WakeBatch()  # a rolled-back batch is dropped with its callback
        transaction.on_commit(batch.flush)
    batch.ids.append(record_id)


LOCK_NAMESPACE = 0x4F5458  # "OTX": the outbox's advisory locks, one per key bucket
LOCK_BUCKETS = 1024  # a call holds at most this many (PostgreSQL's shared lock table is finite)


def _lock_keys(pairs) -> None:
    """Serialise writers of the same (interface, business key) pairs until the transaction ends,
    so version numbers never collide. PostgreSQL advisory locks on hash buckets, taken in one
    global order so that two bulk writers cannot deadlock; SQLite runs one writer at a time."""
    if connection.vendor != "postgresql":
        return
    buckets = sorted({zlib.crc32(f"{code}#{key}".encode()) % LOCK_BUCKETS for code, key in pairs})
    with connection.cursor() as cursor:  # a plain scan of the sorted array keeps its order
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, b) FROM unnest(%s::int[]) AS b", [LOCK_NAMESPACE, buckets]
        )


def _latest_versions(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(interface, key) -> highest stored version, hot or archived (``retention``), one query per interface."""
    by_interface: dict[str, set[str]] = {}
    for code, key in pairs:
        by_interface.setdefault(code, set()).add(key)
    latest = {}
    for code, keys in by_interface.items():
        latest.update({(code, key): v for key, v in retention.latest_versions(code, keys).items()})
    return latest


def _latest_rows(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], OutboxRecord]:
    """(interface, key) -> the row of its highest stored version, two queries per interface."""
    versions = _latest_versions(pairs)
    out = {}
    for code in {c for c, _ in versions}:
        wanted = {(k, v) for (c, k), v in versions.items() if c == code}
        rows = OutboxRecord.objects.filter(
            interface=code, business_key__in={k for k, _ in wanted}, version__in={v for _, v in wanted}
        )
        out.update(
            {(code, row.business_key): row for row in rows if (row.business_key, row.version) in wanted}
        )
        # read after the hot table: a row archived meanwhile is found here
        missing = {(k, v) for k, v in wanted if (code, k) not in out}
        out.update({(code, row.business_key): row for row in retention.archived_rows(code, missing)})
    return out


def _supersede_unsent(newest: dict[tuple[str, str], int], now) -> None:
    """Older unsent versions of these stored keys give way to the batch's newest version of each."""
    for code in {c for c, _ in newest}:
        keys = {k: v for (c, k), v in newest.items() if c == code}
        OutboxRecord.objects.filter(
            interface=code, business_key__in=keys, state__in=(State.PENDING, State.RETRY, State.ATTENTION)
        ).update(
            state=State.SUPERSEDED,
            next_attempt_at=None,
            updated_at=now,
            last_message=Case(
                *(When(business_key=k, then=Value(f"已被第 {v} 版取代")) for k, v in keys.items()),
                default=Value("已被新版本取代"),
            ),
        )


def _new_version(checked: Checked, version: int, source: str, now) -> OutboxRecord:
    spec, item = checked.spec, checked.item
    event_at = item.event_at or now
    patient = item.patient or patient_of(spec.code, item.payload)
    parents = _parent_refs(spec, item.payload)
    return OutboxRecord(
        interface=spec.code,
        document=spec.document,
        spec_version=spec.version,
        business_key=checked.key,
        version=version,
        payload=item.payload,
        payload_size=payload_size(item.payload),
        source=source,
        event_at=event_at,
        next_attempt_at=now,
        patient_id_hash=patient.id_hash,
        patient_display=mask_name(patient.name),
        deadline_at=event_at + timedelta(minutes=policy_for(spec.code).deadline_minutes),
        waits_for=[f"{i}#{k}" for i, k in parents],
    )


def payload_size(payload: dict) -> int:
    """The payload's size as compact UTF-8 JSON (about what goes to the platform, before sealing)."""
    return len(envelope.json_bytes(payload, envelope.DUMPS_COMPACT))


def _insert(records: list[OutboxRecord], checked: list[Checked], now) -> None:
    """Write the new rows; a version that a later item of the same batch replaces is stored as
    superseded. A void settles what it voids first (it may need no sending at all), so a batch
    with voids is written in order, one row at a time: a void must see the rows before it."""
    last_of_key = {(r.interface, r.business_key): r for r in records}
    for record in records:
        if last_of_key[(record.interface, record.business_key)] is not record:
            record.state, record.next_attempt_at = State.SUPERSEDED, None
            record.last_message = "已被同一批次中的新版本取代"
    specs = [c.spec for c in checked]
    if any(spec.kind == "void" for spec in specs):  # rare: a report withdrawn
        for spec, record in zip(specs, records, strict=True):
            if spec.kind == "void":
                _apply_void(spec, record.business_key, record, now)
            record.save(force_insert=True)
    else:
        bulkinsert.insert(OutboxRecord, records)
    bulkinsert.insert(
        Dependency,
        [
            Dependency(record=r, parent_interface=ref.split("#", 1)[0], parent_key=ref.split("#", 1)[1])
            for r in records
            for ref in r.waits_for
        ],
    )


def _apply_void(spec, key: str, void_record: OutboxRecord, now) -> None:
    """A void cancels unsent versions of the voided record; it is sent only if the platform
    may hold that record (a version was accepted or is in flight)."""
    targets = OutboxRecord.objects.filter(interface__in=spec.voids, business_key=key)
    targets.filter(state__in=(State.PENDING, State.RETRY, State.ATTENTION)).update(
        state=State.VOIDED, last_message="报告已作废，不再上传", next_attempt_at=None, updated_at=now
    )
    if not targets.filter(state__in=(State.DONE, State.SENDING)).exists() and not (
        retention.accepted_in_archive(spec.voids, key)
    ):
        void_record.state = State.VOIDED
        void_record.next_attempt_at = None
        void_record.last_message = "该报告从未上传到平台，无需向平台作废"


# --- claim and deliver ---------------------------------------------------------------------------
def wake(record_id: int | None = None) -> None:
    """Ask a worker to deliver (a lost message only delays: the sweep finds the row)."""
    from .tasks import deliver

    leases.wake(deliver, record_id, what=f"record {record_id}")


def claim(
    record_id: int | None = None,
    *,
    limit: int = CLAIM_BATCH,
    interface: str | None = None,
    worker: str | None = None,
) -> list[OutboxRecord]:
    """Lease due rows (the given one first) to this worker; rows locked by others are skipped,
    and so are rows over their interface's concurrency or rate limit (they wait for a later claim).
    A row whose payload is over ``DELIVERY["LARGE_PAYLOAD_BYTES"]`` is claimed alone, with a lease
    grown by its transfer time (``_large_alone``, ``_lease_seconds``)."""
    known = policies(fresh=True)  # one small query per batch
    paused = [code for code, p in known.items() if not p.enabled]
    scheduled = [code for code, p in known.items() if p.mode == InterfacePolicy.Mode.SCHEDULED]
    base = OutboxRecord.objects.exclude(interface__in=paused)
    if interface:
        base = base.filter(interface=interface)
    elif scheduled:
        base = base.exclude(interface__in=scheduled)  # those go out on their own schedule
    ids = LEASE.claim(
        base,
        limit=limit,
        first=record_id,
        worker=worker,
        columns=("interface", "payload_size"),
        admit=lambda rows: _within_limits(_large_alone(rows), known),
        seconds_for=_lease_seconds,
    )
    if not ids:
        return []
    rows = OutboxRecord.objects.filter(pk__in=ids).order_by("next_attempt_at", "pk")
    if len(ids) == 1:
        # perhaps a large row (claimed alone): its payload is read when it is sent, by the process
        # that sends it (``send_large_beside``); reading 20 MiB here would stall this worker's
        # small rows and make the database encode it once for nothing
        rows = rows.defer("payload")
    return list(rows)


def is_large(size: int) -> bool:
    return size > settings.DELIVERY["LARGE_PAYLOAD_BYTES"]


_large_sends: list[int] = []  # this process's children sending a large row (pids)


def send_large_beside(record: OutboxRecord) -> None:
    """Send a claimed large row from a child process at CPU niceness ``DELIVERY["LARGE_NICE"]``,
    and return at once: this worker process goes on with small rows while the transfer runs.
    A process, not a thread: the transfer's unsealing, compression, encryption and signing are
    long C calls that hold Python's lock between threads, and a thread's lower priority would
    then hold the worker's small rows back instead of yielding to them. On a busy machine the
    child gets the CPU time the small rows leave. The row stays leased as for any send (a child
    that dies mid-transfer leaves it to lease expiry).

    The child is forked with ``os.fork`` (a Celery pool process is daemonic, and
    ``multiprocessing`` refuses children to those); it runs ``multiprocessing``'s after-fork
    hooks, where Celery drops the broker connections it inherited, and opens its own database
    connection and platform client."""
    _reap_large_sends()
    if not hasattr(os, "fork"):  # not POSIX: the transfer goes in this process
        deliver_claimed([record], _large_client())
        return
    connections.close_all()  # a connection is never shared with a child (reopened on next use)
    pid = os.fork()
    if pid:
        _large_sends.append(pid)
        return
    code = 1
    try:
        multiprocessing.util._run_after_forkers()
        _send_large(record, settings.DELIVERY["LARGE_NICE"])
        code = 0
    except BaseException:  # the row stays leased: the sweep hands it out again after the lease
        log.exception("large upload %s failed in its process; sent again after its lease", record.pk)
    finally:
        os._exit(code)  # never back into the worker's code


def _large_client():
    from hospital_interop.municipal.client import PlatformClient

    return PlatformClient.from_settings()


def _send_large(record: OutboxRecord, nice: int) -> None:
    try:  # never below the worker's own niceness (that would need privilege)
        os.setpriority(os.PRIO_PROCESS, 0, max(nice, os.getpriority(os.PRIO_PROCESS, 0)))
    except OSError as exc:  # refused: the transfer goes at normal priority
        log.warning("large upload %s at normal CPU priority: %s", record.pk, exc)
    try:
        deliver_claimed([record], _large_client())
    finally:
        connections.close_all()


def _reap_large_sends() -> None:
    for pid in list(_large_sends):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # already reaped
            done = pid
        if done:
            _large_sends.remove(pid)


def wait_for_large_sends(timeout: float | None = None) -> None:
    """Let this process's large transfers finish (a worker shutting down; tests)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        _reap_large_sends()
        if not _large_sends or (deadline is not None and time.monotonic() > deadline):
            return
        time.sleep(0.05)


def _large_alone(rows: list[tuple[int, str, int]]) -> list[tuple[int, str]]:
    """(id, interface) of the candidates one claim may take: a large row alone when it comes
    first, else the small ones (a large row further on waits for a claim of its own). Small
    rows never wait behind a large transfer, nor for its outcome to be recorded. At most
    ``DELIVERY["LARGE_IN_FLIGHT"]`` large rows are sent at once, so that large transfers never
    take every worker process: small rows keep flowing beside them."""
    if rows and is_large(rows[0][2]):
        in_flight = OutboxRecord.objects.filter(
            state=State.SENDING, payload_size__gt=settings.DELIVERY["LARGE_PAYLOAD_BYTES"]
        ).count()
        if in_flight < settings.DELIVERY["LARGE_IN_FLIGHT"]:
            return [(rows[0][0], rows[0][1])]
    return [(pk, code) for pk, code, size in rows if not is_large(size)]


def _lease_seconds(rows: list[tuple[int, str, int]]) -> float:
    """The lease, grown by the time the claimed payloads take to transfer. It is never shorter
    than one send's worst case (``send_seconds``: twice the platform timeout): with a shorter
    configured lease every claimed row would be handed back unsent, for ever."""
    total = sum(size for _, _, size in rows)
    floor = 2 * settings.PLATFORM["TIMEOUT_SECONDS"] + 1
    return max(settings.DELIVERY["LEASE_SECONDS"], floor) + total / settings.DELIVERY["SEND_BYTES_PER_SECOND"]


def _within_limits(rows: list[tuple[int, str]], known: dict[str, InterfacePolicy]) -> list[int]:
    """Keep the candidate rows each interface's max_in_flight and rate_per_second allow."""
    limited = {code for _, code in rows if code in known}
    if not limited:
        return [pk for pk, _ in rows]
    in_flight = dict(
        OutboxRecord.objects.filter(state=State.SENDING, interface__in=limited)
        .values("interface")
        .annotate(n=Count("pk"))
        .values_list("interface", "n")
    )
    room = {code: known[code].max_in_flight - in_flight.get(code, 0) for code in limited}
    second = int(time.time())
    rated = {code: f"uploads:rate:{code}:{second}" for code in limited if known[code].rate_per_second}
    for code, key in rated.items():
        cache.add(key, 0, timeout=5)
        room[code] = min(room[code], known[code].rate_per_second - (cache.get(key) or 0))
    kept = []
    for pk, code in rows:
        if code not in room:
            kept.append(pk)
        elif room[code] > 0:
            room[code] -= 1
            kept.append(pk)
    for code, key in rated.items():  # count what this claim takes against the interface's second
        taken = sum(1 for pk, c in rows if c == code and pk in kept)
        if taken:
            try:
                cache.incr(key, taken)
            except ValueError:  # the counter expired meanwhile
                cache.set(key, taken, timeout=5)
    return kept


def reclaim_expired_leases() -> int:
    """Rows whose worker died mid-send go back to the queue (sending is safe to repeat: same key),
    unless a newer version of the same key arrived meanwhile: then the newer one wins."""
    now = timezone.now()
    expired = LEASE.expired(now)
    newer = OutboxRecord.objects.filter(
        interface=OuterRef("interface"),
        business_key=OuterRef("business_key"),
        version__gt=OuterRef("version"),
    ).exclude(state__in=(State.SUPERSEDED, State.VOIDED))
    stale = list(expired.filter(Exists(newer)).values_list("interface", "business_key"))
    expired.filter(Exists(newer)).update(
        state=State.SUPERSEDED,
        next_attempt_at=None,
        claimed_by="",
        last_message="处理进程中断，且已有新版本，不再重发",
        updated_at=now,
    )
    for interface, key in stale:  # the dead worker's request may still be on its way
        _resend_newest_later(interface, key, now)
    return LEASE.reclaim(now)


def blocking_reason(record: OutboxRecord) -> str:
    """Why this claimed row must not be sent yet ('' when it may go)."""
    for ref in record.waits_for:  # the same refs as the Dependency rows, already on the row
        parent_interface, parent_key = ref.split("#", 1)
        if not OutboxRecord.objects.filter(
            interface=parent_interface, business_key=parent_key, state=State.DONE
        ).exists() and not retention.accepted_in_archive(parent_interface, parent_key):
            return f"等待上级记录被平台接收：{ref}"
    if (
        record.version > 1
        and OutboxRecord.objects.filter(
            interface=record.interface,
            business_key=record.business_key,
            version__lt=record.version,
            state=State.SENDING,
        ).exists()
    ):
        return "同一主键的上一版本正在发送"
    return ""


def send_seconds(record: OutboxRecord) -> float:
    """How long sending this row may take: the client gives a request up after the platform
    timeout and may repeat it once at once (1002/1003), so twice that, and its payload's transfer."""
    transfer = record.payload_size / settings.DELIVERY["SEND_BYTES_PER_SECOND"]
    return 2 * settings.PLATFORM["TIMEOUT_SECONDS"] + transfer


HANDED_BACK = "本批次发送耗时较长，租约将到期，已交还待重新领取（未发送）"


def _hand_back(record: OutboxRecord, now: datetime) -> str:
    """A claimed row whose lease would run out while it is being sent is not sent: once the lease
    is over the sweep may give it to another worker, and both would send it. It goes back,
    unsent and due at once, for a later claim (with a fresh lease)."""
    LEASE.release(
        record.pk,
        record.claimed_by,
        now=now,
        state=State.RETRY if record.attempts else State.PENDING,
        next_attempt_at=now,
        last_message=HANDED_BACK,
    )
    return "handed-back"


T = TypeVar("T")


def through_database_blips(what: str, step: Callable[[], T]) -> T:
    """Run a database step of delivery; when the database blinks (a restart, a failover: the
    connection is lost or refused), reconnect and run it again with a growing pause, for up to
    ``DELIVERY["DB_RETRY_SECONDS"]`` (longer than a typical failover). ``step`` must be safe to
    run again: it is one transaction, and it starts from the same state each time."""
    deadline = time.monotonic() + settings.DELIVERY["DB_RETRY_SECONDS"]
    pause = 0.1
    while True:
        try:
            return step()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                raise
            log.warning("database unavailable while %s, again in %.1f s: %s", what, pause, exc)
            try:
                connection.close()  # the next query connects anew
            except Exception:  # the connection is already gone
                connection.connection = None
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


# an answer waits at most this long for the rest of its group before it is recorded (a slow or
# hung call must not hold the others' answers back until its timeout)
GROUP_WAIT_SECONDS = 0.1


def deliver_claimed(records: list[OutboxRecord], client) -> dict[str, int]:
    """Send claimed rows, recording the outcomes while later rows are on the wire: no answer waits
    for the batch (its ``accepted_at`` is its own) and none is lost with a later failure.

    Pipelined (``DELIVERY["PIPELINE"]`` sends in flight, on this process's sender threads, which
    never touch the database): while rows are on the wire, this thread checks the next rows and
    records the answers that came, in groups of at least half the window (fewer at the batch's
    end) in one transaction each: a group's statements and commit cost about what one row's
    did, and are the worker's and the database's largest cost per row. Recording
    outlives a database blip (``through_database_blips``): a row whose send was accepted is not
    sent again because the database restarted meanwhile. A row with ordering parents or an
    older version waits until every answer before it is recorded, then is checked and sent as
    if alone. A worker killed between a send and its record leaves that row to lease expiry (sent
    again, which the platform's upsert by key makes harmless). A row whose lease would run out
    before its send could end is handed back unsent (``_hand_back``). Returns counts per
    resulting state."""
    counts: dict[str, int] = {}
    window = settings.DELIVERY["PIPELINE"]
    if window <= 1:  # strictly one by one, in this thread
        for record in records:
            ready = through_database_blips(f"checking upload {record.pk}", lambda r=record: _ready_to_send(r))
            if isinstance(ready, str):
                counts[ready] = counts.get(ready, 0) + 1
                continue
            payload, started = ready
            result = client.call(record.interface, payload)
            _record_answers([(record, result, started, timezone.now())], counts)
        return counts
    senders = _senders(window)
    group = max(1, window // 2)
    in_flight: dict[Future, tuple[OutboxRecord, datetime]] = {}

    def settle(everything: bool) -> None:
        """Wait for a group's answers (or all in flight, whichever is fewer; ``everything``: all),
        or for ``GROUP_WAIT_SECONDS`` once one came, and record all that came."""
        need = len(in_flight) if everything else min(len(in_flight), group)
        deadline = time.monotonic() + GROUP_WAIT_SECONDS
        while (done := sum(f.done() for f in in_flight)) < need:
            timeout = None  # nothing came yet, or all are wanted: wait for the next answer
            if done and not everything:
                timeout = deadline - time.monotonic()
                if timeout <= 0:  # a slow call does not hold back the answers that came
                    break
            wait([f for f in in_flight if not f.done()], timeout=timeout, return_when=FIRST_COMPLETED)
        if any(f.done() and f.exception() is not None for f in in_flight):
            wait(list(in_flight))  # a client that raised (client.call never does): stop, as one by one
        answered, failure = [], None
        for future in [f for f in in_flight if f.done()]:
            record, started = in_flight.pop(future)
            if future.exception() is not None:
                failure = failure or future.exception()
                continue
            result, came = future.result()
            answered.append((record, result, started, came))
        _record_answers(sorted(answered, key=lambda sent: sent[0].pk), counts)
        if failure is not None:
            raise failure

    try:
        for record in records:
            if record.waits_for or record.version > 1:
                while in_flight:  # its parents' or older versions' answers are recorded first
                    settle(True)
            while len(in_flight) >= window:  # room first: the lease is checked right before the send
                settle(False)
            ready = through_database_blips(f"checking upload {record.pk}", lambda r=record: _ready_to_send(r))
            if isinstance(ready, str):
                counts[ready] = counts.get(ready, 0) + 1
                continue
            payload, started = ready
            in_flight[senders.submit(_send, client, record.interface, payload)] = (record, started)
            if sum(f.done() for f in in_flight) >= group:  # a group came meanwhile: recorded now
                settle(False)
        while in_flight:
            settle(False)
    finally:
        if in_flight:  # leaving on an exception: what is on the wire is recorded if it can be
            wait(list(in_flight))
            try:
                settle(True)
            except Exception:
                log.exception("answers of uploads in flight not recorded; their leases will expire")
    return counts


_sender_pool: tuple[int, int, ThreadPoolExecutor] | None = None


def _senders(window: int) -> ThreadPoolExecutor:
    """This process's sender threads (made after the fork of Celery's pool processes)."""
    global _sender_pool
    pid = os.getpid()
    if _sender_pool is None or _sender_pool[:2] != (pid, window):
        _sender_pool = (pid, window, ThreadPoolExecutor(window, thread_name_prefix="upload-send"))
    return _sender_pool[2]


def _send(client, interface: str, payload: dict) -> tuple[CallResult, datetime]:
    """One call (on a sender thread: no database here); the answer and when it came."""
    result = client.call(interface, payload)
    return result, timezone.now()


def _record_answers(answered: list[tuple[OutboxRecord, CallResult, datetime, datetime]], counts) -> None:
    if not answered:
        return
    before = [(r, dict(r.__dict__)) for r, *_ in answered]

    def record() -> list[str]:
        for r, fields in before:  # each try starts from the rows as they were: a failed try's changes
            r.__dict__.update(fields)  # (attempts + 1, …) are undone (copies did it at ten times the cost)
        return record_outcomes(answered)

    states = through_database_blips(
        "recording the answers for uploads " + ",".join(str(r.pk) for r, *_ in answered), record
    )
    for state in states:
        counts[state] = counts.get(state, 0) + 1


def _ready_to_send(record: OutboxRecord) -> tuple[dict, datetime] | str:
    """(payload, start) of a claimed row that may go now, or the state it was moved to instead."""
    started = timezone.now()
    if record.lease_until and record.lease_until - started < timedelta(seconds=send_seconds(record)):
        return _hand_back(record, started)
    reason = blocking_reason(record)
    if reason:
        return _hold(record, reason, started)
    try:
        return record.payload, started  # opened here: a broken one stops this row, not the batch
    except SealBroken as broken:
        return _unreadable(record, broken, started)


def _age_from(record: OutboxRecord) -> datetime:
    """The max-age clock runs from the business event, and again from an ops re-drive: a record a
    person re-drove gets a full max age before it comes back to them."""
    return max(record.event_at, record.redriven_at) if record.redriven_at else record.event_at


def _unreadable(record: OutboxRecord, broken: SealBroken, now: datetime) -> str:
    """A payload that does not open (changed in the database, or sealed under a key this server
    lacks) is never sent: the row goes to ops with the reason."""
    log.error("upload %s %s not sent: sealed payload does not open", record.interface, record.business_key)
    LEASE.release(
        record.pk,
        record.claimed_by,
        now=now,
        state=State.ATTENTION,
        next_attempt_at=None,
        last_message=f"上传内容无法解密，未发送：{broken.message}",
    )
    return State.ATTENTION


def _hold(record: OutboxRecord, reason: str, now: datetime) -> str:
    """A row that may not go yet waits and is looked at again; one that has waited longer than
    its interface's maximum age (a parent that never came, or needs a person) goes to attention,
    so it is shown to ops instead of waiting in silence."""
    max_age = timedelta(hours=policy_for(record.interface).max_age_hours)
    if now - _age_from(record) > max_age:
        LEASE.release(
            record.pk,
            record.claimed_by,
            now=now,
            state=State.ATTENTION,
            next_attempt_at=None,
            last_message=f"等待超过 {max_age.total_seconds() / 3600:.0f} 小时仍不能发送：{reason}",
        )
        log.error("upload %s %s held too long: %s", record.interface, record.business_key, reason)
        return State.ATTENTION
    LEASE.release(
        record.pk,
        record.claimed_by,
        now=now,
        state=State.PENDING,
        next_attempt_at=now + WAIT_RECHECK,
        last_message=reason,
    )
    return "waiting"


def record_outcome(record: OutboxRecord, result: CallResult, *, started_at: datetime) -> str:
    """Store one attempt and move the row to its next state."""
    return record_outcomes([(record, result, started_at)])[0]


OUTCOME_FIELDS = (
    "attempts",
    "last_code",
    "last_message",
    "claimed_by",
    "lease_until",
    "updated_at",
    "first_attempt_at",
    "state",
    "accepted_at",
    "receipt",
    "last_errors",
    "next_attempt_at",
)


def record_outcomes(sent: Sequence[tuple]) -> list[str]:
    """Store the attempts and move each row to its next state, in one transaction. ``sent``:
    (row, answer, when its send started[, when the answer came: an accepted row's
    ``accepted_at``, now if not given]). A row whose lease was lost meanwhile (reclaimed by the
    sweep) only gets its attempt logged."""
    if not sent:
        return []
    now = timezone.now()
    sent = [(r, result, started, came[0] if came else now) for r, result, started, *came in sent]
    known = policies()
    states, changed, attempts, done = [], [], [], []
    with transaction.atomic():
        live = LEASE.holders(r.pk for r, *_ in sent)
        live |= _accepted_but_reclaimed(
            [(r, result) for r, result, *_ in sent if (r.pk, r.claimed_by) not in live]
        )
        for record, result, started, came in sent:
            policy = known.get(record.interface) or InterfacePolicy(interface=record.interface)
            _apply_outcome(record, result, started, now, policy, came=came)
            attempts.append(
                Attempt(
                    record_id=record.pk,
                    started_at=started,
                    elapsed_ms=result.elapsed_ms,
                    worker=record.claimed_by,
                    http_status=result.http_status,
                    code=result.code,
                    outcome=result.outcome.value,
                    message=result.message[:2000],
                    errors=result.errors,
                )
            )
            if (record.pk, record.claimed_by) not in live:
                states.append("lost-lease")
                continue
            record.claimed_by = ""
            changed.append(record)
            states.append(record.state)
            if record.state == State.DONE and record.interface in _parent_interfaces():
                done.append(record)
        # no answer, or one not believed (forged, stale, replayed): what became of the request is unknown
        no_answer = {
            r.pk
            for r, result, *_ in sent
            if result.outcome == Outcome.RETRY and (result.http_status is None or result.refused_answer)
        }
        _defer_to_newer_versions(changed, now, no_answer)
        _store_outcomes(changed)
        _insert_attempts(attempts)
        if done:
            _release_children(done, now)
    try:  # after the commit: the outcomes stand whatever happens here
        _note_platform(sent)
    except (OperationalError, InterfaceError) as exc:  # the sweep's probe will bring them on
        log.warning("waiting retries not brought forward: %s", exc)
    # the states after superseding (a lost lease keeps its marker)
    return [s if s == "lost-lease" else record.state for (record, *_), s in zip(sent, states, strict=True)]


def _store_outcomes(rows: list[OutboxRecord]) -> None:
    """Write the rows' ``OUTCOME_FIELDS`` in one ``UPDATE … FROM (VALUES …)``: what
    ``bulk_update`` writes, without building its CASE expressions, which took more CPU than the
    rest of a delivery together (docs/delivery.md, Throughput)."""
    if not rows:
        return
    meta, quote = OutboxRecord._meta, connection.ops.quote_name
    fields, row = _values_row(OutboxRecord, ("id", *OUTCOME_FIELDS))
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {quote(meta.db_table)} AS o SET "
            + ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields[1:])
            + f" FROM (VALUES {', '.join([row] * len(rows))}) AS v("
            + ", ".join(quote(f.column) for f in fields)
            + ") WHERE o.id = v.id",
            _values(fields, sorted(rows, key=lambda r: r.pk)),
        )


# an attempt row's columns: its record, and those the hot and archive tables share (AttemptFields)
ATTEMPT_FIELDS = ("record", *(f.name for f in AttemptFields._meta.fields))


def _insert_attempts(attempts: list[Attempt]) -> None:
    """The attempts in one INSERT (``bulk_create`` compiles it anew each time, at a cost)."""
    if not attempts:
        return
    quote = connection.ops.quote_name
    fields, row = _values_row(Attempt, ATTEMPT_FIELDS)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {quote(Attempt._meta.db_table)} ("
            + ", ".join(quote(f.column) for f in fields)
            + f") VALUES {', '.join([row] * len(attempts))}",
            _values(fields, attempts),
        )


@functools.cache
def _values_row(model, names: tuple[str, ...]) -> tuple[list, str]:
    """The model's fields of these names and one ``(%s::type, …)`` row of a VALUES list."""
    fields = [model._meta.get_field(name) for name in names]
    return fields, "(" + ", ".join(f"%s::{f.cast_db_type(connection)}" for f in fields) + ")"


def _values(fields, objs) -> list:
    conn = transaction.get_connection()  # the connection itself: the proxy's look-ups, per value, add up
    return [f.get_db_prep_save(getattr(obj, f.attname), conn) for obj in objs for f in fields]


def _accepted_but_reclaimed(lost: list[tuple[OutboxRecord, CallResult]]) -> set[tuple[int, str]]:
    """Rows whose lease ran out while their answer was on its way (the database was away) and
    which the sweep made due again, but no worker has taken yet: an acceptance still counts for
    them, or they would be sent twice. Locked like ``LEASE.holders``; (id, the sender) pairs."""
    accepted = {r.pk: r.claimed_by for r, result in lost if result.outcome == Outcome.ACCEPTED}
    if not accepted:
        return set()
    unclaimed = OutboxRecord.objects.select_for_update().filter(
        pk__in=list(accepted), state__in=DUE_STATES, claimed_by=""
    )
    return {(pk, accepted[pk]) for pk in unclaimed.values_list("pk", flat=True)}


def _defer_to_newer_versions(changed: list[OutboxRecord], now: datetime, no_answer: set[int]) -> None:
    """A newer version enqueued while this one was in flight wins: a failed older version is
    not retried (it would overwrite the newer one on the platform), and the newer one, which
    waited for this send to finish, is due at once."""
    if not changed or not _newer_versions_exist(changed):
        return
    match = Q()
    for r in changed:
        match |= Q(interface=r.interface, business_key=r.business_key, version__gt=r.version)
    newer = OutboxRecord.objects.filter(match).exclude(state__in=(State.SUPERSEDED, State.VOIDED))
    newer_keys = set(newer.values_list("interface", "business_key"))
    if not newer_keys:
        return
    uncertain = set()
    for r in changed:
        if (r.interface, r.business_key) in newer_keys and r.state in (State.RETRY, State.ATTENTION):
            if r.pk in no_answer:  # timeout, broken connection, answer not believed: it may still land
                uncertain.add((r.interface, r.business_key))
            r.state, r.next_attempt_at = State.SUPERSEDED, None
            r.last_message = f"发送期间已有新版本，不再重发：{r.last_message}"[:2000]
    newer.filter(state=State.PENDING).update(next_attempt_at=now)
    for interface, key in uncertain:
        _resend_newest_later(interface, key, now)


def _newer_versions_exist(rows: list[OutboxRecord]) -> bool:
    """Whether a newer, live version of any of these rows' keys exists: one indexed query (the
    unique (interface, business key, version) index), the common answer being no."""
    meta, quote = OutboxRecord._meta, connection.ops.quote_name
    row = "(%s::varchar, %s::varchar, %s::integer)"
    params = [v for r in rows for v in (r.interface, r.business_key, r.version)]
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT 1 FROM {quote(meta.db_table)} AS o JOIN (VALUES {', '.join([row] * len(rows))})"
            " AS v(interface, business_key, version) ON o.interface = v.interface"
            " AND o.business_key = v.business_key AND o.version > v.version"
            " WHERE o.state NOT IN (%s, %s) LIMIT 1",
            [*params, State.SUPERSEDED, State.VOIDED],
        )
        return cur.fetchone() is not None


LATE_RESEND = "旧版本的请求可能晚于本版本到达平台，稍后重发本版本"


def _resend_newest_later(interface: str, key: str, now: datetime) -> None:
    """An older version's request may reach the platform late (its sender gave up waiting): send
    the newest version again after that window, so the platform ends with the newest."""
    newest = (
        OutboxRecord.objects.filter(interface=interface, business_key=key)
        .exclude(state__in=(State.SUPERSEDED, State.VOIDED))
        .order_by("-version")
        .first()
    )
    if newest is None or newest.state == State.SENDING:
        return
    later = now + timedelta(seconds=settings.PLATFORM["TIMEOUT_SECONDS"] + 2)
    OutboxRecord.objects.filter(pk=newest.pk).update(
        state=State.RETRY,
        next_attempt_at=later,
        updated_at=now,
        last_message=LATE_RESEND,
    )


def _apply_outcome(
    record: OutboxRecord,
    result: CallResult,
    started: datetime,
    now: datetime,
    policy: InterfacePolicy,
    *,
    came: datetime | None = None,
) -> None:
    record.attempts += 1
    record.last_code, record.last_message = result.code, result.message[:2000]
    record.lease_until, record.updated_at = None, now
    record.first_attempt_at = record.first_attempt_at or started
    if result.outcome == Outcome.ACCEPTED:
        record.state, record.accepted_at, record.receipt = State.DONE, came or now, result.receipt
        record.last_errors, record.next_attempt_at = [], None
    elif result.outcome == Outcome.ATTENTION:
        record.state, record.last_errors, record.next_attempt_at = State.ATTENTION, result.errors, None
    elif now - _age_from(record) > timedelta(hours=policy.max_age_hours):
        record.state, record.next_attempt_at = State.ATTENTION, None
        record.last_message = f"超过最长重试时间 {policy.max_age_hours} 小时仍未成功：{result.message}"[:2000]
        log.error(
            "upload %s %s gave up after %d attempts: %s",
            record.interface,
            record.business_key,
            record.attempts,
            result.message,
        )
    else:
        record.state = State.RETRY
        record.next_attempt_at = now + timedelta(seconds=retry_delay(record.attempts, result))


def _release_children(parents: list[OutboxRecord], now: datetime) -> None:
    """Children waiting for these newly accepted parents are due now; wake workers after commit."""
    match = Q()
    for p in parents:
        match |= Q(parent_interface=p.interface, parent_key=p.business_key)
    children = list(
        Dependency.objects.filter(match, record__state=State.PENDING).values_list("record_id", flat=True)
    )
    if children:
        OutboxRecord.objects.filter(pk__in=children, state=State.PENDING).update(next_attempt_at=now)
        transaction.on_commit(lambda: [wake(c) for c in children[::CLAIM_BATCH]])


@functools.cache
def _parent_interfaces() -> frozenset[str]:
    """Interfaces some other interface waits for: only their acceptance can release children."""
    return frozenset(p.interface for spec in load_catalogue().interfaces for p in spec.parents)


# --- outages: the backlog goes at once when the platform is back ----------------------------------
# While an interface's calls fail as a whole (no connection, timeouts, HTTP 5xx, 5000) its rows
# back off, ever longer. The first call it accepts after such a spell brings its waiting retries
# forward, so recovery takes the backlog's send time, not the backoff's; claims still keep each
# interface's concurrency and rate limits. With no new records nothing would call the interface
# until the earliest backoff ends: the sweep makes one waiting row due now and then (a probe).
OUTAGE_KEY = "uploads:outage:{}"  # cache: since when calls to this interface fail as a whole
PROBE_KEY = "uploads:probe:{}"


def _unreachable(result: CallResult) -> bool:
    """A failure that says the platform is not working, not that this record is wrong."""
    return (
        result.outcome == Outcome.RETRY
        and not result.refused_answer
        and (result.http_status is None or result.http_status >= 500 or result.code == "5000")
    )


def _note_platform(sent: Sequence[tuple]) -> None:
    """Outage bookkeeping for answers recorded together, in their order; an interface found not
    in an outage is not asked again for the group's later acceptances (one cache read a group)."""
    calm: set[str] = set()  # interfaces without an outage mark, as far as this group knows
    for record, result, started, *_ in sent:
        key = OUTAGE_KEY.format(record.interface)
        if _unreachable(result):
            calm.discard(record.interface)
            cached(lambda k=key, at=started: cache.add(k, at.timestamp(), timeout=7 * 86400), what="outage")
        elif result.outcome == Outcome.ACCEPTED and record.interface not in calm:
            since, _ = cached(lambda k=key: cache.get(k), what="outage")
            calm.add(record.interface)
            if since is None:
                continue
            ended, _ = cached(lambda k=key: cache.delete(k), False, what="outage")
            # one failed call among good ones is no outage: only a spell longer than the first backoff
            if ended and time.time() - since >= settings.DELIVERY["BACKOFF_BASE_SECONDS"]:
                bring_forward(record.interface)


def _waiting_after_outage(interface: str, now: datetime):
    """Rows of an interface that wait out a backoff after failures of the platform as a whole;
    not those the platform asked to wait (3001) or that wait on purpose (``LATE_RESEND``)."""
    return OutboxRecord.objects.filter(
        interface=interface, state=State.RETRY, next_attempt_at__gt=now, last_code__in=("", "5000")
    ).exclude(last_message=LATE_RESEND)


def bring_forward(interface: str, now: datetime | None = None) -> int:
    """The platform accepts this interface's calls again: its rows waiting out a backoff are due
    now, in the order they were enqueued, and workers are woken for them."""
    now = now or timezone.now()
    n = _waiting_after_outage(interface, now).update(next_attempt_at=F("enqueued_at"), updated_at=now)
    if n:
        log.info("platform accepts %s again: %d waiting retries brought forward", interface, n)
        for _ in range(min(-(-n // CLAIM_BATCH), 50)):
            wake()
    return n


def probe_outages(now: datetime | None = None) -> list[str]:
    """The sweep's part: for each interface in an outage with nothing due or in flight, make its
    earliest waiting row due now (at most every ``DELIVERY["PROBE_SECONDS"]``), so that the first
    call after the platform's return comes soon. Returns the interfaces probed."""
    now = now or timezone.now()
    keys = {OUTAGE_KEY.format(spec.code): spec.code for spec in load_catalogue().interfaces}
    down, _ = cached(lambda: cache.get_many(list(keys)), {}, what="outage")
    probed = []
    for key in down:
        code = keys[key]
        busy = OutboxRecord.objects.filter(interface=code).filter(LEASE.due(now) | Q(state=State.SENDING))
        first = _waiting_after_outage(code, now).order_by("next_attempt_at").first()
        if first is None or busy.exists():
            continue
        taken, _ = cached(
            lambda c=code: cache.add(PROBE_KEY.format(c), 1, timeout=settings.DELIVERY["PROBE_SECONDS"]),
            False,
            what="outage",
        )
        if taken:
            OutboxRecord.objects.filter(pk=first.pk, state=State.RETRY).update(next_attempt_at=now)
            probed.append(code)
    return probed


def retry_delay(attempts: int, result: CallResult) -> float:
    """Exponential backoff with full jitter, capped; the platform's retryAfter wins when given,
    within the same cap (a signed 3001 asking for 1e12 s overflowed the next attempt's date)."""
    conf = settings.DELIVERY
    if result.retry_after is not None:
        return min(max(result.retry_after, 0.0), conf["BACKOFF_CAP_SECONDS"])
    ceiling = min(conf["BACKOFF_CAP_SECONDS"], conf["BACKOFF_BASE_SECONDS"] * 2 ** (attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


# --- ops actions ---------------------------------------------------------------------------------
def redrive(record_ids, *, payload_fix: dict | None = None) -> int:
    """Send again now: rows needing attention or waiting to retry. With payload_fix (one row),
    replace fields of the payload first, re-validated against the spec and the patient bindings
    (PayloadInvalid / PatientConflict, nothing changed). Audited: who re-drove which rows, and
    for a fix the changed fields before and after (identity values masked).

    A fix of a record the platform already accepted (the latest version of its key, done; e.g.
    after a data-quality finding) is a re-submission: the fixed payload becomes the next version,
    stored through ``enqueue_many`` (platform-protocol.md §4: same key, the platform replaces it)."""
    now = timezone.now()
    events = []
    with transaction.atomic():
        if payload_fix and len(record_ids) == 1:
            accepted = _latest_accepted(record_ids[0]) or retention.latest_accepted(record_ids[0])
            if accepted is not None:
                return _resubmit_fixed(accepted, payload_fix)
        rows = list(
            OutboxRecord.objects.select_for_update().filter(
                pk__in=record_ids, state__in=(State.ATTENTION, State.RETRY, State.PENDING)
            )
        )
        for row in rows:
            fields = ["state", "next_attempt_at", "last_errors", "last_message", "redriven_at", "updated_at"]
            event = audit.Event(  # the row's digest is the patient key: no need to open the payload
                audit.Action.REDRIVE,
                "uploads.OutboxRecord",
                str(row.pk),
                patient=row.patient_id_hash,
                detail={"interface": row.interface, "from": row.state},
            )
            if payload_fix:
                opened = _opened(row)
                payload = {**opened, **payload_fix}
                checked, errors = check(Item(row.interface, payload))
                if errors:
                    raise PayloadInvalid(row.interface, errors)
                # a fix cannot move a visit or report to another patient
                claim = patient_claim(checked.spec, payload)
                if claim is not None:
                    bind_many([claim], source="ops-redrive")
                patient = patient_of(row.interface, payload)  # the digest searched by follows the fix
                event = replace(
                    event,
                    action=audit.Action.UPDATE,
                    patient=patient.id_hash,
                    changes=payload_changes(row.interface, opened, payload),
                    detail={
                        **event.detail,
                        **(
                            {"patientBefore": row.patient_id_hash}
                            if patient.id_hash != row.patient_id_hash
                            else {}
                        ),
                    },
                )
                row.payload, row.patient_id_hash = payload, patient.id_hash
                row.patient_display = mask_name(patient.name)
                row.payload_size = payload_size(payload)
                fields += ["payload", "payload_size", "patient_id_hash", "patient_display"]
            events.append(event)
            row.state, row.next_attempt_at, row.last_errors, row.redriven_at = State.PENDING, now, [], now
            row.last_message = "运维已重推"
            row.save(update_fields=fields)
        audit.record_many(events)
        ids = [r.pk for r in rows]
        transaction.on_commit(lambda: [wake(i) for i in ids])
    return len(rows)


def fixable(record: OutboxRecord) -> bool:
    """May ops fix this row's payload and send it (again)? Rows not yet accepted that are open,
    and the accepted latest version of a key (the fix is then sent as a new version)."""
    if record.state in (State.ATTENTION, State.RETRY, State.PENDING):
        return True
    return (
        record.state == State.DONE
        and not (record.archived and record.payload_dropped)
        and not OutboxRecord.objects.filter(
            interface=record.interface, business_key=record.business_key, version__gt=record.version
        ).exists()
        and not retention.newer_in_archive(record)
    )


def _latest_accepted(pk: int) -> OutboxRecord | None:
    """The row, locked, if it is the accepted latest version of its key (else None)."""
    row = OutboxRecord.objects.select_for_update().filter(pk=pk, state=State.DONE).first()
    if (
        row is None
        or OutboxRecord.objects.filter(
            interface=row.interface, business_key=row.business_key, version__gt=row.version
        ).exists()
        or retention.newer_in_archive(row)
    ):
        return None
    return row


def _resubmit_fixed(row: OutboxRecord, payload_fix: dict) -> int:
    """The fixed payload of an accepted row as the key's next version (audited as a change)."""
    opened = _opened(row)
    payload = {**opened, **payload_fix}
    checked, errors = check(Item(row.interface, payload))
    if errors:
        raise PayloadInvalid(row.interface, errors)
    if checked.key != row.business_key:
        raise PayloadInvalid(
            row.interface,
            [field_error("", "key", "修正不能改变记录的主键字段：要上传另一条记录，请由业务系统提交")],
        )
    [new] = enqueue_many([checked], source=row.source or "ops-fix")
    audit.record(
        audit.Action.UPDATE,
        "uploads.OutboxRecord",
        str(row.pk),
        patient=new.patient_id_hash,
        changes=payload_changes(row.interface, opened, payload),
        detail={
            "interface": row.interface,
            "from": row.state,
            "newVersion": new.version,
            "newRecord": new.pk,
        },
    )
    return 1


def _opened(row: OutboxRecord) -> dict:
    """The payload of a row ops fixes; PayloadInvalid (nothing changed) when it does not open."""
    try:
        return row.payload
    except SealBroken as broken:
        raise PayloadInvalid(
            row.interface, [field_error("", "sealed", f"上传内容无法解密，不能修正：{broken.message}")]
        ) from None


def cancel(record_ids, *, reason: str) -> int:
    """Ops decides a row must not be sent (e.g. wrong patient): it leaves the queue with the
    reason and who voided it, and the void is audited (actor, reason, each row)."""
    now = timezone.now()
    actor = audit.current_actor()
    with transaction.atomic():
        rows = list(
            OutboxRecord.objects.select_for_update().filter(
                pk__in=record_ids, state__in=(State.ATTENTION, State.RETRY, State.PENDING)
            )
        )
        OutboxRecord.objects.filter(pk__in=[r.pk for r in rows]).update(
            state=State.VOIDED,
            next_attempt_at=None,
            last_message=f"运维作废（{actor.username or '未登录'}）：{reason}"[:2000],
            updated_at=now,
        )
        audit.record_many(
            [
                audit.Event(
                    audit.Action.VOID,
                    "uploads.OutboxRecord",
                    str(r.pk),
                    patient=r.patient_id_hash,
                    changes={"state": [r.state, State.VOIDED]},
                    detail={"interface": r.interface, "reason": reason},
                )
                for r in rows
            ],
            actor=actor,
        )
    return len(rows)


SWEEP_HEARTBEAT_KEY = "uploads:sweep:last-run"


def note_sweep(now: float | None = None) -> None:
    """The sweep ran (its heartbeat, read by /healthz, /metrics and the dashboard)."""
    at = time.time() if now is None else now
    cached(lambda: cache.set(SWEEP_HEARTBEAT_KEY, at, timeout=None), what="sweep heartbeat")


def due_batches(max_batches: int = 50) -> int:
    """How many delivery batches the sweep should dispatch now."""
    due = OutboxRecord.objects.filter(LEASE.due(timezone.now()))[: CLAIM_BATCH * max_batches].count()
    return -(-due // CLAIM_BATCH)
