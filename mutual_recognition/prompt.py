"""Which ordered items have recognisable external results: the prompt API's hot path.

``evaluate`` is pure (bundle + snapshot + items → answer); the API view does one cache round
trip (the visit's bundle and the dictionaries' version) and calls it. Only when the visit was not
pre-loaded does ``services.ensure_bundle`` go to the database and the platform.
"""

from __future__ import annotations

from .external import valid
from .links import OrderedItem
from .snapshot import Snapshot


def _d(s: str) -> str:
    s = str(s or "")
    return f"{s[0:4]}-{s[4:6]}-{s[6:8]}" if len(s) >= 8 else s


def _exam_result(r: dict) -> dict:
    return {
        "externalOrgCode": r["org"],
        "externalOrgName": r["orgName"],
        "reportId": r["reportId"],
        "date": _d(r["at"]),
        "conclusion": r["impression"],
        "result": r["resultName"],
        "validUntil": _d(r["validUntil"]),
    }


def _lab_result(r: dict, line) -> dict:
    return {
        "subItemCode": line.sub_code,
        "subItemName": line.sub_name,
        "standardCode": line.std_code,
        "standardName": line.std_name,
        "externalOrgCode": r["org"],
        "externalOrgName": r["orgName"],
        "reportId": r["reportId"],
        "date": _d(r["at"]),
        "value": r["value"],
        "unit": r["unit"],
        "flag": r["flag"],
        "referenceRange": r["range"],
        "validUntil": _d(r["validUntil"]),
    }


def evaluate_item(item: OrderedItem, bundle: dict, snap: Snapshot, today: str) -> dict:
    out = {"orderId": item.order_id, "kind": item.kind, "itemCode": item.code}
    if item.kind == "exam":
        target = snap.exam_target(item.code, item.body_part)
        if target is None:
            out.update(
                itemName=snap.exam_names.get(item.code, ""),
                mapped=False,
                recognizable=False,
                coverage="none",
                summary="该项目不是互认项目或尚未对照标准项目",
            )
            return out
        results = valid(bundle["exam"].get(target.std_code, []), today)
        out.update(
            itemName=target.order_name,
            mapped=True,
            standardCode=target.std_code,
            standardName=target.std_name,
            recognizable=bool(results),
            coverage="full" if results else "none",
            results=[_exam_result(r) for r in results],
        )
        if results:
            r = results[0]
            more = f"（另有 {len(results) - 1} 份）" if len(results) > 1 else ""
            out["summary"] = (
                f"{r['orgName']} {_d(r['at'])} {target.std_name}：{r['impression']}"
                f" 可互认至 {_d(r['validUntil'])}{more}"
            )
        else:
            out["summary"] = "无外院可互认结果"
        return out
    panel = snap.lab.get(item.code)
    if panel is None or not any(line.std_code for line in panel.lines):
        out.update(
            itemName=panel.order_name if panel else "",
            mapped=False,
            recognizable=False,
            coverage="none",
            summary="该项目不含互认项目或尚未对照标准项目",
        )
        return out
    rows, covered = [], 0
    recognition_lines = [line for line in panel.lines if line.std_code]
    for line in recognition_lines:
        results = valid(bundle["lab"].get(line.std_code, []), today)
        if results:
            covered += 1
            rows.append(_lab_result(results[0], line))
    coverage = "none" if not covered else ("full" if covered == len(panel.lines) else "partial")
    out.update(
        itemName=panel.order_name,
        mapped=True,
        recognizable=bool(covered),
        coverage=coverage,
        lineCount=len(panel.lines),
        recognizableLineCount=covered,
        results=rows,
    )
    if rows:
        orgs = sorted({r["externalOrgName"] for r in rows})
        first_end = min(r["validUntil"] for r in rows)
        out["summary"] = (
            f"{covered}/{len(panel.lines)} 项有外院可互认结果（{'、'.join(orgs)}，最早 {first_end} 到期）"
        )
    else:
        out["summary"] = "无外院可互认结果"
    return out


def evaluate(items: list[OrderedItem], bundle: dict, snap: Snapshot, today: str) -> list[dict]:
    """Each ordered item's answer. An item with no result whose kind the platform could not be
    asked about says so and why, instead of a plain "no external result"."""
    unasked = {e["kind"]: e for e in bundle.get("errors") or []}
    answers = [evaluate_item(i, bundle, snap, today) for i in items]
    for a in answers:
        error = unasked.get(a["kind"])
        if error and a.get("mapped") and not a["recognizable"]:
            what = "检查" if a["kind"] == "exam" else "检验"
            a["platformError"] = {"code": error["code"], "message": error["message"]}
            why = " ".join(x for x in (error["code"], error["message"]) if x)
            a["summary"] = f"未能查询市平台{what}结果（{why}），请稍后重试"
    return answers
