"""manage.py emr_pull: read new rows of the HIS views once, or every interval (see emr_sharing/puller.py)."""

import time

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from emr_sharing import puller
from emr_sharing.conf import pull_settings


class Command(BaseCommand):
    help = "从 HIS 只读视图拉取新记录并提交（默认运行一次；--loop 按间隔持续运行）。"

    def add_arguments(self, parser):
        parser.add_argument("--config", help="拉取配置 YAML（默认环境变量 EMR_PULL_SOURCES_FILE）")
        parser.add_argument("--source", help="只拉取这一个数据源（配置中的 name）")
        parser.add_argument("--loop", action="store_true", help="持续运行，每隔 --interval 秒拉取一次")
        parser.add_argument("--interval", type=int, help="间隔秒数（默认 EMR_PULL_INTERVAL_SECONDS，300）")

    def handle(self, *args, config, source, loop, interval, **options):
        interval = interval or pull_settings()["INTERVAL_SECONDS"]
        while True:
            try:
                results = puller.pull_all(config, only=source)
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from None
            for r in results:
                line = (
                    f"{r.source}: 读取 {r.rows} 行，新保存 {r.created}，相同 {r.unchanged}，有误 {r.rejected}"
                )
                self.stdout.write(line + (f"；失败：{r.error}" if r.error else ""))
            if not loop:
                if any(r.error for r in results):
                    raise CommandError("有数据源拉取失败")
                return
            time.sleep(interval)
