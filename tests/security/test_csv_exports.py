"""CSV exports open in a spreadsheet: a cell that starts like a formula (``=``, ``+``, ``-``, ``@``,
tab, carriage return) is written with a leading apostrophe, so Excel or WPS shows it as text and
never runs it (CSV injection, CWE-1236). Found 2026-12-05: the platform's last message and the
audit trail's object went out as they came, e.g. ``=HYPERLINK("http://…","详情")`` from a message."""

from __future__ import annotations

import csv
import io

import pytest

from hospital_interop.audit import services as audit
from hospital_interop.audit.models import Action
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import services as uploads
from hospital_interop.uploads.models import OutboxRecord
from tests.test_access_matrix import role_user

pytestmark = pytest.mark.django_db
FORMULA = '=HYPERLINK("http://evil.example/x","详情")'


def _rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_the_upload_records_export_writes_a_formula_as_text(client, make_user):
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    record = uploads.enqueue(spec.code, spec.example(71), wake_worker=False)
    OutboxRecord.objects.filter(pk=record.pk).update(last_message=FORMULA, last_code="@cmd")
    client.force_login(role_user(make_user, "ops"))
    rows = _rows(client.get("/ops/uploads/records/export.csv", {"interface": spec.code}))
    (row,) = [r for r in rows[1:] if r[0] == str(record.pk)]
    assert row[8] == "'" + FORMULA and row[7] == "'@cmd"
    assert row[3] == "1"  # numbers stay numbers


def test_the_audit_trail_export_writes_a_formula_as_text(client, make_user):
    for value in ("=1+2", "+1+2", "-1+2", "@SUM(A1)", "\t=1"):  # (the trail drops a carriage return)
        audit.record(Action.VIEW, "uploads.OutboxRecord", value)
    client.force_login(role_user(make_user, "security"))
    rows = _rows(client.post("/audit/", {"export": "csv"}))
    objects = {r[9] for r in rows[1:]}
    assert {"'=1+2", "'+1+2", "'-1+2", "'@SUM(A1)", "'\t=1"} <= objects
    assert not objects & {"=1+2", "+1+2", "-1+2", "@SUM(A1)"}
