"""Patient data at rest (密评): outbox payloads and archived files SM4-GCM sealed, a changed byte
refused, data keys rotated without stopping delivery, and the patient digest an HMAC-SM3.

The records come in through the real intakes (EMR API, lab approve → archive → transfer service,
exam API) and go out through the delivery engine to the platform simulator; the database is read
with raw SQL and the archive folders byte by byte, as someone with a copy of either would."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from hospital_interop.municipal.gm import hmac_sm3
from hospital_interop.municipal.specs.examples import persona
from hospital_interop.patients.models import PatientBinding, id_key
from hospital_interop.uploads import services as outbox
from hospital_interop.uploads.models import OutboxRecord, State
from mutual_recognition.exam.models import ExamReport
from mutual_recognition.lab.models import LabArchivedPdf, LabTransfer
from tests.exam.conftest import report_body
from tests.lab.conftest import lis_report, post_json

ORG = "12110000400000000X"


def intake_from_every_app(client, api, rts, lis, ris, folders, service, inline_delivery) -> list[tuple]:
    """Records of known patients through the real flows; (ID number, name) of each patient.

    EMR: an outpatient visit through the intake API. Lab: a report approved, archived, picked up
    by the transfer service, accepted by the platform and archived; another one whose PDF was cut
    short in the drop folder, quarantined. Exam: a report with its PDF through the RIS API."""
    visit = rts.get("op-visit").example(41)
    assert api.post("op-visit", visit).status_code == 201
    lab = lis_report(42, name="欧阳秀珍")
    cut = lis_report(43, name="司马建国")
    for body in (lab, cut):
        assert post_json(client, "/api/lab/v1/reports", body, lis).status_code == 201
        assert (
            post_json(client, f"/api/lab/v1/reports/{body['reportId']}/archive", {}, lis).status_code == 202
        )
    pdf = folders.drop / f"{cut['reportId']}_v1.pdf"
    pdf.write_bytes(pdf.read_bytes()[:1000])
    stats = service.run_once()
    assert (stats.enqueued, stats.quarantined) == (1, 1)
    inline_delivery()
    assert service.run_once().cleared == 1
    exam = report_body(44)
    assert ris.submit(exam).status_code == 201
    return [
        (persona(41).idNo, persona(41).name),
        (lab["patient"]["idNo"], lab["patient"]["name"]),
        (cut["patient"]["idNo"], cut["patient"]["name"]),
        (exam["patient"]["idNo"], exam["patient"]["name"]),
    ]


def raw_rows(table: str) -> list[tuple]:
    """Every row of a table as the database holds it (no model, no field class in between)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
        return cursor.fetchall()


def as_bytes(value) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)).encode()


def hits(blobs: dict[str, bytes], patients: list[tuple]) -> list[str]:
    """ "where: what" for each ID number or name found in clear (as UTF-8) in any of the blobs."""
    return [
        f"{where}: {what}"
        for where, blob in blobs.items()
        for id_no, name in patients
        for what in (id_no, name)
        if what.encode() in blob
    ]


@pytest.mark.django_db
def test_outbox_rows_and_archived_files_hold_no_clear_id_number_or_name(
    client, api, rts, lis, lab_dicts, ris, folders, service, inline_delivery, sim, make_user
):
    patients = intake_from_every_app(client, api, rts, lis, ris, folders, service, inline_delivery)

    rows = raw_rows(OutboxRecord._meta.db_table)
    assert len(rows) == 7  # visit, lab PDF + detail and their public-data twins, exam PDF + result
    columns = {
        f"outbox row {i} column {c}": as_bytes(v) for i, row in enumerate(rows) for c, v in enumerate(row)
    }
    assert hits(columns, patients) == []
    files = {
        str(p): p.read_bytes()
        for d in (folders.archive, folders.quarantine)
        for p in d.rglob("*")
        if p.is_file()
    }
    assert len(files) == 5  # archived PDF + index, quarantined PDF + index + reason
    assert hits(files, patients) == []
    assert all(f.endswith(".sm4") for f in files if not f.endswith(".reason.txt"))
    # the PDFs kept in the database are sealed too: no PDF bytes to read in the columns
    pdfs = [row.data for row in LabArchivedPdf.objects.all()] + [
        r.pdf_content for r in ExamReport.objects.all()
    ]
    assert len(pdfs) == 3 and all(p.startswith(b"%PDF") for p in pdfs)  # opened through the model
    for table, column in (
        ("mutual_recognition_labarchivedpdf", "data"),
        ("mutual_recognition_examreport", "pdf_content"),
    ):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {column} FROM {table}")
            assert all(bytes(raw).startswith(b"SM4G\x01") for (raw,) in cursor.fetchall())

    # what reads them still works: delivery sent the payloads in clear to the platform ...
    lab_detail = sim.record("LAB_REPORT_DETAIL", f"{ORG}|{lis_report(42)['reportId']}")
    assert lab_detail["payload"]["patient"]["idNo"] == patients[1][0]
    # ... ops find a patient's rows by ID number (through the digest) and see the opened payload
    make_user("ops1", role="ops")
    client.login(username="ops1", password="pw-for-tests-0")
    found = client.get(
        "/ops/uploads/records/", {"patient_id": patients[0][0], "patient_id_type": "01"}, follow=True
    )
    assert found.redirect_chain[-1][0].endswith(f"patient={id_key('01', patients[0][0])}")
    visit = OutboxRecord.objects.get(interface="OP_VISIT")
    assert [r.pk for r in found.context["rows"]] == [visit.pk]
    detail = client.get(f"/ops/uploads/records/{visit.pk}/").content.decode()
    assert patients[0][0] in detail and patients[0][1] in detail
    exported = b"".join(client.get("/ops/uploads/records/export.csv").streaming_content).decode()
    assert exported.count("\n") == 8 and patients[0][0] not in exported  # header + 7 rows


@pytest.mark.django_db
def test_a_changed_byte_in_a_sealed_payload_or_file_is_refused_never_opened_as_garbage(
    client, api, rts, lis, lab_dicts, folders, service, inline_delivery, sim, make_user
):
    record = rts.get("op-registration").example(51)
    assert api.post("op-registration", record).status_code == 201
    row = OutboxRecord.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload FROM uploads_outboxrecord WHERE id = %s", [row.pk])
        raw = cursor.fetchone()[0]
        assert isinstance(raw, memoryview | bytes) and bytes(raw).startswith(b"SM4G"), "stored in clear"
        raw = bytearray(raw)
        raw[len(raw) // 2] ^= 0x01  # one bit of the ciphertext
        cursor.execute("UPDATE uploads_outboxrecord SET payload = %s WHERE id = %s", [bytes(raw), row.pk])
    from hospital_interop import atrest

    with pytest.raises(atrest.SealBroken):
        OutboxRecord.objects.get(pk=row.pk).payload  # noqa: B018

    # delivery refuses it: nothing sent, the row goes to ops with the reason
    inline_delivery()
    row = OutboxRecord.objects.defer("payload").get(pk=row.pk)
    assert row.state == State.ATTENTION and "无法解密" in row.last_message
    assert sim.stats()["requests"].get("OP_REGISTRATION", {}) == {}
    # the record browser says so instead of failing, and a fix is refused with the reason
    make_user("ops1", role="ops")
    client.login(username="ops1", password="pw-for-tests-0")
    page = client.get(f"/ops/uploads/records/{row.pk}/")
    assert page.status_code == 200 and "上传内容无法解密" in page.content.decode()
    fixed = client.post(f"/ops/uploads/records/{row.pk}/fix", {"fix": '{"deptCode": "0301"}'}, follow=True)
    assert "无法解密" in fixed.content.decode()
    # a value sealed for another column does not open here either (the purpose is authenticated)
    other = atrest.seal(json.dumps(record).encode(), "lab.archived_pdf")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE uploads_outboxrecord SET payload = %s WHERE id = %s", [other, row.pk])
    with pytest.raises(atrest.SealBroken):
        OutboxRecord.objects.get(pk=row.pk).payload  # noqa: B018

    # a sealed archive file changed on disk does not open, and is not moved back into the drop folder
    body = lis_report(52, name="上官婉清")
    post_json(client, "/api/lab/v1/reports", body, lis)
    post_json(client, f"/api/lab/v1/reports/{body['reportId']}/archive", {}, lis)
    (folders.drop / f"{body['reportId']}_v1.json").write_bytes(b"{}")  # quarantined: not an index
    assert service.run_once().quarantined == 1
    sealed = next(folders.quarantine.rglob("*.pdf.sm4"))
    data = bytearray(sealed.read_bytes())
    data[-1] ^= 0x80  # one bit of the tag
    sealed.write_bytes(bytes(data))
    with pytest.raises(atrest.SealBroken):
        atrest.read_sealed_file(sealed)
    with pytest.raises(ValueError, match="无法解密"):
        from mutual_recognition.lab.services import requeue_quarantined

        requeue_quarantined(LabTransfer.objects.get().pk)
    assert not any(folders.drop.iterdir())


@pytest.mark.django_db
def test_rotate_data_key_reseals_everything_resumably_and_delivery_works_after(
    client, api, rts, lis, lab_dicts, ris, folders, service, inline_delivery, sim, own_data_keys
):
    from hospital_interop import atrest, keys, rekey

    first = atrest.data_keys().current_id()
    intake_from_every_app(client, api, rts, lis, ris, folders, service, inline_delivery)
    more = [rts.get("op-registration").example(seed) for seed in range(60, 66)]
    for record in more:
        assert api.post("op-registration", record).status_code == 201
    held = rts.get("op-visit").example(67)  # a department code not mapped yet: held, sealed too
    held["deptCode"] = {"code": "1501", "codeSystem": "hospital"}
    held.pop("deptName", None)
    assert api.post("op-visit", held).status_code == 202

    from datetime import timedelta

    from django.utils import timezone

    from hospital_interop.uploads import retention
    from hospital_interop.uploads.models import ArchivedRecord

    # accepted rows a year on: moved to the archive table, their payloads kept (sealed there too)
    assert retention.run(timezone.now() + timedelta(days=365)).records > 0
    assert ArchivedRecord.objects.filter(payload__isnull=False).exists()

    def key_ids() -> dict[str, set]:
        """The key ids of every sealed column's values and of the sealed files."""
        used = {f"{f.model._meta.label}.{f.name}": set(rekey.usage(f)) for f in atrest.sealed_fields()}
        used["files"] = {atrest.key_id_of(p.read_bytes()) for p in rekey.sealed_files()}
        return used

    assert key_ids() == {
        "uploads.OutboxRecord.payload": {first},
        "uploads.ArchivedRecord.payload": {first},
        "lab.LabArchivedPdf.data": {first},
        "exam.ExamReport.pdf_content": {first},
        "emr_sharing.HeldRecord.record": {first},
        "files": {first},
    }

    # a rotation stopped after its first batch ...
    second = keys.add_data_key(own_data_keys)
    payload_field = OutboxRecord._meta.get_field("payload")

    def stop(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rekey.reseal_column(payload_field, second, batch_size=4, progress=stop)
    assert rekey.pending(payload_field, second) == OutboxRecord.objects.count() - 4
    # ... is finished by --resume, and every value and file is then under the new key
    out = io.StringIO()
    call_command("rotate_data_key", "--resume", "--batch-size", "3", stdout=out, stderr=io.StringIO())
    assert f"全部数据均已使用密钥 {second} 加密" in out.getvalue()
    assert set(map(frozenset, key_ids().values())) == {frozenset({second})}
    # the plain command makes a third key current and re-seals all again
    call_command("rotate_data_key", stdout=(out := io.StringIO()), stderr=io.StringIO())
    third = atrest.data_keys().current_id()
    assert third not in (first, second) and set(map(frozenset, key_ids().values())) == {frozenset({third})}
    assert sorted(p.name for p in own_data_keys.glob("*.key")) == sorted(
        f"{k}.key" for k in (first, second, third)
    )

    # everything still opens and is delivered: the waiting rows go out after the rotation
    assert [
        r.payload for r in OutboxRecord.objects.filter(interface="OP_REGISTRATION").order_by("pk")
    ] == more
    assert all(a.data.startswith(b"%PDF") for a in LabArchivedPdf.objects.all())
    for path in rekey.sealed_files():
        assert atrest.read_sealed_file(path)
    inline_delivery()
    for record in more:
        assert (
            sim.record("OP_REGISTRATION", f"{ORG}|{record['registrationId']}")["payload"]["patient"]
            == record["patient"]
        )
    # new rows are sealed under the new key
    assert api.post("op-registration", rts.get("op-registration").example(70)).status_code == 201
    assert key_ids()["uploads.OutboxRecord.payload"] == {third}


@pytest.mark.django_db
def test_the_patient_digest_is_an_hmac_sm3_under_the_server_key_not_a_hash_of_the_id(
    api, rts, settings, tmp_path
):
    id_no = persona(81).idNo
    digest = id_key("01", id_no)
    old_digests = (
        hashlib.sha256(f"01|{id_no}".encode()).hexdigest()[:40],  # the registry's old digest
        hashlib.sha256(id_no.encode()).hexdigest()[:40],  # the outbox's old one
    )
    assert digest not in old_digests
    key = bytes.fromhex(Path(settings.PATIENT_DIGEST_KEY_FILE).read_text())
    assert digest == hmac_sm3(key, f"01|{id_no}".encode()).hex()[:40]
    # stored: the outbox row and the binding carry the HMAC, not the old hashes
    assert api.post("op-visit", rts.get("op-visit").example(81)).status_code == 201
    row = OutboxRecord.objects.get()
    assert row.patient_id_hash == digest != hashlib.sha256(id_no.encode()).hexdigest()
    assert set(PatientBinding.objects.values_list("id_key", flat=True)) == {digest}
    assert outbox.Patient(id_number=id_no).id_hash == digest
    # another server key, another digest: without the key there is nothing to try ID numbers against
    other = tmp_path / "other.key"
    other.write_text("ab" * 32)
    settings.PATIENT_DIGEST_KEY_FILE = str(other)
    assert (
        id_key("01", id_no) == hmac_sm3(bytes.fromhex("ab" * 32), f"01|{id_no}".encode()).hex()[:40] != digest
    )


@pytest.mark.django_db
def test_a_json_payload_is_gzipped_under_the_seal_and_payloads_stored_before_still_open():
    """A record's JSON of 512 bytes or more is compressed before it is sealed (stored smaller:
    less to seal, write and log); a short one is not; a value sealed as plain JSON, as every
    value was before, opens as it did."""
    from hospital_interop import atrest
    from hospital_interop.municipal.specs import load_catalogue

    field = OutboxRecord._meta.get_field("payload")
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    payload = spec.example(7)
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    record = outbox.enqueue(spec.code, payload, wake_worker=False)
    stored = bytes(OutboxRecord.objects.values_list("payload", flat=True).get(pk=record.pk).raw)
    inside = atrest.unseal(stored, "outbox.payload")
    assert inside[:2] == b"\x1f\x8b" and len(stored) < len(text) / 2  # gzip, well under half
    assert OutboxRecord.objects.get(pk=record.pk).payload == payload

    small = {"a": "短"}
    assert (
        atrest.unseal(field.seal_value(small), "outbox.payload")
        == json.dumps(small, ensure_ascii=False, separators=(",", ":")).encode()
    )
    # a row sealed before compression existed: plain JSON under the seal
    before = atrest.seal(text, "outbox.payload")
    OutboxRecord.objects.filter(pk=record.pk).update(payload=atrest.Sealed(before))
    assert OutboxRecord.objects.get(pk=record.pk).payload == payload
