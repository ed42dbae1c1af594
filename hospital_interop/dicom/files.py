"""What a study folder holds, read from headers only (pixel data is never read), and whether each
file can be sent at all.

:func:`read_instance` reads the file meta with pydicom and walks the encoded data set itself, element
header by element header (values are skipped, never decoded): the walk proves the data set is
complete and encoded as its transfer syntax says, and picks up the few tags a sender needs. A file
that cannot be sent gets its reason in ``InstanceFile.problem`` (Chinese) and is never proposed:

* the SOP Class and SOP Instance UID of the C-STORE come from the **data set** (as dcmtk's storescu
  takes them; a peer such as Orthanc refuses a command whose UID is not the data set's); when the
  file meta names others, they are kept in ``meta_sop_*`` to be reported;
* the data set must be complete (no element longer than what is left of the file), encoded in the
  VR form and byte order of its transfer syntax, with encapsulated pixel data exactly when the
  transfer syntax is a compressed one (PS3.5 §A.4), and of even length (PS3.5 §7.1) unless
  deflated (a deflated stream is padded when it is framed, PS3.5 §A.5);
* the tags the peer files an instance under (``DicomConfig.required_tags``) must be present.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, MediaStorageDirectoryStorage

PREAMBLE_AND_PREFIX = 128 + 4
META_TAGS = {
    0x00020002: "MediaStorageSOPClassUID",
    0x00020003: "MediaStorageSOPInstanceUID",
    0x00020010: "TransferSyntaxUID",
}
TAGS = {  # the data set tags read from every file, by keyword
    0x00080016: "SOPClassUID",
    0x00080018: "SOPInstanceUID",
    0x00100020: "PatientID",
    0x0020000D: "StudyInstanceUID",
    0x0020000E: "SeriesInstanceUID",
}
TAG_NUMBERS = {keyword: f"({tag >> 16:04X},{tag & 0xFFFF:04X})" for tag, keyword in TAGS.items()}
DEFAULT_REQUIRED_TAGS = ("StudyInstanceUID", "SeriesInstanceUID")  # what a PACS files an instance under
PIXEL_DATA = 0x7FE00010
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())  # 2 reserved bytes, 32-bit length
MAX_DEPTH = 32


class BadDataSet(ValueError):
    """The encoded data set is not what its transfer syntax says (message in Chinese). ``found``:
    the tags read before the walk stopped (a truncated file still names its instance)."""

    def __init__(self, message: str, found: dict[str, str] | None = None):
        super().__init__(message)
        self.found = found or {}


@dataclass(frozen=True)
class InstanceFile:
    """One instance ready to be sent from its file: the encoded data set starts at ``data_offset``.
    ``problem`` (Chinese) says why it cannot be sent at all; such an instance is never proposed."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str
    series_instance_uid: str
    size: int
    data_offset: int
    problem: str = ""
    meta_sop_class_uid: str = ""  # the file meta's, when it differs from the data set's
    meta_sop_instance_uid: str = ""

    @property
    def meta_mismatch(self) -> str:
        """How the file meta disagrees with the data set (Chinese), or ""."""
        parts = []
        if self.meta_sop_instance_uid:
            parts.append(
                f"文件元信息的 SOP Instance UID {self.meta_sop_instance_uid} 与数据集的 "
                f"{self.sop_instance_uid} 不同"
            )
        if self.meta_sop_class_uid:
            parts.append(
                f"文件元信息的 SOP Class UID {self.meta_sop_class_uid} 与数据集的 {self.sop_class_uid} 不同"
            )
        return "；".join(parts) + ("（按数据集的 UID 发送）" if parts else "")


@dataclass
class ScanResult:
    instances: list[InstanceFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason in Chinese)


# --------------------------------------------------------------------------- the walk


@dataclass
class _Walk:
    """Walks an encoded data set (PS3.5 §7) without decoding values."""

    buf: bytes | mmap.mmap
    implicit: bool
    little: bool
    found: dict[str, str] = field(default_factory=dict)  # top-level TAGS values
    pixel_data: str = ""  # "" (none), "native" or "encapsulated"

    def __post_init__(self):
        e = "<" if self.little else ">"
        self.tag_struct, self.u16, self.u32 = (
            struct.Struct(e + "HH"),
            struct.Struct(e + "H"),
            struct.Struct(e + "L"),
        )

    def header(self, pos: int, end: int, implicit: bool) -> tuple[int, bytes, int, int]:
        """(tag, VR or b"", value length, header size) of the element at ``pos``."""
        if pos + 8 > end:
            raise BadDataSet(f"数据集在第 {pos} 字节处被截断，文件不完整")
        group, elem = self.tag_struct.unpack_from(self.buf, pos)
        tag = group << 16 | elem
        if implicit or group == 0xFFFE:
            return tag, b"", self.u32.unpack_from(self.buf, pos + 4)[0], 8
        vr = bytes(self.buf[pos + 4 : pos + 6])
        if vr not in VRS:
            raise BadDataSet(
                f"元素 ({group:04X},{elem:04X}) 的值表示 {vr!r} 无效：数据集不是其传输语法所说的显式 VR 编码"
            )
        if vr in LONG_VRS:
            if pos + 12 > end:
                raise BadDataSet(f"数据集在第 {pos} 字节处被截断，文件不完整")
            return tag, vr, self.u32.unpack_from(self.buf, pos + 8)[0], 12
        return tag, vr, self.u16.unpack_from(self.buf, pos + 6)[0], 8

    def data_set(self, pos: int, end: int, implicit: bool, depth: int, top: bool = False) -> int:
        """Walk elements from ``pos`` up to ``end`` or an item delimiter; the position after them."""
        if depth > MAX_DEPTH:
            raise BadDataSet("序列嵌套过深，数据集无法解析")
        while pos < end:
            tag, vr, length, size = self.header(pos, end, implicit)
            if tag == ITEM_END:
                return pos
            pos += size
            if length == UNDEFINED:
                if tag == PIXEL_DATA:  # encapsulated (its VR should be OB; OW is common and harmless)
                    if top:
                        self.pixel_data = "encapsulated"
                    pos = self.items(pos, end, implicit, depth, fragments=True)
                elif vr in (b"", b"SQ", b"UN"):  # implicit sequence, or UN per CP-246: implicit VR inside
                    pos = self.items(pos, end, implicit or vr == b"UN", depth, fragments=False)
                else:
                    raise BadDataSet(
                        f"元素 ({tag >> 16:04X},{tag & 0xFFFF:04X}) 的长度未定义，但其值表示不允许"
                    )
                continue
            if pos + length > end:
                raise BadDataSet(
                    f"元素 ({tag >> 16:04X},{tag & 0xFFFF:04X}) 声明 {length} 字节，超出所在序列或文件的末尾"
                    f"（只剩 {end - pos} 字节）：文件不完整"
                )
            if top:
                keyword = TAGS.get(tag)
                if keyword:
                    self.found[keyword] = (
                        bytes(self.buf[pos : pos + length]).rstrip(b"\x00 ").decode("ascii", "replace")
                    )
                elif tag == PIXEL_DATA:
                    self.pixel_data = "native"
            if vr == b"SQ":
                self.items(pos, pos + length, implicit, depth, fragments=False, defined=True)
            pos += length
        return pos

    def items(
        self, pos: int, end: int, implicit: bool, depth: int, *, fragments: bool, defined: bool = False
    ) -> int:
        """Walk the items of a sequence (or the fragments of encapsulated pixel data) from ``pos``:
        up to ``end`` for a sequence of defined length, else up to its sequence delimiter."""
        while True:
            if defined and pos >= end:
                return pos
            if pos + 8 > end:
                raise BadDataSet("序列或封装的像素数据没有结束标记，文件不完整")
            group, elem = self.tag_struct.unpack_from(self.buf, pos)
            tag, length = group << 16 | elem, self.u32.unpack_from(self.buf, pos + 4)[0]
            pos += 8
            if tag == SEQUENCE_END and not defined:
                return pos
            if tag != ITEM:
                raise BadDataSet(
                    f"序列中出现 ({group:04X},{elem:04X})，应为条目标记 (FFFE,E000)：数据集编码有误"
                )
            if length == UNDEFINED:
                if fragments:
                    raise BadDataSet("封装的像素数据片段长度未定义，数据集编码有误")
                pos = self.data_set(pos, end, implicit, depth + 1)
                tag, _, _, _ = self.header(pos, end, True)
                if tag != ITEM_END:
                    raise BadDataSet("序列条目没有结束标记，文件不完整")
                pos += 8
                continue
            if pos + length > end:
                raise BadDataSet(
                    f"序列条目声明 {length} 字节，超出所在序列或文件的末尾（只剩 {end - pos} 字节）：数据集不完整"
                )
            if fragments and length % 2:
                raise BadDataSet(f"封装的像素数据有长度为奇数（{length} 字节）的片段，违反 PS3.5 §A.4")
            if not fragments:
                self.data_set(pos, pos + length, implicit, depth + 1)
            pos += length


ENCODINGS = {  # (implicit VR, little endian): how a data set may be encoded (PS3.5 §7.1, §7.3)
    (False, True): "显式 VR 小端",
    (True, True): "隐式 VR 小端",
    (False, False): "显式 VR 大端",
    (True, False): "隐式 VR 大端",
}


def _check_encoding(buf, start: int, end: int, ts: UID) -> _Walk:
    """Walk the data set in ``buf[start:end]`` as ``ts`` encodes it; BadDataSet when it is not so
    encoded (naming the encoding it really has, when another one reads it whole)."""
    if end - start < 8:
        raise BadDataSet("数据集为空")
    declared = (ts.is_implicit_VR, ts.is_little_endian)
    walk = _Walk(buf, *declared)
    try:
        walk.data_set(start, end, declared[0], 0, top=True)
    except BadDataSet as exc:
        exc.found = walk.found
        for encoding in ENCODINGS:
            if encoding == declared:
                continue
            other = _Walk(buf, *encoding)
            try:
                other.data_set(start, end, encoding[0], 0, top=True)
            except BadDataSet:
                continue
            raise BadDataSet(
                f"传输语法为 {ts.name}（{ENCODINGS[declared]}），但数据集实际为{ENCODINGS[encoding]}编码",
                other.found,
            ) from None
        raise
    compressed = ts.is_compressed and ts != DeflatedExplicitVRLittleEndian
    if compressed and walk.pixel_data == "native":
        raise BadDataSet(f"传输语法为 {ts.name}（压缩），但像素数据未封装（PS3.5 §A.4）")
    if not compressed and walk.pixel_data == "encapsulated":
        raise BadDataSet(f"传输语法为 {ts.name}（未压缩），但像素数据是封装的压缩数据")
    return walk


# --------------------------------------------------------------------------- one file


def read_instance(path: str | Path, required_tags: Iterable[str] = DEFAULT_REQUIRED_TAGS) -> InstanceFile:
    """Header facts of one DICOM Part 10 file and, in ``problem``, why it cannot be sent (empty:
    it can). Raises InvalidDicomError / OSError when it is not a DICOM file at all, ValueError when
    its file meta names no transfer syntax."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        meta, offset = _read_meta(f)
        if "TransferSyntaxUID" not in meta:
            raise ValueError("文件元信息缺少 TransferSyntaxUID")
        ts = UID(meta["TransferSyntaxUID"])
        meta_class = meta.get("MediaStorageSOPClassUID", "")
        meta_instance = meta.get("MediaStorageSOPInstanceUID", "")
        problem, found = _inspect(f, offset, size, ts)
    sop_class = found.get("SOPClassUID", "")
    sop_instance = found.get("SOPInstanceUID", "")
    problems = [problem] if problem else []
    if meta_class == MediaStorageDirectoryStorage:
        problems = ["这是 DICOMDIR（媒体存储目录），不是影像实例，无需发送"]
    elif not problem:
        missing = [k for k in ("SOPClassUID", "SOPInstanceUID") if not found.get(k)]
        if missing:
            problems.append("数据集缺少 " + "、".join(f"{k} {TAG_NUMBERS[k]}" for k in missing))
        else:
            absent = [k for k in required_tags if not found.get(k)]
            if absent:
                problems.append(
                    "缺少前置机要求的 " + "、".join(f"{k} {TAG_NUMBERS.get(k, '')}".strip() for k in absent)
                )
        if (size - offset) % 2 and ts != DeflatedExplicitVRLittleEndian:
            problems.append("数据集长度为奇数（有奇数长度的值，违反 PS3.5 §7.1）")
    return InstanceFile(
        path=path,
        sop_class_uid=sop_class or meta_class,
        sop_instance_uid=sop_instance or meta_instance,
        transfer_syntax_uid=str(ts),
        study_instance_uid=found.get("StudyInstanceUID", ""),
        series_instance_uid=found.get("SeriesInstanceUID", ""),
        size=size,
        data_offset=offset,
        problem="；".join(problems),
        meta_sop_class_uid=meta_class if sop_class and meta_class and meta_class != sop_class else "",
        meta_sop_instance_uid=meta_instance
        if sop_instance and meta_instance and meta_instance != sop_instance
        else "",
    )


def _read_meta(f) -> tuple[dict[str, str], int]:
    """The file meta information (PS3.10 §7.1: preamble, "DICM", group 0002 in explicit VR little
    endian): (the values of META_TAGS by keyword, the offset of the data set)."""
    head = f.read(PREAMBLE_AND_PREFIX)
    if len(head) < PREAMBLE_AND_PREFIX or head[128:] != b"DICM":
        raise InvalidDicomError("没有 DICOM 文件头（128 字节前导和 DICM 标记）")
    meta, pos = {}, PREAMBLE_AND_PREFIX
    while True:
        header = f.read(8)
        if len(header) < 8 or header[:2] != b"\x02\x00":
            return meta, pos
        tag = struct.unpack_from("<HH", header)
        vr = header[4:6]
        if vr in LONG_VRS:
            extra = f.read(4)
            if len(extra) < 4:
                raise InvalidDicomError("文件元信息不完整")
            length, size = struct.unpack("<L", extra)[0], 12
        elif vr in VRS:
            length, size = struct.unpack_from("<H", header, 6)[0], 8
        else:
            raise InvalidDicomError("文件元信息不是显式 VR 小端编码")
        value = f.read(length)
        if len(value) < length:
            raise InvalidDicomError("文件元信息不完整")
        keyword = META_TAGS.get(tag[0] << 16 | tag[1])
        if keyword:
            meta[keyword] = value.rstrip(b"\x00 ").decode("ascii", "replace")
        pos += size + length
        f.seek(pos)


def _inspect(f, offset: int, size: int, ts: UID) -> tuple[str, dict[str, str]]:
    """(problem, top-level TAGS found) of the data set from ``offset`` to the end of the file."""
    if not ts.is_transfer_syntax:
        return f"未知的传输语法 {ts}，无法确认数据集的编码", {}
    try:
        if ts == DeflatedExplicitVRLittleEndian:
            f.seek(offset)
            try:
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                buf = inflater.decompress(f.read()) + inflater.flush()
            except zlib.error as exc:
                raise BadDataSet(f"压缩（Deflate）数据集无法解压：{exc}") from exc
            if not inflater.eof:
                raise BadDataSet("压缩（Deflate）数据集不完整")
            return "", _check_encoding(buf, 0, len(buf), ts).found
        if size <= offset:
            raise BadDataSet("数据集为空")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return "", _check_encoding(buf, offset, size, ts).found
    except BadDataSet as exc:
        return str(exc), exc.found


# --------------------------------------------------------------------------- a folder


def iter_files(folder: str | Path) -> Iterable[str]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


def scan_folder(
    folder: str | Path,
    study_instance_uid: str | None = None,
    required_tags: Iterable[str] = DEFAULT_REQUIRED_TAGS,
) -> ScanResult:
    """Every DICOM instance below ``folder`` (of that study, when given), in path order; those
    that cannot be sent carry their ``problem``.

    Files that are not DICOM, belong to another study, have no SOP Instance UID at all or repeat
    an instance are listed in ``skipped`` with the reason."""
    required_tags = tuple(required_tags)
    result = ScanResult()
    seen: set[str] = set()
    for path in iter_files(folder):
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:  # a name that is not UTF-8 (lone surrogates): no row can hold it
            readable = os.fsencode(path).decode("utf-8", "backslashreplace")
            result.skipped.append(
                (readable, "文件名不是有效的 UTF-8，无法登记与发送；请由影像系统以 UTF-8 文件名重新导出")
            )
            continue
        try:
            inst = read_instance(path, required_tags)
        except (InvalidDicomError, ValueError, OSError, EOFError, struct.error) as exc:
            result.skipped.append((path, f"不是有效的 DICOM 文件：{exc}"))
            continue
        if study_instance_uid and inst.study_instance_uid != study_instance_uid:
            reason = inst.problem or "缺少 StudyInstanceUID (0020,000D)"
            result.skipped.append(
                (path, f"属于其他检查 {inst.study_instance_uid}" if inst.study_instance_uid else reason)
            )
            continue
        if not inst.sop_instance_uid:
            result.skipped.append((path, inst.problem or "没有 SOP Instance UID"))
            continue
        if inst.sop_instance_uid in seen:
            result.skipped.append((path, f"重复的实例 {inst.sop_instance_uid}"))
            continue
        seen.add(inst.sop_instance_uid)
        result.instances.append(inst)
    return result
