"""Schemathesis over every operation of the four machine APIs (EMR intake: every record type's
submit, bulk submit and status, and the record-type list; RIS/PACS exam intake; LIS lab intake;
recognition): 100 operations, each with its documented examples plus FUZZ_EXAMPLES generated
cases (positive and negative): no 5xx, and every answer's status, content type, headers and body
as its OpenAPI document says.

Slow, marked ``slow`` and run by CI with the rest of the suite (``make test`` runs it on
PostgreSQL and, being in tests/integrations, once more on SQLite). Measured on a 2-core machine
shared with other test runs: about 4 minutes on PostgreSQL and 3.5 on SQLite, nine tenths of it
the EMR intake's 88 operations, most of that its 29 bulk operations (arrays of generated records,
up to ~20 s per operation). What keeps it there (tests/fuzzing.py): in-process WSGI calls in the
test's transaction, no coverage phase, no stateful phase, no example database.

The calling system is allowed every interface; for the exam, lab and recognition APIs the
dictionaries are the demo ones and the platform is the simulator, so that valid requests get as
far as they can (a prompt reaches the platform, a report is mapped and saved); the EMR intake
needs neither. Schemathesis never puts control characters into a path, so a NUL in a path
parameter is covered by its own regression test (test_hostile_input.py), like every defect found
around this run.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from hospital_interop.integrations import services as integrations
from tests.fuzzing import call_and_check, fuzz_schema, in_test_transaction  # noqa: F401
from tests.lab.conftest import folders  # noqa: F401  (the lab drop folders of this test)
from tests.recognition.conftest import recognition  # noqa: F401  (demo dictionaries, platform simulator)

pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.usefixtures("in_test_transaction")]

FUZZ_EXAMPLES = 100  # per operation (the floor)

emr, exam, lab, recognition_api = (
    fuzz_schema(api, FUZZ_EXAMPLES) for api in ("emr", "exam", "lab", "recognition")
)
FUZZ_SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def caller(db):
    """The Authorization header of a calling system allowed every interface."""
    system = integrations.create_system("FUZZ", "模糊测试", allow_all=True)
    return {"Authorization": f"Token {integrations.issue_token(system)}"}


@emr.parametrize()
@FUZZ_SETTINGS
def test_fuzz_every_emr_intake_operation(case, caller):
    call_and_check(case, caller)


@pytest.mark.usefixtures("recognition")
@exam.parametrize()
@FUZZ_SETTINGS
def test_fuzz_every_exam_intake_operation(case, caller):
    call_and_check(case, caller)


@pytest.mark.usefixtures("recognition", "folders")
@lab.parametrize()
@FUZZ_SETTINGS
def test_fuzz_every_lab_intake_operation(case, caller):
    call_and_check(case, caller)


@pytest.mark.usefixtures("recognition")
@recognition_api.parametrize()
@FUZZ_SETTINGS
def test_fuzz_every_recognition_operation(case, caller):
    call_and_check(case, caller)
