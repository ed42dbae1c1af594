"""Fixtures of the exam tests: a RIS calling system with a token, the intake API as RIS sees it,
report bodies built from the spec's example, demo dictionaries, in-process delivery."""

from __future__ import annotations

import base64
import json

import pytest

from dictionaries.demo import load_all
from hospital_interop.integrations import services as integrations
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import tasks as upload_tasks
from hospital_interop.uploads.models import InterfacePolicy
from mutual_recognition.exam import mapping
from tests.dicom.conftest import dicom_settings  # noqa: F401  (fixture)
from tests.dicom.orthanc import fep, orthanc_factory  # noqa: F401  (fixtures)

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
# hospital codes of the demo dictionaries (dictionaries/demo.py)
DEPT = {
    "1302": ("32", "医学影像科"),
    "1303": ("32.05", "超声诊断专业"),
    "1001": ("04.04", "胸外科专业"),
    "1101": ("19", "肿瘤科"),
}


def report_body(
    seed: int,
    *,
    exec_dept: str = "1302",
    request_dept: str = "1001",
    item: str = "CT0012",
    body_part: str | None = None,
    **overrides,
) -> dict:
    """An approved report as RIS sends it: the spec's example with hospital codes and a PDF."""
    body = load_catalogue().interface(mapping.RESULT).example(seed)
    for name in (
        *mapping.server_filled(),
        "orgCode",
        "orgName",
        "requestDeptName",
        "execDeptName",
        "bodyPartName",
        "bodyPartCode",
    ):
        body.pop(name, None)
    body.update(
        reportId=f"JC{seed:010d}", requestDeptCode=request_dept, execDeptCode=exec_dept, examItemCode=item
    )
    if body_part:
        body["bodyPartCode"] = body_part
    body.pop("studyInstanceUid", None)
    body["pdf"] = {
        "fileName": f"report-{seed}.pdf",
        "fileContent": base64.b64encode(PDF + str(seed).encode()).decode(),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


class RisApi:
    def __init__(self, client, token: str):
        self.client, self.auth = client, {"HTTP_AUTHORIZATION": f"Token {token}"}

    def submit(self, body):
        return self.client.post(
            "/api/exam/v1/reports",
            json.dumps(body, ensure_ascii=False),
            content_type="application/json",
            **self.auth,
        )

    def withdraw(self, report_id: str, body):
        return self.client.post(
            f"/api/exam/v1/reports/{report_id}/withdraw",
            json.dumps(body, ensure_ascii=False),
            content_type="application/json",
            **self.auth,
        )

    def status(self, report_id: str):
        return self.client.get(f"/api/exam/v1/reports/{report_id}", **self.auth)

    def study(self, body):
        return self.client.post(
            "/api/exam/v1/studies", json.dumps(body), content_type="application/json", **self.auth
        )


@pytest.fixture
def dictionaries(db):
    load_all()


@pytest.fixture
def ris(db, client, dictionaries):
    system = integrations.create_system("RIS", "放射信息系统", interfaces=[mapping.RESULT, mapping.VOID])
    return RisApi(client, integrations.issue_token(system))


@pytest.fixture
def delivery(platform_settings):
    """The worker's delivery code path in this process: immediate interfaces, and the scheduled
    (incremental) push of the exam results."""
    InterfacePolicy.objects.get_or_create(interface=mapping.RESULT, defaults={"mode": "scheduled"})
    upload_tasks._client = None

    class Delivery:
        @staticmethod
        def immediate():
            for _ in range(5):
                upload_tasks.deliver()

        @staticmethod
        def scheduled_push():
            upload_tasks.push_interface(mapping.RESULT)

        def all(self):
            self.immediate()
            self.scheduled_push()

    yield Delivery()
    upload_tasks._client = None
