"""Only pairs this server archived (or a LIS holding the index key wrote) are uploaded: a forged or
tampered pair is quarantined with its reason and nothing is enqueued; what the service and archive()
write is readable by the service's own user only (0600)."""

from __future__ import annotations

import base64
import json
import os
import secrets

import pytest

from hospital_interop.municipal.gm import sm3_hex
from hospital_interop.uploads.models import OutboxRecord
from mutual_recognition.lab import intake, payloads, pdf, services
from mutual_recognition.lab.models import LabTransfer, LabTransferLog
from tests.lab.conftest import file_mode, files_in, lis_mac, lis_report, with_mac

ORG = "12110000400000000X"
NO_MAC = "缺少校验码"
BAD_MAC = "校验码（HMAC-SM3）不正确"


def lis_pair(seed: int, *, name: str = "钱美玲", **overrides) -> tuple[dict, bytes]:
    """A complete, valid-looking index document and its PDF for a report this server never approved:
    LIS content that passes the schema and the dictionaries, a real rendered PDF, a signature block."""
    body = lis_report(seed, name=name, nonRecognitions=[], externalResults=[], **overrides)
    content, errors = intake.normalise(body)
    assert not errors, errors
    signature = {
        "reportId": content["reportId"],
        "originalText": f"报告单号={content['reportId']}&审核者=吴审核",
        "originalHash": sm3_hex(b"forged"),
        "hashAlgorithm": "SM3",
        "signatureAlgorithm": "SM3withSM2",
        "signatureValue": base64.b64encode(secrets.token_bytes(70)).decode(),
        "certificate": base64.b64encode(b"not-a-certificate").decode(),
        "certSerial": "DEADBEEF",
        "signerName": "吴审核",
        "signerStaffNo": "L2002",
        "signedAt": "2026-11-27T10:15:00+08:00",
        "timestampToken": "TSA-FORGED",
        "method": "ukey",
    }
    pdf_bytes = pdf.render(payloads.map_content(content), signature)
    stem = f"{content['reportId']}_v1"
    doc = {
        "format": "lab-report-index",
        "formatVersion": 1,
        "reportId": content["reportId"],
        "version": 1,
        "event": "archived",
        "archivedAt": "2026-11-27T10:16:00+08:00",
        "pdf": {"fileName": f"{stem}.pdf", "size": len(pdf_bytes), "sm3": sm3_hex(pdf_bytes)},
        "report": content,
        "signature": signature,
        "contentHash": intake.content_hash(content),
        "generator": "LIS",
    }
    return doc, pdf_bytes


def drop(folders, doc: dict, pdf_bytes: bytes, index_bytes: bytes) -> str:
    """Write a pair the way the writing protocol says: the PDF first, the index last."""
    stem = f"{doc['reportId']}_v{doc['version']}"
    (folders.drop / f"{stem}.pdf").write_bytes(pdf_bytes)
    (folders.drop / f"{stem}.json").write_bytes(index_bytes)
    return stem


def archived_index(result) -> dict:
    return json.loads(result.index_path.read_text("utf-8"))


def reason_of(folders, stem: str) -> str:
    folder = next(p for p in folders.quarantine.iterdir() if p.name.endswith(stem))
    return (folder / f"{stem}.reason.txt").read_text("utf-8")


@pytest.mark.django_db
def test_a_forged_pair_for_a_report_never_archived_is_quarantined_and_nothing_is_enqueued(
    lab_dicts, folders, service
):
    # no MAC at all (the attacker does not know there is one)
    doc, pdf_bytes = lis_pair(71)
    no_mac = drop(folders, doc, pdf_bytes, json.dumps(doc, ensure_ascii=False).encode())
    # a MAC made with a key of the attacker's own
    doc, pdf_bytes = lis_pair(72)
    wrong_key = drop(folders, doc, pdf_bytes, with_mac(doc, secrets.token_bytes(32)))
    # a MAC field that is not even hex
    doc, pdf_bytes = lis_pair(73)
    garbage = drop(
        folders,
        doc,
        pdf_bytes,
        json.dumps({**doc, "mac": {"algorithm": "HMAC-SM3", "value": "zz"}}, ensure_ascii=False).encode(),
    )

    stats = service.run_once()

    assert stats.enqueued == 0 and stats.quarantined == 3
    assert not OutboxRecord.objects.exists()
    assert files_in(folders.drop) == []
    assert {t.state for t in LabTransfer.objects.all()} == {LabTransfer.State.QUARANTINED}
    assert NO_MAC in reason_of(folders, no_mac) and "不是本系统归档的报告" in reason_of(folders, no_mac)
    assert BAD_MAC in reason_of(folders, wrong_key)
    assert BAD_MAC in reason_of(folders, garbage)
    logged = {row.report_id: row.message for row in LabTransferLog.objects.filter(event="quarantined")}
    assert NO_MAC in logged[no_mac.split("_v")[0]] and BAD_MAC in logged[wrong_key.split("_v")[0]]
    assert LabTransfer.objects.get(stem=wrong_key).errors[0]["field"] == "mac"


@pytest.mark.django_db
def test_an_archived_pair_changed_after_archiving_is_quarantined_even_with_its_mac_kept(
    lab_dicts, folders, service
):
    # a result changed in the index
    body = lis_report(74, name="孙丽华")
    services.approve(body, source="LIS")
    result = services.archive(body["reportId"])
    doc = archived_index(result)
    hgb = next(i for i in doc["report"]["items"] if i["itemCode"] == "HGB")
    hgb["result"] = "155"
    result.index_path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    changed_result = result.pdf_path.stem

    # the PDF replaced by another one, the index's PDF size and SM3 updated to match it
    body = lis_report(75, name="孙丽华")
    services.approve(body, source="LIS")
    result = services.archive(body["reportId"])
    doc = archived_index(result)
    _, other_pdf = lis_pair(76)
    doc["pdf"].update(size=len(other_pdf), sm3=sm3_hex(other_pdf))
    result.pdf_path.write_bytes(other_pdf)
    result.index_path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    changed_pdf = result.pdf_path.stem

    stats = service.run_once()

    assert stats.enqueued == 0 and stats.quarantined == 2
    assert not OutboxRecord.objects.exists()
    assert BAD_MAC in reason_of(folders, changed_result)
    assert BAD_MAC in reason_of(folders, changed_pdf)


@pytest.mark.django_db
def test_a_genuine_archived_pair_carries_a_mac_the_documented_form_reproduces_and_is_uploaded(
    lab_dicts, folders, service, sim, inline_delivery
):
    body = lis_report(77, name="周建国")
    services.approve(body, source="LIS")
    result = services.archive(body["reportId"])
    doc = archived_index(result)
    assert doc["mac"] == {"algorithm": "HMAC-SM3", "value": lis_mac(doc, folders.index_key)}
    assert file_mode(result.pdf_path) == file_mode(result.index_path) == "0o600"

    # archived here before the index had a MAC (or under an earlier key): its content and PDF match
    # what this server archived, so it is still uploaded
    old = lis_report(78, name="周建国")
    services.approve(old, source="LIS")
    old_result = services.archive(old["reportId"])
    old_doc = archived_index(old_result)
    del old_doc["mac"]
    old_result.index_path.write_text(json.dumps(old_doc, ensure_ascii=False), "utf-8")

    assert service.run_once().enqueued == 2
    inline_delivery()
    stats = service.run_once()
    assert stats.accepted == 2 and stats.cleared == 2
    for report_id in (body["reportId"], old["reportId"]):
        assert sim.record("LAB_REPORT_DETAIL", f"{ORG}|{report_id}")["version"] == 1
        assert sim.record("LAB_REPORT_PDF", f"{ORG}|{report_id}")["version"] == 1
    archived = [p for p in folders.archive.rglob("*") if p.is_file()]
    assert len(archived) == 4 and {file_mode(p) for p in archived} == {"0o600"}


@pytest.mark.django_db
def test_a_pair_a_lis_wrote_with_the_right_mac_is_checked_like_any_lis_report_and_uploaded(
    lab_dicts, folders, service, sim, inline_delivery
):
    """docs/lab-transfer.md: a LIS may write the folder itself; it signs the index with the shared key."""
    doc, pdf_bytes = lis_pair(79)
    stem = drop(folders, doc, pdf_bytes, with_mac(doc, folders.index_key))
    for name in (f"{stem}.pdf", f"{stem}.json"):
        os.chmod(folders.drop / name, 0o644)  # the LIS's own umask
    # the right MAC does not excuse content the LIS schema refuses (it was never validated here)
    bad, bad_pdf = lis_pair(80)
    del bad["report"]["specimen"]["sampledAt"]
    bad_stem = drop(folders, bad, bad_pdf, with_mac(bad, folders.index_key))

    stats = service.run_once()
    assert stats.enqueued == 1 and stats.quarantined == 1
    assert "不符合 LIS 报告格式" in reason_of(folders, bad_stem) and "specimen.sampledAt" in reason_of(
        folders, bad_stem
    )
    inline_delivery()
    assert service.run_once().cleared == 1
    record = sim.record("LAB_REPORT_DETAIL", f"{ORG}|{doc['reportId']}")
    assert record["version"] == 1
    assert {i["itemCode"]: i["resultValue"] for i in record["payload"]["items"]}["HGB"] == "118"
    archived = [p for p in folders.archive.rglob("*") if p.is_file()]
    assert sorted(p.name for p in archived) == [f"{stem}.json.sm4", f"{stem}.pdf.sm4"]  # sealed
    assert {file_mode(p) for p in archived} == {"0o600"}


@pytest.mark.django_db
def test_quarantined_files_and_reason_files_are_private(lab_dicts, folders, service):
    doc, pdf_bytes = lis_pair(81)
    stem = drop(folders, doc, pdf_bytes, json.dumps(doc, ensure_ascii=False).encode())
    for name in (f"{stem}.pdf", f"{stem}.json"):
        os.chmod(folders.drop / name, 0o644)
    assert service.run_once().quarantined == 1
    folder = next(folders.quarantine.iterdir())
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{stem}.json.sm4", f"{stem}.pdf.sm4", f"{stem}.reason.txt"]  # sealed, but the reason
    assert {file_mode(folder / n) for n in names} == {"0o600"}


@pytest.mark.django_db
def test_without_its_index_key_neither_archive_nor_the_transfer_service_works_and_nothing_is_written(
    lab_dicts, folders
):
    import re

    from django.core.exceptions import ImproperlyConfigured

    from mutual_recognition.lab.transfer import TransferService

    body = lis_report(82, name="吴秀英")
    services.approve(body, source="LIS")
    folders.index_key_file.unlink()
    with pytest.raises(ImproperlyConfigured, match="索引校验密钥文件不存在"):
        services.archive(body["reportId"])
    with pytest.raises(ImproperlyConfigured, match=re.escape(str(folders.index_key_file))):
        TransferService()
    folders.index_key_file.write_text("not hex")
    with pytest.raises(ImproperlyConfigured, match="十六进制"):
        TransferService()
    assert files_in(folders.drop) == []
