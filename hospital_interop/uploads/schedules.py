"""Database-backed schedules (django-celery-beat), kept in step with the delivery settings:
the sweep at a fixed interval, and one periodic push per interface whose policy is scheduled."""

import json

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from .models import InterfacePolicy

SWEEP_TASK = "投递巡检（sweep）"
ARCHIVE_TASK = "上传记录归档（retention）"
PUSH_PREFIX = "增量推送："


def _every(seconds: int) -> IntervalSchedule:
    schedule, _ = IntervalSchedule.objects.get_or_create(
        every=max(int(seconds), 1), period=IntervalSchedule.SECONDS
    )
    return schedule


def sync_schedules() -> None:
    PeriodicTask.objects.update_or_create(
        name=SWEEP_TASK,
        defaults={
            "task": "hospital_interop.uploads.tasks.sweep",
            "interval": _every(settings.DELIVERY_SWEEP_SECONDS),
            "enabled": True,
            "description": "找出所有到期的待发送/待重试记录并派发；回收中断进程占用的记录",
        },
    )
    PeriodicTask.objects.update_or_create(
        name=ARCHIVE_TASK,
        defaults={
            "task": "hospital_interop.uploads.tasks.archive_outbox",
            "interval": _every(settings.RETENTION["EVERY_SECONDS"]),
            "enabled": True,
            "description": "把平台已接收且超过归档天数的上传记录分批移入归档表；删除超过法定保存期限的归档记录",
        },
    )
    wanted = set()
    for policy in InterfacePolicy.objects.filter(mode=InterfacePolicy.Mode.SCHEDULED):
        name = PUSH_PREFIX + policy.interface
        wanted.add(name)
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": "hospital_interop.uploads.tasks.push_interface",
                "interval": _every(policy.interval_seconds),
                "args": json.dumps([policy.interface]),
                "enabled": policy.enabled,
                "description": f"按 {policy.interval_seconds} 秒的频率增量推送 {policy.interface}",
            },
        )
    PeriodicTask.objects.filter(name__startswith=PUSH_PREFIX).exclude(name__in=wanted).delete()
