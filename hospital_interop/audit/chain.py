"""The chain: what each entry's HMAC-SM3 covers, the head's MAC, the key, and the verification.

``mac(n) = HMAC-SM3(key, "audit-entry" | mac(n-1) | canonical JSON of entry n's content)``, with
``mac(0)`` the anchor's MAC (``GENESIS`` until the first purge). The head row holds the last
sequence number and MAC and the anchor, under ``HMAC-SM3(key, "audit-head" | …)``: without the
key nobody can remove the last entries and move the head back, nor write an entry of their own.

``verify`` walks the entries in sequence order and names every problem: a changed entry (its MAC
no longer matches its content), a missing one (a gap in the sequence, or entries after the last
one kept when the head says there were more), a replaced link, a head changed by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from hospital_interop.municipal.gm import hmac_sm3

CONTENT_FIELDS = (
    "seq",
    "at",
    "actor_type",
    "user_id",
    "username",
    "roles",
    "ip",
    "route",
    "action",
    "object_type",
    "object_id",
    "patient",
    "changes",
    "detail",
)
MIN_KEY_BYTES = 32


def key() -> bytes:
    """The chain's HMAC-SM3 key: the hex text of ``settings.AUDIT["KEY_FILE"]``.

    A missing or malformed key is a set-up error (``manage.py setup_keys`` generates it): the
    trail is never written without it, and what needs an entry fails rather than go unaudited."""
    path = Path(settings.AUDIT["KEY_FILE"])
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        raise ImproperlyConfigured(
            f"审计日志密钥文件不存在：{path}（运行 manage.py setup_keys 生成，或用 AUDIT_KEY_FILE 指定）"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"无法读取审计日志密钥文件 {path}：{exc}") from None
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text) or len(text) < 2 * MIN_KEY_BYTES:
        raise ImproperlyConfigured(f"审计日志密钥文件 {path} 应为十六进制文本（至少 {MIN_KEY_BYTES} 字节）")
    return bytes.fromhex(text)


def _at(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content(values: dict) -> bytes:
    """The canonical bytes of an entry's content: its fields as sorted, compact JSON (UTF-8)."""
    doc = {name: values.get(name) for name in CONTENT_FIELDS}
    doc["at"] = _at(values["at"])
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def entry_mac(secret: bytes, prev_mac: str, values: dict) -> str:
    return hmac_sm3(secret, b"audit-entry\n" + prev_mac.encode() + b"\n" + content(values)).hex()


def head_mac(secret: bytes, seq: int, mac: str, anchor_seq: int, anchor_mac: str) -> str:
    doc = json.dumps([seq, mac, anchor_seq, anchor_mac], separators=(",", ":")).encode()
    return hmac_sm3(secret, b"audit-head\n" + doc).hex()


def normalised(value):
    """A JSON value as the database gives it back (what the MAC must cover)."""
    return json.loads(json.dumps(value, ensure_ascii=False))


@dataclass(frozen=True)
class Problem:
    seq: int | None  # the entry concerned, None for the head
    pk: int | None
    message: str  # Chinese, names the entry

    def __str__(self):
        return self.message


@dataclass
class Report:
    checked: int = 0
    first: int | None = None
    last: int | None = None
    problems: list[Problem] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _name(seq: int, pk: int | None = None) -> str:
    return f"第 {seq} 号审计记录" + (f"（id={pk}）" if pk is not None else "")


def _missing(first: int, last: int, where: str) -> str:
    span = f"第 {first} 号" if first == last else f"第 {first}–{last} 号"
    return f"{span}审计记录缺失（{where}，已被删除）"


def head_ok(secret: bytes, head) -> bool:
    """The head's own MAC matches (a head never written to, of an empty chain, has none)."""
    if head.seq == 0 and head.anchor_seq == 0 and not head.head_mac:
        return True
    return head.head_mac == head_mac(secret, head.seq, head.mac, head.anchor_seq, head.anchor_mac)


def walk(secret: bytes, anchor_seq: int, anchor_mac: str, entries: Iterable[dict], report: Report) -> str:
    """Check ``entries`` (dicts of CONTENT_FIELDS + pk, prev_mac, mac, in ascending ``seq``) as
    the chain that follows the anchor; problems go to ``report``. Returns the last entry's MAC."""
    problems = report.problems
    expected, prev = anchor_seq + 1, anchor_mac
    for e in entries:
        seq, pk = e["seq"], e["pk"]
        report.checked += 1
        report.first = seq if report.first is None else report.first
        if seq < expected:
            problems.append(Problem(seq, pk, f"{_name(seq, pk)}位于锚点（第 {anchor_seq} 号）之前或重复"))
            continue
        gap = seq > expected
        if gap:
            where = "在链首" if expected == anchor_seq + 1 else f"在第 {expected - 1} 号与第 {seq} 号之间"
            problems.append(Problem(expected, None, _missing(expected, seq - 1, where)))
        if entry_mac(secret, e["prev_mac"], e) != e["mac"]:
            problems.append(Problem(seq, pk, f"{_name(seq, pk)}内容被修改（MAC 不符）"))
        elif not gap and e["prev_mac"] != prev:
            problems.append(Problem(seq, pk, f"{_name(seq, pk)}与前一条的链接不符（前一条被修改或替换）"))
        expected, prev = seq + 1, e["mac"]
        report.last = seq
    return prev


def verify(secret: bytes, head, entries: Iterable[dict]) -> Report:
    """The whole chain: the head's MAC, every entry from the anchor on, and that the last entry
    is the one the head names (``head``: an object with seq, mac, anchor_seq, anchor_mac, head_mac)."""
    report = Report(problems=[])
    if not head_ok(secret, head):
        report.problems.append(Problem(None, None, "审计链头被修改（链头 MAC 不符）"))
    prev = walk(secret, head.anchor_seq, head.anchor_mac, entries, report)
    last = report.last if report.last is not None else head.anchor_seq
    if head.seq > last:
        where = "在链尾" if report.last is not None else "在锚点之后"
        report.problems.append(Problem(last + 1, None, _missing(last + 1, head.seq, where)))
    elif head.seq < last:
        report.problems.append(
            Problem(
                head.seq + 1, None, f"第 {head.seq + 1}–{last} 号审计记录在链头之后（链头被回退或记录被伪造）"
            )
        )
    elif head.seq > head.anchor_seq and head.mac != prev:
        report.problems.append(Problem(last, None, f"链头与{_name(last)}不符（最后一条被修改或替换）"))
    return report
