"""Study-sync jobs (persistent, per-instance state) against real Orthanc peers: the front-end
processor crashes mid-study and comes back; studies retrieved from a PACS by C-GET and C-MOVE."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from pydicom import dcmread
from pydicom.uid import generate_uid

from hospital_interop.celery import app as celery_app
from hospital_interop.dicom.synthetic import write_ct_study
from mutual_recognition.exam import services, tasks
from mutual_recognition.exam.models import StudyInstance, StudySync
from tests.dicom.orthanc import free_port


@pytest.fixture
def eager_tasks():
    """Tasks dispatched by the sweep run in this process (the worker's code path, no broker)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def _wait_until_due(job: StudySync) -> None:
    job.refresh_from_db()
    backoff = (job.next_attempt_at - job.updated_at).total_seconds()
    assert 0 < backoff <= 2  # set by the delivery engine's retry policy (base 0.4 s, cap 2 s here)
    time.sleep(max((job.next_attempt_at - timezone.now()).total_seconds(), 0) + 0.05)


@pytest.mark.django_db
def test_fep_crash_mid_study_then_restart_resumes_without_resending_acknowledged_instances(
    fep, dicom_settings, tmp_path, eager_tasks
):
    study = write_ct_study(tmp_path / "incoming" / "CT-0001", 30)
    job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder), accession_no="ACC1")
    acked: list[str] = []

    def crash_after_ten(res):
        if res.stored:
            acked.append(res.instance.sop_instance_uid)
            if len(acked) == 10:
                fep.kill()  # the FEP dies after acknowledging 10 instances

    job = services.run_study_job(job.pk, on_instance=crash_after_ten)
    assert job.state == StudySync.State.RETRY and job.total == 30 and job.stored == 10 and job.attempts == 1
    assert "无法连接前置机" in job.last_error  # the rest of the study would go on a new association
    in_flight = StudyInstance.objects.get(job=job, state="retry")  # the one in flight when it died
    assert in_flight.failures == 1 and "连接中断" in in_flight.last_error
    stored_before = set(
        StudyInstance.objects.filter(job=job, state="stored").values_list("sop_instance_uid", flat=True)
    )
    assert stored_before == set(acked)

    _wait_until_due(job)  # still down at the first retry: the job waits longer and keeps its state
    assert tasks.sweep_study_jobs() == 1
    job.refresh_from_db()
    assert job.state == StudySync.State.RETRY and job.attempts == 2 and job.stored == 10
    assert "无法连接前置机" in job.last_error

    fep.start()  # same configuration, same storage
    _wait_until_due(job)
    tasks.sweep_study_jobs()
    job.refresh_from_db()
    assert job.state == StudySync.State.DONE and job.stored == job.total == 30 and job.attempts == 3
    assert sorted(fep.sop_instance_uids(study.study_instance_uid)) == sorted(study.sop_instance_uids)
    receipts = Counter(fep.receipts())
    assert set(receipts) == set(study.sop_instance_uids)  # none missing
    assert all(receipts[uid] == 1 for uid in stored_before)  # none sent again once acknowledged
    rows = StudyInstance.objects.filter(job=job)
    assert all(r.sent_count == 1 for r in rows if r.sop_instance_uid in stored_before)
    assert all(r.status == 0 and r.stored_at for r in rows)

    assert services.run_study_job(job.pk) is None  # done: nothing to claim
    more = write_ct_study(
        study.folder / "late-series", 3, study_instance_uid=study.study_instance_uid, name_prefix="late"
    )
    services.ensure_study_job(study.study_instance_uid)  # a later event: only the new instances go
    job = services.run_study_job(job.pk)
    assert job.state == StudySync.State.DONE and job.total == 33 and job.stored == 33
    assert Counter(fep.receipts()) == Counter(study.sop_instance_uids + more.sop_instance_uids) + Counter(
        {uid: n - 1 for uid, n in receipts.items() if n > 1}
    )


@pytest.mark.django_db
def test_studies_without_a_folder_are_retrieved_from_the_pacs_by_c_get_or_c_move_then_pushed(
    fep, orthanc_factory, dicom_settings, settings, tmp_path
):
    move_port = free_port()
    pacs = orthanc_factory(
        "PACS",
        modalities={
            "hosp": {
                "AET": "HOSP_INTEROP",
                "Host": "127.0.0.1",
                "Port": move_port,
                "AllowEcho": True,
                "AllowFind": True,
                "AllowGet": True,
                "AllowMove": True,
                "AllowStore": True,
            }
        },
    )
    for n, mode in enumerate(("c-get", "c-move")):
        study = write_ct_study(tmp_path / f"pacs-src-{n}", 6, rows=128, columns=128)
        pacs.upload(sorted(study.folder.glob("*.dcm")))
        settings.DICOM = {
            **settings.DICOM,
            "RETRIEVE_MODE": mode,
            "PACS_AE_TITLE": "PACS",
            "PACS_HOST": "127.0.0.1",
            "PACS_PORT": pacs.dicom_port,
            "MOVE_DESTINATION_AE_TITLE": "HOSP_INTEROP",
            "MOVE_DESTINATION_HOST": "127.0.0.1",
            "MOVE_DESTINATION_PORT": move_port,
        }

        job = services.ensure_study_job(study.study_instance_uid, accession_no=f"ACC-{mode}")
        assert job.source == StudySync.Source.PACS
        job = services.run_study_job(job.pk)

        assert job.state == StudySync.State.DONE, (mode, job.last_error)
        assert job.stored == job.total == 6
        assert sorted(fep.sop_instance_uids(study.study_instance_uid)) == sorted(study.sop_instance_uids)
        assert job.folder.startswith(str(tmp_path / "retrieved"))
        retrieved = list(Path(job.folder).glob("*.dcm"))
        assert len(retrieved) == 6 and {oct(p.stat().st_mode & 0o777) for p in retrieved} == {
            "0o600"
        }  # patient data


@pytest.mark.django_db
def test_a_job_whose_worker_died_is_reclaimed_after_its_lease_and_finished(
    fep, dicom_settings, tmp_path, eager_tasks
):
    study = write_ct_study(tmp_path / "incoming" / "S2", 4, rows=64, columns=64)
    job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder))
    assert services.claim_study_job(job.pk, worker="dead-host:4242") is not None  # then the worker died
    assert tasks.sweep_study_jobs() == 0  # its lease still runs: nobody else takes the job
    StudySync.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert tasks.sweep_study_jobs() == 1
    job.refresh_from_db()
    assert job.state == StudySync.State.DONE and job.stored == 4 and job.attempts == 2


def test_the_worker_registers_the_exam_tasks():
    """Celery autodiscovery imports mutual_recognition.tasks only; exam/models.py imports exam.tasks."""
    celery_app.loader.import_default_modules()
    assert {
        "mutual_recognition.exam.tasks.run_study",
        "mutual_recognition.exam.tasks.sweep_study_jobs",
        "mutual_recognition.exam.tasks.daily_summary_tick",
    } <= set(celery_app.tasks)


@pytest.mark.django_db
def test_a_missing_folder_or_an_unknown_pacs_waits_and_retries(dicom_settings, tmp_path):
    job = services.ensure_study_job("1.2.3.4.5", folder=str(tmp_path / "incoming" / "not-yet"))
    job = services.run_study_job(job.pk)
    assert job.state == StudySync.State.RETRY and "影像目录不存在" in job.last_error and job.next_attempt_at
    job = services.ensure_study_job("1.2.3.4.6")  # no folder and no PACS configured
    job = services.run_study_job(job.pk)
    assert job.state == StudySync.State.RETRY and "未配置 PACS" in job.last_error


# --------------------------------------------------------------------------- real-world studies (issue 17)


def _rows(job: StudySync) -> dict[str, StudyInstance]:
    return {r.sop_instance_uid: r for r in StudyInstance.objects.filter(job=job)}


def _point_at(settings, peer_aet: str, port: int, **more) -> None:
    settings.DICOM = {**settings.DICOM, "FEP_AE_TITLE": peer_aet, "FEP_PORT": port, **more}


def _run_when_due(job: StudySync) -> StudySync:
    """Run the job again once it and its instances waiting for a retry are due."""
    job.refresh_from_db()
    due = max(
        [
            job.next_attempt_at,
            *StudyInstance.objects.filter(job=job, state="retry").values_list("next_attempt_at", flat=True),
        ]
    )
    time.sleep(max((due - timezone.now()).total_seconds(), 0) + 0.05)
    ran = services.run_study_job(job.pk)
    assert ran is not None
    return ran


@pytest.mark.django_db
def test_instances_are_keyed_by_the_data_set_uid_and_a_meta_mismatch_is_in_their_history(
    fep, dicom_settings, tmp_path
):
    study = write_ct_study(tmp_path / "incoming" / "MISMATCH", 3, rows=32, columns=32)
    path = study.folder / "00002.dcm"
    ds = dcmread(path)
    ds.file_meta.MediaStorageSOPInstanceUID = meta_uid = generate_uid()  # as in pydicom's rtdose.dcm
    ds.save_as(path, enforce_file_format=False)  # (True would make the meta agree)

    job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder))
    job = services.run_study_job(job.pk)

    assert job.state == StudySync.State.DONE and job.stored == job.total == 3, job.last_error
    rows = _rows(job)
    assert set(rows) == set(study.sop_instance_uids)  # keyed by the data set's UIDs
    odd = rows[study.sop_instance_uids[1]]
    assert odd.meta_sop_instance_uid == meta_uid
    assert any(meta_uid in h["message"] and odd.sop_instance_uid in h["message"] for h in odd.history)
    assert sorted(fep.sop_instance_uids(study.study_instance_uid)) == sorted(study.sop_instance_uids)


@pytest.mark.django_db
def test_rows_keyed_by_the_file_meta_uid_by_an_earlier_version_are_re_keyed_not_duplicated(
    fep, dicom_settings, tmp_path
):
    study = write_ct_study(tmp_path / "incoming" / "LEGACY", 2, rows=32, columns=32)
    path = study.folder / "00001.dcm"
    ds = dcmread(path)
    ds.file_meta.MediaStorageSOPInstanceUID = meta_uid = generate_uid()
    ds.save_as(path, enforce_file_format=False)
    job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder))
    StudySync.objects.filter(pk=job.pk).update(total=1)  # planned by the version that keyed by the meta
    StudyInstance.objects.create(
        job=job,
        sop_instance_uid=meta_uid,
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        path=str(path),
        state=StudyInstance.State.REJECTED,
        status=0xA900,
        sent_count=1,
    )
    services.retry_study_jobs([job.pk])  # ops re-queue it after the upgrade
    job = services.run_study_job(job.pk)

    assert job.state == StudySync.State.DONE and job.total == 2 and job.stored == 2, job.last_error
    assert set(_rows(job)) == set(study.sop_instance_uids)


@pytest.mark.django_db
def test_a_poisoned_instance_in_the_middle_of_a_study_does_not_hold_back_the_others(
    choking_scp_factory, dicom_settings, settings, tmp_path
):
    """Five instances, the peer aborts on the third. One run stores the four others; the poisoned
    one waits behind the rest of the study (instances found later go first), and after
    INSTANCE_MAX_FAILURES failures it needs attention with the peer's last message."""
    study = write_ct_study(tmp_path / "incoming" / "POISON", 5, rows=32, columns=32)
    poison = study.sop_instance_uids[2]
    scp = choking_scp_factory([poison])
    _point_at(settings, scp.aet, scp.port, INSTANCE_MAX_FAILURES=3, DIMSE_TIMEOUT=5)

    job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder))
    job = services.run_study_job(job.pk)  # run 1
    healthy = [uid for uid in study.sop_instance_uids if uid != poison]
    assert job.state == StudySync.State.RETRY and job.stored == 4 and job.total == 5
    assert scp.receipts() == list(study.sop_instance_uids)  # in order, each once
    bad = _rows(job)[poison]
    assert bad.state == StudyInstance.State.RETRY and bad.failures == 1 and bad.sent_count == 1
    assert bad.next_attempt_at and "中止" in bad.last_error

    later = write_ct_study(
        study.folder / "late", 2, rows=32, columns=32, study_instance_uid=study.study_instance_uid
    )
    services.ensure_study_job(study.study_instance_uid)  # more images of the study arrive
    job = _run_when_due(job)  # run 2: the new instances first, then the poisoned one
    assert scp.receipts()[5:] == [*later.sop_instance_uids, poison]
    assert job.state == StudySync.State.RETRY and job.stored == 6 and _rows(job)[poison].failures == 2

    job = _run_when_due(job)  # run 3: only the poisoned one is left
    bad = _rows(job)[poison]
    assert bad.state == StudyInstance.State.ATTENTION and bad.failures == 3 and bad.sent_count == 3
    assert job.state == StudySync.State.ATTENTION and job.stored == 6 and job.rejected == 1
    assert "需人工处理" in job.last_error and "中止" in job.last_error
    receipts = scp.receipts()
    assert Counter(receipts) == Counter([*healthy, *later.sop_instance_uids, *[poison] * 3])
    resent = [i for i, uid in enumerate(receipts) if uid == poison][1:]
    assert min(resent) > max(receipts.index(uid) for uid in (*healthy, *later.sop_instance_uids))
    assert services.run_study_job(job.pk) is None  # nothing is due: it waits for ops


@pytest.mark.django_db
def test_a_sop_class_the_peer_refuses_needs_attention_at_once_with_its_reason(fep, dicom_settings, tmp_path):
    for count, name in ((3, "MIXED"), (1, "ALONE")):
        study = write_ct_study(tmp_path / "incoming" / name, count, rows=32, columns=32)
        path = sorted(study.folder.glob("*.dcm"))[-1]
        ds = dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.826.0.1.3680043.9.7433.1.1"
        ds.save_as(path, enforce_file_format=True)
        job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder))
        job = services.run_study_job(job.pk)
        assert job.state == StudySync.State.ATTENTION, (name, job.last_error)
        assert job.stored == count - 1 and job.rejected == 1 and job.next_attempt_at is None
        refused = _rows(job)[str(ds.SOPInstanceUID)]
        assert (
            refused.state == StudyInstance.State.REJECTED
            and "1.2.826.0.1.3680043.9.7433.1.1" in refused.last_error
        )
        assert "无法连接" not in job.last_error and "拒收" in job.last_error


@pytest.mark.django_db
def test_an_out_of_resources_status_is_retried_behind_the_others_then_needs_attention(
    fep, dicom_settings, settings, tmp_path
):
    """Orthanc answers 0xA700 (Refused: Out of Resources) for an instance without a Series Instance
    UID (here the local check for it is switched off): it is retried with backoff behind the others and
    needs attention after INSTANCE_MAX_FAILURES, instead of being re-sent until the maximum age."""
    settings.DICOM = {**settings.DICOM, "REQUIRED_TAGS": [], "INSTANCE_MAX_FAILURES": 2}
    study = write_ct_study(tmp_path / "incoming" / "A700", 3, rows=32, columns=32)
    path = study.folder / "00001.dcm"
    ds = dcmread(path)
    del ds.SeriesInstanceUID
    ds.save_as(path, enforce_file_format=True)
    first = study.sop_instance_uids[0]

    job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder))
    job = services.run_study_job(job.pk)
    row = _rows(job)[first]
    assert job.state == StudySync.State.RETRY and job.stored == 2
    assert row.state == StudyInstance.State.RETRY and row.status == 0xA700 and "资源不足" in row.last_error

    job = _run_when_due(job)
    row = _rows(job)[first]
    assert row.state == StudyInstance.State.ATTENTION and row.sent_count == 2
    assert job.state == StudySync.State.ATTENTION and "0xA700" in job.last_error
    assert Counter(fep.receipts()) == Counter(study.sop_instance_uids[1:])  # the others went once


@pytest.mark.django_db
def test_an_unsendable_file_is_marked_at_once_and_sent_only_after_ops_re_queue_it(
    fep, dicom_settings, settings, tmp_path
):
    settings.DICOM = {**settings.DICOM, "DIMSE_TIMEOUT": 5}
    study = write_ct_study(tmp_path / "incoming" / "TRUNC", 3, rows=64, columns=64)
    path = study.folder / "00002.dcm"
    whole = path.read_bytes()
    path.write_bytes(whole[:-1000])  # a copy that stopped short
    cut = study.sop_instance_uids[1]

    job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder))
    job = services.run_study_job(job.pk)
    row = _rows(job)[cut]
    assert job.state == StudySync.State.ATTENTION and job.stored == 2 and job.rejected == 1
    assert row.state == StudyInstance.State.INVALID and row.sent_count == 0 and "不完整" in row.last_error
    assert "不完整" in job.last_error and cut not in fep.receipts()

    services.ensure_study_job(study.study_instance_uid)  # another event: still not sent
    job = services.run_study_job(job.pk)
    assert job.state == StudySync.State.ATTENTION and cut not in fep.receipts()

    path.write_bytes(whole)  # the file is copied again, whole
    assert services.retry_study_jobs([job.pk]) == 1  # ops re-queue
    job = services.run_study_job(job.pk)
    assert job.state == StudySync.State.DONE and job.stored == 3 and fep.receipts().count(cut) == 1


@pytest.mark.django_db
def test_a_file_name_that_is_not_utf8_is_listed_with_its_reason_and_the_rest_is_sent(
    choking_scp_factory, dicom_settings, settings, tmp_path
):
    """Found 2026-12-05: the OS hands such a name over with lone surrogates, which PostgreSQL
    cannot store, so saving the instance's path failed the whole run, on every run. The file is
    listed among the skipped files under its escaped name (``\\xff``), with the reason; the
    study's other instances are sent."""
    import os

    study = write_ct_study(tmp_path / "incoming" / "BADNAME", 3, rows=32, columns=32)
    src = sorted(p for p in study.folder.rglob("*") if p.is_file())[1]
    os.rename(src, os.path.join(os.fsencode(src.parent), b"IM\xff\xfe.dcm"))
    scp = choking_scp_factory([])
    _point_at(settings, scp.aet, scp.port)

    job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder))
    job = services.run_study_job(job.pk)

    assert job.stored == 2 and job.total == 2 and len(scp.receipts()) == 2
    (skipped,) = job.skipped_files
    assert skipped["path"].endswith("IM\\xff\\xfe.dcm") and "不是有效的 UTF-8" in skipped["reason"]
