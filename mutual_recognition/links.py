"""Signed, expiring links to the embedded prompt page (no second login).

A link names the patient, visit, doctor, department and the ordered items, and when it
expires. Its query is the canonical string (rule version 2, docs/recognition.md)

    v=2&pid=<pid>&vid=<vid>&doc=<doc>&dept=<dept>&items=<items>&exp=<exp>

— always these seven fields in this order, every one present (empty allowed), each value
percent-encoded from UTF-8 with only RFC 3986's unreserved characters ``A-Z a-z 0-9 - . _ ~`` left
as they are — followed by ``&sig=`` and the lowercase hex HMAC-SM3 of that string. Because ``&``
and ``=`` inside a value are always encoded, a value can never shift into another field, and
verification rebuilds the string from the decoded query values, so it does not matter how the HIS
encoded them. Links of the first, ambiguous rule (fields sorted, raw values, empty ones dropped:
no ``v``) are refused. ``exp`` is never later than RECOGNITION_LINK_MAX_LIFETIME_SECONDS from now.

Items: ``items=E~CT0012~B03~YZ0001,L~XCG~~YZ0002`` — kind (E exam, L lab), hospital order item
code, hospital body part code (may be empty), HIS order id; none of these may contain ``~`` or ``,``.

Once a link is verified the page works with a context token (Django signing, salted, time
limited) that carries the same facts, so the page can save and open reports after the link
itself has expired. The token only ever travels in request bodies, never in a URL.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import asdict, dataclass
from urllib.parse import quote

from django.core import signing

from hospital_interop.municipal import gm

from . import conf

VERSION = "2"
FIELDS = ("pid", "vid", "doc", "dept", "items", "exp")  # signed after ``v``, in this order
SIGNED = ("v", *FIELDS)
KINDS = {"E": "exam", "L": "lab"}
KIND_LETTER = {v: k for k, v in KINDS.items()}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EXP = re.compile(r"[0-9]{1,12}")
_SIG = re.compile(r"[0-9a-fA-F]{64}")
CONTEXT_SALT = "mutual_recognition.page"
_AGAIN = "请从医生工作站重新打开互认提示。"


class LinkError(Exception):
    """reason: version | malformed | tampered | expired | lifetime; message: Chinese, for the refusal page."""

    def __init__(self, reason: str, message: str):
        self.reason, self.message = reason, message
        super().__init__(message)


@dataclass(frozen=True)
class OrderedItem:
    kind: str  # exam | lab
    code: str  # hospital order item code
    body_part: str  # hospital body part code ("" for none / lab)
    order_id: str

    def token(self) -> str:
        return "~".join((KIND_LETTER[self.kind], self.code, self.body_part, self.order_id))


@dataclass(frozen=True)
class LinkContext:
    patient_id: str
    visit_id: str
    doctor: str
    dept: str
    items: tuple[OrderedItem, ...]
    expires: int

    def item(self, order_id: str) -> OrderedItem | None:
        return next((i for i in self.items if i.order_id == order_id), None)

    def to_token(self) -> str:
        data = asdict(self)
        data["items"] = [i.token() for i in self.items]
        return signing.dumps(data, salt=CONTEXT_SALT, compress=True)

    @classmethod
    def from_token(cls, token: str) -> LinkContext:
        try:
            data = signing.loads(token, salt=CONTEXT_SALT, max_age=conf.page_lifetime())
        except signing.SignatureExpired:
            raise LinkError("expired", "本页面已打开过久，请从医生工作站重新打开互认提示。") from None
        except signing.BadSignature:
            raise LinkError("tampered", "页面凭据无效，请从医生工作站重新打开互认提示。") from None
        return cls(
            data["patient_id"],
            data["visit_id"],
            data["doctor"],
            data["dept"],
            tuple(parse_item(t) for t in data["items"]),
            data["expires"],
        )


class LinkValueError(ValueError):
    """A value a link cannot carry; ``field`` names it (make_query's keyword, or the caller's name)."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(message)


def check_text(name: str, value: str) -> str:
    """A value a link can carry: any UTF-8 text without control characters."""
    if _CONTROL.search(value):
        raise LinkValueError(name, f"{name} 含有控制字符")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LinkValueError(name, f"{name} 不是有效的 UTF-8 文本") from None
    return value


def check_value(name: str, value: str) -> str:
    """A part of an ordered item: not empty, no ``~`` or ``,`` (the separators of ``items``)."""
    if not value or "~" in value or "," in value:
        raise LinkValueError(name, f"{name} 不能为空，且不能含有“~”或“,”：{value!r}")
    return check_text(name, value)


def parse_item(token: str) -> OrderedItem:
    parts = token.split("~")
    if len(parts) != 4 or parts[0] not in KINDS or not parts[1] or not parts[3]:
        raise LinkError("malformed", "链接中的医嘱项目格式不正确。")
    return OrderedItem(KINDS[parts[0]], parts[1], parts[2], parts[3])


def encode(value: str) -> str:
    """RFC 3986 percent-encoding of the UTF-8 bytes: unreserved characters kept, all others %XX."""
    return quote(value, safe="", encoding="utf-8", errors="strict")


def string_to_sign(fields: dict[str, str]) -> bytes:
    """The canonical string of a link's fields (pid, vid, doc, dept, items, exp; ``v`` is added)."""
    values = {**fields, "v": VERSION}
    return "&".join(f"{name}={encode(values[name])}" for name in SIGNED).encode("ascii")


def signature(fields: dict[str, str]) -> str:
    return gm.hmac_sm3(conf.link_secret(), string_to_sign(fields)).hex()


def make_query(
    *,
    patient_id: str,
    visit_id: str,
    doctor: str,
    dept: str,
    items: list[OrderedItem],
    now: float | None = None,
    lifetime: int | None = None,
) -> str:
    """The query of a link: its canonical string and ``&sig=``. The lifetime (default
    RECOGNITION_LINK_LIFETIME_SECONDS) is cut to RECOGNITION_LINK_MAX_LIFETIME_SECONDS.
    LinkValueError (field: the keyword) when a value cannot be carried."""
    lifetime = min(lifetime or conf.link_lifetime(), conf.link_max_lifetime())
    if lifetime <= 0:
        raise ValueError("链接有效期必须为正数")
    if not visit_id:
        raise LinkValueError("visit_id", "链接需要就诊号")
    if not items:
        raise LinkValueError("items", "链接需要至少一个医嘱项目")
    for name, value in (
        ("patient_id", patient_id),
        ("visit_id", visit_id),
        ("doctor", doctor),
        ("dept", dept),
    ):
        check_text(name, value)
    for item in items:
        for part in (item.code, item.order_id, *([item.body_part] if item.body_part else [])):
            check_value("items", part)
    fields = {
        "pid": patient_id,
        "vid": visit_id,
        "doc": doctor,
        "dept": dept,
        "items": ",".join(i.token() for i in items),
        "exp": str(int((time.time() if now is None else now) + lifetime)),
    }
    canonical = string_to_sign(fields)
    return canonical.decode("ascii") + "&sig=" + gm.hmac_sm3(conf.link_secret(), canonical).hex()


def _one(query, name: str) -> str | None:
    """The single value of a query field (a QueryDict or a dict); LinkError when it is repeated."""
    values = query.getlist(name) if hasattr(query, "getlist") else ([query[name]] if name in query else [])
    if len(values) > 1:
        raise LinkError("malformed", f"互认提示链接中的字段 {name} 重复，{_AGAIN}")
    return str(values[0]) if values else None


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    return f"{seconds // 60} 分钟" if seconds % 60 == 0 else f"{seconds} 秒"


def verify(query, now: float | None = None) -> LinkContext:
    """Check a link's query (a QueryDict or dict, values decoded); LinkError says why it is refused."""
    version = _one(query, "v")
    if version is None and "sig" not in query:
        raise LinkError("malformed", f"互认提示链接不完整或格式不正确，{_AGAIN}")
    if version != VERSION:
        raise LinkError(
            "version",
            f"互认提示链接的签名规则已更新（v={VERSION}），{_AGAIN}"
            "如链接由 HIS 生成，请按接口文档的新规则生成。",
        )
    fields = {name: _one(query, name) for name in FIELDS}
    sig = _one(query, "sig") or ""
    missing = [name for name, value in fields.items() if value is None]
    if (
        missing
        or not fields["vid"]
        or not fields["items"]
        or not _EXP.fullmatch(fields["exp"])
        or not _SIG.fullmatch(sig)
    ):
        raise LinkError("malformed", f"互认提示链接不完整或格式不正确，{_AGAIN}")
    try:
        for name, value in fields.items():
            check_text(name, value)
    except ValueError:
        raise LinkError("malformed", f"互认提示链接含有不允许的字符，{_AGAIN}") from None
    if not hmac.compare_digest(signature(fields), sig.lower()):
        raise LinkError("tampered", f"互认提示链接无效或已被修改，{_AGAIN}")
    now = time.time() if now is None else now
    expires, cap = int(fields["exp"]), conf.link_max_lifetime()
    if expires < now:
        raise LinkError("expired", f"互认提示链接已过期，{_AGAIN}")
    if expires - now > cap:
        raise LinkError("lifetime", f"互认提示链接的有效期超过允许的最长时限（{_duration(cap)}），{_AGAIN}")
    items = tuple(parse_item(t) for t in fields["items"].split(","))
    return LinkContext(fields["pid"], fields["vid"], fields["doc"], fields["dept"], items, expires)
