from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from tqdm import tqdm

from hospital_interop.uploads import retention


class Command(BaseCommand):
    help = (
        "Move accepted outbox rows past their retention age to the archive table, in small batches "
        "(each its own transaction; delivery is never held up), then delete archived rows past the "
        "legal retention period. Safe to stop and run again (docs/retention.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days",
            type=float,
            default=None,
            help="archive rows accepted more than this many days ago, for every interface "
            f"(default: each interface's policy, else {settings.RETENTION['ARCHIVE_AFTER_DAYS']}; "
            f"never under RETENTION_FLOOR_DAYS = {settings.RETENTION['FLOOR_DAYS']:g})",
        )
        parser.add_argument(
            "--batch-size", type=int, default=settings.RETENTION["BATCH"], help="rows per transaction"
        )
        parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
        parser.add_argument(
            "--pause", type=float, default=0.0, help="seconds between batches (leave room for delivery)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, cron)")

    def handle(self, *args, older_than_days, batch_size, max_seconds, pause, no_progress, **options):
        older = timedelta(days=older_than_days) if older_than_days is not None else None
        total = retention.pending_count(older_than=older)
        self.stdout.write(f"待归档上传记录：{total:,} 条")
        bar = tqdm(total=total, unit="条", desc="归档", disable=no_progress)
        shown = {"records": 0, "purged": 0}

        def progress(done: retention.Moved) -> None:
            bar.update(done.records - shown["records"])
            shown["records"] = done.records
            if done.purged != shown["purged"]:
                bar.set_postfix_str(f"已删除超期 {done.purged:,} 条")
                shown["purged"] = done.purged

        done = retention.run(
            batch=batch_size, older_than=older, max_seconds=max_seconds, progress=progress, pause=pause
        )
        bar.close()
        rate = done.records / done.seconds if done.seconds else 0.0
        self.stdout.write(
            f"已归档 {done.records:,} 条上传记录（发送尝试 {done.attempts:,} 条），"
            f"删除超过法定保存期限的归档记录 {done.purged:,} 条，用时 {done.seconds:.1f} 秒"
            f"（{rate:,.0f} 条/秒）" + ("；时间已到，其余下次继续" if done.left else "")
        )
