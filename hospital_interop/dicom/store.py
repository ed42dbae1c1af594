"""C-STORE SCU to the front-end processor (影像同步). See the package docstring for the design.

    scu = StoreSCU(config)
    outcome = scu.send_all(instances, on_result=record)   # record(InstanceResult) per instance

``send_all`` opens one association per batch (``config.batch_size`` instances, and at most 128
presentation contexts) and calls ``on_result`` synchronously for every instance, with what became
of it (``InstanceResult.kind``):

``stored``    a Success or Warning status from the peer (the only way an instance is stored)
``invalid``   the file cannot be sent (``InstanceFile.problem``: checked before anything is proposed)
``rejected``  refused for good by the peer: its presentation contexts refused (and no lossless
              conversion to one it accepted), or a failure status PS3.4 makes final (0xA9xx,
              0xCxxx, 0x0122, …) — each with a Chinese reason naming the SOP class / transfer syntax
``failed``    a failure status that may pass (0xA7xx Refused: Out of Resources, 0x0213, cancel)
``lost``      the association ended while this instance was in flight (abort, connection closed,
              no answer within the DIMSE timeout)

A lost instance ends its association only: the instances after it go on a new one, so one bad
instance never holds back the rest. ``send_all`` stops (``BatchOutcome.error``) when no
association can be made, or when two instances in a row are lost with nothing stored between (the
peer, not an instance, is failing). Nothing here retries: retry timing belongs to the caller's
persistent job, which sends lost and failed instances again behind the others.

During a batch the C-STORE-RSPs are read off the socket by the sending thread itself (a P-DATA-TF
PDU is peeked at, then read and its command set decoded: ``_Link._read_response``), with
pynetdicom's DUL thread kept off the socket meanwhile (``_ParkedSocket``): the response no longer
crosses two threads and two queues before the next instance can go. Anything but a P-DATA-TF PDU
(an A-ABORT, an A-RELEASE-RQ, a closed connection) is left unread on the socket and the socket
handed back to pynetdicom, which deals with it as before.

Every data set is framed in P-DATA-TF PDVs of even length: fragments are cut at even sizes and a
data set of odd length (a deflated stream, PS3.5 §A.5) gets one trailing pad byte. A data set in a
transfer syntax the peer refused is converted losslessly when it can be (``transcode``: explicit
VR big endian and deflated → explicit or implicit VR little endian), as dcmtk's storescu does.
"""

from __future__ import annotations

import logging
import queue
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydicom.errors import InvalidDicomError
from pydicom.uid import UID
from pynetdicom import AE, build_context, evt
from pynetdicom._handlers import standard_dimse_recv_handler, standard_pdu_recv_handler
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.status import code_to_category
from pynetdicom.transport import AssociationSocket

from . import transcode
from .config import DicomConfig, Peer
from .files import InstanceFile, read_instance

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128  # PS3.8: presentation context ids are odd numbers 1..255
FALLBACK_SYNTAXES = transcode.TARGETS  # proposed for every SOP class: what a file is converted to
UNLIMITED_PDU_CHUNK = 16 * 1024 * 1024  # a peer without a PDU limit still gets bounded writes
FAST_LOOP_DELAY = 0.0001  # DUL reactor poll interval during a batch (pynetdicom's default is 1 ms)
PAUSE_SETTLE = 0.003  # > one association-reactor loop (1 ms): the reactor is really parked
PRIORITY_MEDIUM = 0x0000
STORED_CATEGORIES = ("Success", "Warning")
PAD = b"\x00"  # PS3.5 §A.5: a deflated stream of odd length ends with one NULL byte

# C-STORE failure statuses (PS3.4 table B.2-1, PS3.7 annex C): (first, last, may pass?, meaning)
STATUS_RULES = (
    (0xA700, 0xA7FF, True, "前置机资源不足，暂时拒收（Refused: Out of Resources）"),
    (0x0213, 0x0213, True, "前置机资源受限（Resource Limitation）"),
    (0x0210, 0x0210, True, "重复调用（Duplicate Invocation）"),
    (0xFE00, 0xFE00, True, "前置机取消了操作（Cancel）"),
    (0xA900, 0xA9FF, False, "数据集与 SOP 类 {sop} 不符（Error: Data Set Does Not Match SOP Class）"),
    (0xC000, 0xCFFF, False, "前置机无法理解该数据集（Error: Cannot Understand）"),
    (0x0122, 0x0122, False, "前置机不支持 SOP 类 {sop}（SOP Class Not Supported）"),
    (0x0124, 0x0124, False, "前置机拒绝：未授权（Not Authorized）"),
    (0x0117, 0x0117, False, "SOP Instance UID 无效（Invalid Object Instance）"),
    (0x0111, 0x0111, False, "前置机已有同一 SOP Instance UID 的实例（Duplicate SOP Instance）"),
    (0x0110, 0x0110, False, "前置机处理失败（Processing Failure）"),
    (0x0211, 0x0211, False, "前置机无法识别该操作（Unrecognized Operation）"),
    (0x0212, 0x0212, False, "命令参数类型错误（Mistyped Argument）"),
)
RETRY_KINDS = ("failed", "lost")  # what a caller sends again later
CONTEXT_RESULTS = {
    0x01: "被对方拒绝（user rejection）",
    0x02: "被对方拒绝（no reason）",
    0x03: "不支持该 SOP 类（abstract syntax not supported）",
    0x04: "不支持所提议的传输语法（transfer syntaxes not supported）",
}


_PDU_HEADER = struct.Struct(">BBI")
_PDV_HEADER = struct.Struct(">IBB")
_ELEMENT = struct.Struct("<HHI")
C_STORE_RSP = 0x8001


@dataclass(frozen=True)
class StoreResponse:
    """A C-STORE-RSP command set as read by the sender (the fields ``_Link.store`` uses)."""

    MessageIDBeingRespondedTo: int
    Status: int
    ErrorComment: str = ""


def decode_response_command(command: bytes) -> tuple[int, StoreResponse | None]:
    """(Command Field, the C-STORE-RSP or None) of a command set in implicit VR little endian
    (PS3.7 §6.3.1); ValueError if it is malformed."""
    fields: dict[int, bytes] = {}
    pos, end = 0, len(command)
    while pos < end:
        if pos + 8 > end:
            raise ValueError("truncated command element")
        group, element, length = _ELEMENT.unpack_from(command, pos)
        pos += 8
        if group != 0x0000 or pos + length > end:
            raise ValueError("malformed command set")
        fields[element] = command[pos : pos + length]
        pos += length

    def us(element: int) -> int | None:
        value = fields.get(element)
        return int.from_bytes(value, "little") if value is not None and len(value) == 2 else None

    command_field = us(0x0100)
    if command_field is None:
        raise ValueError("command set without a Command Field")
    message_id, status = us(0x0120), us(0x0900)
    if command_field != C_STORE_RSP or message_id is None or status is None:
        return command_field, None
    comment = fields.get(0x0902, b"").rstrip(b"\x00 ").decode("ascii", "replace")
    return command_field, StoreResponse(message_id, status, comment)


class _ParkedSocket:
    """Stands in for pynetdicom's AssociationSocket in its DUL thread while a batch reads the
    responses itself: never ``ready``, so the DUL thread does not read the socket; everything else
    goes to the real one."""

    def __init__(self, real):
        self._real = real

    @property
    def ready(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._real, name)


class LinkLost(Exception):
    """The association ended under us (peer abort, closed connection, no answer in time)."""


@dataclass(frozen=True)
class InstanceResult:
    instance: InstanceFile
    kind: str  # stored | invalid | rejected | failed | lost (see the module docstring)
    status: int | None = None
    error: str = ""  # Chinese: why it was not stored
    sent: bool = True  # whether it went on the wire in this attempt
    converted_to: str = ""  # the transfer syntax it was converted to, when it was

    @property
    def stored(self) -> bool:
        return self.kind == "stored"


@dataclass
class BatchOutcome:
    attempted: int = 0
    stored: int = 0
    problems: int = 0  # invalid, rejected, failed, lost
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


def _status_rule(status: int) -> tuple[bool, str]:
    for first, last, may_pass, meaning in STATUS_RULES:
        if first <= status <= last:
            return may_pass, meaning
    return False, "前置机拒收"


def status_kind(status: int) -> str:
    """stored, failed (may pass: send again later) or rejected (final for this instance)."""
    if code_to_category(status) in STORED_CATEGORIES:
        return "stored"
    return "failed" if _status_rule(status)[0] else "rejected"


def sop_class_name(uid: str) -> str:
    name = UID(uid).name
    return f"{name}（{uid}）" if name != uid else uid


def status_reason(status: int, sop_class_uid: str, comment: str = "") -> str:
    """What a failure status means, in Chinese, with the code and the peer's error comment."""
    meaning = _status_rule(status)[1].format(sop=sop_class_name(sop_class_uid))
    return f"{meaning}，状态 0x{status:04X}" + (f"：{comment}" if comment else "")


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
        """Every instance, in order, each at most once (see the module docstring)."""
        total = BatchOutcome()

        def report(result: InstanceResult) -> None:
            if on_result is not None:
                on_result(result)

        queue = []
        for inst in instances:
            if inst.problem:
                result = InstanceResult(inst, "invalid", error=inst.problem, sent=False)
                total.problems += 1
                total.results.append(result)
                report(result)
            else:
                queue.append(inst)
        lost_in_a_row = 0
        while queue:
            batch = plan_batches(queue, self.config.batch_size)[0]
            outcome, consumed = self.send_batch(batch, on_result)
            total.add(outcome)
            queue = queue[consumed:]
            if outcome.error:
                break
            if outcome.results and outcome.results[-1].kind == "lost":
                lost_in_a_row = 1 if outcome.stored else lost_in_a_row + 1
                if lost_in_a_row >= 2:
                    total.error = f"前置机 {self.peer} 连续两次在发送实例时中断关联，暂停发送：{outcome.results[-1].error}"
                    break
            elif outcome.stored:
                lost_in_a_row = 0
        return total

    def send_batch(
        self, instances: Sequence[InstanceFile], on_result: Callable[[InstanceResult], None] | None = None
    ) -> tuple[BatchOutcome, int]:
        """One association: the instances in order until one is lost. (outcome, how many of the
        instances it dealt with: all of them, or up to the lost one)."""
        outcome = BatchOutcome()
        if not self.peer.configured:
            outcome.error = "未配置前置机 AE（DICOM_FEP_AE_TITLE / HOST / PORT）"
            return outcome, 0
        contexts = [build_context(UID(a), [UID(t) for t in ts]) for a, ts in _context_keys(instances)]
        assoc = self.ae.associate(
            self.peer.host, self.peer.port, contexts=contexts, ae_title=self.peer.ae_title
        )

        def done(result: InstanceResult) -> None:
            outcome.attempted += result.sent
            outcome.stored += result.stored
            outcome.problems += not result.stored
            outcome.results.append(result)
            if on_result is not None:
                on_result(result)

        if not assoc.is_established:
            if assoc.is_rejected:
                outcome.error = f"前置机 {self.peer} 拒绝建立关联（请核对 AE 名称与允许的 SOP 类）"
            elif assoc.rejected_contexts and not assoc.accepted_contexts:
                # the peer answered, refusing every presentation context: a fact about these
                # instances (their SOP classes / transfer syntaxes), not about the link
                negotiation = _Negotiation([], assoc.rejected_contexts)
                for inst in instances:
                    done(InstanceResult(inst, "rejected", error=negotiation.refusal(inst), sent=False))
                return outcome, len(instances)
            else:
                outcome.error = f"无法连接前置机 {self.peer}（连接失败或关联请求被中止）"
            return outcome, 0
        link = _Link(assoc, self.config.dimse_timeout)
        started = time.monotonic()
        consumed = 0
        try:
            link.pause_reactor()
            for inst in instances:
                result = link.store(inst)
                consumed += 1
                done(result)
                if result.kind == "lost":
                    break
        except LinkLost as exc:
            outcome.error = f"与前置机的连接中断：{exc}"
        finally:
            link.resume_reactor()
            lost = bool(outcome.error) or (outcome.results and outcome.results[-1].kind == "lost")
            if not lost and assoc.is_established:
                assoc.release()
            elif not assoc.is_aborted:
                assoc.abort()
        elapsed = time.monotonic() - started
        log.info(
            "C-STORE to %s: %d of %d instance(s) stored, %d problem(s), %.2f s, %.1f MB/s%s",
            self.peer,
            outcome.stored,
            consumed,
            outcome.problems,
            elapsed,
            sum(r.instance.size for r in outcome.results if r.stored) / max(elapsed, 1e-6) / 1e6,
            f"; {outcome.error}" if outcome.error else "",
        )
        return outcome, consumed


class _Negotiation:
    """What the peer accepted, by (SOP class, transfer syntax), and why it refused the rest."""

    def __init__(self, accepted, rejected):
        self.accepted = {}
        for cx in accepted:
            self.accepted.setdefault((cx.abstract_syntax, cx.transfer_syntax[0]), cx)
        self.refused: dict[str, set[int]] = {}
        for cx in rejected:
            self.refused.setdefault(cx.abstract_syntax, set()).add(cx.result)

    def choose(self, inst: InstanceFile):
        """(context, transfer syntax to convert to or "") for an instance; None: nothing usable."""
        cx = self.accepted.get((inst.sop_class_uid, inst.transfer_syntax_uid))
        if cx is not None:
            return cx, ""
        for ts in FALLBACK_SYNTAXES:
            cx = self.accepted.get((inst.sop_class_uid, ts))
            if cx is not None and transcode.convertible(inst.transfer_syntax_uid, ts):
                return cx, ts
        return None

    def refusal(self, inst: InstanceFile) -> str:
        """Why an instance has no usable context (Chinese)."""
        sop, ts = sop_class_name(inst.sop_class_uid), UID(inst.transfer_syntax_uid)
        taken = sorted({UID(t).name for (a, t) in self.accepted if a == inst.sop_class_uid})
        if taken:
            return (
                f"前置机不接受 SOP 类 {sop} 的传输语法 {ts.name}（{ts}），只接受 {'、'.join(taken)}，"
                "且该文件无法无损转换为其中之一"
            )
        results = self.refused.get(inst.sop_class_uid, set())
        if results == {0x03}:
            return f"前置机不支持 SOP 类 {sop}（表示上下文被拒绝：abstract syntax not supported）"
        why = "、".join(sorted(CONTEXT_RESULTS.get(r, f"结果 {r}") for r in results)) or "未被接受"
        return f"前置机拒绝了 SOP 类 {sop} 的表示上下文（{why}），传输语法 {ts.name}（{ts}）"


class _Link:
    """An established association, used from the calling thread for a batch of C-STOREs."""

    def __init__(self, assoc, dimse_timeout: float):
        self.assoc = assoc
        self.dimse_timeout = dimse_timeout
        self.sock: socket.socket = assoc.dul.socket.socket
        max_pdu = assoc.acceptor.maximum_length or 0  # the peer's maximum receive length
        # PDVs of even length only (dcmtk aborts on an odd fragment): PDU = 6-byte PDV header + data
        self.chunk = ((max_pdu - 6) if max_pdu else UNLIMITED_PDU_CHUNK) & ~1
        self.message_id = 0
        self._loop_delay = assoc.dul._run_loop_delay
        self._dul_socket = assoc.dul.socket
        self._timeout = self.sock.gettimeout()
        # the responses are read here while the DUL thread is parked (plain TCP only: a TLS
        # socket has no MSG_PEEK and no sendmsg)
        self.direct = isinstance(self._dul_socket, AssociationSocket) and type(self.sock) is socket.socket
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
        self.negotiation = _Negotiation(assoc.accepted_contexts, assoc.rejected_contexts)

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
        if self.direct:
            assoc.dul.socket = _ParkedSocket(self._dul_socket)
            # a DUL loop that looked at the real socket just before the swap is past it by now;
            # nothing was due from the peer anyway (no request outstanding)
            time.sleep(PAUSE_SETTLE)

    def _unpark(self) -> None:
        if self.assoc.dul.socket is not self._dul_socket:
            self.sock.settimeout(self._timeout)
            self.assoc.dul.socket = self._dul_socket
        self.direct = False

    def resume_reactor(self) -> None:
        self._unpark()
        # the DUL restarts its idle timer on every PDU it reads: it read none during the batch
        self.assoc.dul._idle_timer.restart()
        self.assoc.dul._run_loop_delay = self._loop_delay
        self.assoc._reactor_checkpoint.set()

    def _data_set(self, inst: InstanceFile, convert_to: str):
        """The encoded data set to send: the file's bytes after its meta, or converted."""
        if convert_to:
            return memoryview(transcode.reencode(inst.path, inst.transfer_syntax_uid, convert_to))
        with open(inst.path, "rb", buffering=0) as f:
            raw = f.read()
        offset = inst.data_offset
        if len(raw) != inst.size:  # the file changed since it was scanned
            again = read_instance(inst.path, ())  # its tags were checked when it was scanned
            if again.problem:
                raise ValueError(again.problem)
            offset = again.data_offset
        return memoryview(raw)[offset:]

    def store(self, inst: InstanceFile) -> InstanceResult:
        found = self.negotiation.choose(inst)
        if found is None:
            return InstanceResult(inst, "rejected", error=self.negotiation.refusal(inst), sent=False)
        cx, convert_to = found
        try:
            data = self._data_set(inst, convert_to)
        except transcode.ConversionError as exc:
            return InstanceResult(
                inst,
                "rejected",
                error=f"前置机不接受传输语法 {UID(inst.transfer_syntax_uid).name}，且无法无损转换为 "
                f"{UID(convert_to).name}：{exc}",
                sent=False,
            )
        except (OSError, ValueError, InvalidDicomError) as exc:
            return InstanceResult(inst, "invalid", error=f"读取文件失败：{exc}", sent=False)
        self.message_id = self.message_id % 0xFFFF + 1
        command = encode_store_command(inst.sop_class_uid, inst.sop_instance_uid, self.message_id)
        cid = cx.context_id
        try:
            _sendmsg_all(self.sock, [_pdv_header(len(command), cid, 0x03), command])
            n, step = len(data), self.chunk
            for start in range(0, n, step):
                part = data[start : start + step]
                if start + step < n:
                    _sendmsg_all(self.sock, [_pdv_header(len(part), cid, 0x00), part])
                else:  # the last fragment, padded to an even length
                    pad = PAD if len(part) % 2 else b""
                    _sendmsg_all(self.sock, [_pdv_header(len(part) + len(pad), cid, 0x02), part, pad])
            rsp = self._response(self.message_id)
        except OSError as exc:  # the peer aborted or closed the connection while we were writing
            why = f"连接被对方中止或断开（{exc.strerror or exc}）"
            return InstanceResult(inst, "lost", error=f"与前置机的连接中断：{why}", converted_to=convert_to)
        except LinkLost as exc:
            return InstanceResult(inst, "lost", error=f"与前置机的连接中断：{exc}", converted_to=convert_to)
        status = int(rsp.Status)
        kind = status_kind(status)
        comment = str(getattr(rsp, "ErrorComment", None) or "")
        error = "" if kind == "stored" else status_reason(status, inst.sop_class_uid, comment)
        return InstanceResult(inst, kind, status=status, error=error, converted_to=convert_to)

    def _response(self, message_id: int) -> C_STORE | StoreResponse:
        deadline = time.monotonic() + self.dimse_timeout
        if self.direct:
            rsp = self._read_response(message_id, deadline)
            if rsp is not None:
                return rsp
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

    def _recv_exact(self, n: int, deadline: float, flags: int = 0) -> bytes:
        """n bytes (peeked at with MSG_PEEK), fewer only if the peer closed the connection."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LinkLost(f"{self.dimse_timeout:g} 秒内未收到应答")
        self.sock.settimeout(remaining)
        try:
            if flags:
                return self.sock.recv(n, flags | socket.MSG_WAITALL)
            buf = bytearray(n)
            view, got = memoryview(buf), 0
            while got < n:
                k = self.sock.recv_into(view[got:])
                if not k:
                    break
                got += k
            return bytes(view[:got])
        except TimeoutError:
            raise LinkLost(f"{self.dimse_timeout:g} 秒内未收到应答") from None
        finally:
            self.sock.settimeout(self._timeout)  # the sends keep their own (pynetdicom's) timeout

    def _read_response(self, message_id: int, deadline: float) -> StoreResponse | None:
        """The C-STORE-RSP read off the socket here; None when the next PDU is not a P-DATA-TF
        (abort, release request, closed connection): it is left unread and the socket given back
        to pynetdicom, whose queue the caller then waits on."""
        command = bytearray()
        while True:
            head = self._recv_exact(6, deadline, socket.MSG_PEEK)
            if len(head) < 6 or head[0] != 0x04:
                self._unpark()
                return None
            _, _, length = _PDU_HEADER.unpack(head)
            pdu = self._recv_exact(6 + length, deadline)
            if len(pdu) < 6 + length:
                raise LinkLost("关联已中止或连接已关闭")
            pos, end = 6, 6 + length
            while pos < end:
                if pos + 6 > end:
                    raise LinkLost("前置机发来格式错误的 P-DATA-TF")
                item_length, _cid, control = _PDV_HEADER.unpack_from(pdu, pos)
                if item_length < 2 or pos + 4 + item_length > end:
                    raise LinkLost("前置机发来格式错误的 P-DATA-TF")
                fragment = pdu[pos + 6 : pos + 4 + item_length]
                pos += 4 + item_length
                if not control & 0x01:  # a data set fragment: no C-STORE-RSP carries one
                    continue
                command += fragment
                if not control & 0x02:
                    continue
                try:
                    field, rsp = decode_response_command(bytes(command))
                except ValueError as exc:
                    raise LinkLost(f"前置机发来无法解码的命令：{exc}") from None
                command = bytearray()
                if rsp is not None and rsp.MessageIDBeingRespondedTo == message_id:
                    return rsp
                log.warning("ignoring unexpected DIMSE message (command field 0x%04X)", field)
