"""Celery task: the scheduled pull of QC_FEEDBACK_QUERY (its interval is the periodic task
"数据质量反馈拉取" in the admin, django-celery-beat)."""

from celery import shared_task

from . import services

_client = None


def client():
    global _client
    if _client is None:
        from hospital_interop.municipal.client import PlatformClient

        _client = PlatformClient.from_settings()
    return _client


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def pull_feedback():
    done = services.pull(client())
    return {"pages": done.pages, "received": done.received, "created": done.created}
