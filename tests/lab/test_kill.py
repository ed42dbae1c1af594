"""The real ``manage.py lab_transfer`` process, SIGKILLed between the two uploads and restarted: the
report is completed exactly once (one accepted version of 3.4 and of 3.3, files cleared once)."""

from __future__ import annotations

import sys

import pytest

from hospital_interop.uploads import services as outbox
from hospital_interop.uploads.models import InterfacePolicy, OutboxRecord, State
from mutual_recognition.lab import services
from mutual_recognition.lab.models import LabTransfer, LabTransferLog
from tests.delivery_fixtures import wait_until, worker_env
from tests.lab.conftest import files_in, lis_report

ORG = "12110000400000000X"


def start_transfer(processes, sim, folders):
    env = worker_env(
        sim,
        LAB_DROP_DIR=folders.drop,
        LAB_ARCHIVE_DIR=folders.archive,
        LAB_QUARANTINE_DIR=folders.quarantine,
        LAB_INDEX_KEY_FILE=folders.index_key_file,
        LAB_RESCAN_SECONDS=120,
        LAB_ACCEPT_POLL_SECONDS=0.3,
    )
    proc = processes._start("lab_transfer", [sys.executable, "manage.py", "lab_transfer"], env)
    processes._wait_for_log(proc, "lab_transfer watching")
    return proc


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_transfer_killed_between_the_two_uploads_completes_exactly_once(lab_dicts, folders, sim, processes):
    InterfacePolicy.objects.create(interface="LAB_REPORT_DETAIL", enabled=False)  # hold the second upload
    processes.worker(DELIVERY_BACKOFF_BASE_SECONDS=0.5)
    transfer_proc = start_transfer(processes, sim, folders)

    body = lis_report(41, name="赵丽")
    services.approve(body, source="LIS")
    archived = services.archive(body["reportId"])  # after the start (rescan every 120 s)
    t = wait_until(
        lambda: LabTransfer.objects.filter(report_id=body["reportId"], state="enqueued").first(),
        30,
        message="pair enqueued",
    )
    wait_until(
        lambda: OutboxRecord.objects.get(pk=t.pdf_record_id).state == State.DONE, 30, message="PDF accepted"
    )
    assert OutboxRecord.objects.get(pk=t.detail_record_id).state == State.PENDING

    processes.kill(transfer_proc)  # SIGKILL, between the two uploads
    assert files_in(folders.drop) == sorted([archived.index_path.name, archived.pdf_path.name])
    transfer_proc = start_transfer(processes, sim, folders)

    InterfacePolicy.objects.filter(interface="LAB_REPORT_DETAIL").update(enabled=True)
    outbox.wake()
    wait_until(
        lambda: LabTransfer.objects.get(pk=t.pk).state == LabTransfer.State.CLEARED,
        60,
        message="transfer cleared",
    )

    key = f"{ORG}|{body['reportId']}"
    assert sim.record("LAB_REPORT_PDF", key)["version"] == 1
    assert sim.record("LAB_REPORT_DETAIL", key)["version"] == 1
    lab_document = OutboxRecord.objects.filter(
        business_key=key, interface__in=("LAB_REPORT_PDF", "LAB_REPORT_DETAIL")
    )
    assert lab_document.count() == 2  # each sent once, although the service was killed in between
    assert set(lab_document.values_list("state", flat=True)) == {State.DONE}
    assert LabTransfer.objects.count() == 1
    events = list(LabTransferLog.objects.filter(transfer=t).values_list("event", flat=True))
    assert events.count("enqueued") == 1 and events.count("accepted") == 1 and events.count("cleared") == 1
    assert files_in(folders.drop) == []
    assert files_in(folders.archive) == sorted(  # sealed (SM4-GCM): they hold patient data
        [archived.index_path.name + ".sm4", archived.pdf_path.name + ".sm4"]
    )
    assert LabTransferLog.objects.filter(event="started").count() == 2
