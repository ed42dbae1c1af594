"""Study-sync jobs (persistent, per-instance state) against real Orthanc peers: the front-end
processor crashes mid-study and comes back; studies retrieved from a PACS by C-GET and C-MOVE."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

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
    assert "连接中断" in job.last_error
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
