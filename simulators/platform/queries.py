"""The query interfaces: recognisable results of other hospitals, report lists, PDF preview.

What the platform "holds" is the hospital's uploads (``records``) plus the seeded results of
other hospitals (``externals``, see ``seeds.py``); voided uploads never appear.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hospital_interop.municipal import envelope

from . import pdf, seeds
from .common import MESSAGES, Answer, digits, key_string
from .store import Store

# Interfaces whose records make up "the lab reports the platform holds" (list queries, preview).
LAB_DETAIL_INTERFACES = ("LAB_REPORT_DETAIL",)
LAB_PDF_INTERFACES = ("LAB_REPORT_PDF",)
REPORT_INTERFACES = ("EXAM_RESULT_SUBMIT", "LAB_REPORT_DETAIL", "PUB_LAB_REPORT_DETAIL")
HELD_EXAM_INTERFACES = ("EXAM_RESULT_SUBMIT",)
EXAM_ITEM_FIELDS = (
    "reportId",
    "recognitionItemCode",
    "recognitionItemName",
    "examCategoryCode",
    "examCategoryName",
    "bodyPartCode",
    "bodyPartName",
    "examDateTime",
    "reportDateTime",
    "findings",
    "impression",
    "resultCode",
    "resultName",
    "recognitionMark",
    "studyInstanceUid",
    "imageCount",
)
FILE_KEYS = ("fileName", "fileType", "fileSize", "fileHash", "fileContent")


class Queries:
    def __init__(self, store: Store, catalogue) -> None:
        self.store = store
        self.catalogue = catalogue

    def answer(self, spec, payload: dict, now: datetime, requester_org: str) -> Answer:
        """Validated payload of a query interface → the platform's answer."""
        errors = list(spec.validate(payload))
        if errors:
            return Answer("2001", MESSAGES["2001"], {"errors": errors})
        handler = {
            "EXAM_RECOGNIZABLE_ITEMS": self._q_exam_items,
            "LAB_RECOGNIZABLE_ITEMS": self._q_lab_items,
            "LAB_REPORT_PDF_PREVIEW": self._q_pdf_preview,
            "LAB_REPORT_LIST_BY_ORG": self._q_list_by_org,
            "LAB_REPORT_LIST_BY_ID": self._q_list_by_id,
        }.get(spec.code)
        if handler is None:
            return Answer("5000", f"模拟器未实现查询 {spec.code}")
        return handler(payload, now, requester_org)

    def ensure_seeded(self, id_no: str, name: str | None, today: date) -> None:
        """Materialise the deterministic external results of an ID number (once)."""
        if Store.is_seeded(self.store.read(), id_no):
            return
        patient = seeds.patient_from_id(id_no, name)
        stamp = envelope.format_timestamp(datetime.now(envelope.PLATFORM_TZ))
        with self.store.write() as db:
            if Store.is_seeded(db, id_no):
                return
            for kind, report in seeds.default_results(id_no, today):
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
            Store.mark_seeded(db, id_no, patient["name"], stamp)

    def _patient_query(self, payload: dict, now: datetime) -> str:
        patient = payload.get("patient") or {}
        id_no = patient.get("idNo") or ""
        self.ensure_seeded(id_no, patient.get("name"), now.date())
        return id_no

    def _q_exam_items(self, payload: dict, now: datetime, requester_org: str) -> Answer:
        id_no = self._patient_query(payload, now)
        wanted = set(payload.get("recognitionItemCodes") or ())
        today = seeds.fmt_d(now.date())
        requester = payload.get("orgCode") or requester_org
        reports = [e["report"] for e in self.store.externals(id_no=id_no, kind="exam")]
        reports += self._held_exam_reports(id_no)
        items = [
            r
            for r in reports
            if r["externalOrgCode"] != requester
            and digits(r["validUntil"]) >= today
            and (not wanted or r["recognitionItemCode"] in wanted)
        ]
        return Answer("0", MESSAGES["0"], {"items": items})

    def _held_exam_reports(self, id_no: str) -> list[dict]:
        """Recognisable (HR) exam results uploaded to the platform, as the query returns them.

        Another requesting organisation (a second campus, say) sees them like any external
        result; voided reports are left out.
        """
        out = []
        for rec in self.store.live_records(HELD_EXAM_INTERFACES, id_no=id_no):
            p = rec["payload"]
            code = p.get("recognitionItemCode")
            if p.get("recognitionMark") != "HR" or not code or not p.get("recognitionItemName"):
                continue
            try:
                exam_day = datetime.strptime(digits(p.get("examDateTime"))[:8], "%Y%m%d").date()
            except ValueError:
                continue
            window = seeds.EXAMS.get(code, {}).get("window", 30)
            report = {
                "externalOrgCode": p.get("orgCode", ""),
                "externalOrgName": p.get("orgName", ""),
                "validUntil": seeds.fmt_d(exam_day + timedelta(days=window)),
            }
            for name in EXAM_ITEM_FIELDS:
                if p.get(name) not in (None, ""):
                    report[name] = p[name]
            out.append(report)
        return out

    def _q_lab_items(self, payload: dict, now: datetime, requester_org: str) -> Answer:
        id_no = self._patient_query(payload, now)
        wanted = set(payload.get("recognitionItemCodes") or ())
        today = seeds.fmt_d(now.date())
        requester = payload.get("orgCode") or requester_org
        reports = []
        for e in self.store.externals(id_no=id_no, kind="lab"):
            report = e["report"]
            if report["externalOrgCode"] == requester:
                continue
            items = [
                it
                for it in report["items"]
                if digits(it.get("validUntil")) >= today
                and (not wanted or it.get("recognitionItemCode") in wanted)
            ]
            if items:
                reports.append({**report, "items": items})
        return Answer("0", MESSAGES["0"], {"reports": reports})

    def _held_file(self, org_code: str, report_id: str) -> dict | None:
        db = self.store.read()
        for code in LAB_PDF_INTERFACES:
            spec = self.catalogue.interface(code)
            rec = Store.get_record(db, code, key_string(spec, {"orgCode": org_code, "reportId": report_id}))
            if rec and not rec["voided"]:
                return {k: rec["payload"][k] for k in FILE_KEYS if k in rec["payload"]}
        for code in LAB_DETAIL_INTERFACES:
            spec = self.catalogue.interface(code)
            rec = Store.get_record(db, code, key_string(spec, {"orgCode": org_code, "reportId": report_id}))
            if rec and not rec["voided"]:
                p = rec["payload"]
                patient = dict(p.get("patient") or {})
                patient["idNoMasked"] = seeds.mask_id(patient.get("idNo", ""))
                content = pdf.lab_report_pdf(org_name=p.get("orgName", org_code), report=p, patient=patient)
                return envelope.file_fields(f"{report_id}.pdf", content)
        return None

    def _q_pdf_preview(self, payload: dict, now: datetime, requester_org: str) -> Answer:
        org_code, report_id = payload.get("orgCode", ""), payload.get("reportId", "")
        files = self._held_file(org_code, report_id)
        if files is None:
            ext = self.store.external(org_code, report_id)
            if ext is None or ext["kind"] != "lab":
                return Answer("2002", f"平台上没有该检验报告：{org_code}|{report_id}")
            patient = {**ext["patient"], "idNoMasked": seeds.mask_id(ext["idNo"])}
            content = pdf.lab_report_pdf(
                org_name=ext["report"]["externalOrgName"], report=ext["report"], patient=patient
            )
            files = envelope.file_fields(f"{report_id}.pdf", content)
        return Answer("0", MESSAGES["0"], {"reportId": report_id, **files})

    def _held_rows(self, *, org_code: str | None = None, id_no: str | None = None) -> list[dict]:
        """List rows for the lab reports this hospital uploaded (detail, or PDF only)."""
        rows: dict[tuple[str, str], dict] = {}
        pdf_keys = set()
        for rec in self.store.live_records(LAB_PDF_INTERFACES, org_code=org_code, id_no=id_no):
            p = rec["payload"]
            pdf_keys.add((p.get("orgCode"), p.get("reportId")))
            rows[(p.get("orgCode"), p.get("reportId"))] = self._row(p, rec, "检验报告", has_pdf=True)
        for rec in self.store.live_records(LAB_DETAIL_INTERFACES, org_code=org_code, id_no=id_no):
            p = rec["payload"]
            k = (p.get("orgCode"), p.get("reportId"))
            rows[k] = self._row(p, rec, p.get("reportTitle") or "检验报告", has_pdf=k in pdf_keys)
        return list(rows.values())

    @staticmethod
    def _row(p: dict, rec: dict, title: str, *, has_pdf: bool) -> dict:
        patient = p.get("patient") or {}
        return {
            "reportId": p.get("reportId", ""),
            "orgCode": p.get("orgCode", ""),
            "orgName": p.get("orgName", ""),
            "patientName": patient.get("name", ""),
            "idNoMasked": seeds.mask_id(patient.get("idNo", "")),
            "reportTitle": title,
            "reportDateTime": p.get("reportDateTime", ""),
            "uploadDateTime": seeds.fmt_dt(envelope.parse_timestamp(rec["received_at"])),
            "version": rec["version"],
            "hasPdf": has_pdf,
            "voidFlag": "0",
        }

    @staticmethod
    def _external_row(ext: dict) -> dict:
        r = ext["report"]
        return {
            "reportId": r["reportId"],
            "orgCode": r["externalOrgCode"],
            "orgName": r["externalOrgName"],
            "patientName": ext["patient"].get("name", ""),
            "idNoMasked": seeds.mask_id(ext["idNo"]),
            "reportTitle": r["reportTitle"],
            "reportDateTime": r["reportDateTime"],
            "uploadDateTime": r["reportDateTime"],
            "version": 1,
            "hasPdf": True,
            "voidFlag": "0",
        }

    @staticmethod
    def _page(rows: list[dict], payload: dict) -> dict:
        rows.sort(key=lambda r: (digits(r["reportDateTime"]), r["orgCode"], r["reportId"]), reverse=True)
        page_no = max(int(payload.get("pageNo") or 1), 1)
        page_size = max(int(payload.get("pageSize") or 20), 1)
        start = (page_no - 1) * page_size
        return {
            "total": len(rows),
            "pageNo": page_no,
            "pageSize": page_size,
            "reports": rows[start : start + page_size],
        }

    @staticmethod
    def _in_range(row: dict, start: str, end: str) -> bool:
        day = digits(row["reportDateTime"])[:8]
        return (not start or day >= start) and (not end or day <= end)

    def _q_list_by_org(self, payload: dict, now: datetime, requester_org: str) -> Answer:
        org_code = payload.get("orgCode", "")
        start, end = digits(payload.get("startDate"))[:8], digits(payload.get("endDate"))[:8]
        rows = self._held_rows(org_code=org_code)
        rows += [self._external_row(e) for e in self.store.externals(kind="lab", org_code=org_code)]
        return Answer(
            "0", MESSAGES["0"], self._page([r for r in rows if self._in_range(r, start, end)], payload)
        )

    def _q_list_by_id(self, payload: dict, now: datetime, requester_org: str) -> Answer:
        id_no = self._patient_query(payload, now)
        start, end = digits(payload.get("startDate"))[:8], digits(payload.get("endDate"))[:8]
        rows = self._held_rows(id_no=id_no)
        rows += [self._external_row(e) for e in self.store.externals(kind="lab", id_no=id_no)]
        return Answer(
            "0", MESSAGES["0"], self._page([r for r in rows if self._in_range(r, start, end)], payload)
        )

    def find_report(self, org_code: str, report_id: str) -> tuple[str, dict, dict] | None:
        """(kind, report fields, patient) of an external or held report."""
        ext = self.store.external(org_code, report_id)
        if ext is not None:
            return ext["kind"], ext["report"], {**ext["patient"], "idNoMasked": seeds.mask_id(ext["idNo"])}
        db = self.store.read()
        for code in REPORT_INTERFACES:
            try:
                spec = self.catalogue.interface(code)
            except (KeyError, LookupError):
                continue
            rec = Store.get_record(db, code, key_string(spec, {"orgCode": org_code, "reportId": report_id}))
            if rec and not rec["voided"]:
                p = rec["payload"]
                patient = dict(p.get("patient") or {})
                patient["idNoMasked"] = seeds.mask_id(patient.get("idNo", ""))
                kind = "exam" if code.startswith("EXAM") else "lab"
                return kind, {**p, "externalOrgName": p.get("orgName", org_code)}, patient
        return None
