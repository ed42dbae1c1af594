"""What RIS/PACS, ops and lab staff see: the study-event API, image sync pushed to a real Orthanc
FEP after approval, the exam pages, and the DICOM panel on the ops upload dashboard (Chromium)."""

from __future__ import annotations

import pytest
from django.utils import timezone
from pydicom import dcmread
from pydicom.uid import generate_uid

from hospital_interop.dicom.synthetic import write_ct_study
from mutual_recognition.exam import services
from mutual_recognition.exam.models import ExamReport, StudyInstance, StudySync
from tests.exam.conftest import report_body


@pytest.mark.django_db
def test_an_approved_report_with_images_pushes_its_study_and_the_pages_show_the_progress(
    ris, fep, dicom_settings, tmp_path, client, make_user
):
    study = write_ct_study(tmp_path / "incoming" / "ACC7", 12, rows=256, columns=256)
    body = report_body(40, studyInstanceUid=study.study_instance_uid, imageFolder=str(study.folder))
    r = ris.submit(body)
    assert r.status_code == 201 and r.json()["study"]["state"] == "pending"
    job = StudySync.objects.get(study_instance_uid=study.study_instance_uid)
    assert job.report_id == body["reportId"] and job.source == "folder"

    job = services.run_study_job(job.pk)  # what the worker does when woken
    assert job.state == "done" and job.stored == job.total == 12
    assert sorted(fep.sop_instance_uids(study.study_instance_uid)) == sorted(study.sop_instance_uids)
    progress = ris.status(body["reportId"]).json()["study"]
    assert (progress["stored"], progress["total"], progress["state"]) == (12, 12, "done")

    make_user("ops-img", role="ops")
    client.login(username="ops-img", password="pw-for-tests-0")
    listing = client.get("/exam/images/").content.decode()
    assert study.study_instance_uid in listing and "12/12" in listing and "已完成" in listing
    detail = client.get(f"/exam/images/{job.pk}/").content.decode()
    assert "已送达 12" in detail and "0x0000" in detail and fep.aet in detail
    panel = client.get("/exam/images/panel").content.decode()
    assert "12/12" in panel and "影像同步" in panel
    report_page = client.get(f"/exam/reports/{body['reportId']}/").content.decode()
    assert "12/12" in report_page and "检查结果" in report_page
    assert 'id="exam-dicom-panel"' in client.get("/ops/uploads/").content.decode()


@pytest.mark.django_db
def test_study_events_need_a_folder_below_the_configured_roots(ris, dicom_settings, tmp_path):
    r = ris.study({"studyInstanceUid": "1.2.3.4", "imageFolder": "/etc"})
    assert r.status_code == 400 and r.json()["errors"][0]["rule"] == "folder"
    assert ris.study({"studyInstanceUid": "not a uid!"}).json()["errors"][0]["field"] == "studyInstanceUid"
    folder = tmp_path / "incoming" / "S1"
    r = ris.study({"studyInstanceUid": "1.2.3.4", "imageFolder": str(folder), "accessionNo": "A1"})
    assert r.status_code == 202 and r.json()["state"] == "pending"
    assert ris.client.get("/api/exam/v1/studies/1.2.3.4", **ris.auth).json()["total"] == 0
    assert ris.client.get("/api/exam/v1/studies/9.9", **ris.auth).status_code == 404


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_ops_dashboard_shows_study_progress_and_held_reports(live_server, page, make_user, artifacts_dir):
    now = timezone.now()
    running = StudySync.objects.create(
        study_instance_uid="1.2.156.1.1",
        accession_no="ACC-RUN",
        source="folder",
        state="running",
        total=200,
        stored=120,
        event_at=now,
    )
    StudySync.objects.create(
        study_instance_uid="1.2.156.1.2",
        accession_no="ACC-ERR",
        source="pacs",
        state="attention",
        total=40,
        stored=38,
        rejected=2,
        event_at=now,
        last_error="2 个实例被前置机拒收，请查看实例状态后重新同步",
    )
    StudyInstance.objects.create(
        job=running,
        sop_instance_uid="1.2.156.1.1.1",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        path="/x/1.dcm",
        state="stored",
        status=0,
        sent_count=1,
        stored_at=now,
    )
    ExamReport.objects.create(
        report_id="JC0000000099",
        state="held",
        problems=[
            {
                "field": "execDeptCode",
                "rule": "mapping.unmapped",
                "message": "院内科室 1501 国际医疗部 未对照标准科室",
            }
        ],
    )
    make_user("ops-dash-exam", role="ops")
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "ops-dash-exam")
    page.fill("#id_password", "pw-for-tests-0")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    assert page.locator(".tile", has_text="影像同步").count() == 1  # the home page tile

    page.goto(live_server.url + "/ops/uploads/")
    panel = page.locator("#exam-dicom-panel #dicom-jobs")
    panel.wait_for()
    text = page.locator("#exam-dicom-panel").inner_text()
    assert "120/200" in text and "38/40" in text and "需人工处理" in text
    assert "1 份检查报告待对照" in text
    page.screenshot(path=str(artifacts_dir / "exam-dashboard-panel.png"), full_page=True)

    page.click("#exam-dicom-panel a.tag.err")
    assert "院内科室 1501 国际医疗部 未对照标准科室" in page.locator("#held-problems").inner_text()
    page.screenshot(path=str(artifacts_dir / "exam-held-reports.png"), full_page=True)

    page.goto(live_server.url + f"/exam/images/{running.pk}/")
    assert (
        "120/200" in page.locator("body").inner_text() and "0x0000" in page.locator("#instances").inner_text()
    )
    page.screenshot(path=str(artifacts_dir / "exam-study-detail.png"), full_page=True)
    page.goto(live_server.url + "/exam/daily/")
    assert page.locator("#rerun button").inner_text() == "生成并上报"
    page.screenshot(path=str(artifacts_dir / "exam-daily.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_study_page_shows_each_instance_that_needs_someone_with_its_reason_and_history(
    live_server, page, make_user, fep, dicom_settings, tmp_path, artifacts_dir
):
    """A study pushed to a real Orthanc with a truncated file, an instance of a SOP class Orthanc
    does not take and one whose file meta names another UID: the page lists the held instances
    first, each with its reason, and the history of the one whose meta disagreed."""
    study = write_ct_study(tmp_path / "incoming" / "PAGE", 5, rows=32, columns=32)
    files = sorted(study.folder.glob("*.dcm"))
    files[1].write_bytes(files[1].read_bytes()[:-500])  # truncated
    refused = dcmread(files[2])
    refused.SOPClassUID = refused.file_meta.MediaStorageSOPClassUID = "1.2.826.0.1.3680043.9.7433.1.1"
    refused.save_as(files[2], enforce_file_format=True)
    other_meta = dcmread(files[3])
    other_meta.file_meta.MediaStorageSOPInstanceUID = meta_uid = generate_uid()
    other_meta.save_as(files[3], enforce_file_format=False)
    job = services.ensure_study_job(study.study_instance_uid, folder=str(study.folder), accession_no="ACC-P")
    job = services.run_study_job(job.pk)
    assert job.state == StudySync.State.ATTENTION and job.stored == 3 and job.rejected == 2

    make_user("ops-study-page", role="ops")
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "ops-study-page")
    page.fill("#id_password", "pw-for-tests-0")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.goto(live_server.url + f"/exam/images/{job.pk}/")
    rows = page.locator("#instances tbody tr")
    assert rows.count() == 5
    first, second = rows.nth(0).inner_text(), rows.nth(1).inner_text()
    assert {"文件无法发送" in first, "文件无法发送" in second} == {True, False}  # the two held ones first
    held = first + second
    assert "不完整" in held and "1.2.826.0.1.3680043.9.7433.1.1" in held and "被拒收" in held
    assert "无法送达（待处理）\t2" in page.locator("h1 + table").inner_text()
    mismatch = page.locator("#instances tr", has_text=meta_uid)
    mismatch.locator("summary").click()
    assert "文件元信息的 SOP Instance UID" in mismatch.inner_text() and "已送达" in mismatch.inner_text()
    page.screenshot(path=str(artifacts_dir / "exam-study-held-instances.png"), full_page=True)
