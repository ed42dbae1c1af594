"""Backfill: load EMR records from NDJSON files (first connection, recovery after an outage).

Each line is one record, either bare (all lines of one record type, ``--type``) or wrapped with
its type: ``{"recordType": "op-visit", "record": {...}}``. Lines are mapped and validated like
API submissions and stored in batches, one transaction per batch, through the same service
(``services.store``): identical records are skipped (so a run can simply be repeated to resume
after an interruption), changed ones become new versions. Unlike the bulk API a bad line does
not stop the load: it is written with its errors to the error report (one JSON object per line:
file, line, recordType, errors) and the other lines are loaded.

Resumable: each batch commits with a checkpoint (``BackfillCheckpoint``: the files' digest, the
next byte to read, the counts so far). A run killed at any point (even SIGKILL) and started again
with the same files continues after the last committed batch, so every record is stored exactly
once; its progress bar starts where the other stopped. A finished run started again is a new,
complete pass (identical records skipped); ``restart=True`` ignores an unfinished checkpoint.

Delivery is the outbox's: after each batch's commit it wakes one worker per claim batch of new
rows (no per-record broker message); ``wake=False`` leaves everything to the periodic sweep.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from hospital_interop.errors import field_error
from hospital_interop.integrations import strictjson
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.patients.services import PatientConflict
from hospital_interop.uploads import services as outbox

from . import services
from .mapping import RecordType, record_types
from .models import BackfillCheckpoint


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


def scan(files: list[Path], record_type: str | None) -> tuple[list[int], str]:
    """Each file's line count (a last line without newline counted), and the run's digest (the
    record type option and every file's SHA-256, in order), in one read of the files."""
    counts, run = [], hashlib.sha256(f"emr-backfill\n{record_type or ''}\n".encode())
    for file in files:
        digest, total, last = hashlib.sha256(), 0, b"\n"
        with file.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(chunk)
                total += chunk.count(b"\n")
                last = chunk[-1:]
        counts.append(total + (last != b"\n"))
        run.update(digest.hexdigest().encode() + b"\n")
    return counts, run.hexdigest()


def count_lines(files: list[Path]) -> int:
    return sum(scan(files, None)[0])


def _lines(
    files: list[Path], start: tuple[int, int, int] = (0, 0, 0)
) -> Iterator[tuple[int, Path, int, str | None, int]]:
    """(file index, file, line number, text or None if not UTF-8, offset after the line) from
    ``start`` = (file index, byte offset, lines already read of that file) on."""
    first, offset, line = start
    for index, file in enumerate(files):
        if index < first:
            continue
        at, n = (offset, line) if index == first else (0, 0)
        with file.open("rb") as fh:
            fh.seek(at)
            for raw in fh:
                n += 1
                text_bytes = raw[3:] if at == 0 and raw.startswith(b"\xef\xbb\xbf") else raw
                at += len(raw)
                try:
                    text = text_bytes.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                yield index, file, n, text, at


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
    restart: bool = False,
    jobs: int = 1,
) -> BackfillStats:
    """Load the files, continuing an interrupted run of the same files (``restart``: from the
    start); returns the counts (the whole run's, a resumed one's included). ``progress``: where
    the progress bar goes (None: no bar). ``jobs`` > 1: lines are parsed, mapped and validated
    by jobs - 1 other processes while this one stores (in file order, as with one)."""
    paths = [Path(f) for f in files]
    fixed = record_types().get(record_type) if record_type else None
    error_path = Path(error_file) if error_file else paths[0].with_name(paths[0].name + ".errors.ndjson")
    counts, digest = scan(paths, record_type)
    checkpoint = _checkpoint(digest, paths, error_path, restart)
    if jobs > 1 and transaction.get_connection().in_atomic_block:
        jobs = 1  # the caller's transaction (a test): its connection cannot be left for the forked processes
    stats = BackfillStats(
        lines=checkpoint.lines,
        created=checkpoint.created,
        unchanged=checkpoint.unchanged,
        invalid=checkpoint.invalid,
        by_type=dict(checkpoint.by_type),
    )
    done_lines = sum(counts[: checkpoint.file_index]) + checkpoint.line
    errors_out = None
    if checkpoint.error_bytes:  # lines rejected after the checkpoint are read and reported again
        with error_path.open("r+b") as fh:
            fh.truncate(checkpoint.error_bytes)
        errors_out = error_path.open("a", encoding="utf-8")
    bar = tqdm(
        total=sum(counts),
        initial=done_lines,
        unit="条",
        desc="回填（续传）" if done_lines else "回填",
        file=progress,
        disable=progress is None,
        mininterval=0.5,
        smoothing=0.1,
        dynamic_ncols=True,
    )
    if done_lines and progress is not None:
        bar.write(
            f"从第 {checkpoint.file_index + 1} 个文件第 {checkpoint.line + 1} 行续传"
            f"（上次已处理 {done_lines} 行：新保存 {stats.created}，相同 {stats.unchanged}，有误 {stats.invalid}）",
            file=progress,
        )
    started = time.perf_counter()
    batch: list[services.Prepared] = []
    origin: dict[int, Path] = {}  # id(prepared) -> its file
    position = (checkpoint.file_index, checkpoint.offset, checkpoint.line)

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

    def flush(finished: bool = False):
        with transaction.atomic():  # the batch and the checkpoint that says it is stored, together
            while batch:
                try:
                    results = services.store(batch, source=source, wake=wake)
                except (
                    PatientConflict
                ) as exc:  # those lines name another patient's visit: report them, load the rest
                    exc.record()
                    for p, errors in exc.rejected:
                        reject(origin[id(p)], p.line, p.record_type, errors)
                    rejected = {id(p) for p, _ in exc.rejected}
                    batch[:] = [p for p in batch if id(p) not in rejected]
                    continue
                for r in results:
                    if r.created:
                        stats.created += 1
                    else:
                        stats.unchanged += 1
                break
            if errors_out is not None:
                errors_out.flush()
            _save(checkpoint, stats, position, errors_out.tell() if errors_out else 0, finished)
        bar.set_postfix(新保存=stats.created, 相同=stats.unchanged, 有误=stats.invalid, refresh=False)
        batch.clear()
        origin.clear()

    try:
        for index, file, n, after, rt, prepared, errors, seconds in _prepared(paths, position, fixed, jobs):
            bar.update(1)
            position = (index, after, n)
            if rt is _BLANK:
                continue
            stats.lines += 1
            stats.prepare_seconds += seconds
            if errors:
                reject(file, n, rt, errors)
                continue
            stats.by_type[rt.slug] = stats.by_type.get(rt.slug, 0) + 1
            batch.append(prepared)
            origin[id(prepared)] = file
            if len(batch) >= batch_size:
                flush()
        flush(finished=True)
    finally:
        bar.close()
        if errors_out is not None:
            errors_out.close()
            stats.error_file = error_path
    stats.seconds = time.perf_counter() - started
    return stats


_BLANK = object()  # an empty line: skipped, not counted


def _prepare_line(n: int, text: str | None, fixed: RecordType | None, resolve=None):
    """(record type, Prepared, errors) of one line; (_BLANK, None, []) for an empty one."""
    if text is None:
        return None, None, [field_error("", "encoding", "该行不是有效的 UTF-8 文本", "not UTF-8")]
    if not text.strip():
        return _BLANK, None, []
    rt, record, errors = _parse(text, fixed)
    prepared = None
    if not errors:
        prepared, errors = services.prepare(rt, record, line=n, resolve=resolve)
    return rt, prepared, errors


def _prepared(paths: list[Path], start, fixed: RecordType | None, jobs: int) -> Iterator[tuple]:
    """(file index, file, line number, offset after it, record type, Prepared, errors, seconds
    spent preparing) per line, in file order."""
    lines = _lines(paths, start)
    if jobs <= 1:
        for index, file, n, text, after in lines:
            t0 = time.perf_counter()
            rt, prepared, errors = _prepare_line(n, text, fixed)
            yield index, file, n, after, rt, prepared, errors, time.perf_counter() - t0
        return
    import multiprocessing
    from collections import deque
    from itertools import islice

    from django.db import connections

    connections.close_all()  # the forked processes must not share this process's connections
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs - 1, initializer=_worker_start) as pool:
        pending: deque = deque()
        while True:
            while len(pending) < 2 * jobs:  # a few chunks ahead, never the whole file in memory
                chunk = list(islice(lines, CHUNK))
                if not chunk:
                    break
                work = [(n, text) for _, _, n, text, _ in chunk]
                pending.append(
                    (chunk, pool.apply_async(_prepare_chunk, (work, fixed.slug if fixed else None)))
                )
            if not pending:
                return
            chunk, result = pending.popleft()
            answers, seconds = result.get()
            each = seconds / len(chunk)
            for (index, file, n, _, after), answer in zip(chunk, answers, strict=True):
                rt, prepared, errors = _from_portable(answer)
                yield index, file, n, after, rt, prepared, errors, each


CHUNK = 500  # lines per task of a preparing process


def _worker_start() -> None:
    """In a preparing process: die with the backfill (a killed backfill leaves no orphans behind)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _prepare_chunk(work: list[tuple[int, str | None]], fixed_slug: str | None):
    """In a preparing process: each line mapped and validated, in a form that pickles cheaply
    (no spec objects: the storing process looks them up again)."""
    t0 = time.perf_counter()
    fixed = record_types().get(fixed_slug) if fixed_slug else None
    resolve = services._resolver()
    out = []
    for n, text in work:
        rt, prepared, errors = _prepare_line(n, text, fixed, resolve)
        if rt is _BLANK:
            out.append(("", None, None))
        elif prepared is None:
            out.append((rt.slug if rt else None, None, errors))
        else:
            c = prepared.checked
            out.append(
                (
                    rt.slug,
                    (
                        prepared.line,
                        prepared.record if prepared.held else None,
                        prepared.unmapped,
                        prepared.payload,
                        None if c is None else (c.interface, c.key),
                    ),
                    None,
                )
            )
    return out, time.perf_counter() - t0


def _from_portable(answer):
    slug, portable, errors = answer
    if slug == "":
        return _BLANK, None, []
    rt = record_types().get(slug) if slug else None
    if portable is None:
        return rt, None, errors
    line, record, unmapped, payload, checked = portable
    if checked is not None:
        interface, key = checked
        item = outbox.Item(interface, payload)
        checked = outbox.Checked(item, load_catalogue().interface(interface), key)
    return rt, services.Prepared(rt, checked, line, record, unmapped, payload), []


def _checkpoint(digest: str, paths: list[Path], error_path: Path, restart: bool) -> BackfillCheckpoint:
    """The run's checkpoint: the unfinished one of these files to continue, or a new one."""
    row = BackfillCheckpoint.objects.filter(run_digest=digest).first()
    report_lost = row is not None and row.error_bytes > (
        error_path.stat().st_size if error_path.exists() else 0
    )
    if row is not None and (row.finished_at is not None or restart or report_lost):
        row.delete()  # a finished run again: a new complete pass (identical records are skipped)
        row = None
    if row is None:
        row = BackfillCheckpoint.objects.create(
            run_digest=digest, files=[str(p) for p in paths], error_file=str(error_path)
        )
    return row


def _save(row: BackfillCheckpoint, stats: BackfillStats, position, error_bytes: int, finished: bool) -> None:
    row.file_index, row.offset, row.line = position
    row.lines, row.created, row.unchanged, row.invalid = (
        stats.lines,
        stats.created,
        stats.unchanged,
        stats.invalid,
    )
    row.by_type, row.error_bytes = stats.by_type, error_bytes
    row.finished_at = timezone.now() if finished else None
    row.save()
