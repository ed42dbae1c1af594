"""The drop-folder transfer service: pair, enqueue, wait for acceptance, clear — crash-safe.

State of each PDF + index pair lives in ``LabTransfer`` rows::

    discovered ──► enqueued ──► accepted ──► cleared
        │        (3.4 + 3.3 outbox rows   (files moved to the archive folder sealed, or deleted)
        │         and the state change in
        │         one transaction)
        ├──► quarantined  (not authentic — neither archived here nor carrying the right index MAC —,
        │                  malformed index, truncated PDF, failed validation, unpaired too long:
        │                  files moved to the quarantine folder with a reason file)
        └──► superseded   (an older version than one already enqueued: not uploaded; cleared
                           together with the newer version once that is accepted)

Rules that make a restart lose and repeat nothing:

* a pair is identified by (report id, SM3 of the PDF, SM3 of the index): seen again, it is not
  enqueued again (unique constraint; the enqueue and the row's state change commit together);
* files are only touched after the state that allows it is committed (accepted before clearing,
  quarantined before moving); moving or deleting is idempotent (a missing file was done before);
* a file whose bytes are not the transfer's own (a new drop under the same name) is never moved.

Only authentic pairs are uploaded (``index.parse``): the report and PDF digest of a version this
server archived, or an index with the right HMAC-SM3 (the key of ``LAB_TRANSFER["INDEX_KEY_FILE"]``,
read once at start). Every file the service writes or moves into its folders is mode 0600, and
the PDFs and indexes it moves into the archive and quarantine folders are SM4-GCM sealed
(``<name>.sm4``, hospital_interop/atrest.py): they hold patient data.

Delivery itself is the outbox's job (retries, ordering, attention). A pair counts as accepted
when, for 3.4 and for 3.3, the platform accepted its outbox row or a later version of the same
key (an ops re-drive, or a newer report version).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.db import IntegrityError, InterfaceError, OperationalError, close_old_connections, transaction
from django.db.models import Max
from django.utils import timezone

from hospital_interop import atrest
from hospital_interop.municipal.gm import sm3_hex
from hospital_interop.patients.services import PatientConflict
from hospital_interop.uploads import services as outbox
from hospital_interop.uploads.models import OutboxRecord, State

from . import index, payloads
from .conf import TransferConfig
from .models import LabReportVersion, LabTransfer, LabTransferLog

log = logging.getLogger(__name__)
T = LabTransfer.State
E = LabTransferLog.Event
SOURCE = "LIS"
WAITING_STATES = (T.ENQUEUED, T.SUPERSEDED)


def record_event(
    event: str, message: str, *, transfer: LabTransfer | None = None, file_name: str = "", report_id: str = ""
) -> None:
    LabTransferLog.objects.create(
        event=event,
        message=message[:4000],
        transfer=transfer,
        file_name=file_name or (transfer.stem if transfer else ""),
        report_id=report_id or (transfer.report_id if transfer else ""),
    )
    log.info("lab transfer %s %s: %s", event, file_name or (transfer.stem if transfer else ""), message)


@dataclass
class PassStats:
    enqueued: int = 0
    accepted: int = 0
    cleared: int = 0
    quarantined: int = 0
    waiting: int = 0
    duplicates: int = 0
    superseded: int = 0
    errors: list[str] = field(default_factory=list)


def _signature(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class TransferService:
    """One instance per process. ``run()`` is the watcher loop; ``run_once()`` one full pass."""

    def __init__(self, config: TransferConfig | None = None):
        self.cfg = config or TransferConfig.from_settings()
        self.cfg.ensure_dirs()
        self.key = self.cfg.index_key()  # a missing key stops the service at start, with the reason
        self.wake = threading.Event()
        self._seen: dict[str, tuple] = {}  # stem -> (pdf stat, index stat) of pairs already handled
        self._waiting_logged: set[str] = set()

    # ------------------------------------------------------------------ one pass
    def run_once(self) -> PassStats:
        stats = PassStats()
        self.scan(stats)
        self.check(stats)
        return stats

    def scan(self, stats: PassStats | None = None) -> PassStats:
        """Look at every file in the drop folder (names starting with a dot are writers' temporaries)."""
        stats = stats or PassStats()
        groups: dict[str, dict[str, Path]] = {}
        try:
            entries = list(os.scandir(self.cfg.drop_dir))
        except FileNotFoundError:
            self.cfg.ensure_dirs()
            return stats
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            path = self._text_named(entry)
            if path is None:
                continue
            stem, ext = os.path.splitext(path.name)
            groups.setdefault(stem, {})[
                ext.lower() if ext.lower() in (index.PDF_EXT, index.INDEX_EXT) else ext
            ] = path
        last_check = time.monotonic()
        for stem in sorted(groups, key=_stem_order):
            if time.monotonic() - last_check >= self.cfg.accept_poll_seconds:  # a long backlog: keep clearing
                self.check(stats)
                last_check = time.monotonic()
            files = groups[stem]
            try:
                if index.PDF_EXT in files and index.INDEX_EXT in files and len(files) == 2:
                    self._pair(stem, files[index.PDF_EXT], files[index.INDEX_EXT], stats)
                else:
                    self._single(stem, files, stats)
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:  # one bad pair never stops the others
                log.exception("lab transfer: %s failed", stem)
                stats.errors.append(f"{stem}: {exc}")
                record_event(E.ERROR, f"处理出错：{type(exc).__name__}: {exc}", file_name=stem)
        return stats

    def _text_named(self, entry: os.DirEntry) -> Path | None:
        """The entry's path, under a name that is text. The OS hands a name that is not UTF-8 over
        with lone surrogates, which no database row, log line or page can hold (recording one
        stopped every pass at it): such a file is renamed in place to its escaped form (``\\xff``)
        and then goes through the usual checks. None when that name is taken (it waits)."""
        try:
            entry.name.encode("utf-8")
            return Path(entry.path)
        except UnicodeEncodeError:
            readable = os.fsencode(entry.name).decode("utf-8", "backslashreplace")
        target = Path(self.cfg.drop_dir) / readable
        if target.exists():
            log.warning("lab transfer: a file name that is not UTF-8 waits: %s is taken", readable)
            return None
        try:
            os.rename(entry.path, target)
        except FileNotFoundError:  # taken away meanwhile
            return None
        record_event(E.WAITING, f"文件名不是有效的 UTF-8，已改名为 {readable}", file_name=Path(readable).stem)
        return target

    # ------------------------------------------------------------------ pairs
    def _pair(self, stem: str, pdf_path: Path, index_path: Path, stats: PassStats) -> None:
        sig = (_signature(pdf_path), _signature(index_path))
        if None in sig:
            return  # vanished while we looked
        if self._seen.get(stem) == sig:
            return  # unchanged since we handled it; its state moves on in check()
        try:
            index_raw, pdf_raw = index_path.read_bytes(), pdf_path.read_bytes()
        except FileNotFoundError:
            return
        index_sm3, pdf_sm3 = sm3_hex(index_raw), sm3_hex(pdf_raw)
        self._waiting_logged.discard(stem)
        try:
            idx = index.parse(index_raw, stem=stem, key=self.key, archived=_archived_here)
        except index.IndexError_ as exc:
            t = LabTransfer(
                report_id=_report_id_of(stem),
                stem=stem,
                pdf_name=pdf_path.name,
                index_name=index_path.name,
                pdf_sm3=pdf_sm3,
                index_sm3=index_sm3,
                pdf_size=len(pdf_raw),
            )
            self.quarantine(t, [pdf_path, index_path], exc.reason, exc.errors, stats)
            return
        t = (
            LabTransfer.objects.filter(report_id=idx.report_id, pdf_sm3=pdf_sm3, index_sm3=index_sm3)
            .exclude(state=T.QUARANTINED)
            .first()
        )
        if t is None:
            try:
                with transaction.atomic():
                    t = LabTransfer.objects.create(
                        report_id=idx.report_id,
                        report_version=idx.version,
                        stem=stem,
                        pdf_name=pdf_path.name,
                        index_name=index_path.name,
                        pdf_sm3=pdf_sm3,
                        index_sm3=index_sm3,
                        pdf_size=len(pdf_raw),
                        patient_name=(idx.content.get("patient") or {}).get("name", ""),
                        state=T.DISCOVERED,
                    )
                    record_event(
                        E.DISCOVERED,
                        f"发现报告 {idx.report_id} 第 {idx.version} 版（PDF {len(pdf_raw)} 字节，"
                        f"{AUTHENTICATED[idx.authenticated_by]}）",
                        transfer=t,
                    )
            except IntegrityError:  # another service instance was quicker
                return
        if t.state == T.DISCOVERED:
            self._enqueue(t, idx, pdf_raw, [pdf_path, index_path], stats)
        elif t.state == T.ACCEPTED:
            self.clear(t, stats)
        elif t.state == T.CLEARED:  # the very same files dropped again: the platform has them
            stats.duplicates += 1
            record_event(E.DUPLICATE, "与已被平台接收的文件完全相同，不再上传，直接清理", transfer=t)
            self._dispose(t, stats, duplicate=True)
        if t.state in WAITING_STATES or t.state == T.CLEARED:
            self._seen[stem] = sig

    def _enqueue(
        self, t: LabTransfer, idx: index.Index, pdf_raw: bytes, paths: list[Path], stats: PassStats
    ) -> None:
        problem = index.check_pdf(pdf_raw, idx)
        if problem:
            self.quarantine(t, paths, problem, [], stats)
            return
        newer = (
            LabTransfer.objects.filter(report_id=idx.report_id, report_version__gt=idx.version)
            .exclude(state__in=(T.QUARANTINED, T.DISCOVERED))
            .order_by("-report_version")
            .first()
        )
        if newer is not None:
            with transaction.atomic():
                LabTransfer.objects.filter(pk=t.pk, state=T.DISCOVERED).update(
                    state=T.SUPERSEDED, reason=f"已有更新的第 {newer.report_version} 版，本版本不再上传"
                )
                record_event(
                    E.SUPERSEDED, f"已有更新的第 {newer.report_version} 版，本版本不再上传", transfer=t
                )
            t.refresh_from_db()
            stats.superseded += 1
            return
        mapped = payloads.map_content(idx.content)
        detail, errors = payloads.detail(idx.content, mapped)
        if errors:
            self.quarantine(
                t, paths, "报告明细未通过字典对照或 3.3 接口校验：" + _errors_text(errors), errors, stats
            )
            return
        pdf_payload, errors = payloads.pdf_payload(idx.content, idx.pdf_name, pdf_raw)
        if errors:
            self.quarantine(
                t, paths, "PDF 上传内容未通过 3.4 接口校验：" + _errors_text(errors), errors, stats
            )
            return
        public = []  # the public-data twins, from the same report, versioned with it (switch: InterfacePolicy.generate)
        for code, (payload, errors) in (
            (
                payloads.PUBLIC[payloads.PDF],
                payloads.pdf_payload(idx.content, idx.pdf_name, pdf_raw, code=payloads.PUBLIC[payloads.PDF]),
            ),
            (
                payloads.PUBLIC[payloads.DETAIL],
                payloads.detail(idx.content, mapped, code=payloads.PUBLIC[payloads.DETAIL]),
            ),
        ):
            if not outbox.policy_for(code).generate:
                continue
            if errors:
                self.quarantine(
                    t,
                    paths,
                    f"公共数据接口 {code} 的内容未通过接口校验：" + _errors_text(errors),
                    errors,
                    stats,
                )
                return
            public.append((code, payload))
        event_at = _parse_time(idx.archived_at)
        try:
            with transaction.atomic():
                locked = LabTransfer.objects.select_for_update().get(pk=t.pk)
                if locked.state != T.DISCOVERED:
                    return
                pdf_rec, detail_rec, *_ = outbox.enqueue_many(
                    [
                        outbox.Item(payloads.PDF, pdf_payload, event_at),
                        outbox.Item(payloads.DETAIL, detail, event_at),
                        *(outbox.Item(code, payload, event_at) for code, payload in public),
                    ],
                    source=SOURCE,
                )
                LabTransfer.objects.filter(pk=t.pk).update(
                    state=T.ENQUEUED, pdf_record=pdf_rec, detail_record=detail_rec, enqueued_at=timezone.now()
                )
                record_event(
                    E.ENQUEUED,
                    f"PDF（3.4）第 {pdf_rec.version} 版与明细（3.3）第 {detail_rec.version} 版已入队"
                    + (f"，公共数据接口 {'、'.join(code for code, _ in public)} 同时入队" if public else ""),
                    transfer=t,
                )
        except outbox.PayloadInvalid as exc:
            self.quarantine(
                t, paths, "上传内容未通过接口校验：" + _errors_text(exc.errors), exc.errors, stats
            )
            return
        except PatientConflict as exc:
            exc.record()
            self.quarantine(
                t,
                paths,
                "报告中的患者与其就诊、申请单或报告单号已登记的患者不一致：" + _errors_text(exc.errors),
                exc.errors,
                stats,
            )
            return
        t.state, t.pdf_record_id, t.detail_record_id = T.ENQUEUED, pdf_rec.pk, detail_rec.pk
        stats.enqueued += 1

    def _single(self, stem: str, files: dict[str, Path], stats: PassStats) -> None:
        """A PDF without its index, an index without its PDF, or a file of another kind."""
        paths = list(files.values())
        ages = []
        for p in paths:
            try:
                ages.append(time.time() - p.stat().st_mtime)
            except FileNotFoundError:
                return
        if len(paths) == 1 and index.PDF_EXT in files:
            reason = f"只有 PDF 文件，{_minutes(self.cfg.unpaired_timeout)}内未等到对应的索引文件 {stem}{index.INDEX_EXT}"
        elif len(paths) == 1 and index.INDEX_EXT in files:
            reason = f"只有索引文件，{_minutes(self.cfg.unpaired_timeout)}内未等到对应的 PDF 文件 {stem}{index.PDF_EXT}"
        else:
            reason = (
                "不是成对的 PDF 与索引文件（投递目录只接收 <报告单号>_v<版本>.pdf 与同名 .json）："
                + "、".join(p.name for p in paths)
            )
        if min(ages) < self.cfg.unpaired_timeout:
            stats.waiting += 1
            if stem not in self._waiting_logged:
                self._waiting_logged.add(stem)
                record_event(
                    E.WAITING,
                    "等待配对：" + "、".join(p.name for p in paths),
                    file_name=stem,
                    report_id=_report_id_of(stem),
                )
            return
        pdf = files.get(index.PDF_EXT)
        t = LabTransfer(
            report_id=_report_id_of(stem),
            stem=stem,
            pdf_name=pdf.name if pdf else "",
            index_name=files[index.INDEX_EXT].name if index.INDEX_EXT in files else "",
        )
        self._waiting_logged.discard(stem)
        self.quarantine(t, paths, reason, [], stats)

    # ------------------------------------------------------------------ acceptance and clearing
    def check(self, stats: PassStats | None = None) -> PassStats:
        """Move enqueued pairs whose uploads the platform accepted on, and clear them."""
        stats = stats or PassStats()
        fields = ("interface", "business_key", "version")
        enqueued = list(
            LabTransfer.objects.filter(
                state=T.ENQUEUED, pdf_record__isnull=False, detail_record__isnull=False
            ).values("pk", *(f"{r}__{f}" for r in ("pdf_record", "detail_record") for f in fields))
        )
        if enqueued:
            keys = {row[f"{r}__business_key"] for row in enqueued for r in ("pdf_record", "detail_record")}
            done = {
                (row["interface"], row["business_key"]): row
                for row in OutboxRecord.objects.filter(
                    interface__in=(payloads.PDF, payloads.DETAIL), business_key__in=keys, state=State.DONE
                )
                .values("interface", "business_key")
                .annotate(version=Max("version"), at=Max("accepted_at"))
            }
            for row in enqueued:
                mine = [
                    (row[f"{r}__interface"], row[f"{r}__business_key"], row[f"{r}__version"])
                    for r in ("pdf_record", "detail_record")
                ]
                got = [done.get((interface, key)) for interface, key, _ in mine]
                if all(g is not None and g["version"] >= v for g, (_, _, v) in zip(got, mine, strict=True)):
                    self._accept(row["pk"], got, mine, stats)
        for t in LabTransfer.objects.filter(state=T.ACCEPTED):
            self.clear(t, stats)
        for t in LabTransfer.objects.filter(state=T.SUPERSEDED):
            if LabTransfer.objects.filter(
                report_id=t.report_id, report_version__gt=t.report_version, state__in=(T.ACCEPTED, T.CLEARED)
            ).exists():
                self.clear(t, stats)
        return stats

    def _accept(self, pk: int, got: list[dict], mine: list[tuple], stats: PassStats) -> None:
        with transaction.atomic():
            changed = LabTransfer.objects.filter(pk=pk, state=T.ENQUEUED).update(
                state=T.ACCEPTED, accepted_at=max(g["at"] for g in got) or timezone.now()
            )
            if not changed:
                return
            t = LabTransfer.objects.get(pk=pk)
            later = [
                f"{interface} 由第 {g['version']} 版替代"
                for g, (interface, _, v) in zip(got, mine, strict=True)
                if g["version"] > v
            ]
            receipts = "、".join(
                f"{i} 回执 {r}"
                for i, r in OutboxRecord.objects.filter(
                    pk__in=[t.pdf_record_id, t.detail_record_id]
                ).values_list("interface", "receipt")
                if r
            )
            record_event(
                E.ACCEPTED,
                "市平台已接收 PDF 与明细"
                + (f"（{receipts}）" if receipts else "")
                + (f"；{'；'.join(later)}" if later else ""),
                transfer=t,
            )
        stats.accepted += 1

    def clear(self, t: LabTransfer, stats: PassStats | None = None) -> None:
        """Archive or delete an accepted (or superseded) pair's files, then mark it cleared."""
        stats = stats or PassStats()
        if t.state not in (T.ACCEPTED, T.SUPERSEDED):
            return
        disposition = self._dispose(t, stats)
        with transaction.atomic():
            changed = LabTransfer.objects.filter(pk=t.pk, state=t.state).update(
                state=T.CLEARED, cleared_at=timezone.now(), disposition=disposition
            )
            if changed:
                what = "已归档到 " + disposition if self.cfg.archive_dir else "已删除"
                record_event(
                    E.CLEARED,
                    f"文件{what}" + ("（旧版本，由新版本替代）" if t.state == T.SUPERSEDED else ""),
                    transfer=t,
                )
                stats.cleared += 1
        t.refresh_from_db()
        self._seen.pop(t.stem, None)

    def _dispose(self, t: LabTransfer, stats: PassStats, duplicate: bool = False) -> str:
        """Move the pair's own files (checked by SM3) to the archive folder, or delete them."""
        target = None
        if self.cfg.archive_dir is not None:
            target = self.cfg.archive_dir / timezone.localdate().strftime("%Y-%m-%d")
        for name, digest in ((t.pdf_name, t.pdf_sm3), (t.index_name, t.index_sm3)):
            if not name:
                continue
            path = self.cfg.drop_dir / name
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # done before a crash
            if sm3_hex(data) != digest:
                continue  # a newer drop under the same name: not ours to touch
            if target is None:
                path.unlink(missing_ok=True)
            else:
                _seal_away(path, target, data)
        index.fsync_dir(self.cfg.drop_dir)
        if duplicate:
            self._seen.pop(t.stem, None)
        return str(target) if target else "已删除"

    # ------------------------------------------------------------------ quarantine
    def quarantine(
        self, t: LabTransfer, paths: list[Path], reason: str, errors: list[dict], stats: PassStats
    ) -> None:
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        dest = self.cfg.quarantine_dir / f"{stamp}-{t.stem}"
        n = 1
        while dest.exists():
            n += 1
            dest = self.cfg.quarantine_dir / f"{stamp}-{t.stem}-{n}"
        with transaction.atomic():  # the state first: a crash before the move just quarantines again
            t.state, t.reason, t.errors, t.disposition = T.QUARANTINED, reason, errors, str(dest)
            t.save()
            record_event(E.QUARANTINED, reason, transfer=t)
        dest.mkdir(parents=True, exist_ok=True)
        lines = [
            f"原因：{reason}",
            f"时间：{timezone.localtime():%Y-%m-%d %H:%M:%S}",
            "文件：" + "、".join(p.name for p in paths),
        ]
        if errors:
            lines.append("明细：")
            lines += [
                f"  - {e.get('field', '')}  {e.get('rule', '')}  {e.get('message', '')}" for e in errors[:50]
            ]
        lines += [
            "",
            "本目录中的 PDF 与索引文件已加密保存（.sm4，SM4-GCM），可用 manage.py open_sealed_file 查看。",
            "处理：修正数据（或字典对照）后，由 LIS 重新归档该报告；",
            "或在“检验报告传输”页面对该记录选择“移回重新处理”（文件解密后移回投递目录，传输服务会重新处理）。",
        ]
        index.atomic_write(dest, f"{t.stem}.reason.txt", ("\n".join(lines) + "\n").encode("utf-8"))
        for p in paths:
            try:
                _seal_away(p, dest)
            except FileNotFoundError:
                pass
        self._seen.pop(t.stem, None)
        stats.quarantined += 1

    # ------------------------------------------------------------------ the watcher loop
    def run(self, stop: threading.Event, *, debounce: float = 0.1) -> None:
        observer = self._start_observer()
        record_event(
            E.STARTED,
            f"传输服务启动（pid {os.getpid()}），投递目录 {self.cfg.drop_dir}；"
            f"{'文件系统事件 + ' if observer else ''}每 {self.cfg.rescan_seconds:g} 秒全量扫描",
        )
        next_rescan = 0.0
        try:
            while not stop.is_set():
                try:
                    close_old_connections()
                    now = time.monotonic()
                    if self.wake.is_set() or now >= next_rescan:
                        if self.wake.is_set():
                            time.sleep(debounce)  # let a burst of events settle
                            self.wake.clear()
                        if now >= next_rescan:
                            next_rescan = now + self.cfg.rescan_seconds
                        self.scan()
                    self.check()
                except (OperationalError, InterfaceError) as exc:  # database restarting: keep trying
                    log.warning("lab transfer: database unavailable: %s", exc)
                    from django.db import connections

                    connections.close_all()
                    stop.wait(2.0)
                    continue
                self.wake.wait(min(self.cfg.accept_poll_seconds, max(0.0, next_rescan - time.monotonic())))
        finally:
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)

    def _start_observer(self):
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # rescan alone still works
            log.warning("watchdog not installed: drop folder is only rescanned periodically")
            return None
        wake = self.wake

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("created", "moved", "closed", "deleted", "modified"):
                    wake.set()

        observer = Observer()
        observer.schedule(Handler(), str(self.cfg.drop_dir), recursive=False)
        observer.daemon = True
        observer.start()
        return observer


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


# ---------------------------------------------------------------------- helpers


def _seal_away(path: Path, folder: Path, data: bytes | None = None) -> Path:
    """Move a drop file into the archive or quarantine folder, SM4-GCM sealed (``<name>.sm4``,
    0600, written and synced before the drop file is removed): what stays on disk after the upload
    holds no patient data in clear. ``manage.py open_sealed_file`` opens one for a person;
    ``services.requeue_quarantined`` puts quarantined ones back into the drop folder in clear."""
    data = path.read_bytes() if data is None else data
    sealed = folder / (path.name + atrest.SEALED_SUFFIX)
    if not _holds(sealed, data):  # else: sealed before a crash kept the drop file; not twice
        sealed = atrest.write_sealed_file(folder, path.name, data)
    path.unlink(missing_ok=True)
    return sealed


def _holds(sealed: Path, data: bytes) -> bool:
    """Does this sealed file exist and open to exactly these bytes?"""
    try:
        return atrest.read_sealed_file(sealed) == data
    except (FileNotFoundError, atrest.SealBroken):
        return False


AUTHENTICATED = {"archive": "与本系统归档的版本一致", "mac": "索引校验码正确"}


def _archived_here(report_id: str, version: int, content_hash: str, pdf_sm3: str) -> bool:
    """Is this exactly a version this server archived (its content and its PDF)?"""
    return LabReportVersion.objects.filter(
        report__report_id=report_id,
        version=version,
        content_hash=content_hash,
        pdf_sm3=pdf_sm3,
        archived_at__isnull=False,
    ).exists()


def _stem_order(stem: str):
    name, _, version = stem.rpartition("_v")
    return (name, int(version)) if name and (version.isascii() and version.isdigit()) else (stem, 0)


def _report_id_of(stem: str) -> str:
    name, _, version = stem.rpartition("_v")
    return name[:20] if name and (version.isascii() and version.isdigit()) else ""


def _errors_text(errors: list[dict]) -> str:
    text = "；".join(f"{e.get('field')}：{e.get('message')}" for e in errors[:5])
    return text + (f"；等 {len(errors)} 处" if len(errors) > 5 else "")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} 分钟" if seconds >= 60 else f"{seconds:g} 秒"


def _parse_time(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


__all__ = ["PassStats", "TransferService", "install_signal_handlers", "record_event"]
