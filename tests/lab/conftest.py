"""Fixtures of the lab report tests: dictionaries, a LIS calling system, sample LIS reports, a
drop folder per test and a transfer service bound to it."""

from __future__ import annotations

import copy
import json
import secrets
from pathlib import Path

import pytest

from hospital_interop.municipal.specs import _id_check_digit
from hospital_interop.uploads import tasks
from tests.esign.conftest import ca_on, ca_sim, new_identity, signer  # noqa: F401  (the real CA simulator)
from tests.esign.helpers import WS1, qr_session

LIS_TOKEN_HEADER = "HTTP_AUTHORIZATION"


def resident_id(seed: int) -> str:
    first17 = f"110105{1950 + seed % 50:04d}{1 + seed % 12:02d}{1 + seed % 28:02d}{seed % 1000:03d}"
    return first17 + _id_check_digit(first17)


ITEMS = [  # LIS sub-item, result, unit, range, flag, method
    ("WBC", "6.52", "10^9/L", "3.5-9.5", "N", "电阻抗法"),
    ("RBC", "4.21", "10^12/L", "4.3-5.8", "L", "电阻抗法"),
    ("HGB", "118", "g/L", "130-175", "L", "比色法"),
    ("PLT", "215", "10^9/L", "125-350", "N", "电阻抗法"),
    ("NEUT%", "78.3", "%", "40-75", "H", "流式细胞法"),
    ("ALT", "56", "U/L", "9-50", "H", "速率法"),
    ("AST", "32", "U/L", "15-40", "N", "速率法"),
    ("CEA", "3.2", "ng/mL", "0-5", "N", "化学发光法"),
    ("HBsAg", "阴性", "", "阴性", "N", "化学发光法"),
]


def lis_report(
    seed: int = 1, *, report_id: str | None = None, items=None, name: str = "张秀兰", **overrides
) -> dict:
    """A LIS approval body (intake.LabReportIn) for the demo dictionaries."""
    rows = items if items is not None else ITEMS
    body = {
        "reportId": report_id or f"JY{20261127000 + seed:011d}"[:20],
        "applicationId": f"SQ{seed:010d}",
        "reportTitle": "血常规+肝功能+肿瘤标志物",
        "orderIds": [f"YZ{seed:08d}"],
        "patient": {
            "patientId": f"P{seed:06d}",
            "name": name,
            "idTypeCode": "01",
            "idNo": resident_id(seed),
            "phone": "13800138000",
        },
        "visit": {"visitId": f"V{seed:010d}", "patientTypeCode": "1", "outpatientNo": f"MZ{seed:08d}"},
        "requestDept": "1101",
        "requestDoctor": "D1002",
        "clinicalDiagnosisCode": "C34.9",
        "clinicalDiagnosisName": "支气管和肺恶性肿瘤",
        "specimen": {
            "specimenNo": f"BB{seed:08d}",
            "typeCode": "02",
            "sampledAt": "2026-11-27T08:05:00+08:00",
            "receivedAt": "2026-11-27T08:40:00+08:00",
        },
        "labDept": "1301",
        "testDoctor": {"staffNo": "L2001", "name": "周检验"},
        "reviewDoctor": {"staffNo": "L2002", "name": "吴审核"},
        "reportedAt": "2026-11-27T10:12:00+08:00",
        "reviewedAt": "2026-11-27T10:15:00+08:00",
        "items": [
            {"itemCode": c, "result": r, "unit": u, "referenceRange": rng, "abnormalFlag": f, "testMethod": m}
            for c, r, u, rng, f, m in rows
        ],
        "remark": "标本轻度溶血，结果仅供参考。",
    }
    body.update(overrides)
    return copy.deepcopy(body)


@pytest.fixture
def lab_dicts(db):
    from dictionaries import demo

    demo.load_all()


@pytest.fixture
def lis(db):
    """A calling system 'LIS' and its token header for the Django test client."""
    from hospital_interop.integrations import services as integrations

    system = integrations.create_system("LIS", "检验信息系统", allow_all=True)
    return {LIS_TOKEN_HEADER: f"Token {integrations.issue_token(system)}"}


@pytest.fixture
def folders(tmp_path, settings):
    """A drop, archive and quarantine folder for this test, in settings.LAB_TRANSFER, and the test's own
    index key (HMAC-SM3, 32 random bytes as hex, the format docs/lab-transfer.md gives the LIS)."""
    base = tmp_path / "lab"
    for d in ("drop", "archive", "quarantine"):
        (base / d).mkdir(parents=True)
    key = secrets.token_bytes(32)
    key_file = base / "index.key"
    key_file.write_text(key.hex())
    settings.LAB_TRANSFER = {
        "DROP_DIR": str(base / "drop"),
        "ARCHIVE_DIR": str(base / "archive"),
        "QUARANTINE_DIR": str(base / "quarantine"),
        "AFTER_ACCEPT": "archive",
        "UNPAIRED_TIMEOUT_SECONDS": 600,
        "RESCAN_SECONDS": 30,
        "ACCEPT_POLL_SECONDS": 0.5,
        "INDEX_KEY_FILE": str(key_file),
    }
    return type(
        "Folders",
        (),
        {
            "base": base,
            "drop": base / "drop",
            "archive": base / "archive",
            "quarantine": base / "quarantine",
            "index_key": key,
            "index_key_file": key_file,
        },
    )


@pytest.fixture
def service(folders):
    from mutual_recognition.lab.transfer import TransferService

    return TransferService()


@pytest.fixture
def inline_delivery(platform_settings):
    """Deliver with the worker's own code path, in this process, against the simulator."""
    tasks._client = None
    yield lambda: [tasks.deliver() for _ in range(5)]
    tasks._client = None


def post_json(client, url, body, headers):
    return client.post(url, json.dumps(body, ensure_ascii=False), content_type="application/json", **headers)


def lis_mac(doc: dict, key: bytes) -> str:
    """The index MAC as docs/lab-transfer.md tells a LIS to compute it, written from the document, not
    from the project's code: HMAC-SM3 over the index without "mac", canonical JSON (RFC 8785 for
    this document: keys sorted, no whitespace, UTF-8), as 64 lowercase hex characters."""
    from hospital_interop.municipal.gm import hmac_sm3

    body = {k: v for k, v in doc.items() if k != "mac"}
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hmac_sm3(key, text.encode("utf-8")).hex()


def with_mac(doc: dict, key: bytes) -> bytes:
    """The index file a LIS holding ``key`` writes for ``doc``."""
    return json.dumps(
        {**doc, "mac": {"algorithm": "HMAC-SM3", "value": lis_mac(doc, key)}}, ensure_ascii=False, indent=1
    ).encode("utf-8")


def file_mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


class Reviewer:
    """A lab reviewer registered with the CA simulator who signs lab report versions for real:
    the version is opened for review (``esign.services.open_review``) and approved with the
    CA's auto-sign in the reviewer's QR signing session."""

    def __init__(self, ident, user):
        self.ident, self.user = ident, user
        self.doctor = {"staffNo": ident.staff_no, "name": ident.name}  # the LIS body's reviewDoctor

    def sign(self, report_id: str, version: int, module: str = "clinical"):
        from esign import services
        from mutual_recognition.lab.models import LabReportVersion

        lab_version = LabReportVersion.objects.get(report__report_id=report_id, version=version)
        review = services.open_review(lab_version, module)
        approval = services.approve_report(review.pk, self.user, workstation_id=WS1)
        assert approval.outcome == "signed", approval.message
        return approval.signature


@pytest.fixture
def reviewer(ca_on, signer):  # noqa: F811  (the fixtures imported above)
    ident = new_identity(ca_on, "吴审核")
    user = signer(f"reviewer-{ident.staff_no.lower()}", ident)
    qr_session(user, ca_on, ident.staff_no)
    ca_on.grant_auto_sign(ident.ca_user_id, ident.staff_no)
    return Reviewer(ident, user)
