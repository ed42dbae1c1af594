"""Celery tasks: thin wrappers over services. They take ids, are idempotent and run acks_late;
retry timing lives in the outbox rows, never in Celery countdowns."""

from celery import shared_task
from celery.signals import worker_process_shutdown

from . import services

_client = None


def client():
    """One platform client per worker process (keep-alive session, platform time offset)."""
    global _client
    if _client is None:
        from hospital_interop.municipal.client import PlatformClient

        _client = PlatformClient.from_settings()
    return _client


BATCHES_PER_TASK = 10  # a busy worker claims again at once, then lets its other tasks run


@worker_process_shutdown.connect
def _finish_large_transfers(**kwargs) -> None:
    """A worker process that is asked to stop lets its large transfer end (bounded by its lease)."""
    services.wait_for_large_sends(timeout=services.settings.DELIVERY["LEASE_SECONDS"])


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(record_id=None, interface=None):
    """Claim the given row (and other due rows, up to a batch) and send them; while claims come
    back full, claim again (up to ``BATCHES_PER_TASK``) rather than wait for the next wake-up."""
    sent = 0
    for _ in range(BATCHES_PER_TASK):
        records = services.through_database_blips(
            "claiming uploads", lambda first=record_id: services.claim(first, interface=interface)
        )
        if len(records) == 1 and services.is_large(records[0].payload_size):
            # a large row is claimed alone and sent beside this process's work, which goes on
            services.send_large_beside(records[0])
            services.wake()
        elif records:
            services.deliver_claimed(records, client())
        sent += len(records)
        if len(records) < services.CLAIM_BATCH:
            break
        record_id = None
    return sent


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def sweep():
    """Periodic safety net: reclaim dead workers' rows and dispatch everything that is due."""
    services.reclaim_expired_leases()
    services.probe_outages()
    for _ in range(services.due_batches()):
        deliver.delay()
    services.note_sweep()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def push_interface(interface):
    """The scheduled (incremental) push of one interface: send everything of it that is due."""
    while deliver(interface=interface):
        pass


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def archive_outbox():
    """The retention job (docs/retention.md): accepted rows past their age to the archive, in small
    batches, for at most ``RETENTION["MAX_SECONDS"]``; what is left goes on the next run."""
    from django.conf import settings

    from . import retention

    retention.run(max_seconds=settings.RETENTION["MAX_SECONDS"])
