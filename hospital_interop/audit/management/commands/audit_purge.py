"""``manage.py audit_purge --before YYYY-MM-DD``: delete audit entries older than the retention."""

from datetime import date, datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from hospital_interop.audit import services
from hospital_interop.audit.context import acting_as
from hospital_interop.errors import InvalidInput


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--before 应为日期 YYYY-MM-DD，收到 {value!r}") from None


class Command(BaseCommand):
    help = (
        "删除指定日期之前的安全审计日志并重新锚定审计链。保留期至少 6 个月（AUDIT_RETENTION_MONTHS）："
        "日期在保留期之内时拒绝执行；待删除的记录校验不通过时拒绝执行。"
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--before", required=True, type=_day, help="删除此日期（本地时间 0 点）之前的记录"
        )

    def handle(self, *args, before: date, **options):
        moment = timezone.make_aware(datetime.combine(before, time.min))
        try:
            with acting_as("manage.py audit_purge"):
                purged = services.purge(moment)
        except InvalidInput as exc:
            raise CommandError(exc.errors[0]["message"]) from None
        except services.ChainBroken as exc:
            for problem in exc.report.problems:
                self.stderr.write(problem.message)
            raise CommandError(
                "待删除的审计记录校验不通过，未删除任何记录（被篡改的记录须保留作为证据）。"
            ) from None
        if purged.deleted:
            self.stdout.write(
                self.style.SUCCESS(
                    f"已删除 {purged.deleted} 条 {before} 之前的审计记录；审计链锚定于第 {purged.anchor_seq} 号。"
                )
            )
        else:
            self.stdout.write(f"没有 {before} 之前的审计记录。")
