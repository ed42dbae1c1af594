"""Recovery from faults as fast as the fault allows, with real processes: Celery workers and
beat, the platform simulator, and (where the test stops it) a PostgreSQL server of its own.
Each test prints its recovery time: from the fault's end to the last record delivered."""

from __future__ import annotations

import time

import pytest
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import services
from hospital_interop.uploads.models import OutboxRecord, State
from hospital_interop.uploads.schedules import sync_schedules

from ..delivery_fixtures import wait_until
from ..private_postgres import PrivatePostgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

INTERFACE = "LAB_REPORT_DETAIL"
SWEEP_SECONDS = 2
OUTAGE_SECONDS = 40


@pytest.fixture
def private_postgres(settings):
    """This test's database moved to a PostgreSQL server of its own, which it may restart: the
    test database is copied there, and this process and every worker it starts use the copy."""
    server = PrivatePostgres()
    settings_dict = connection.settings_dict
    original = {k: settings_dict[k] for k in ("HOST", "PORT", "NAME", "USER")}
    try:  # a set-up that fails half-way still stops the server
        server.init()
        server.start()
        settings.DELIVERY_SWEEP_SECONDS = SWEEP_SECONDS
        with transaction.atomic():
            sync_schedules()  # the sweep's schedule travels with the copy
        connection.close()
        server.copy_database(settings_dict, "recovery")
        settings_dict.update(HOST="127.0.0.1", PORT=str(server.port), NAME="recovery", USER=server.user)
        yield server
    finally:
        connection.close()
        settings_dict.update(original)
        server.destroy()


def _database(step):
    """Run a read of the test's own while the database may be away: None when it is."""
    try:
        return step()
    except (OperationalError, InterfaceError):
        connection.close()
        return None


def _payloads(first: int, count: int) -> list[dict]:
    spec = load_catalogue().interface(INTERFACE)
    return [spec.example(seed) for seed in range(first, first + count)]


def _enqueue(payloads: list[dict]) -> None:
    for i in range(0, len(payloads), services.CLAIM_BATCH):
        with transaction.atomic():
            services.enqueue_many(
                [services.Item(INTERFACE, p) for p in payloads[i : i + services.CLAIM_BATCH]]
            )


def _delivered() -> int | None:
    return _database(lambda: OutboxRecord.objects.filter(state=State.DONE).count())


def test_a_database_restart_during_a_burst_sends_no_record_twice(sim, processes, private_postgres):
    """Workers at production settings (the 120 s lease), the database restarted while a burst is
    on its way: answers the platform gave while it was away are recorded when it is back (none
    is sent again), and the rest goes on at once."""
    env = {"DELIVERY_SWEEP_SECONDS": SWEEP_SECONDS}
    sim.set_faults(latency_ms=50)  # each send takes a little while: the burst is long enough
    processes.worker(concurrency=4, **env)
    processes.worker(concurrency=4, **env)
    processes.beat(**env)
    payloads = _payloads(5000, 150)
    _enqueue(payloads)
    wait_until(lambda: (_delivered() or 0) >= 40, 60, interval=0.1, message="the burst under way")

    private_postgres.stop()
    time.sleep(2.5)  # the database is away: sends go on, their answers wait
    private_postgres.start()
    back = time.monotonic()
    before = None
    while before is None:  # this process's own connection was cut too
        before = _delivered()

    wait_until(
        lambda: _delivered() == len(payloads), 10, interval=0.1, message="all delivered after the restart"
    )
    recovery = time.monotonic() - back
    print(
        f"\ndatabase restart (2.5 s away) during a burst of {len(payloads)}: "
        f"{before} delivered when it came back, all delivered {recovery:.1f} s after its return"
    )
    held = sim.records(INTERFACE)
    assert len(held) == len(payloads)
    twice = [r["key"] for r in held if r["version"] != 1]
    assert twice == []  # no record sent twice
    assert not OutboxRecord.objects.exclude(state=State.DONE).exists()
    # the restart did catch answers on their way: they were recorded once the database was back
    assert "database unavailable while recording the answer" in processes.logs()


def test_after_a_platform_outage_the_backlog_goes_at_once(sim, processes, settings):
    """Production backoff (5 s doubling, capped at an hour): during a 40 s outage the rows back off
    for up to ~80 s more. The first call accepted after the platform's return brings them all
    forward (the sweep lets a waiting row try the platform every few seconds)."""
    settings.DELIVERY_SWEEP_SECONDS = SWEEP_SECONDS
    with transaction.atomic():
        sync_schedules()
    env = {"DELIVERY_SWEEP_SECONDS": SWEEP_SECONDS}
    sim.set_faults(http_5xx=1.0)  # the platform is down: every call fails, nothing is stored
    processes.worker(concurrency=4, **env)
    processes.worker(concurrency=4, **env)
    processes.beat(**env)
    payloads = _payloads(6000, 150)
    down = time.monotonic()
    _enqueue(payloads[:100])
    wait_until(lambda: OutboxRecord.objects.filter(attempts__gte=3).exists(), 60, message="rows backing off")
    _enqueue(payloads[100:])
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down)))

    waiting = OutboxRecord.objects.filter(state=State.RETRY)
    latest = max(waiting.values_list("next_attempt_at", flat=True))
    sim.set_faults()  # the platform is back
    back = time.monotonic()
    backoff_left = (latest - timezone.now()).total_seconds()
    assert not OutboxRecord.objects.filter(state=State.DONE).exists()
    assert backoff_left > 15  # by backoff alone, some would go later than 15 s after the return

    wait_until(
        lambda: _delivered() == len(payloads), 15, interval=0.1, message="all delivered after the return"
    )
    recovery = time.monotonic() - back
    print(
        f"\nplatform down {back - down:.0f} s, {len(payloads)} records waiting (backoff up to {backoff_left:.0f} s"
        f" more): all delivered {recovery:.1f} s after its return"
    )
    assert len(sim.records(INTERFACE)) == len(payloads)
