"""Celery tasks: thin wrappers over services; they take ids and are idempotent."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def preload(encounter_id: int) -> int:
    """Fetch a registered visit's external results (2.3.2.1 + 3.1) into the cache."""
    bundle = services.preload(encounter_id)
    return sum(len(v) for kind in ("exam", "lab") for v in bundle[kind].values())
