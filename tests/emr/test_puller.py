"""The HIS view puller, with its documented example: a PostgreSQL view in a separate database.

The "HIS" here is a database of its own on the test server (``his_demo_<pid>``), with a table the
HIS writes and a view it exposes to us. Its columns are snake_case (as HIS views are), nested
fields use ``__`` (``patient__sex_code`` → ``patient.sexCode``), names of codes and the
organisation are filled in by the mapping. The puller reads it through the read-only alias and
never writes there.
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from decimal import Decimal

import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.utils import InternalError
from django_celery_beat.models import PeriodicTask

from emr_sharing import his, puller
from emr_sharing.models import PullCursor, PullIssue
from emr_sharing.routers import HisReadOnlyRouter
from emr_sharing.schedules import PULL_TASK, sync_schedules
from hospital_interop.uploads.models import OutboxRecord

pytestmark = pytest.mark.django_db

HIS_SQL = """
CREATE SCHEMA his_emr;
CREATE TABLE his_emr.registrations (
    reg_id varchar(32) PRIMARY KEY, mz_no varchar(18) NOT NULL, patient_name varchar(50) NOT NULL,
    sex char(1) NOT NULL, birth_date date NOT NULL, age integer, id_type char(2) NOT NULL, id_no varchar(18) NOT NULL,
    phone varchar(20), reg_type char(1) NOT NULL, dept_code varchar(20) NOT NULL, dept_name varchar(50) NOT NULL,
    doctor_id varchar(20), doctor_name varchar(50), reg_time timestamptz NOT NULL, visit_date date NOT NULL,
    pay_code char(2) NOT NULL, fee numeric(8, 2) NOT NULL, cancelled boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL
);
-- What the HIS exposes to the EMR-sharing server: one row per registration, field names by convention.
CREATE VIEW his_emr.v_op_registration AS
SELECT r.reg_id AS registration_id, r.mz_no AS outpatient_no,
       r.patient_name AS patient__name, r.sex AS patient__sex_code, r.birth_date AS patient__birth_date,
       r.age AS patient__age_years, r.id_type AS patient__id_type_code, r.id_no AS patient__id_no,
       r.phone AS patient__phone, r.reg_type AS registration_type_code, r.dept_code, r.dept_name,
       r.doctor_id, r.doctor_name, r.reg_time AS registration_date_time, r.visit_date,
       r.pay_code AS payment_method_code, r.fee AS registration_fee,
       CASE WHEN r.cancelled THEN '1' ELSE '0' END AS cancel_flag,
       r.updated_at
FROM his_emr.registrations r;
"""

SOURCES = """
source: HIS
sources:
  - name: his-registrations
    view: his_emr.v_op_registration
    recordType: op-registration
    cursor: [updated_at, registration_id]
    batchSize: 2
"""


@pytest.fixture
def his_db(settings, tmp_path):
    """A separate PostgreSQL database playing the HIS, dropped afterwards; settings point at it."""
    db = connection.settings_dict
    name = f"his_demo_{os.getpid()}"
    server = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"] or "root"}
    admin = psycopg2.connect(dbname="postgres", **server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    owner = psycopg2.connect(dbname=name, **server)  # the HIS itself, which may write
    owner.autocommit = True
    with owner.cursor() as cur:
        cur.execute(HIS_SQL)
    sources = tmp_path / "his-views.yaml"
    sources.write_text(textwrap.dedent(SOURCES), encoding="utf-8")
    url = f"postgres://{server['user']}@{server['host']}:{server['port']}/{name}"
    settings.EMR_PULL = {"DATABASE_URL": url, "SOURCES_FILE": str(sources), "INTERVAL_SECONDS": 120}
    yield owner
    for conn in his._handler(url).all(initialized_only=True):
        conn.close()
    owner.close()
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def insert_registration(his_conn, record: dict, updated_at: dt.datetime, **changes) -> None:
    p = record["patient"]
    row = {
        "reg_id": record["registrationId"],
        "mz_no": record["outpatientNo"],
        "patient_name": p["name"],
        "sex": p["sexCode"],
        "birth_date": dt.datetime.strptime(p["birthDate"], "%Y%m%d").date(),
        "age": p["ageYears"],
        "id_type": p["idTypeCode"],
        "id_no": p["idNo"],
        "phone": p["phone"],
        "reg_type": record["registrationTypeCode"],
        "dept_code": record["deptCode"],
        "dept_name": record["deptName"],
        "doctor_id": record["doctorId"],
        "doctor_name": record["doctorName"],
        "reg_time": dt.datetime.strptime(record["registrationDateTime"], "%Y%m%d%H%M%S").replace(
            tzinfo=dt.timezone(dt.timedelta(hours=8))
        ),
        "visit_date": dt.datetime.strptime(record["visitDate"], "%Y%m%d").date(),
        "pay_code": record["paymentMethodCode"],
        "fee": Decimal(str(record["registrationFee"])),
        "cancelled": record["cancelFlag"] == "1",
        "updated_at": updated_at,
        **changes,
    }
    with his_conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO his_emr.registrations ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
            list(row.values()),
        )


def test_pull_reads_new_view_rows_into_the_outbox_and_never_writes_the_his(his_db, rts, settings):
    rt = rts.get("op-registration")
    t0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    expected = [rt.example(s) for s in (1, 2, 3)]
    for n, record in enumerate(expected):
        insert_registration(his_db, record, t0 + dt.timedelta(minutes=n))
    bad = rt.example(4)
    insert_registration(his_db, bad, t0 + dt.timedelta(minutes=9), sex="7")

    call_command("emr_pull")

    rows = {r.business_key: r for r in OutboxRecord.objects.filter(interface="OP_REGISTRATION")}
    assert len(rows) == 3 and {r.source for r in rows.values()} == {"HIS"}
    for (
        record
    ) in expected:  # the platform payload equals the record: names and org filled in, types converted
        assert rows[f"12110000400000000X|{record['registrationId']}"].payload == record
    issue = PullIssue.objects.get()
    assert ("patient.sexCode", "valueSet") in {(e["field"], e["rule"]) for e in issue.errors}
    cursor = PullCursor.objects.get(source="his-registrations")
    assert (cursor.rows_read, cursor.records_created, cursor.rows_rejected) == (4, 3, 1)
    assert cursor.position[1] == bad["registrationId"] and cursor.last_error == ""

    # nothing new: nothing read; a row the HIS changes is read again and becomes a new version
    assert puller.pull_all()[0].rows == 0
    with his_db.cursor() as cur:
        cur.execute(
            "UPDATE his_emr.registrations SET fee = fee + 50, updated_at = %s WHERE reg_id = %s",
            [t0 + dt.timedelta(hours=1), expected[0]["registrationId"]],
        )
    again = puller.pull_all()[0]
    assert (again.rows, again.created) == (1, 1)
    latest = OutboxRecord.objects.filter(business_key__endswith=expected[0]["registrationId"]).order_by(
        "-version"
    )[0]
    assert latest.version == 2 and latest.payload["registrationFee"] == expected[0]["registrationFee"] + 50


def test_the_his_alias_refuses_every_write(his_db):
    conn = his.his_connection()
    with conn.cursor() as cur:  # reading works
        cur.execute("SELECT count(*) FROM his_emr.v_op_registration")
        assert cur.fetchone() == (0,)
    for statement in (
        "INSERT INTO his_emr.registrations (reg_id) VALUES ('x')",
        "DELETE FROM his_emr.registrations",
        "SELECT 1; DROP TABLE his_emr.registrations",
        "CREATE TABLE his_emr.t (a int)",
    ):
        with pytest.raises(his.WriteRefused), conn.cursor() as cur:
            cur.execute(statement)
    # past the statement guard, the database session itself is read-only
    with pytest.raises(InternalError) as refused, conn.cursor() as cur:
        cur.execute("WITH gone AS (DELETE FROM his_emr.registrations RETURNING 1) SELECT count(*) FROM gone")
    assert isinstance(refused.value.__cause__, psycopg2.errors.ReadOnlySqlTransaction)
    raw = conn.connection.cursor()  # the driver's own cursor, no Django in between
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        raw.execute("INSERT INTO his_emr.registrations (reg_id) VALUES ('x')")
    # and the ORM cannot reach it at all
    from django.db.utils import ConnectionDoesNotExist

    with pytest.raises(ConnectionDoesNotExist):
        list(OutboxRecord.objects.using("his").all())


def test_router_keeps_the_orm_off_a_his_alias():
    router = HisReadOnlyRouter()
    assert (
        router.allow_migrate("his", "uploads") is False and router.allow_migrate("default", "uploads") is None
    )
    record = OutboxRecord()
    record._state.db = "his"
    with pytest.raises(PermissionError):
        router.db_for_write(OutboxRecord, instance=record)


def test_schedule_follows_the_interval_setting(his_db):
    sync_schedules()
    task = PeriodicTask.objects.get(name=PULL_TASK)
    assert task.enabled and task.task == "emr_sharing.tasks.pull_his_views"
    assert (task.interval.every, task.interval.period) == (120, "seconds")


def test_column_names_map_by_convention(rts):
    source = puller.Source(
        name="s",
        view="v",
        record_type=rts.get("op-visit"),
        cursor=["updated_at"],
        columns={"jzh": "visitId"},
        ignore={"his_flag"},
    )
    paths = puller.column_paths(
        source,
        [
            "jzh",
            "outpatient_no",
            "patient__id_no",
            "patient.name",
            "his_flag",
            "updated_at",
            "mystery_column",
        ],
    )
    assert paths == {
        "jzh": "visitId",
        "outpatient_no": "outpatientNo",
        "patient__id_no": "patient.idNo",
        "patient.name": "patient.name",
        "his_flag": None,
        "updated_at": None,
        "mystery_column": "mystery_column",
    }  # kept, so validation names it
