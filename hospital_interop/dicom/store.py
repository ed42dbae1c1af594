"""C-STORE SCU to the front-end processor (影像同步). See the package docstring for the design.

    scu = StoreSCU(config)
    outcome = scu.send_all(instances, on_result=record)   # record(InstanceResult) per instance

``send_all`` opens one association per batch (``config.batch_size`` instances, and at most 128
presentation contexts), calls ``on_result`` synchronously for every instance it attempted — an
instance is *stored* only on a Success or Warning status from the peer — and stops at the first
association-level failure (refused, rejected, aborted, link lost, timeout), reporting it in the
outcome. Nothing here retries: retry timing belongs to the caller's persistent job.
"""

from __future__ import annotations

import logging
import queue
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context, evt
from pynetdicom._handlers import standard_dimse_recv_handler, standard_pdu_recv_handler
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.status import code_to_category

from .config import DicomConfig, Peer
from .files import InstanceFile, read_instance

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128  # PS3.8: presentation context ids are odd numbers 1..255
FALLBACK_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
# re-encoding is lossless only between little-endian uncompressed syntaxes (pydicom does not byte-swap
# pixel data from big endian, and compressed pixel data is never decoded here)
CONVERTIBLE_SYNTAXES = frozenset(
    {ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
)
UNLIMITED_PDU_CHUNK = 16 * 1024 * 1024  # a peer without a PDU limit still gets bounded writes
FAST_LOOP_DELAY = 0.0001  # DUL reactor poll interval during a batch (pynetdicom's default is 1 ms)
PAUSE_SETTLE = 0.003  # > one association-reactor loop (1 ms): the reactor is really parked
PRIORITY_MEDIUM = 0x0000
STORED_CATEGORIES = ("Success", "Warning")
TRANSIENT_STATUSES = frozenset({0x0210, 0x0213}) | frozenset(range(0xA700, 0xA800))  # busy / out of resources


class LinkLost(Exception):
    """The association ended under us (peer abort, closed connection, no answer in time)."""


@dataclass(frozen=True)
class InstanceResult:
    instance: InstanceFile
    kind: str  # stored | rejected (permanent status) | failed (transient status) | unsupported | lost
    status: int | None = None
    error: str = ""

    @property
    def stored(self) -> bool:
        return self.kind == "stored"

    @property
    def sent(self) -> bool:
        """Whether the instance went on the wire in this attempt."""
        return self.kind != "unsupported"


@dataclass
class BatchOutcome:
    attempted: int = 0
    stored: int = 0
    problems: int = 0  # rejected, failed, unsupported
    error: str = ""  # association-level failure, Chinese
    results: list[InstanceResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error

    def add(self, other: BatchOutcome) -> None:
        self.attempted += other.attempted
        self.stored += other.stored
        self.problems += other.problems
        self.results += other.results
        self.error = self.error or other.error


def status_kind(status: int) -> str:
    if code_to_category(status) in STORED_CATEGORIES:
        return "stored"
    return "failed" if status in TRANSIENT_STATUSES else "rejected"


# --------------------------------------------------------------------------- wire encoding


def _ui(element: int, uid: str) -> bytes:
    value = uid.encode("ascii")
    if len(value) % 2:
        value += b"\x00"
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def _us(element: int, value: int) -> bytes:
    return struct.pack("<HHIH", 0x0000, element, 2, value)


def encode_store_command(
    sop_class_uid: str, sop_instance_uid: str, message_id: int, priority: int = PRIORITY_MEDIUM
) -> bytes:
    """The C-STORE-RQ command set (PS3.7 §9.3.1.1, table 9.3-1) in implicit VR little endian,
    byte for byte what pynetdicom encodes (tests compare the two)."""
    body = b"".join(
        (
            _ui(0x0002, sop_class_uid),  # Affected SOP Class UID
            _us(0x0100, 0x0001),  # Command Field: C-STORE-RQ
            _us(0x0110, message_id),  # Message ID
            _us(0x0700, priority),  # Priority
            _us(0x0800, 0x0001),  # Command Data Set Type: a data set follows
            _ui(0x1000, sop_instance_uid),  # Affected SOP Instance UID
        )
    )
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


def _pdv_header(length: int, context_id: int, control: int) -> bytes:
    """P-DATA-TF PDU header with one PDV item (PS3.8 §9.3.5): the PDV carries ``length`` bytes."""
    return struct.pack(">BBIIBB", 0x04, 0x00, length + 6, length + 2, context_id, control)


def _sendmsg_all(sock: socket.socket, buffers: list) -> None:
    views = [memoryview(b).cast("B") for b in buffers]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]


# --------------------------------------------------------------------------- presentation contexts


def _context_keys(instances: Iterable[InstanceFile]) -> list[tuple[str, tuple[str, ...]]]:
    """(abstract syntax, transfer syntaxes) to propose: one context per SOP class and transfer
    syntax found (exact match, so files go out as they are), plus one fallback context per SOP
    class with the uncompressed syntaxes (an uncompressed file is re-encoded when the peer
    refuses its exact syntax)."""
    exact: dict[tuple[str, tuple[str, ...]], None] = {}
    classes: dict[str, None] = {}
    for inst in instances:
        exact[(inst.sop_class_uid, (inst.transfer_syntax_uid,))] = None
        classes[inst.sop_class_uid] = None
    keys = list(exact)
    for sop_class in classes:
        fallback = (sop_class, FALLBACK_SYNTAXES)
        if fallback not in exact:
            keys.append(fallback)
    return keys


def plan_batches(instances: Sequence[InstanceFile], batch_size: int) -> list[list[InstanceFile]]:
    """Split into batches of at most ``batch_size`` instances whose contexts fit one association."""
    batches: list[list[InstanceFile]] = []
    current: list[InstanceFile] = []
    combos: set[tuple[str, str]] = set()
    classes: set[str] = set()
    for inst in instances:
        combo = (inst.sop_class_uid, inst.transfer_syntax_uid)
        needed = len(combos | {combo}) + len(classes | {inst.sop_class_uid})
        if current and (len(current) >= max(batch_size, 1) or needed > MAX_CONTEXTS):
            batches.append(current)
            current, combos, classes = [], set(), set()
        current.append(inst)
        combos.add(combo)
        classes.add(inst.sop_class_uid)
    if current:
        batches.append(current)
    return batches


class _NoDelayAE(AE):
    """An AE whose association sockets are created with TCP_NODELAY: a C-STORE is a small command
    PDU followed by the data set, and Nagle's algorithm would hold the small writes back until the
    peer's delayed ACK (tens of milliseconds per instance)."""

    def _create_socket(self, assoc, address, tls_args):
        sock = super()._create_socket(assoc, address, tls_args)
        if sock.socket is not None:
            sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


# --------------------------------------------------------------------------- the sender


class StoreSCU:
    def __init__(self, config: DicomConfig, peer: Peer | None = None):
        self.config = config
        self.peer = peer or config.fep
        self.ae = _NoDelayAE(ae_title=config.calling_ae_title)
        self.ae.maximum_pdu_size = config.max_pdu
        self.ae.acse_timeout = config.acse_timeout
        self.ae.dimse_timeout = config.dimse_timeout
        self.ae.network_timeout = config.network_timeout
        self.ae.connection_timeout = config.connect_timeout

    def send_all(
        self, instances: Sequence[InstanceFile], on_result: Callable[[InstanceResult], None] | None = None
    ) -> BatchOutcome:
        total = BatchOutcome()
        for batch in plan_batches(instances, self.config.batch_size):
            outcome = self.send_batch(batch, on_result)
            total.add(outcome)
            if not outcome.ok:
                break
        return total

    def send_batch(
        self, instances: Sequence[InstanceFile], on_result: Callable[[InstanceResult], None] | None = None
    ) -> BatchOutcome:
        """One association: every instance is attempted until the link fails."""
        outcome = BatchOutcome()
        if not self.peer.configured:
            outcome.error = "未配置前置机 AE（DICOM_FEP_AE_TITLE / HOST / PORT）"
            return outcome
        contexts = [build_context(UID(a), [UID(t) for t in ts]) for a, ts in _context_keys(instances)]
        assoc = self.ae.associate(
            self.peer.host, self.peer.port, contexts=contexts, ae_title=self.peer.ae_title
        )
        if not assoc.is_established:
            if assoc.is_rejected:
                outcome.error = f"前置机 {self.peer} 拒绝建立关联（请核对 AE 名称与允许的 SOP 类）"
            else:
                outcome.error = f"无法连接前置机 {self.peer}（连接失败或关联请求被中止）"
            return outcome
        link = _Link(assoc, self.config.dimse_timeout)
        started = time.monotonic()
        finished = False
        try:
            link.pause_reactor()
            for inst in instances:
                result = link.store(inst)
                outcome.attempted += result.sent
                outcome.stored += result.stored
                outcome.problems += result.kind in ("rejected", "failed", "unsupported")
                outcome.results.append(result)
                if on_result is not None:
                    on_result(result)
                if result.kind == "lost":
                    outcome.error = result.error
                    break
            finished = not outcome.error
        except LinkLost as exc:
            outcome.error = f"与前置机的连接中断：{exc}"
        finally:
            link.resume_reactor()
            if finished and assoc.is_established:
                assoc.release()
            elif not assoc.is_aborted:
                assoc.abort()
        elapsed = time.monotonic() - started
        log.info(
            "C-STORE to %s: %d of %d instance(s) stored, %d problem(s), %.2f s, %.1f MB/s%s",
            self.peer,
            outcome.stored,
            len(instances),
            outcome.problems,
            elapsed,
            sum(r.instance.size for r in outcome.results if r.stored) / max(elapsed, 1e-6) / 1e6,
            f"; {outcome.error}" if outcome.error else "",
        )
        return outcome


class _Link:
    """An established association, used from the calling thread for a batch of C-STOREs."""

    def __init__(self, assoc, dimse_timeout: float):
        self.assoc = assoc
        self.dimse_timeout = dimse_timeout
        self.sock: socket.socket = assoc.dul.socket.socket
        max_pdu = assoc.acceptor.maximum_length or 0  # the peer's maximum receive length
        self.chunk = (max_pdu - 6) if max_pdu else UNLIMITED_PDU_CHUNK
        self.message_id = 0
        self._loop_delay = assoc.dul._run_loop_delay
        # pynetdicom's standard handlers log (and decode for logging) every response and PDU; a batch
        # logs one summary line instead (StoreSCU.send_batch)
        for event, handler in (
            (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
            (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
        ):
            try:
                assoc.unbind(event, handler)
            except (ValueError, KeyError):
                pass
        self._contexts = {}
        for cx in assoc.accepted_contexts:
            self._contexts.setdefault((cx.abstract_syntax, cx.transfer_syntax[0]), cx)

    # The association reactor would take DIMSE responses off the queue while it runs; it stays
    # parked for the whole batch (pynetdicom's own send_* methods park it per message).
    def pause_reactor(self) -> None:
        assoc = self.assoc
        assoc._reactor_checkpoint.clear()
        deadline = time.monotonic() + 5
        for _ in range(2):
            while not assoc._is_paused:
                if not assoc.is_established or time.monotonic() > deadline:
                    raise LinkLost("关联在开始发送前已结束")
                time.sleep(0.0001)
            time.sleep(PAUSE_SETTLE)
        assoc.dul._run_loop_delay = FAST_LOOP_DELAY

    def resume_reactor(self) -> None:
        self.assoc.dul._run_loop_delay = self._loop_delay
        self.assoc._reactor_checkpoint.set()

    def _context(self, inst: InstanceFile):
        """(context, re-encode?) for an instance; None when the peer accepted nothing usable."""
        cx = self._contexts.get((inst.sop_class_uid, inst.transfer_syntax_uid))
        if cx is not None:
            return cx, False
        if inst.transfer_syntax_uid in CONVERTIBLE_SYNTAXES:
            for ts in FALLBACK_SYNTAXES:
                cx = self._contexts.get((inst.sop_class_uid, ts))
                if cx is not None:
                    return cx, True
        return None

    def _data_set(self, inst: InstanceFile, cx, convert: bool):
        if convert:
            ts = cx.transfer_syntax[0]
            data = encode(dcmread(inst.path), ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)
            if data is None:
                raise ValueError("数据集重新编码失败")
            return memoryview(data)
        with open(inst.path, "rb", buffering=0) as f:
            raw = f.read()
        offset = inst.data_offset
        if len(raw) != inst.size:  # the file changed since it was scanned
            offset = read_instance(inst.path).data_offset
        return memoryview(raw)[offset:]

    def store(self, inst: InstanceFile) -> InstanceResult:
        found = self._context(inst)
        if found is None:
            return InstanceResult(
                inst,
                "unsupported",
                error=(f"前置机不接受 SOP 类 {inst.sop_class_uid} 的传输语法 {inst.transfer_syntax_uid}"),
            )
        cx, convert = found
        try:
            data = self._data_set(inst, cx, convert)
        except (OSError, ValueError) as exc:
            return InstanceResult(inst, "unsupported", error=f"读取文件失败：{exc}")
        self.message_id = self.message_id % 0xFFFF + 1
        command = encode_store_command(inst.sop_class_uid, inst.sop_instance_uid, self.message_id)
        cid = cx.context_id
        try:
            _sendmsg_all(self.sock, [_pdv_header(len(command), cid, 0x03), command])
            n, step = len(data), self.chunk
            for start in range(0, n, step):
                part = data[start : start + step]
                last = start + step >= n
                _sendmsg_all(self.sock, [_pdv_header(len(part), cid, 0x02 if last else 0x00), part])
            rsp = self._response(self.message_id)
        except (OSError, LinkLost) as exc:
            return InstanceResult(inst, "lost", error=f"与前置机的连接中断：{exc}")
        status = int(rsp.Status)
        kind = status_kind(status)
        error = (
            ""
            if kind == "stored"
            else f"前置机返回状态 0x{status:04X}"
            + (f"：{rsp.ErrorComment}" if getattr(rsp, "ErrorComment", None) else "")
        )
        return InstanceResult(inst, kind, status=status, error=error)

    def _response(self, message_id: int) -> C_STORE:
        deadline = time.monotonic() + self.dimse_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkLost(f"{self.dimse_timeout:g} 秒内未收到应答")
            try:
                _, rsp = self.assoc.dimse.msg_queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if rsp is None:  # pynetdicom's signal: aborted or connection closed
                raise LinkLost("关联已中止或连接已关闭")
            if (
                isinstance(rsp, C_STORE)
                and rsp.MessageIDBeingRespondedTo == message_id
                and rsp.Status is not None
            ):
                return rsp
            log.warning("ignoring unexpected DIMSE message %s", type(rsp).__name__)
