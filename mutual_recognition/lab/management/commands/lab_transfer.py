"""``manage.py lab_transfer``: the lab report drop-folder transfer service (see docs/lab-transfer.md)."""

from __future__ import annotations

import threading

from django.core.management.base import BaseCommand

from mutual_recognition.lab.conf import TransferConfig
from mutual_recognition.lab.transfer import TransferService, install_signal_handlers


class Command(BaseCommand):
    help = "监视检验报告投递目录：PDF 与索引配对后上传（3.4 + 3.3），平台接收后归档或删除文件。"

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="只做一次全量处理后退出（对账、补处理）")
        parser.add_argument("--drop-dir", help="投递目录（默认取 LAB_TRANSFER['DROP_DIR']）")
        parser.add_argument("--rescan", type=float, help="全量扫描间隔（秒）")

    def handle(self, *args, once=False, drop_dir=None, rescan=None, **options):
        overrides = {}
        if drop_dir:
            from pathlib import Path

            overrides["drop_dir"] = Path(drop_dir)
        if rescan:
            overrides["rescan_seconds"] = rescan
        service = TransferService(TransferConfig.from_settings(**overrides))
        cfg = service.cfg
        if once:
            stats = service.run_once()
            self.stdout.write(
                f"enqueued={stats.enqueued} accepted={stats.accepted} cleared={stats.cleared} "
                f"quarantined={stats.quarantined} waiting={stats.waiting}"
            )
            return
        stop = threading.Event()
        install_signal_handlers(stop)
        self.stdout.write(
            f"lab_transfer watching {cfg.drop_dir} (archive: {cfg.archive_dir or 'delete'}, "
            f"quarantine: {cfg.quarantine_dir})",
            ending="\n",
        )
        self.stdout.flush()
        service.run(stop)
        self.stdout.write("lab_transfer stopped")
