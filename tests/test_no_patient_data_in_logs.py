"""No patient data in any log line, across the real processes.

Known patients go through the flows that carry identities: a HIS registration event and a
recognition prompt (the pre-load in a Celery worker queries the platform by ID number and name),
the prompt page and its saved decisions, a lab report approved, archived, paired by the
``lab_transfer`` service and delivered (3.4 + 3.3) by the worker, an EMR record delivered, the
staff lookups by ID number (patient view, audit search, results API, platform report list), and
two failing calls whose exceptions carry a patient's row (the database refuses it, as an
integrity error reports "Failing row contains (...)"): one in the web server, one in a worker
task. The processes are the deployed ones: gunicorn with ``gunicorn_conf.py``, a Celery worker
and beat, ``manage.py lab_transfer`` and the platform simulator with its access log on. Every line
they wrote (stdout, stderr) is then scanned for the patients' ID numbers, names (also as
percent-encoded UTF-8 and as JSON ``\\uXXXX`` escapes) and phone numbers: zero hits.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import requests
from django.db import connection

from tests.delivery_fixtures import Processes, wait_until, worker_env
from tests.lab import conftest as lab_fixtures
from tests.lab.conftest import lis_report
from tests.platform_fixtures import start_platform_simulator, stop_process
from tests.recognition.conftest import ITEMS, resident_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
lab_dicts, folders = lab_fixtures.lab_dicts, lab_fixtures.folders  # the lab tests' fixtures, used here too

PASSWORD = "pw-for-tests-0"


@dataclass(frozen=True)
class Person:
    name: str
    seed: int
    phone: str

    @property
    def id_no(self) -> str:
        return resident_id(self.seed)

    @property
    def birth_date(self) -> str:
        return self.id_no[6:14]

    @property
    def sex_code(self) -> str:
        return "1" if int(self.id_no[16]) % 2 else "2"

    def needles(self) -> dict[str, str]:
        """What must not appear: the ID number, the phone, the name as text, URL and JSON escape."""
        return {
            "ID number": self.id_no,
            "phone": self.phone,
            "name": self.name,
            "name (URL-encoded)": quote(self.name),
            "name (JSON escape)": json.dumps(self.name)[1:-1],
        }


RECOGNITION = Person("欧阳明轩", 731, "13912340731")
LAB = Person("司马静怡", 742, "13912340742")
EMR = Person("诸葛文博", 753, "13912340753")
FAILING = Person("上官雨桐", 764, "13912340764")
FAILING_NEW_PHONE = "13912340765"
PEOPLE = (RECOGNITION, LAB, EMR, FAILING)


def hits(text: str) -> list[str]:
    """Each line holding a test patient's data, saying what it holds, the values themselves replaced."""
    needles = [(what, value) for p in PEOPLE for what, value in p.needles().items()]
    needles.append(("phone", FAILING_NEW_PHONE))
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        held = [what for what, value in needles if value.lower() in line.lower()]
        if held:
            for what, value in needles:
                line = re.sub(re.escape(value), f"<{what}>", line, flags=re.IGNORECASE)
            found.append(f"{n}: {', '.join(held)}: {line[:400]}")
    return found


def event_body(p: Person, visit_id: str, **patient) -> dict:
    return {
        "eventType": "registration",
        "patient": {
            "patientId": f"P{p.seed:06d}",
            "name": p.name,
            "idTypeCode": "01",
            "idNo": p.id_no,
            "sexCode": p.sex_code,
            "birthDate": p.birth_date,
            "phone": p.phone,
            **patient,
        },
        "visit": {"visitId": visit_id, "patientTypeCode": "1", "outpatientNo": f"MZ{p.seed:08d}"},
        "doctor": "D1001",
        "dept": "1001",
    }


def emr_record(p: Person, slug: str) -> dict:
    from emr_sharing.mapping import record_types

    rt = next(r for r in record_types() if r.slug == slug)
    record = rt.to_intake(rt.spec.example(p.seed))
    record["patient"].update(
        name=p.name, idNo=p.id_no, phone=p.phone, birthDate=p.birth_date, sexCode=p.sex_code
    )
    record["patient"].pop("sexName", None)
    record["patient"].pop("ageYears", None)
    return record


class Web:
    """HTTP to the gunicorn server: machine calls with a token, staff pages with a login session."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def api(self, method: str, path: str, body=None) -> requests.Response:
        return requests.request(
            method,
            self.url + path,
            data=None if body is None else json.dumps(body, ensure_ascii=False).encode(),
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
            timeout=30,
        )

    def login(self, username: str) -> requests.Session:
        s = requests.Session()
        s.get(self.url + "/accounts/login/", timeout=30)
        r = s.post(
            self.url + "/accounts/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": s.cookies["csrftoken"]},
            timeout=30,
        )
        assert r.status_code == 200 and "sessionid" in s.cookies, r.text[:500]
        return s

    def form(self, session: requests.Session, path: str, data: dict) -> requests.Response:
        """A staff page's form posted like a browser (CSRF token, redirects followed)."""
        return session.post(
            self.url + path, data={**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]}, timeout=30
        )


@pytest.fixture
def refuse_rows_of():
    """Makes the database refuse rows of an encounter with a given name (a CHECK constraint, NOT VALID
    so existing rows stay), the way an integrity error then reports the whole failing row."""
    from mutual_recognition.models import Encounter

    table = Encounter._meta.db_table

    def refuse(name: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT log_scan_refused CHECK (name <> %s) NOT VALID", [name]
            )

    yield refuse
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS log_scan_refused")


def test_flows_with_known_patients_leave_no_id_number_name_or_phone_in_any_process_log(
    tmp_path,
    lab_dicts,
    folders,
    make_user,
    refuse_rows_of,
):
    from django.conf import settings

    from hospital_interop.integrations import services as integrations
    from hospital_interop.uploads.models import OutboxRecord, State
    from mutual_recognition.lab.models import LabTransfer
    from mutual_recognition.models import Encounter

    if settings.REDIS_URL:  # wake-ups left by earlier tests would queue ahead of ours
        import redis

        redis.Redis.from_url(settings.REDIS_URL).delete("celery")
    system = integrations.create_system("HIS-LOGS", "医院信息系统", allow_all=True)
    web_token = integrations.issue_token(system)
    make_user("doc-logs", role="clinician")
    make_user("ops-logs", role="ops")
    make_user("lab-logs", role="lab")

    sim = start_platform_simulator(tmp_path / "sim", extra_args=("--access-log", "--log-level", "info"))
    procs = Processes(tmp_path, sim)
    lab_env = {
        "LAB_DROP_DIR": folders.drop,
        "LAB_ARCHIVE_DIR": folders.archive,
        "LAB_QUARANTINE_DIR": folders.quarantine,
        "LAB_INDEX_KEY_FILE": folders.index_key_file,
        "LAB_RESCAN_SECONDS": 120,
        "LAB_ACCEPT_POLL_SECONDS": 0.3,
    }
    fast = {"DELIVERY_BACKOFF_BASE_SECONDS": 0.5, "DELIVERY_SWEEP_SECONDS": 2}
    answers = {}
    try:
        web = Web(procs.web(**lab_env), web_token)
        transfer = procs._start(
            "lab_transfer", [sys.executable, "manage.py", "lab_transfer"], worker_env(sim, **lab_env)
        )
        procs._wait_for_log(transfer, "lab_transfer watching")

        # a failing call in the web server: the visit is registered, then the database refuses its row
        first = web.api("POST", "/recognition/api/events", event_body(FAILING, "VLOGS0001"))
        assert first.status_code == 202, first.text
        refuse_rows_of(FAILING.name)
        failed = web.api(
            "POST", "/recognition/api/events", event_body(FAILING, "VLOGS0001", phone=FAILING_NEW_PHONE)
        )
        assert failed.status_code == 500
        # ... and in a worker task: the pre-load queued by the first event cannot update that row
        worker = procs.worker(**fast)
        procs.beat(**fast)
        worker_log = next(log for _, proc, log in procs.procs if proc is worker)
        wait_until(
            lambda: "IntegrityError" in worker_log.read_text(errors="replace"), 30, message="pre-load failure"
        )

        # recognition: registration (pre-load by ID number and name), prompt, page, decisions
        sim.seed(
            RECOGNITION.id_no, name=RECOGNITION.name, lab=["肝功能"], exam=["JC0012"], daysAgo=3, replace=True
        )
        visit = "VLOGS0002"
        assert web.api("POST", "/recognition/api/events", event_body(RECOGNITION, visit)).status_code == 202
        wait_until(
            lambda: Encounter.objects.filter(visit_id=visit, preloaded_at__isnull=False).exists(),
            30,
            message="pre-load",
        )
        prompt = event_body(RECOGNITION, visit)
        prompt.pop("eventType")
        prompt["items"] = ITEMS[:1]
        answer = web.api("POST", "/recognition/api/prompt", prompt)
        assert answer.status_code == 200, answer.text
        result = answer.json()["items"][0]["results"][0]
        page = requests.get(answer.json()["promptUrl"], timeout=30)
        assert page.status_code == 200
        ctx = re.search(r'data-ctx="([^"]+)"', page.text).group(1)
        saved = requests.post(
            web.url + "/recognition/embed/save",
            json={
                "ctx": ctx,
                "decisions": [
                    {
                        "orderId": "YZ001",
                        "standardCode": "JC0012",
                        "reportId": result["reportId"],
                        "decision": "1",
                    }
                ],
            },
            timeout=30,
        )
        assert saved.status_code == 200, saved.text

        # lab: approval, archive (web), pairing and enqueue (lab_transfer), 3.4 + 3.3 (worker)
        report = lis_report(31, name=LAB.name)
        report["patient"].update(idNo=LAB.id_no, phone=LAB.phone)
        assert web.api("POST", "/api/lab/v1/reports", report).status_code == 201
        assert web.api("POST", f"/api/lab/v1/reports/{report['reportId']}/archive", {}).status_code == 202

        # EMR: an outpatient registration and its visit
        for slug in ("op-registration", "op-visit"):
            emr = web.api("POST", f"/api/emr/v1/records/{slug}", emr_record(EMR, slug))
            assert emr.status_code in (200, 201, 202), emr.text

        # staff lookups by ID number (forms posted; the results API with the number in the body)
        doctor, ops, lab = web.login("doc-logs"), web.login("ops-logs"), web.login("lab-logs")
        answers["patients"] = web.form(
            doctor, "/recognition/patients/", {"idNo": RECOGNITION.id_no, "reason": "consult"}
        )
        answers["audit"] = web.form(ops, "/recognition/audit/", {"idNo": RECOGNITION.id_no})
        answers["results"] = web.api("POST", "/recognition/api/results", {"idNo": RECOGNITION.id_no})
        answers["platform"] = web.form(
            lab, "/lab/platform/", {"kind": "id", "name": LAB.name, "idNo": LAB.id_no}
        )

        wait_until(
            lambda: LabTransfer.objects.filter(report_id=report["reportId"], state="cleared").exists(),
            60,
            message="lab report delivered and cleared",
        )
        wait_until(
            lambda: (
                OutboxRecord.objects.exists() and not OutboxRecord.objects.exclude(state=State.DONE).exists()
            ),
            60,
            message="every upload accepted",
        )
    finally:
        procs.stop_all()
        stop_process(sim.process)

    logs = [log for _, _, log in procs.procs] + [sim.log]
    leaks = [f"{log.name}:{hit}" for log in logs for hit in hits(log.read_text(errors="replace"))]
    assert leaks == [], "patient data in process logs:\n" + "\n".join(leaks)
    assert sum(len(log.read_text(errors="replace").splitlines()) for log in logs) > 50  # they did log

    # the lookups worked, with the ID number only in the request body
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.status_code)
        assert RECOGNITION.id_no not in response.url and LAB.id_no not in response.url
    assert RECOGNITION.id_no[:6] + "********" in answers["patients"].text
    assert answers["results"].json()["results"][0]["recognitionStatus"] == "recognized"
    assert "共 1 条" in answers["audit"].text  # the decision saved on the prompt page
    assert LAB.name in answers["platform"].text
