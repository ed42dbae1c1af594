"""manage.py emr_backfill FILE.ndjson [FILE ...]: load a day of EMR records (see emr_sharing/backfill.py)."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from emr_sharing import backfill
from emr_sharing.mapping import record_types


class Command(BaseCommand):
    help = (
        "从 NDJSON 文件回填电子病历记录（首次接入或故障恢复）。每行一条："
        '{"recordType": "op-visit", "record": {...}}，或用 --type 指定后每行就是记录本身。'
        "可重复执行：与已有版本相同的记录自动跳过；中断（包括进程被杀）后再执行同样的文件，从上次提交的批次之后续传。"
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="NDJSON 文件")
        parser.add_argument(
            "--type",
            dest="record_type",
            choices=[rt.slug for rt in record_types()],
            help="所有行都是这一记录类型（行内不再写 recordType）",
        )
        parser.add_argument("--batch-size", type=int, default=500, help="每个事务保存的记录数（默认 500）")
        parser.add_argument("--source", default="backfill", help="记入上传记录的来源系统（默认 backfill）")
        parser.add_argument("--errors", help="错误报告文件（默认：第一个输入文件名加 .errors.ndjson）")
        parser.add_argument("--no-wake", action="store_true", help="不通知发送进程，全部交给定时巡检发送")
        parser.add_argument("--no-progress", action="store_true", help="不显示进度条")
        parser.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="并行进程数（默认 1）：大于 1 时另用 jobs-1 个进程解析与校验，本进程按文件顺序保存",
        )
        parser.add_argument(
            "--restart", action="store_true", help="不续传：忽略这些文件上次中断时的进度，从头处理"
        )

    def handle(
        self,
        *args,
        files,
        record_type,
        batch_size,
        source,
        errors,
        no_wake,
        no_progress,
        restart,
        jobs,
        **options,
    ):
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise CommandError(f"文件不存在：{', '.join(missing)}")
        if jobs < 1:
            raise CommandError("--jobs 至少为 1")
        if batch_size < 1:
            raise CommandError("--batch-size 至少为 1")
        progress = None if no_progress else getattr(self.stderr, "_out", sys.stderr)
        stats = backfill.run(
            files,
            record_type=record_type,
            batch_size=batch_size,
            source=source,
            error_file=errors,
            wake=not no_wake,
            progress=progress,
            restart=restart,
            jobs=jobs,
        )
        self.stdout.write(stats.summary())
        if stats.invalid:
            raise CommandError(f"{stats.invalid} 行有误，未保存；详见 {stats.error_file}")
