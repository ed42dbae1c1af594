"""The ``/_sim/...`` inspection and fault-injection API (plain JSON, for tests and demos)."""

from __future__ import annotations

import os
import time
from datetime import datetime
from urllib.parse import parse_qs

from hospital_interop.municipal import envelope, gm

from . import seeds
from .common import HttpError, json_response, read_json
from .faults import Faults
from .store import Store


class Inspection:
    def __init__(self, sim) -> None:
        self.sim = sim
        self.store = sim.store
        self.faults = sim.faults
        self.catalogue = sim.catalogue
        self.creds = sim.creds

    def handle(self, method: str, path: str, environ):
        parts = path.strip("/").split("/", 3)  # ["_sim", name, ...]
        name = parts[1] if len(parts) > 1 else ""
        query = {
            k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()
        }
        if name == "health" and method == "GET":
            return json_response(200, self.health())
        if name == "faults":
            if method == "POST":
                return json_response(200, self.set_faults(read_json(environ)))
            return json_response(200, {"faults": self.faults.current().to_dict()})
        if name == "records" and method == "GET":
            if len(parts) == 4:
                rec = Store.get_record(self.store.read(), parts[2], parts[3])
                if rec is None:
                    raise HttpError(404, f"没有记录 {parts[2]} / {parts[3]}")
                return json_response(200, rec)
            include_voided = query.get("include_voided", "1") not in ("0", "false")
            return json_response(
                200, {"records": self.store.records(query.get("interface"), include_voided=include_voided)}
            )
        if name == "stats" and method == "GET":
            return json_response(200, self.stats())
        if name == "reset" and method == "POST":
            body = read_json(environ, default={})
            self.store.reset(keep_faults=bool(body.get("keep_faults")))
            self.faults.reseed()
            return json_response(200, {"ok": True})
        if name == "seed":
            if method == "POST":
                return json_response(200, self.seed(read_json(environ)))
            if not query.get("idNo"):
                raise HttpError(400, "缺少参数 idNo")
            return json_response(200, self.seeded(query["idNo"], query.get("name")))
        if name == "feedback":
            if method == "POST":
                return json_response(200, {"feedback": self.add_feedback(read_json(environ))})
            since = int(query.get("since_id") or 0)
            return json_response(
                200, {"feedback": self.store.feedback(interface=query.get("interface"), since_id=since)}
            )
        if name == "qc":
            what = parts[2] if len(parts) > 2 else ""
            if what == "findings" and method == "POST":
                return json_response(200, {"findings": self.sim.quality.raise_findings(read_json(environ))})
            if what == "findings" and method == "GET":
                return json_response(200, {"findings": self.sim.quality.findings()})
            if what == "replies" and method == "GET":
                return json_response(200, {"replies": self.sim.quality.replies(query.get("feedbackId"))})
        raise HttpError(404, f"未知的模拟器接口：{method} {path}")

    def health(self) -> dict:
        return {
            "status": "ok",
            "pid": os.getpid(),
            "appId": self.creds.app_id,
            "orgCode": self.creds.org_code,
            "interfaces": len(list(self.catalogue.interfaces)),
            "uptimeSeconds": round(time.time() - self.sim.started, 1),
            "sm2Backend": gm.sm2_backend(),
        }

    def set_faults(self, body) -> dict:
        if not isinstance(body, dict):
            raise HttpError(400, "故障配置必须是 JSON 对象")
        body = dict(body)
        replace = bool(body.pop("replace", False))
        current = {} if replace else self.faults.current().to_dict()
        merged = {**current, **body}
        try:
            faults = Faults.from_dict(merged)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        self.store.save_faults(faults.to_dict())
        faults = self.faults.current()  # this process takes them (and reseeds) at once
        return {"faults": faults.to_dict()}

    def stats(self) -> dict:
        by_service: dict[str, dict[str, int]] = {}
        fired: dict[str, int] = {}
        total = 0
        for service, code, n in self.store.stats_rows():
            if service == "_faults":
                fired[code] = n
                continue
            by_service.setdefault(service, {})[code] = n
            total += n
        queries = {}
        for spec in self.catalogue.interfaces:
            if spec.kind == "query" and spec.code in by_service:
                queries[spec.code] = sum(by_service[spec.code].values())
        return {"total": total, "requests": by_service, "queries": queries, "faults_fired": fired}

    def seeded(self, id_no: str, name: str | None = None) -> dict:
        now = self.sim.now(self.faults.current())
        self.sim.queries.ensure_seeded(id_no, name, now.date())
        entries = self.store.externals(id_no=id_no)
        patient = entries[0]["patient"] if entries else seeds.patient_from_id(id_no, name)
        return {
            "idNo": id_no,
            "patient": patient,
            "lab": [e["report"] for e in entries if e["kind"] == "lab"],
            "exam": [e["report"] for e in entries if e["kind"] == "exam"],
        }

    def seed(self, body) -> dict:
        """Add external results for an ID number (see the README of the simulator)."""
        if not isinstance(body, dict) or not isinstance(body.get("idNo"), str) or not body["idNo"]:
            raise HttpError(400, "需要 JSON 对象，且 idNo 为非空字符串")
        id_no, name = body["idNo"], body.get("name")
        now = self.sim.now(self.faults.current())
        lab = body.get("lab", [])
        exam = body.get("exam", [])
        try:
            lab = _pick(lab, sorted(seeds.LAB_PANELS), "lab")
            exam = _pick(exam, sorted(seeds.EXAMS), "exam")
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        days_ago = body.get("daysAgo")
        if days_ago is not None and (
            isinstance(days_ago, bool) or not isinstance(days_ago, int) or days_ago < 0
        ):
            raise HttpError(400, "daysAgo 必须是非负整数")
        hospital = None
        if body.get("orgCode"):
            names = dict(seeds.HOSPITALS)
            hospital = (body["orgCode"], body.get("orgName") or names.get(body["orgCode"], "北京市某医院"))
        stamp = envelope.format_timestamp(datetime.now(envelope.PLATFORM_TZ))
        if not body.get("replace"):
            self.sim.queries.ensure_seeded(id_no, name, now.date())
        patient = seeds.patient_from_id(id_no, name)
        with self.store.write() as db:
            if body.get("replace"):
                Store.clear_externals(db, id_no)
                Store.mark_seeded(db, id_no, patient["name"], stamp)
            start = db.execute("SELECT COUNT(*) FROM externals WHERE id_no = ?", (id_no,)).fetchone()[0]
            start += 10 if not body.get("replace") else 0  # never reuse a default report id
            new = seeds.extra_results(
                id_no, now.date(), start_index=start, lab=lab, exam=exam, days_ago=days_ago, hospital=hospital
            )
            for extra in body.get("reports") or ():
                if not isinstance(extra, dict) or extra.get("kind") not in ("lab", "exam"):
                    raise HttpError(400, "reports 的每一项必须是含 kind（lab|exam）的对象")
                report = {k: v for k, v in extra.items() if k != "kind"}
                if not report.get("externalOrgCode") or not report.get("reportId"):
                    raise HttpError(400, "reports 的每一项需要 externalOrgCode 与 reportId")
                new.append((extra["kind"], report))
            for kind, report in new:
                Store.add_external(
                    db,
                    kind=kind,
                    id_no=id_no,
                    report=report,
                    patient=patient,
                    org_code=report["externalOrgCode"],
                    report_id=report["reportId"],
                    now=stamp,
                )
        return self.seeded(id_no, name)

    def add_feedback(self, body) -> list[dict]:
        items = body.get("items") if isinstance(body, dict) and "items" in body else body
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list) or not items:
            raise HttpError(400, "需要一条或多条反馈（interface, key, field, rule, message）")
        clean = []
        for it in items:
            if not isinstance(it, dict) or not all(
                isinstance(it.get(k), str) and it[k] for k in ("interface", "key", "field", "rule", "message")
            ):
                raise HttpError(400, "每条反馈需要非空字符串字段 interface, key, field, rule, message")
            clean.append({k: it[k] for k in ("interface", "key", "field", "rule", "message")})
        return self.store.add_feedback(clean, envelope.format_timestamp(datetime.now(envelope.PLATFORM_TZ)))


def _pick(value, choices: list[str], what: str) -> list[str]:
    if isinstance(value, bool):
        raise ValueError(f"{what} 必须是数量或名称列表")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{what} 数量不能为负")
        return [choices[i % len(choices)] for i in range(value)]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        unknown = [v for v in value if v not in choices]
        if unknown:
            raise ValueError(f"未知的{what}：{', '.join(unknown)}；可用：{', '.join(choices)}")
        return value
    raise ValueError(f"{what} 必须是数量或名称列表")
