"""Celery task of the HIS view puller (scheduled by schedules.py at the configured interval)."""

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def pull_his_views():
    from . import his, puller

    if his.configured():
        puller.pull_all()


@shared_task(acks_late=True, ignore_result=True)
def release_held_records():
    """Periodic: map held records again when the dictionaries changed; those fully mapped go out."""
    from . import services

    outcome = services.release_held_if_dictionaries_changed()
    return None if outcome is None else outcome.released
