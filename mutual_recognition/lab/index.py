"""The index file that travels with each report PDF in the drop folder, and atomic writes.

File names: ``<reportId>_v<version>.pdf`` and ``<reportId>_v<version>.json`` (same stem). Writers
create a hidden temporary file (``.<name>.part``) in the same folder, fsync it, then rename it
into place; the PDF first, the index last, so a complete index means a complete pair. Readers
ignore names starting with a dot. Format (UTF-8 JSON, documented in docs/lab-transfer.md)::

    {
      "format": "lab-report-index", "formatVersion": 1,
      "reportId": "JY2026112700001", "version": 2,
      "event": "archived", "archivedAt": "2026-11-27T10:15:00+08:00",
      "pdf": {"fileName": "JY2026112700001_v2.pdf", "size": 48213, "sm3": "<64 hex>"},
      "report": { ...the LIS content, intake.LabReportIn... },
      "signature": { ...esign.services.signature_block(), or null... },
      "contentHash": "<SM3 of the canonical report JSON>",
      "generator": "hospital-interop",
      "mac": {"algorithm": "HMAC-SM3", "value": "<64 hex>"}
    }

``mac`` authenticates the pair: HMAC-SM3, with the key of ``LAB_TRANSFER["INDEX_KEY_FILE"]``, over
``canonical(doc)`` — the document without ``mac`` as canonical JSON — which covers the PDF's size
and SM3 as well as the report. ``parse`` accepts an index whose MAC is right, or whose report and
PDF are exactly a version this server archived; anything else is refused with the reason.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hospital_interop.filemodes import fsync_dir as fsync_dir
from hospital_interop.filemodes import write_private
from hospital_interop.integrations import strictjson
from hospital_interop.municipal.gm import hmac_sm3, sm3_hex

from . import intake

FORMAT = "lab-report-index"
FORMAT_VERSION = 1
PDF_EXT, INDEX_EXT = ".pdf", ".json"
MAX_INDEX_BYTES = 4 * 1024 * 1024


def stem_for(report_id: str, version: int) -> str:
    return f"{report_id}_v{version}"


MAC_FIELD, MAC_ALGORITHM = "mac", "HMAC-SM3"


def canonical(doc: dict) -> bytes:
    """The bytes the MAC covers: the index document without ``mac``, keys sorted at every level, no
    whitespace, non-ASCII characters as themselves, UTF-8 — RFC 8785 (JCS) for a document of strings,
    integers, booleans, null, objects and arrays, which is all an index holds."""
    body = {k: v for k, v in doc.items() if k != MAC_FIELD}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def mac_of(doc: dict, key: bytes) -> str:
    return hmac_sm3(key, canonical(doc)).hex()


def mac_ok(doc: dict, key: bytes) -> bool:
    """True when ``doc`` carries the right HMAC-SM3 for ``key`` (compared in constant time)."""
    mac = doc.get(MAC_FIELD)
    if (
        not isinstance(mac, dict)
        or mac.get("algorithm") != MAC_ALGORITHM
        or not isinstance(mac.get("value"), str)
    ):
        return False
    return hmac.compare_digest(
        mac["value"].lower().encode("ascii", "replace"), mac_of(doc, key).encode("ascii")
    )


def build(
    *,
    report_id: str,
    version: int,
    archived_at: str,
    pdf_name: str,
    pdf_bytes: bytes,
    content: dict,
    signature: dict | None,
    key: bytes,
) -> bytes:
    doc = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "reportId": report_id,
        "version": version,
        "event": "archived",
        "archivedAt": archived_at,
        "pdf": {"fileName": pdf_name, "size": len(pdf_bytes), "sm3": sm3_hex(pdf_bytes)},
        "report": content,
        "signature": signature,
        "contentHash": intake.content_hash(content),
        "generator": "hospital-interop",
    }
    doc[MAC_FIELD] = {"algorithm": MAC_ALGORITHM, "value": mac_of(doc, key)}
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


class IndexError_(ValueError):
    """The index file cannot be used; ``reason`` is Chinese, ``errors`` the details."""

    def __init__(self, reason: str, errors: list[dict] | None = None):
        self.reason, self.errors = reason, errors or []
        super().__init__(reason)


@dataclass
class Index:
    report_id: str
    version: int
    archived_at: str
    pdf_name: str
    pdf_size: int
    pdf_sm3: str
    content: dict
    signature: dict | None
    authenticated_by: str = ""  # "archive": a version this server archived; "mac": the right HMAC-SM3


Archived = Callable[[str, int, str, str], bool]


def parse(raw: bytes, *, stem: str, key: bytes, archived: Archived) -> Index:
    """Parse, authenticate and check an index file; raises IndexError_ with a readable reason.

    Authentic is an index whose report and PDF digest are those of a version this server archived
    (``archived(report_id, version, content_hash, pdf_sm3) -> bool``), or one that carries the right
    MAC for ``key`` (this server's archive, or a LIS holding the key). Only archived content skips
    the LIS schema (it was validated at approval); content authenticated by the MAC alone is checked.
    The PDF itself is compared with the index's size and SM3 by ``check_pdf``.
    """
    if len(raw) > MAX_INDEX_BYTES:
        raise IndexError_(f"索引文件过大（{len(raw)} 字节）")
    try:
        doc = strictjson.loads(raw, top="any")
    except strictjson.JsonRefused as refused:
        where = f"（{refused.field}）" if refused.field else ""
        raise IndexError_(
            f"索引文件不是有效的 UTF-8 JSON{where}：{refused.message}", [refused.as_error()]
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IndexError_(f'索引文件格式不对：缺少 "format": "{FORMAT}"')
    if doc.get("formatVersion") != FORMAT_VERSION:
        raise IndexError_(f"不支持的索引格式版本 {doc.get('formatVersion')!r}（支持 {FORMAT_VERSION}）")
    errors = []
    pdf = doc.get("pdf") if isinstance(doc.get("pdf"), dict) else {}
    for field, ok in (
        ("reportId", isinstance(doc.get("reportId"), str) and doc["reportId"]),
        (
            "version",
            isinstance(doc.get("version"), int)
            and not isinstance(doc["version"], bool)
            and doc["version"] > 0,
        ),
        ("pdf.fileName", isinstance(pdf.get("fileName"), str) and pdf["fileName"].endswith(PDF_EXT)),
        ("pdf.size", isinstance(pdf.get("size"), int) and pdf["size"] > 0),
        ("pdf.sm3", isinstance(pdf.get("sm3"), str) and re.fullmatch(r"[0-9a-f]{64}", pdf["sm3"] or "")),
        ("report", isinstance(doc.get("report"), dict)),
    ):
        if not ok:
            errors.append({"field": field, "rule": "required", "message": f"索引缺少或错误：{field}"})
    if errors:
        raise IndexError_("索引文件缺少必需字段：" + "、".join(e["field"] for e in errors), errors)
    digest = intake.content_hash(doc["report"])
    if archived(doc["reportId"], doc["version"], digest, pdf["sm3"]):
        authenticated_by, content, problems = "archive", doc["report"], []  # validated at approval
    elif mac_ok(doc, key):
        authenticated_by = "mac"
        content, problems = intake.normalise(doc["report"])
    else:
        raise IndexError_(*_unauthenticated(doc))
    if problems:
        raise IndexError_(
            "索引中的报告内容不符合 LIS 报告格式："
            + "；".join(f"{e['field']} {e['message']}" for e in problems[:5]),
            problems,
        )
    if content["reportId"] != doc["reportId"]:
        raise IndexError_(f"索引的 reportId {doc['reportId']} 与报告内容 {content['reportId']} 不一致")
    if stem_for(doc["reportId"], doc["version"]) != stem or pdf["fileName"] != stem + PDF_EXT:
        raise IndexError_(
            f"文件名与索引不一致：索引为 {doc['reportId']} 第 {doc['version']} 版，"
            f"PDF 为 {pdf['fileName']}，文件为 {stem}{INDEX_EXT}"
        )
    signature = doc.get("signature") if isinstance(doc.get("signature"), dict) else None
    return Index(
        report_id=doc["reportId"],
        version=doc["version"],
        archived_at=str(doc.get("archivedAt") or ""),
        pdf_name=pdf["fileName"],
        pdf_size=pdf["size"],
        pdf_sm3=pdf["sm3"],
        content=content,
        signature=signature,
        authenticated_by=authenticated_by,
    )


def _unauthenticated(doc: dict) -> tuple[str, list[dict]]:
    """Why an index that is neither archived here nor correctly MACed is refused (reason, errors)."""
    if MAC_FIELD not in doc:
        reason = f"索引文件缺少校验码（{MAC_ALGORITHM}），且不是本系统归档的报告"
    else:
        reason = (
            f"索引文件的校验码（{MAC_ALGORITHM}）不正确：索引内容或 PDF 摘要在写出后被改动，"
            "或写出方没有使用本系统的索引密钥；且不是本系统归档的报告"
        )
    reason += "（报告内容或 PDF 摘要与归档记录不一致）。可能是伪造或被改动的文件，不予上传"
    return reason, [{"field": MAC_FIELD, "rule": "authentication", "message": reason}]


def check_pdf(raw: bytes, idx: Index) -> str:
    """'' when the PDF bytes are the ones the index names and look like a whole PDF, else a reason."""
    if len(raw) != idx.pdf_size:
        return f"PDF 文件不完整或被改动：实际 {len(raw)} 字节，索引记录 {idx.pdf_size} 字节"
    if sm3_hex(raw) != idx.pdf_sm3:
        return "PDF 文件的 SM3 摘要与索引记录不一致（文件被改动或损坏）"
    if not raw.startswith(b"%PDF-") or b"%%EOF" not in raw[-1024:]:
        return "PDF 文件结构不完整（缺少 %PDF- 文件头或 %%EOF 结束标记）"
    return ""


def atomic_write(folder: Path, name: str, data: bytes) -> Path:
    """Write ``folder/name`` (mode 0600) so that readers see either nothing or the whole file."""
    return write_private(folder, name, data)
