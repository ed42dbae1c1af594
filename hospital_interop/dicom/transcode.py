"""Lossless re-encoding of a data set for a peer that does not take its transfer syntax, as dcmtk's
storescu does: between the uncompressed transfer syntaxes (explicit and implicit VR little endian,
explicit VR big endian) and from deflated explicit VR little endian. Compressed pixel data is never
decoded here: a compressed file goes in its own transfer syntax or not at all.

Big endian to little endian: pydicom decodes and re-encodes the numeric VRs (US, SS, UL, SL, FL,
FD, AT, …) itself, but copies the bytes of the "other" VRs; those are swapped here unit by unit as
PS3.5 table 6.2-1 defines them (OW 16-bit words, OF and OL 32-bit, OD and OV 64-bit; OB and UN are
byte streams), in every sequence item. A big endian data set holding UN elements (whose byte order
is unknown) or encapsulated pixel data is not converted.
"""

from __future__ import annotations

import array
import warnings

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom.dsutils import encode

SOURCES = frozenset(
    {ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian}
)
TARGETS = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)  # proposed for every SOP class as the fallback
SWAP_UNITS = {"OW": "H", "OF": "I", "OL": "I", "OD": "Q", "OV": "Q"}


class ConversionError(ValueError):
    """The data set cannot be converted without loss (message in Chinese)."""


def convertible(source: str, target: str) -> bool:
    return source in SOURCES and target in TARGETS and source != target


def _swap(value: bytes, unit: str) -> bytes:
    words = array.array(unit)
    if len(value) % words.itemsize:
        raise ConversionError(f"值的长度 {len(value)} 不是 {words.itemsize} 字节的整数倍，无法转换字节序")
    words.frombytes(value)
    words.byteswap()
    return words.tobytes()


def _to_little_endian_values(ds: Dataset) -> None:
    """Swap, in place, the values pydicom copies as bytes (see the module docstring)."""
    for elem in ds:  # iterating converts raw elements with the data set's own (big endian) encoding
        if elem.VR == "SQ":
            for item in elem.value:
                _to_little_endian_values(item)
        elif elem.VR == "UN":
            raise ConversionError(f"大端数据集含未知值表示（UN）的元素 {elem.tag}，无法确定其字节序")
        elif elem.tag == 0x7FE00010 and elem.is_undefined_length:
            raise ConversionError("大端数据集含封装的像素数据，无法转换")
        elif elem.VR in SWAP_UNITS and elem.value:
            elem.value = _swap(bytes(elem.value), SWAP_UNITS[elem.VR])


def reencode(path: str, source: str, target: str) -> bytes:
    """The data set of the file at ``path`` (in ``source``) encoded in ``target``."""
    if not convertible(source, target):
        raise ConversionError(f"不能将 {UID(source).name} 无损转换为 {UID(target).name}")
    target = UID(target)
    with (
        warnings.catch_warnings()
    ):  # pydicom's warnings about values (e.g. a malformed UI) change nothing here
        warnings.simplefilter("ignore")
        try:
            ds = dcmread(path)
        except Exception as exc:  # pydicom raises many types for a file it cannot read
            raise ConversionError(f"读取数据集失败：{exc}") from exc
        if source == ExplicitVRBigEndian:
            _to_little_endian_values(ds)
        data = encode(ds, target.is_implicit_VR, True, False)
    if data is None:
        raise ConversionError(f"数据集无法编码为 {target.name}")
    return data
