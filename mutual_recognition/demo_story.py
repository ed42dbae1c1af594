"""The demo's story (here because mutual_recognition is the app on top of the dependency graph:
it may use every other app): a few days of hospital activity replayed through the real paths, so that
every page a new user opens has something to show.

What the calling systems would do, over HTTP against the running server with their own tokens:
the HIS and EMR system post outpatient and inpatient records, RIS posts exam reports, LIS posts
and archives lab reports (the transfer service picks them up from the drop folder). The
platform simulator is told beforehand to get some of it wrong, as a real platform does:

* two uploads are refused with ``2001`` (a field error): failures for ops to fix and re-drive;
* one inpatient interface answers HTTP 500: its records wait in retry until someone switches
  the fault off in the simulator's console. The demo sets that interface's timeliness
  (接口推送策略 → 时效) to 0 minutes, so they show as overdue (超时效) at once instead of a day later;
* everything else is accepted.

Identities are generated with valid check digits; nothing here bypasses an API.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass, field

import requests

from emr_sharing.mapping import record_types
from hospital_interop.integrations import services as integrations
from hospital_interop.integrations.models import CallingSystem
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.municipal.specs.validate import _id_check_digit
from hospital_interop.uploads.models import InterfacePolicy
from hospital_interop.uploads.services import POLICY_CACHE_SECONDS

log = logging.getLogger(__name__)

SYSTEMS = (("DEMO-HIS", "演示 HIS"), ("DEMO-RIS", "演示 RIS/PACS"), ("DEMO-LIS", "演示 LIS"))
# record types replayed, in the order their dependencies need (registration before the visit)
EMR_TYPES = (
    "op-registration",
    "op-visit",
    "op-record",
    "op-prescription",
    "op-settlement",
    "ip-admission",
    "ip-progress-note",
    "ip-discharge",
    "pe-report",
)
OUTAGE_INTERFACE = "IP_PROGRESS_NOTE"  # answers HTTP 500 in the demo: its records become overdue
PER_TYPE = 4
EXAM_REPORTS = 6
LAB_REPORTS = 4
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass
class Told:
    """What the replay did, for the console and the test."""

    posted: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # what the server itself refused (should be none)
    rejected_keys: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # quality findings the platform issued


def resident_id(seed: int) -> str:
    first17 = f"110105{1950 + seed % 50:04d}{1 + seed % 12:02d}{1 + seed % 28:02d}{seed % 1000:03d}"
    return first17 + _id_check_digit(first17)


def exam_report(seed: int) -> dict:
    """An approved exam report as RIS sends it: the spec's example with the demo's hospital codes."""
    from mutual_recognition.exam import mapping

    body = load_catalogue().interface(mapping.RESULT).example(seed)
    for name in (*mapping.server_filled(), "orgCode", "orgName", "requestDeptName", "execDeptName"):
        body.pop(name, None)
    for name in ("bodyPartName", "bodyPartCode", "studyInstanceUid"):
        body.pop(name, None)
    body.update(
        reportId=f"JC{seed:010d}",
        requestDeptCode="1001",
        execDeptCode="1302",
        examItemCode="CT0012",
        pdf={"fileName": f"report-{seed}.pdf", "fileContent": base64.b64encode(PDF + b"%d" % seed).decode()},
    )
    return {k: v for k, v in body.items() if v is not None}


def lab_report(seed: int) -> dict:
    """A lab report as LIS approves it, for the demo dictionaries."""
    items = [
        ("WBC", "6.52", "10^9/L", "3.5-9.5", "N"),
        ("HGB", "118", "g/L", "130-175", "L"),
        ("PLT", "215", "10^9/L", "125-350", "N"),
        ("ALT", "56", "U/L", "9-50", "H"),
        ("CEA", "3.2", "ng/mL", "0-5", "N"),
    ]
    return {
        "reportId": f"JY{20261201000 + seed:011d}",
        "applicationId": f"SQL{seed:09d}",
        "reportTitle": "血常规+肝功能+肿瘤标志物",
        "orderIds": [f"YZL{seed:07d}"],
        "patient": {
            "patientId": f"PL{seed:06d}",
            "name": ("张秀兰", "王建国", "李敏", "赵立新")[seed % 4],
            "idTypeCode": "01",
            "idNo": resident_id(seed),
            "phone": "13800138000",
        },
        "visit": {"visitId": f"VL{seed:09d}", "patientTypeCode": "1", "outpatientNo": f"MZ{seed:08d}"},
        "requestDept": "1101",
        "requestDoctor": "D1002",
        "clinicalDiagnosisCode": "C34.9",
        "clinicalDiagnosisName": "支气管和肺恶性肿瘤",
        "specimen": {
            "specimenNo": f"BBL{seed:07d}",
            "typeCode": "02",
            "sampledAt": "2026-12-01T08:05:00+08:00",
            "receivedAt": "2026-12-01T08:40:00+08:00",
        },
        "labDept": "1301",
        "testDoctor": {"staffNo": "L2001", "name": "周检验"},
        "reviewDoctor": {"staffNo": "L2002", "name": "吴审核"},
        "reportedAt": "2026-12-01T10:12:00+08:00",
        "reviewedAt": "2026-12-01T10:15:00+08:00",
        "items": [
            {
                "itemCode": c,
                "result": r,
                "unit": u,
                "referenceRange": rng,
                "abnormalFlag": f,
                "testMethod": "仪器法",
            }
            for c, r, u, rng, f in items
        ],
    }


def tokens() -> dict[str, str]:
    """A calling system per role of the story and a fresh token for each (the demo's own)."""
    out = {}
    for code, name in SYSTEMS:
        system = CallingSystem.objects.filter(code=code).first()
        system = system or integrations.create_system(code, name, allow_all=True)
        out[code] = integrations.issue_token(system)
    return out


class Replay:
    def __init__(self, base_url: str, sim_url: str, org_code: str, *, say=print) -> None:
        self.base, self.sim, self.org, self.say = base_url.rstrip("/"), sim_url.rstrip("/"), org_code, say
        self.http = requests.Session()
        self.told = Told()

    def post(self, token: str, path: str, body: dict, what: str) -> dict | None:
        r = self.http.post(
            self.base + path, json=body, headers={"Authorization": f"Token {token}"}, timeout=30
        )
        if r.status_code >= 300:
            self.told.refused.append(f"{what}: HTTP {r.status_code} {r.text[:300]}")
            log.warning("demo story: %s refused: HTTP %s", what, r.status_code)
            return None
        self.told.posted[what] = self.told.posted.get(what, 0) + 1
        return r.json()

    def platform_faults(self) -> None:
        """The simulator refuses two reports and has one interface down; that interface's records
        are overdue as soon as they wait (its timeliness set to 0 minutes, by this demo)."""
        InterfacePolicy.objects.update_or_create(interface=OUTAGE_INTERFACE, defaults={"deadline_minutes": 0})
        time.sleep(POLICY_CACHE_SECONDS + 0.5)  # the server's processes re-read policies this often
        self.told.rejected_keys = [f"{self.org}|JC{3:010d}", f"{self.org}|{lab_report(2)['reportId']}"]
        down = {"interfaces": {OUTAGE_INTERFACE: {"http_5xx": 1}}, "reject_keys": self.told.rejected_keys}
        self.http.post(
            f"{self.sim}/_sim/faults", json={**down, "replace": True}, timeout=10
        ).raise_for_status()

    def run(self) -> Told:
        keys = tokens()
        self.platform_faults()
        self.say(
            f"    市平台模拟器：拒收 {len(self.told.rejected_keys)} 份报告（2001），{OUTAGE_INTERFACE} 暂停服务（HTTP 500）"
        )
        types = record_types()
        for slug in EMR_TYPES:
            rt = types.get(slug)
            for seed in range(1, PER_TYPE + 1):
                self.post(keys["DEMO-HIS"], f"/api/emr/v1/records/{slug}", rt.example(seed), rt.interface)
        self.say(f"    电子病历：{len(EMR_TYPES)} 类记录各 {PER_TYPE} 条")
        for seed in range(1, EXAM_REPORTS + 1):
            self.post(keys["DEMO-RIS"], "/api/exam/v1/reports", exam_report(seed), "EXAM_REPORT")
        self.say(f"    检查报告：{EXAM_REPORTS} 份")
        for seed in range(1, LAB_REPORTS + 1):
            body = lab_report(seed)
            if self.post(keys["DEMO-LIS"], "/api/lab/v1/reports", body, "LAB_REPORT"):
                self.post(
                    keys["DEMO-LIS"], f"/api/lab/v1/reports/{body['reportId']}/archive", {}, "LAB_ARCHIVE"
                )
        self.say(f"    检验报告：{LAB_REPORTS} 份（审核、归档，由交换服务上传）")
        return self.told

    def quality_findings(self, wait_seconds: float = 60) -> None:
        """The QC centre's findings: an outpatient visit it expected and never got (missing), and a
        content problem in a registration the platform holds (raised once it has arrived)."""
        findings = [
            {"kind": "missing", "serviceCode": "OP_VISIT", "businessKey": f"{self.org}|V0000000099"},
        ]
        held = f"{self.org}|GH{1:010d}"
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            got = self.http.get(f"{self.sim}/_sim/records/OP_REGISTRATION/{held}", timeout=10)
            if got.status_code == 200:
                findings.append(
                    {
                        "kind": "content",
                        "serviceCode": "OP_REGISTRATION",
                        "businessKey": held,
                        "field": "deptCode",
                    }
                )
                break
            time.sleep(1)
        r = self.http.post(f"{self.sim}/_sim/qc/findings", json={"items": findings}, timeout=10)
        r.raise_for_status()
        self.told.findings = [f["feedbackId"] for f in r.json()["findings"]]
        self.say(f"    质控中心下发 {len(self.told.findings)} 条数据质量问题（运维在“数据质量反馈”页处理）")
