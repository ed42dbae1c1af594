"""Celery task of the HIS view puller (scheduled by schedules.py at the configured interval)."""

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def pull_his_views():
    from . import his, puller

    if his.configured():
        puller.pull_all()
