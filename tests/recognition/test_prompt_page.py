"""The embedded prompt page in real Chromium: opened from a signed link inside an HIS page on
another origin, external reports viewed, decisions made and saved, the HIS told by postMessage."""

import http.server
import json
import threading
import time

import pytest
from django.urls import reverse

from hospital_interop.uploads.models import OutboxRecord
from mutual_recognition import links
from mutual_recognition.models import AuditEntry, Decision

from .conftest import ITEMS, TOKEN, drain_outbox, prompt_body

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOST_PAGE = """<!doctype html><meta charset="utf-8"><title>HIS 医生站</title>
<h3>医生站开单</h3><iframe id="f" src="%s" style="width:1240px;height:1500px;border:0"></iframe>
<script>window.msgs=[];window.addEventListener("message",function(e){window.msgs.push({origin:e.origin,data:e.data});});</script>"""


class HisServer:
    """A stand-in HIS doctor workstation on its own origin (loopback): one page embedding the prompt."""

    def __init__(self):
        self.html = b""
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(outer.html)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def his():
    server = HisServer()
    yield server
    server.server.shutdown()


@pytest.fixture
def his_origin(his):
    return his.origin


@pytest.fixture
def prompt_url(client, recognition, patient, settings, live_server, his_origin):
    settings.RECOGNITION_FRAME_ANCESTORS = his_origin
    answer = client.post(
        reverse("recognition:api-prompt"),
        json.dumps(prompt_body(patient, ITEMS)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    ).json()
    return answer["promptUrl"].replace("http://testserver", live_server.url)


def open_in_his(page, url, his):
    his.html = (HOST_PAGE % url).encode()
    page.goto(his.origin + "/his/order")
    frame = page.frame_locator("#f")
    frame.locator(".pcard").first.wait_for()
    return frame


def card(frame, order_id):
    return frame.locator(f'.pcard[data-order="{order_id}"]')


def test_doctor_views_reports_decides_and_saves(
    page, prompt_url, his, recognition, live_server, artifacts_dir
):
    urls = []  # every URL the browser requests, to check that the page token is in none of them
    page.context.on("request", lambda r: urls.append(r.url))
    frame = open_in_his(page, prompt_url, his)
    token = frame.locator("#prompt").get_attribute("data-ctx")
    assert frame.locator(".pbar-patient strong").inner_text() == "张伟"
    assert card(frame, "YZ005").count() == 0  # lumbar MR: nothing to recognise, listed as ordered as usual
    assert "腰椎MR平扫" in frame.locator(".plain-list").inner_text()

    # The external lab report as PDF (3.5): fetched with the page token in the POST body, shown in a
    # new tab from a blob URL, the view audited.
    with (
        page.context.expect_page() as pdf_tab,
        page.context.expect_event("response", lambda r: "/embed/lab-pdf" in r.url) as pdf,
    ):
        card(frame, "YZ003").locator(".pdf-link").first.click()
    request = pdf.value.request
    assert request.method == "POST" and request.url == live_server.url + reverse("recognition:embed-lab-pdf")
    assert json.loads(request.post_data)["ctx"] == token
    assert pdf.value.status == 200 and pdf.value.headers["content-type"] == "application/pdf"
    tab = pdf_tab.value
    tab.wait_for_url(lambda url: url.startswith("blob:" + live_server.url))
    assert tab.evaluate("document.contentType") == "application/pdf"  # Chromium's PDF viewer shows it
    head = tab.evaluate(
        "fetch(location.href).then(r => r.arrayBuffer())"
        ".then(b => [new TextDecoder().decode(new Uint8Array(b).slice(0, 5)), b.byteLength])"
    )
    assert head[0] == "%PDF-" and head[1] == int(pdf.value.headers["content-length"]) > 1000
    tab.screenshot(path=str(artifacts_dir / "recognition-lab-pdf-tab.png"))
    tab.close()
    view = AuditEntry.objects.get(action="view_report", kind="lab")
    assert (
        view.visit_id == frame.locator("#prompt").get_attribute("data-visit")
        and view.doctor_staff_no == "D1001"
    )
    # The external exam report and images through the platform viewer (browse signature 2.4).
    with (
        page.context.expect_page() as viewer,
        page.context.expect_event("response", lambda r: "/embed/exam-view" in r.url) as exam,
    ):
        card(frame, "YZ001").locator(".report-link").click()
    assert exam.value.request.method == "POST" and json.loads(exam.value.request.post_data)["ctx"] == token
    viewer.value.wait_for_url(recognition.url + "/viewer/report?**")
    viewer.value.wait_for_load_state()
    assert "胸部CT平扫" in viewer.value.content() and "影像" in viewer.value.content()
    viewer.value.close()
    assert not [u for u in urls if "ctx=" in u or token.rsplit(":", 1)[1] in u]

    # 1 exam recognised, 1 exam refused with a reason, a panel partially recognised.
    card(frame, "YZ001").locator(".seg-yes").click()
    us = card(frame, "YZ002")
    us.locator(".seg-no").click()
    us.locator(".reason").select_option("3")
    liver = card(frame, "YZ003")
    liver.locator('tr[data-std="JY0021"] .seg-yes').click()
    liver.locator('tr[data-std="JY0022"] .seg-yes').click()
    liver.locator('tr[data-std="JY0023"] .seg-no').click()
    liver.locator('tr[data-std="JY0023"] .reason').select_option("2")
    liver.locator('tr[data-std="JY0024"] .seg-no').click()  # takes the reason chosen in the same card
    assert liver.locator('tr[data-std="JY0024"] .reason').input_value() == "2"
    save = frame.locator("#save")
    assert save.is_disabled()  # the blood count is still undecided
    card(frame, "YZ004").locator(".card-yes").click()
    assert save.is_enabled()
    assert "未选择" not in frame.locator("#counts").inner_text()
    page.screenshot(path=str(artifacts_dir / "recognition-prompt-in-his.png"), full_page=True)

    save.click()
    frame.locator("#done").wait_for()
    done = frame.locator("#done-list").inner_text()
    assert "肝功能：部分互认（丙氨酸氨基转移酶、天门冬氨酸氨基转移酶），仍需开立 总胆红素、白蛋白" in done
    deadline = time.time() + 10
    while not page.evaluate("window.msgs.filter(m => m.data.type === 'hr-recognition:saved').length"):
        assert time.time() < deadline, "no postMessage reached the HIS page"
        page.wait_for_timeout(100)
    msg = page.evaluate("window.msgs.filter(m => m.data.type === 'hr-recognition:saved')[0]")
    assert msg["origin"] == prompt_url.split("/recognition/")[0]
    actions = {o["orderId"]: o["action"] for o in msg["data"]["orders"]}
    assert actions == {
        "YZ001": "cancel",
        "YZ002": "keep",
        "YZ003": "reduce",
        "YZ004": "reduce",
        "YZ005": "keep",
    }

    current = {d.standard_code: d for d in Decision.objects.filter(current=True)}
    assert {c: d.decision for c, d in current.items()} == {
        "JC0012": "1",
        "JC0301": "2",
        "JY0021": "1",
        "JY0022": "1",
        "JY0023": "2",
        "JY0024": "2",
        "JY0001": "1",
        "JY0002": "1",
        "JY0003": "1",
        "JY0004": "1",
    }
    assert current["JC0301"].platform_reason_code == "3" and current["JY0024"].platform_reason_code == "2"
    assert AuditEntry.objects.filter(action="view_report", kind="lab").count() == 1
    assert (
        AuditEntry.objects.filter(
            action="view_images", kind="exam", report_id=current["JC0012"].external_report_id
        ).count()
        == 1
    )

    assert drain_outbox() == 10
    assert set(OutboxRecord.objects.values_list("state", flat=True)) == {"done"}
    exam = {
        r["payload"]["recognitionItemCode"]: r["payload"]["decisionCode"]
        for r in recognition.records("EXAM_RECOGNITION_SUBMIT")
    }
    lab = {
        r["payload"]["itemCode"]: r["payload"].get("refusalReasonCode", r["payload"]["decisionCode"])
        for r in recognition.records("LAB_RECOGNITION_FEEDBACK")
    }
    assert exam == {"JC0012": "1", "JC0301": "2"}
    assert lab == {
        "JY0021": "1",
        "JY0022": "1",
        "JY0023": "2",
        "JY0024": "2",
        "JY0001": "1",
        "JY0002": "1",
        "JY0003": "1",
        "JY0004": "1",
    }


def test_prompt_page_screenshot(page, prompt_url, artifacts_dir):
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.goto(prompt_url)
    page.locator('.pcard[data-order="YZ003"] tr[data-std="JY0021"] .seg-yes').click()
    page.locator('.pcard[data-order="YZ003"] tr[data-std="JY0023"] .seg-no').click()
    page.screenshot(path=str(artifacts_dir / "recognition-prompt.png"), full_page=True)


def test_expired_and_tampered_links_are_refused(page, prompt_url, live_server, patient):
    tampered = prompt_url.replace("CT0012", "CT0013")
    page.goto(tampered)
    assert "无效或已被修改" in page.locator(".refused-msg").inner_text()
    items = [links.OrderedItem("exam", "CT0012", "", "YZ001")]
    expired = (
        live_server.url
        + reverse("recognition:embed")
        + "?"
        + links.make_query(
            patient_id=patient["patientId"],
            visit_id=patient["visitId"],
            doctor="D1001",
            dept="1001",
            items=items,
            now=time.time() - 3600,
            lifetime=600,
        )
    )
    response = page.goto(expired)
    assert response.status == 403
    assert "已过期" in page.locator(".refused-msg").inner_text()


def test_a_report_the_platform_cannot_provide_is_explained_on_the_page(page, prompt_url, his, recognition):
    frame = open_in_his(page, prompt_url, his)
    recognition.set_faults(http_5xx=1.0, services=["LAB_REPORT_PDF_PREVIEW"])
    with (
        page.context.expect_page() as tab,
        page.context.expect_event("response", lambda r: "/embed/lab-pdf" in r.url) as pdf,
    ):
        card(frame, "YZ003").locator(".pdf-link").first.click()
    assert pdf.value.status == 502
    frame.locator("#errors", has_text="市平台暂时无法提供该报告").wait_for()
    if not tab.value.is_closed():  # the tab opened for the report is closed again
        tab.value.wait_for_event("close")
    assert card(frame, "YZ003").locator(".pdf-link").first.is_enabled()
    assert not AuditEntry.objects.filter(action="view_report").exists()


def test_the_demo_his_page_embeds_the_prompt_and_opens_a_report(
    page, client, live_server, recognition, patient, make_user
):
    client.force_login(make_user("demo-doctor", role="clinician"))
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto(live_server.url + reverse("recognition:demo-his"))
    page.fill("#p-name", patient["name"])
    page.fill("#p-id", patient["idNo"])
    page.select_option("#p-doctor", "D1001")
    page.select_option("#p-exam", ["CT0012"])
    page.select_option("#p-lab", ["GGN"])
    page.click("#order")
    frame = page.frame_locator("#frame")
    frame.locator(".pcard").first.wait_for()
    with (
        page.context.expect_page() as tab,
        page.context.expect_event("response", lambda r: "/embed/lab-pdf" in r.url) as pdf,
    ):
        frame.locator(".pdf-link").first.click()
    assert pdf.value.status == 200 and pdf.value.request.method == "POST"
    tab.value.wait_for_url(lambda url: url.startswith("blob:"))
    assert AuditEntry.objects.filter(action="view_report", kind="lab", doctor_staff_no="D1001").count() == 1
