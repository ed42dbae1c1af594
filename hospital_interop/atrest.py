"""Patient data at rest (GB/T 39786 level 3, 密评): SM4-GCM under rotating data keys, and the
HMAC-SM3 key of the patient digest.

A sealed value, in a database column or a file, is self-describing::

    b"SM4G" 0x01 | key id (8 hex characters) | nonce (12 bytes) | ciphertext | tag (16 bytes)

SM4-GCM (RFC 8998, GB/T 36624) is an authenticated mode: the tag covers the ciphertext, the
header (so the key id cannot be swapped) and the value's *purpose* (``outbox.payload``,
``lab.archived_pdf``, ``lab.file`` …), so a ciphertext copied into another column does not open
either. A value that does not open raises :class:`SealBroken`; nothing is ever returned that the
tag does not vouch for.

**Data keys** live in ``settings.DATA_KEY_DIR``: one file per key (``<key id>.key``, 32 hex
characters, mode 0600) and ``current``, the id new values are sealed with. Every value names its
key, so values sealed under an older key stay readable while ``manage.py rotate_data_key``
re-seals them; the code never deletes a key. Each process re-reads ``current`` when the file
changes (one ``stat`` per seal) and loads a key it has not seen on first use, so a rotation
reaches running workers without a restart. ``hospital_interop.keys`` writes the files.

**The patient digest key** (``settings.PATIENT_DIGEST_KEY_FILE``, 64 hex characters) is read by
``patients.models.id_key``, the one digest of a patient identity.

**Model fields**: :class:`SealedJSONField` and :class:`SealedBytesField` seal on write and open on
first read of the attribute (a row whose value is broken loads; reading that attribute raises, and
so does ``refresh_from_db()`` without ``fields``: Django copies every attribute through it).
``values()`` / ``values_list()`` give the stored :class:`Sealed` value; ``field.open()`` opens it.
Their columns are opaque to SQL: no lookup but ``isnull`` — what a query must filter on is kept in
a column of its own (the outbox's ``patient_id_hash``, ``interface``, ``business_key``).
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.query_utils import DeferredAttribute
from isal import igzip

from .filemodes import write_private
from .keys import CURRENT, KEY_SUFFIX
from .municipal import envelope, gm

MAGIC = b"SM4G\x01"
KEY_ID_LENGTH = 8
HEADER = len(MAGIC) + KEY_ID_LENGTH
OVERHEAD = HEADER + gm.SM4_GCM_NONCE + gm.SM4_GCM_TAG
KEY_ID = re.compile(r"[0-9a-f]{8}")
SEALED_SUFFIX = ".sm4"  # a sealed file: the original name with this added
FILE_PURPOSE = "lab.file"


class SealBroken(ValueError):
    """A sealed value that does not open: changed or truncated, sealed for another purpose, or
    under a key this installation does not have. ``message`` is for people (Chinese)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------------- data keys
def _read_hex_key(path: Path, size: int, what: str) -> bytes:
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        raise ImproperlyConfigured(f"{what}不存在：{path}（运行 manage.py setup_keys 生成）") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"无法读取{what} {path}：{exc}") from None
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text) or len(text) < 2 * size:
        raise ImproperlyConfigured(f"{what} {path} 应为十六进制文本（至少 {size} 字节）")
    return bytes.fromhex(text)


class DataKeys:
    """The SM4 data keys of one folder, loaded on first use; ``current`` followed as it changes."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._keys: dict[str, bytes] = {}
        self._current: tuple[tuple, str] | None = None  # (stat of the `current` file, key id)
        self._lock = threading.Lock()

    def current_id(self) -> str:
        path = self.folder / CURRENT
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ImproperlyConfigured(
                f"数据加密密钥未配置：{path} 不存在（运行 manage.py setup_keys 生成，或用 DATA_KEY_DIR 指定）"
            ) from None
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._current
        if cached is None or cached[0] != seen:
            key_id = path.read_text("ascii").strip()
            if not KEY_ID.fullmatch(key_id):
                raise ImproperlyConfigured(f"{path} 应为 8 位十六进制的密钥编号")
            self._current = cached = (seen, key_id)
        return cached[1]

    def key(self, key_id: str) -> bytes:
        """The key of this id; SealBroken when this installation has no such key."""
        key = self._keys.get(key_id)
        if key is None:
            if not KEY_ID.fullmatch(key_id):  # a header is data: never a path before it is checked
                raise SealBroken("密文中的密钥编号格式不正确")
            path = self.folder / f"{key_id}{KEY_SUFFIX}"
            if not path.exists():
                raise SealBroken(f"没有编号为 {key_id} 的数据密钥（{self.folder}）")
            key = _read_hex_key(path, 16, "数据加密密钥文件")[:16]
            with self._lock:
                self._keys[key_id] = key
        return key

    def ids(self) -> list[str]:
        """Every key id present in the folder."""
        return sorted(p.name[: -len(KEY_SUFFIX)] for p in self.folder.glob(f"*{KEY_SUFFIX}"))


_rings: dict[str, DataKeys] = {}


def data_keys() -> DataKeys:
    """The data keys of ``settings.DATA_KEY_DIR`` (one cache per folder: tests may point elsewhere)."""
    folder = str(settings.DATA_KEY_DIR)
    ring = _rings.get(folder)
    if ring is None:
        ring = _rings.setdefault(folder, DataKeys(Path(folder)))
    return ring


_digest_keys: dict[str, bytes] = {}


def patient_digest_key() -> bytes:
    """The HMAC-SM3 key of the patient digest (``settings.PATIENT_DIGEST_KEY_FILE``)."""
    path = str(settings.PATIENT_DIGEST_KEY_FILE)
    key = _digest_keys.get(path)
    if key is None:
        key = _digest_keys[path] = _read_hex_key(Path(path), 16, "患者标识摘要密钥文件")
    return key


# ---------------------------------------------------------------------------------- seal / open
def _aad(purpose: str, header: bytes) -> bytes:
    return purpose.encode() + b"\x00" + header


def seal(data: bytes, purpose: str, *, key_id: str | None = None) -> bytes:
    """Encrypt and authenticate ``data`` for ``purpose`` under the current data key (or ``key_id``)."""
    ring = data_keys()
    key_id = key_id or ring.current_id()
    header = MAGIC + key_id.encode("ascii")
    nonce = os.urandom(gm.SM4_GCM_NONCE)
    return header + nonce + gm.sm4_gcm_encrypt(ring.key(key_id), nonce, bytes(data), _aad(purpose, header))


def unseal(blob: bytes, purpose: str) -> bytes:
    """The data :func:`seal` sealed for ``purpose``; SealBroken for anything else."""
    blob = bytes(blob)
    if len(blob) < OVERHEAD or not blob.startswith(MAGIC):
        raise SealBroken("不是本系统加密的数据，或数据已被截断")
    key = data_keys().key(blob[len(MAGIC) : HEADER].decode("ascii", "replace"))
    nonce, body = blob[HEADER : HEADER + gm.SM4_GCM_NONCE], blob[HEADER + gm.SM4_GCM_NONCE :]
    try:
        return gm.sm4_gcm_decrypt(key, nonce, body, _aad(purpose, blob[:HEADER]))
    except ValueError:
        raise SealBroken("完整性校验失败：密文已被改动，或不属于此处") from None


def key_id_of(blob: bytes) -> str | None:
    """The key id a sealed value names (None: not a sealed value)."""
    blob = bytes(blob[:HEADER])
    return blob[len(MAGIC) :].decode("ascii", "replace") if blob.startswith(MAGIC) else None


def header_for(key_id: str) -> bytes:
    """The first bytes of every value sealed under ``key_id`` (what rotation compares in SQL)."""
    return MAGIC + key_id.encode("ascii")


# ---------------------------------------------------------------------------------- files
def write_sealed_file(folder: Path, name: str, data: bytes, *, purpose: str = FILE_PURPOSE) -> Path:
    """Write ``data`` sealed to ``folder/<name>.sm4`` (0600, atomic; a name taken gets ``.1``, ``.2`` …)."""
    stem, suffix = os.path.splitext(name)
    target, n = name, 1
    while (folder / (target + SEALED_SUFFIX)).exists():
        target, n = f"{stem}.{n}{suffix}", n + 1
    return write_private(folder, target + SEALED_SUFFIX, seal(data, purpose))


def read_sealed_file(path: Path, *, purpose: str = FILE_PURPOSE) -> bytes:
    return unseal(Path(path).read_bytes(), purpose)


def plain_name(path: Path) -> str:
    """The name a sealed file had before sealing."""
    name = Path(path).name
    return name[: -len(SEALED_SUFFIX)] if name.endswith(SEALED_SUFFIX) else name


_sealed_folders: list[Callable[[], Iterable[Path | None]]] = []


def register_sealed_folders(folders: Callable[[], Iterable[Path | None]]) -> None:
    """An app names the folders where it keeps sealed files (for ``rotate_data_key``), from its
    ``AppConfig.ready``: the core never imports an app."""
    if folders not in _sealed_folders:
        _sealed_folders.append(folders)


def sealed_folders() -> list[Path]:
    found = []
    for folders in _sealed_folders:
        found += [Path(f) for f in folders() if f is not None]
    return sorted(set(found))


# ---------------------------------------------------------------------------------- model fields
class Sealed:
    """A stored value not opened yet: the sealed bytes as read from the database."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes):
        self.raw = bytes(raw)

    @property
    def key_id(self) -> str | None:
        return key_id_of(self.raw)

    def __eq__(self, other):
        return isinstance(other, Sealed) and other.raw == self.raw

    __hash__ = None

    def __repr__(self):
        return f"<Sealed key={self.key_id} {len(self.raw)} bytes>"


class SealedAttribute(DeferredAttribute):
    """Opens the stored value on first read of the attribute and keeps the result; a data
    descriptor, so that reads always pass through it."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            value = self.field.open(value)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value


class SealedField(models.BinaryField):
    """A value kept SM4-GCM sealed in a binary column. ``purpose`` (required, never changed once
    data exists: it is authenticated with every value) names what the column holds."""

    descriptor_class = SealedAttribute
    description = "SM4-GCM 加密存储的值"

    def __init__(self, *args, purpose: str = "", **kwargs):
        if not purpose:
            raise TypeError("a SealedField needs its purpose, e.g. purpose='outbox.payload'")
        self.purpose = purpose
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    # what subclasses define: the value <-> bytes
    def encode(self, value) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes):
        raise NotImplementedError

    def open(self, sealed: Sealed):
        return self.decode(unseal(sealed.raw, self.purpose))

    def seal_value(self, value) -> bytes:
        return seal(self.encode(value), self.purpose)

    def from_db_value(self, value, expression, connection):
        return None if value is None else Sealed(value)

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname)
        if isinstance(value, Sealed):  # never read: written back as it is, not opened and sealed again
            return value
        return super().pre_save(model_instance, add)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        raw = value.raw if isinstance(value, Sealed) else self.seal_value(value)
        return connection.Database.Binary(raw)

    def to_python(self, value):
        if isinstance(value, str):  # from value_to_string (dumpdata / loaddata): the sealed bytes
            return Sealed(base64.b64decode(value.encode("ascii")))
        return value

    def value_to_string(self, obj):
        value = obj.__dict__.get(self.attname)
        raw = value.raw if isinstance(value, Sealed) else self.seal_value(self.value_from_object(obj))
        return base64.b64encode(raw).decode("ascii")

    def get_lookup(self, lookup_name):
        # a sealed column holds random-looking bytes: only "is there a value" can be asked in SQL
        return super().get_lookup(lookup_name) if lookup_name == "isnull" else None

    def get_transform(self, name):
        return None


GZIP_MAGIC = b"\x1f\x8b"  # never the first bytes of a JSON text
COMPRESS_FROM_BYTES = 512  # below this, gzip's frame would eat what it saves


class SealedJSONField(SealedField):
    """JSON (what a JSONField holds), sealed; a JSON text of COMPRESS_FROM_BYTES or more is
    gzipped (ISA-L, level 1) before sealing: a 4 KiB lab record is stored in ~1.6 KB, a PDF as
    Base64 in three quarters of its size, and the sealing, the database's write and its WAL
    have that much less to do. Values stored before (plain JSON) still open."""

    def encode(self, value) -> bytes:
        data = envelope.json_bytes(value, envelope.DUMPS_COMPACT)  # json.dumps's bytes, at orjson's speed
        if len(data) >= COMPRESS_FROM_BYTES:
            return igzip.compress(data, compresslevel=1, mtime=0)
        return data

    def decode(self, data: bytes):
        if data[:2] == GZIP_MAGIC:  # sealed under our key: our own output, not outside input
            data = igzip.decompress(data)
        return envelope.json_loads(data)  # json.loads's values, at orjson's speed


class SealedBytesField(SealedField):
    """Bytes (a PDF), sealed."""

    def encode(self, value) -> bytes:
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data


def sealed_fields() -> list[SealedField]:
    """Every sealed column of the installed models (what ``rotate_data_key`` re-seals)."""
    from django.apps import apps

    return [f for m in apps.get_models() for f in m._meta.concrete_fields if isinstance(f, SealedField)]
