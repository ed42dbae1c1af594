"""What a study folder holds, read from headers only (file meta + a few tags; never pixel data)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pynetdicom.dsutils import split_dataset

HEADER_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
PREAMBLE_AND_PREFIX = 128 + 4
GROUP_LENGTH_ELEMENT = 12  # (0002,0000) UL, explicit VR little endian


@dataclass(frozen=True)
class InstanceFile:
    """One instance ready to be sent from its file: the encoded data set starts at ``data_offset``."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str
    series_instance_uid: str
    size: int
    data_offset: int


@dataclass
class ScanResult:
    instances: list[InstanceFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason in Chinese)


def read_instance(path: str | Path) -> InstanceFile:
    """Header facts of one DICOM Part 10 file. Raises InvalidDicomError / ValueError."""
    path = os.fspath(path)
    ds = dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
    meta = ds.file_meta
    missing = [
        k
        for k in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")
        if k not in meta
    ]
    if missing:
        raise ValueError(f"文件元信息缺少 {', '.join(missing)}")
    group_length = meta.get("FileMetaInformationGroupLength")
    if group_length is not None and ds.preamble is not None:
        offset = PREAMBLE_AND_PREFIX + GROUP_LENGTH_ELEMENT + int(group_length)
    else:  # unusual files (no preamble or no group length): let pynetdicom find the end of the meta
        _, offset = split_dataset(path)
    return InstanceFile(
        path=path,
        sop_class_uid=str(meta.MediaStorageSOPClassUID),
        sop_instance_uid=str(meta.MediaStorageSOPInstanceUID),
        transfer_syntax_uid=str(meta.TransferSyntaxUID),
        study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        size=os.path.getsize(path),
        data_offset=offset,
    )


def iter_files(folder: str | Path) -> Iterable[str]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


def scan_folder(folder: str | Path, study_instance_uid: str | None = None) -> ScanResult:
    """Every DICOM instance below ``folder`` (of that study, when given), in path order.

    Files that are not DICOM, belong to another study or repeat an instance are listed in
    ``skipped`` with the reason."""
    result = ScanResult()
    seen: set[str] = set()
    for path in iter_files(folder):
        try:
            inst = read_instance(path)
        except (InvalidDicomError, ValueError, OSError, EOFError) as exc:
            result.skipped.append((path, f"不是有效的 DICOM 文件：{exc}"))
            continue
        if study_instance_uid and inst.study_instance_uid != study_instance_uid:
            result.skipped.append((path, f"属于其他检查 {inst.study_instance_uid}"))
            continue
        if inst.sop_instance_uid in seen:
            result.skipped.append((path, f"重复的实例 {inst.sop_instance_uid}"))
            continue
        seen.add(inst.sop_instance_uid)
        result.instances.append(inst)
    return result
