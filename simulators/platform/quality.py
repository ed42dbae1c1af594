"""Data-quality feedback (interfaces.md §G): the commission (卫健委) and the QC centre (质控中心)
raise findings on what the hospital uploaded; the hospital pulls them (``QC_FEEDBACK_QUERY``,
paged by cursor) and answers each (``QC_FEEDBACK_REPLY``).

Findings are raised through the inspection API (``POST /_sim/qc/findings``): ``content`` and
``late`` against a record the platform holds, ``missing`` for a key it never received. Raising a
finding again with its ``feedbackId`` re-issues it: it moves to the end of the feed (a new
sequence number), so a client that pulls by cursor sees it again. Replies are checked (an
unknown ``feedbackId`` is 2002, the spec's rules are 2001) and kept (``GET /_sim/qc/replies``).

The cursor is ``s<sequence>``: the items after that sequence number. ``nextCursor`` is empty
when nothing follows the page.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta

from hospital_interop.municipal import envelope

from .common import MESSAGES, Answer, HttpError, field_error

QUERY, REPLY = "QC_FEEDBACK_QUERY", "QC_FEEDBACK_REPLY"
KINDS = ("content", "missing", "late")
KIND_TEXT = {"content": "内容", "missing": "应传未传", "late": "上传超时"}
ISSUERS = ("WJW", "ZKZX")
LEVELS = ("error", "warning")
DEFAULTS = {
    "content": ("plausibility", "记录内容未通过质控核查，请核实后修正重传。"),
    "missing": ("reconciliation", "平台对账发现该记录应上传而未收到，请补传。"),
    "late": ("timeliness", "该记录超过时效要求上传，请说明原因。"),
}
CURSOR = re.compile(r"^s(\d{1,18})$")


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _stamp(dt: datetime) -> str:
    return dt.strftime("%Y%m%d%H%M%S")


class Quality:
    def __init__(self, store, catalogue, org_code: str, now) -> None:
        self.store = store
        self.catalogue = catalogue
        self.org_code = org_code
        self.now = now  # () -> platform time

    # -- inspection: raise findings ------------------------------------------------------------
    def raise_findings(self, body) -> list[dict]:
        items = body.get("items") if isinstance(body, dict) and "items" in body else body
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list) or not items:
            raise HttpError(400, "需要一条或多条质控问题（kind, serviceCode, businessKey）")
        now = self.now()
        spec = self.catalogue.interface(QUERY)
        out = []
        with self.store.write() as db:
            for n, raw in enumerate(items):
                finding = self._finding(db, raw, n, now)
                errors = spec.validate_response({"items": [finding], "nextCursor": ""})
                if errors:
                    detail = "；".join(f"{e['field']}：{e['message']}" for e in errors)
                    raise HttpError(400, f"第 {n + 1} 条质控问题不符合接口规范：{detail}")
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM qc_findings").fetchone()[0]
                db.execute(
                    "INSERT INTO qc_findings (feedback_id, seq, org_code, body) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (feedback_id) DO UPDATE SET seq = excluded.seq, body = excluded.body,"
                    " issued = issued + 1",
                    (finding["feedbackId"], seq, raw.get("orgCode") or self.org_code, _dumps(finding)),
                )
                out.append(finding)
        return out

    def _finding(self, db: sqlite3.Connection, raw, n: int, now: datetime) -> dict:
        where = f"第 {n + 1} 条"
        if not isinstance(raw, dict):
            raise HttpError(400, f"{where}质控问题必须是 JSON 对象")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise HttpError(400, f"{where}：kind 必须是 {' / '.join(KINDS)} 之一")
        code, key = raw.get("serviceCode"), raw.get("businessKey")
        if not isinstance(code, str) or not isinstance(key, str) or not key:
            raise HttpError(400, f"{where}：需要 serviceCode 与 businessKey（主键字段值以 | 连接）")
        try:
            spec = self.catalogue.interface(code)
        except KeyError:
            raise HttpError(400, f"{where}：未知的接口 {code}") from None
        if len(key.split("|")) != len(spec.key):
            raise HttpError(400, f"{where}：{code} 的主键由 {'、'.join(spec.key)} 组成，收到 {key}")
        held = db.execute(
            "SELECT voided FROM records WHERE interface = ? AND key = ?", (code, key)
        ).fetchone()
        if kind in ("content", "late") and (held is None or held["voided"]):
            raise HttpError(
                400, f"{where}：平台没有 {code}（{key}），不能对其发布{KIND_TEXT.get(kind, kind)}问题"
            )
        if kind == "missing" and held is not None and not held["voided"]:
            raise HttpError(400, f"{where}：平台已收到 {code}（{key}），不是应传未传")
        issuer = raw.get("issuer", "ZKZX")
        if issuer not in ISSUERS:
            raise HttpError(400, f"{where}：issuer 必须是 WJW（卫健委）或 ZKZX（质控中心）")
        level = raw.get("level", "error")
        if level not in LEVELS:
            raise HttpError(400, f"{where}：level 必须是 error 或 warning")
        hours = raw.get("replyInHours", 72)
        if isinstance(hours, bool) or not isinstance(hours, (int, float)):
            raise HttpError(400, f"{where}：replyInHours 必须是数字（可为负，表示已逾期）")
        feedback_id = raw.get("feedbackId")
        if feedback_id is None:
            count = db.execute("SELECT COUNT(*) FROM qc_findings").fetchone()[0]
            feedback_id = f"QC{_stamp(now)}{count + 1:04d}"
        elif not isinstance(feedback_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", feedback_id):
            raise HttpError(400, f"{where}：feedbackId 须为 1–40 位字母、数字、- 或 _")
        rule, message = DEFAULTS[kind]
        return {
            "feedbackId": feedback_id,
            "issuer": issuer,
            "kind": kind,
            "serviceCode": code,
            "businessKey": key,
            "field": str(raw.get("field") or ""),
            "rule": str(raw.get("rule") or rule),
            "message": str(raw.get("message") or message),
            "level": level,
            "issuedAt": _stamp(now),
            "replyBy": _stamp(now + timedelta(hours=hours)),
        }

    def findings(self) -> list[dict]:
        rows = self.store.read().execute("SELECT body, seq, issued FROM qc_findings ORDER BY seq")
        return [{**json.loads(r["body"]), "seq": r["seq"], "issued": r["issued"]} for r in rows]

    def replies(self, feedback_id: str | None = None) -> list[dict]:
        sql, params = "SELECT id, feedback_id, body, received_at FROM qc_replies", []
        if feedback_id:
            sql += " WHERE feedback_id = ?"
            params.append(feedback_id)
        rows = self.store.read().execute(sql + " ORDER BY id", params)
        return [
            {
                "id": r["id"],
                "feedbackId": r["feedback_id"],
                "receivedAt": r["received_at"],
                **json.loads(r["body"]),
            }
            for r in rows
        ]

    # -- the protocol --------------------------------------------------------------------------
    def query(self, payload: dict, requester_org: str) -> Answer:
        cursor = payload.get("cursor") or ""
        match = CURSOR.match(cursor) if cursor else None
        if cursor and match is None:
            return Answer(
                "2001",
                MESSAGES["2001"],
                {
                    "errors": [
                        field_error(
                            "cursor", "format", "游标无效：请使用上一页返回的 nextCursor，首次查询留空"
                        )
                    ]
                },
            )
        after = int(match.group(1)) if match else 0
        size = int(payload.get("pageSize") or 100)
        if not 1 <= size <= 500:
            return Answer(
                "2001",
                MESSAGES["2001"],
                {"errors": [field_error("pageSize", "range", "每页条数须在 1 到 500 之间")]},
            )
        org = payload.get("orgCode") or requester_org
        rows = (
            self.store.read()
            .execute(
                "SELECT seq, body FROM qc_findings WHERE org_code = ? AND seq > ? ORDER BY seq LIMIT ?",
                (org, after, size + 1),
            )
            .fetchall()
        )
        page, more = rows[:size], len(rows) > size
        return Answer(
            "0",
            MESSAGES["0"],
            {
                "items": [json.loads(r["body"]) for r in page],
                "nextCursor": f"s{page[-1]['seq']}" if more else "",
            },
        )

    def check_reply(self, db: sqlite3.Connection, payload: dict) -> Answer | None:
        """None when the reply may be stored; else the platform's answer (2002 unknown feedback)."""
        row = db.execute(
            "SELECT org_code FROM qc_findings WHERE feedback_id = ?", (payload.get("feedbackId"),)
        ).fetchone()
        if row is None or row["org_code"] != payload.get("orgCode"):
            return Answer("2002", f"平台上没有该质控反馈：{payload.get('feedbackId')}")
        return None

    @staticmethod
    def store_reply(db: sqlite3.Connection, payload: dict, now: datetime) -> None:
        db.execute(
            "INSERT INTO qc_replies (feedback_id, body, received_at) VALUES (?, ?, ?)",
            (payload["feedbackId"], _dumps(payload), envelope.format_timestamp(now)),
        )
