"""Backfill: load EMR records from NDJSON files (first connection, recovery after an outage).

Each line is one record, either bare (all lines of one record type, ``--type``) or wrapped with
its type: ``{"recordType": "op-visit", "record": {...}}``. Lines are mapped and validated like
API submissions and stored in batches, one transaction per batch, through the same service
(``services.store``): identical records are skipped (so a run can simply be repeated to resume
after an interruption), changed ones become new versions. Unlike the bulk API a bad line does
not stop the load: it is written with its errors to the error report (one JSON object per line:
file, line, recordType, errors) and the other lines are loaded.

Delivery is the outbox's: after each batch's commit it wakes one worker per claim batch of new
rows (no per-record broker message); ``wake=False`` leaves everything to the periodic sweep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tqdm import tqdm

from hospital_interop.errors import field_error
from hospital_interop.integrations import strictjson
from hospital_interop.patients.services import PatientConflict

from . import services
from .mapping import RecordType, record_types


@dataclass
class BackfillStats:
    lines: int = 0
    created: int = 0
    unchanged: int = 0
    invalid: int = 0
    seconds: float = 0.0
    prepare_seconds: float = 0.0  # mapping and spec validation only
    by_type: dict[str, int] = field(default_factory=dict)
    error_file: Path | None = None

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    @property
    def prepare_rate(self) -> float:
        return self.lines / self.prepare_seconds if self.prepare_seconds else 0.0

    def summary(self) -> str:
        text = (
            f"共 {self.lines} 行：新保存 {self.created}，与已有版本相同 {self.unchanged}，有误 {self.invalid}；"
            f"用时 {self.seconds:.1f} 秒，{self.rate:.0f} 条/秒（其中映射与校验 {self.prepare_seconds:.1f} 秒，"
            f"单独计 {self.prepare_rate:.0f} 条/秒）"
        )
        if self.error_file:
            text += f"\n错误报告：{self.error_file}"
        return text


def count_lines(files: list[Path]) -> int:
    total = 0
    for file in files:
        with file.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                total += chunk.count(b"\n")
            if file.stat().st_size and not _ends_with_newline(file):
                total += 1
    return total


def _ends_with_newline(file: Path) -> bool:
    with file.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"


def _lines(files: list[Path]) -> Iterator[tuple[Path, int, str]]:
    for file in files:
        with file.open(encoding="utf-8-sig", errors="strict", newline="\n") as fh:
            for n, line in enumerate(fh, 1):
                yield file, n, line


def _parse(line: str, fixed: RecordType | None) -> tuple[RecordType | None, object, list[dict]]:
    try:
        data = strictjson.loads(line, top="any")
    except strictjson.JsonRefused as refused:
        return None, None, [refused.as_error()]
    if fixed is not None:
        return fixed, data, []
    if type(data) is not dict or set(data) != {"recordType", "record"}:
        return (
            None,
            None,
            [
                field_error(
                    "",
                    "lines",
                    '每行应为 {"recordType": ..., "record": {...}}，或用 --type 指定记录类型',
                    "expected recordType and record",
                )
            ],
        )
    try:
        return record_types().get(data["recordType"]), data["record"], []
    except (KeyError, TypeError):
        return (
            None,
            None,
            [field_error("", "recordType", f"未知的记录类型 {data['recordType']!r}", "unknown record type")],
        )


def run(
    files: list[str | Path],
    *,
    record_type: str | None = None,
    batch_size: int = 500,
    source: str = "backfill",
    error_file: str | Path | None = None,
    wake: bool = True,
    progress: IO | None = None,
) -> BackfillStats:
    """Load the files; returns the counts. ``progress``: where the progress bar goes (None: no bar)."""
    paths = [Path(f) for f in files]
    fixed = record_types().get(record_type) if record_type else None
    error_path = Path(error_file) if error_file else paths[0].with_name(paths[0].name + ".errors.ndjson")
    stats = BackfillStats()
    errors_out = None
    bar = tqdm(
        total=count_lines(paths),
        unit="条",
        desc="回填",
        file=progress,
        disable=progress is None,
        mininterval=0.5,
        smoothing=0.1,
        dynamic_ncols=True,
    )
    started = time.perf_counter()
    batch: list[services.Prepared] = []
    origin: dict[int, Path] = {}  # id(prepared) -> its file

    def reject(file: Path, n: int, rt: RecordType | None, errors: list[dict]) -> None:
        nonlocal errors_out
        stats.invalid += 1
        if errors_out is None:
            errors_out = error_path.open("w", encoding="utf-8")
        errors_out.write(
            json.dumps(
                {
                    "file": str(file),
                    "line": n,
                    "recordType": rt.slug if rt else None,
                    "errors": [{k: v for k, v in e.items() if k != "line"} for e in errors],
                },
                ensure_ascii=False,
            )
            + "\n"
        )

    def flush():
        if not batch:
            return
        while True:
            try:
                results = services.store(batch, source=source, wake=wake)
                break
            except (
                PatientConflict
            ) as exc:  # those lines name another patient's visit: report them, load the rest
                exc.record()
                for p, errors in exc.rejected:
                    reject(origin[id(p)], p.line, p.record_type, errors)
                rejected = {id(p) for p, _ in exc.rejected}
                batch[:] = [p for p in batch if id(p) not in rejected]
                if not batch:
                    origin.clear()
                    return
        for r in results:
            if r.created:
                stats.created += 1
            else:
                stats.unchanged += 1
        bar.set_postfix(新保存=stats.created, 相同=stats.unchanged, 有误=stats.invalid, refresh=False)
        batch.clear()
        origin.clear()

    try:
        for file, n, line in _lines(paths):
            bar.update(1)
            if not line.strip():
                continue
            stats.lines += 1
            t0 = time.perf_counter()
            rt, record, errors = _parse(line, fixed)
            prepared = None
            if not errors:
                prepared, errors = services.prepare(rt, record, line=n)
            stats.prepare_seconds += time.perf_counter() - t0
            if errors:
                reject(file, n, rt, errors)
                continue
            stats.by_type[rt.slug] = stats.by_type.get(rt.slug, 0) + 1
            batch.append(prepared)
            origin[id(prepared)] = file
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        bar.close()
        if errors_out is not None:
            errors_out.close()
            stats.error_file = error_path
    stats.seconds = time.perf_counter() - started
    return stats
