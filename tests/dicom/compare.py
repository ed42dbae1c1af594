"""Is a stored copy the instance that was sent? For the tests that send files to real peers.

``same_instance(original, stored)`` lists the differences (empty: identical): the SOP Instance UID,
the transfer syntax (the original's, or an uncompressed one the original was converted to) and
every element of the data set with its value, PixelData included, in every sequence item. Group
lengths and Data Set Trailing Padding (FFFC,FFFC) carry no information (PS3.5 §7.2, PS3.10 §7.2)
and peers drop or add them, so they are not compared. Binary values of a big endian original
converted to little endian are compared after swapping each unit of their VR (PS3.5 table 6.2-1:
OW 16-bit words, OF/OL 32-bit, OD/OV 64-bit), the byte order the standard defines.
"""

from __future__ import annotations

import array
import io
import warnings
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import encode

TRAILING_PADDING = 0xFFFCFFFC
SWAP_UNIT = {"OW": "H", "OF": "I", "OL": "I", "OD": "Q", "OV": "Q"}


def _read(source: Path | bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)


def _swapped(value: bytes, vr: str) -> bytes:
    unit = SWAP_UNIT.get(vr)
    if unit is None:
        return value
    values = array.array(unit)
    values.frombytes(value[: len(value) - len(value) % values.itemsize])
    values.byteswap()
    return values.tobytes() + value[len(value) - len(value) % values.itemsize :]


def _implicit_value(elem) -> bytes:
    """An element's value as implicit VR little endian encodes it (what an implicit copy holds
    for an element it cannot name, read back as UN)."""
    ds = Dataset()
    ds.add(elem)
    return encode(ds, True, True)[8:]


def _compare(a: Dataset, b: Dataset, swap: bool, path: str, out: list[str]) -> None:
    tags = {t for t in (*a.keys(), *b.keys()) if t.element != 0 and t != TRAILING_PADDING}
    for tag in sorted(tags):
        where = f"{path}({tag.group:04X},{tag.element:04X})"
        if tag not in a or tag not in b:
            out.append(f"{where}: only in {'stored copy' if tag in b else 'original'}")
            continue
        x, y = a[tag], b[tag]
        if x.VR == "SQ" and y.VR == "SQ":
            if len(x.value) != len(y.value):
                out.append(f"{where}: {len(x.value)} items vs {len(y.value)}")
                continue
            for n, (i, j) in enumerate(zip(x.value, y.value, strict=True)):
                _compare(i, j, swap, f"{where}[{n}]", out)
            continue
        if y.VR == "UN" and x.VR != "UN":  # implicit copy of an element it has no dictionary entry for
            same = bytes(y.value or b"") == _implicit_value(x)
        elif isinstance(x.value, bytes | bytearray) and isinstance(y.value, bytes | bytearray):
            expected = _swapped(bytes(x.value), x.VR) if swap else bytes(x.value)
            same = expected == bytes(y.value)
        else:
            same = x.value == y.value
        if not same:
            out.append(f"{where} {x.keyword or ''}: {str(x.value)[:60]!r} vs {str(y.value)[:60]!r}")


def same_instance(original: Path, stored: Path | bytes) -> list[str]:
    """The differences between an original file and a peer's stored copy (empty: identical)."""
    a, b = _read(original), _read(stored)
    ts_a, ts_b = UID(a.file_meta.TransferSyntaxUID), UID(b.file_meta.TransferSyntaxUID)
    problems = []
    if str(a.SOPInstanceUID) != str(b.SOPInstanceUID):
        problems.append(f"SOP Instance UID {a.SOPInstanceUID} vs {b.SOPInstanceUID}")
    if ts_a != ts_b and (ts_a.is_encapsulated or ts_b.is_encapsulated):
        problems.append(f"transfer syntax {ts_a.name} became {ts_b.name}")
    _compare(a, b, ts_a.is_little_endian != ts_b.is_little_endian, "", problems)
    return problems
