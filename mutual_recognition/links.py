"""Signed, expiring links to the embedded prompt page (no second login).

A link names the patient, visit, doctor, department and the ordered items, and when it
expires; ``sig`` is HMAC-SM3 (hex) over the other query fields sorted by name and joined as
``name=value`` with ``&`` (raw values, UTF-8) — the same string-to-sign rule as the platform's
envelope, so the HIS can build links itself with the shared secret (docs/recognition.md).

Items: ``items=E~CT0012~B03~YZ0001,L~XCG~~YZ0002`` — kind (E exam, L lab), hospital order item
code, hospital body part code (may be empty), HIS order id.

Once a link is verified the page works with a context token (Django signing, salted, time
limited) that carries the same facts, so the page can save and open reports after the link
itself has expired.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from django.core import signing

from hospital_interop.municipal import gm

from . import conf

FIELDS = ("pid", "vid", "doc", "dept", "items", "exp")
KINDS = {"E": "exam", "L": "lab"}
KIND_LETTER = {v: k for k, v in KINDS.items()}
_SAFE = re.compile(r"^[A-Za-z0-9._\-%+#/]*$")
CONTEXT_SALT = "mutual_recognition.page"


class LinkError(Exception):
    """reason: expired | tampered | malformed; message: Chinese, for the refusal page."""

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
        return cls(data["patient_id"], data["visit_id"], data["doctor"], data["dept"],
                   tuple(parse_item(t) for t in data["items"]), data["expires"])


def check_value(name: str, value: str) -> str:
    if not value or not _SAFE.match(value) or "~" in value or "," in value:
        raise ValueError(f"{name} 含有不允许的字符或为空：{value!r}")
    return value


def parse_item(token: str) -> OrderedItem:
    parts = token.split("~")
    if len(parts) != 4 or parts[0] not in KINDS or not parts[1] or not parts[3]:
        raise LinkError("malformed", "链接中的医嘱项目格式不正确。")
    return OrderedItem(KINDS[parts[0]], parts[1], parts[2], parts[3])


def string_to_sign(fields: dict[str, str]) -> bytes:
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sig" and fields[k] != "").encode()


def signature(fields: dict[str, str]) -> str:
    return gm.hmac_sm3(conf.link_secret(), string_to_sign(fields)).hex()


def make_query(*, patient_id: str, visit_id: str, doctor: str, dept: str, items: list[OrderedItem],
               now: float | None = None, lifetime: int | None = None) -> str:
    expires = int((now or time.time()) + (lifetime or conf.link_lifetime()))
    fields = {"pid": patient_id, "vid": visit_id, "doc": doctor, "dept": dept,
              "items": ",".join(i.token() for i in items), "exp": str(expires)}
    fields["sig"] = signature(fields)
    return urlencode(fields, safe="~,")


def verify(query, now: float | None = None) -> LinkContext:
    """Check a link's query (a QueryDict or dict); LinkError says why it is refused."""
    fields = {k: query.get(k, "") for k in FIELDS}
    sig = query.get("sig", "")
    if not sig or not fields["vid"] or not fields["items"] or not fields["exp"].isdigit():
        raise LinkError("malformed", "互认提示链接不完整，请从医生工作站重新打开。")
    if not hmac.compare_digest(signature(fields), sig.lower()):
        raise LinkError("tampered", "互认提示链接无效或已被修改，请从医生工作站重新打开。")
    expires = int(fields["exp"])
    if expires < (now or time.time()):
        raise LinkError("expired", "互认提示链接已过期，请从医生工作站重新打开。")
    items = tuple(parse_item(t) for t in fields["items"].split(","))
    return LinkContext(fields["pid"], fields["vid"], fields["doc"], fields["dept"], items, expires)
