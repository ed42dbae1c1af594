"""Issue 16, LIS review → signature → upload, end to end with real processes: the platform
simulator, the CA simulator, a software UKey agent, a Celery worker and the ``manage.py
lab_transfer`` watcher. The LIS posts a report for review and makes no other call; it appears in
its module's queue, the named reviewer signs it with the UKey on the review page, and the
simulator then holds 3.3 + 3.4 and the two public interfaces for that version, the PDF carrying
that signature. The same through the embedded signing page, driven by Chromium inside a LIS page
of another origin, which receives signature, certificate and timestamp by postMessage."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from esign import services as esign
from esign.models import ReportSignature, ReviewReport
from hospital_interop.municipal.gm import sm3_hex
from mutual_recognition.lab.models import LabReportVersion, LabTransfer
from tests.delivery_fixtures import wait_until
from tests.esign.conftest import agent_sign, identities, page_identities  # noqa: F401  (UKey agents)
from tests.esign.helpers import browser_client, ukey_session
from tests.lab.conftest import lis_report, post_json
from tests.lab.test_kill import start_transfer
from tests.lab.test_signed_versions import pdf_text

ORG = "12110000400000000X"
INTERFACES = ("LAB_REPORT_DETAIL", "LAB_REPORT_PDF", "PUB_LAB_REPORT_DETAIL", "PUB_LAB_REPORT_PDF")


def held_by_platform(sim, report_id: str, version: int) -> dict | None:
    """The four records of the report when the simulator holds all four at ``version``."""
    got = {code: sim.record(code, f"{ORG}|{report_id}") for code in INTERFACES}
    return got if all(r is not None and r["version"] == version for r in got.values()) else None


def assert_signed_upload(sim, held: dict, sig: ReportSignature, tmp_path) -> None:
    """The PDF the platform holds is the archived one, carrying exactly this signature."""
    version = LabReportVersion.objects.get(report__report_id=sig.report_number, version=sig.report_version)
    pdf = base64.b64decode(held["LAB_REPORT_PDF"]["payload"]["fileContent"])
    assert sm3_hex(pdf) == version.pdf_sm3 == held["LAB_REPORT_PDF"]["payload"]["fileHash"]
    assert held["PUB_LAB_REPORT_PDF"]["payload"]["fileHash"] == version.pdf_sm3
    assert version.signed is True
    text = pdf_text(pdf, tmp_path)
    assert sig.cert_sn in text and sig.original_hash in text and sig.signer_name in text
    assert "含可信时间戳" in text
    detail = held["LAB_REPORT_DETAIL"]["payload"]
    assert detail["reportId"] == sig.report_number
    assert {i["itemCode"]: i["resultValue"] for i in detail["items"]}["HGB"] == "118"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_lis_report_signed_on_the_review_page_reaches_the_platform_with_no_other_call(
    client,
    lis,
    lab_dicts,
    folders,
    sim,
    processes,
    ca_on,
    identities,  # noqa: F811
    signer,
    tmp_path,
):
    alice = identities["alice"]
    user = signer("alice-e2e", alice)
    processes.worker()
    start_transfer(processes, sim, folders)

    body = lis_report(95, name="张建华", reviewDoctor={"staffNo": alice.staff_no, "name": alice.name})
    body.update(module="biochem", version=1, reviewers=[{"staffNo": alice.staff_no, "name": alice.name}])
    rid = body["reportId"]
    r = post_json(client, "/api/lab/v1/reviews", body, lis)  # the LIS's only call
    assert r.status_code == 201, r.content

    # in the module's queue, for the reviewer it names
    ukey_session(user, alice)
    reviewer = browser_client(client, user)
    review = ReviewReport.objects.get(report_id=rid, report_version=1)
    assert f'data-report="{rid}"' in reviewer.get("/esign/review/biochem/").content.decode()

    # 审核并签名 with the software UKey, as the review page's script does it
    prepared = reviewer.post(f"/esign/reports/{review.pk}/sign-data").json()
    assert prepared["ok"], prepared
    signed = agent_sign(alice, prepared["data"], cert_sn=prepared["certSn"])
    answer = reviewer.post(
        f"/esign/reports/{review.pk}/approve",
        json.dumps({"signature": signed["signature"], "certificate": signed["certificate"]}),
        content_type="application/json",
    ).json()
    assert answer["ok"] and answer["outcome"] == "signed", answer
    sig = ReportSignature.objects.get(report=review)
    assert sig.method == "ukey" and sig.cert_sn == alice.ukey_cert_sn and esign.verify_signature(sig).valid

    # the transfer watcher and the worker do the rest
    held = wait_until(lambda: held_by_platform(sim, rid, 1), 90, interval=0.5, message="four uploads held")
    assert_signed_upload(sim, held, sig, tmp_path)
    wait_until(
        lambda: LabTransfer.objects.filter(report_id=rid, state=LabTransfer.State.CLEARED).exists(),
        60,
        message="pair cleared",
    )
    status = client.get(f"/api/lab/v1/reviews/{rid}/1", **lis).json()
    assert status["reviewStatus"] == "approved" and status["signature"]["signatureValue"] == sig.signature
    assert status["upload"]["transfers"][0]["state"] == "cleared"


LIS_SCREEN = """<!doctype html><html><head><meta charset="utf-8"><title>LIS 审核</title></head><body>
<h1>LIS 报告审核</h1><iframe id="sign" src="%(src)s" style="width:1000px;height:700px"></iframe>
<pre id="got" style="white-space:pre-wrap;word-break:break-all;max-height:120px;overflow:auto"></pre>
<script>
window.got = null;
window.addEventListener("message", function (e) {
  if (e.origin !== "%(server)s") return;
  window.got = e.data;
  document.getElementById("got").textContent = JSON.stringify(e.data);
});
</script></body></html>"""


@pytest.fixture
def lis_screen():
    """The LIS's own review screen: a web server of its own on the hospital network (another
    origin than this server), serving the page ``set(html)`` gives it."""
    screen = {"html": ""}

    class Screen(BaseHTTPRequestHandler):
        def do_GET(self):
            body = screen["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Screen)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield type(
        "LisScreen",
        (),
        {
            "origin": f"http://127.0.0.1:{server.server_port}",
            "set": staticmethod(lambda h: screen.update(html=h)),
        },
    )
    server.shutdown()
    server.server_close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_lis_report_signed_on_the_embedded_page_reaches_the_platform(
    live_server,
    page,
    client,
    lis,
    lab_dicts,
    folders,
    service,
    sim,
    inline_delivery,
    ca_on,
    page_identities,  # noqa: F811
    signer,
    tmp_path,
    artifacts_dir,
    lis_screen,
):
    lis_origin = lis_screen.origin
    alice = page_identities["alice"]
    signer("alice-embed", alice)
    esign.set_parameters({"UKEY_AGENT_URL": alice.agent_url, "LIS_SIGN_ORIGINS": lis_origin})
    body = lis_report(96, name="李秀英", reviewDoctor={"staffNo": alice.staff_no, "name": alice.name})
    body.update(module="临检")
    rid = body["reportId"]
    assert post_json(client, "/api/lab/v1/reviews", body, lis).status_code == 201

    # the LIS asks for the signing page of version 1, for its own screen's origin only
    refused = post_json(
        client, f"/api/lab/v1/reviews/{rid}/1/signing-link", {"origin": "https://evil.example"}, lis
    )
    assert refused.status_code == 400 and refused.json()["errors"][0]["rule"] == "notAllowed"
    link = post_json(client, f"/api/lab/v1/reviews/{rid}/1/signing-link", {"origin": lis_origin}, lis)
    assert link.status_code == 201, link.content
    url = link.json()["url"]
    assert rid not in url and "李秀英" not in url  # no patient or report facts in the link
    framed = client.get(url)
    assert framed["Content-Security-Policy"] == f"frame-ancestors 'self' {lis_origin}"
    assert "X-Frame-Options" not in framed
    assert client.get(url[:-3] + "xx/").status_code == 403  # a tampered token opens nothing

    # the LIS screen (another origin) embeds the page; the reviewer signs with the UKey in it
    screen = LIS_SCREEN % {"src": live_server.url + url, "server": live_server.url}
    lis_screen.set(screen)
    page.goto(f"{lis_origin}/review")
    frame = page.frame_locator("#sign")
    frame.locator("#embed-pin:not([disabled])").wait_for()
    assert alice.name in frame.locator("#named-reviewer").inner_text()
    frame.locator("#embed-pin").fill("000000")
    frame.locator("#embed-sign").click()
    frame.locator("#embed-state.err").wait_for()
    assert "PIN" in frame.locator("#embed-state").inner_text()
    assert not ReportSignature.objects.exists()
    frame.locator("#embed-pin").fill("246810")
    frame.locator("#embed-sign").click()
    page.wait_for_function("window.got && window.got.type === 'esign.signed'")
    page.screenshot(path=str(artifacts_dir / "esign-embedded-signing.png"), full_page=True)
    got = page.evaluate("window.got")

    sig = ReportSignature.objects.get(report__report_id=rid)  # the same stored signature as the review pages
    assert got["reportId"] == rid and got["version"] == 1
    assert (
        got["signature"]["signatureValue"] == sig.signature
        and got["signature"]["certificate"] == sig.certificate
    )
    assert got["signature"]["certSerial"] == alice.ukey_cert_sn == sig.cert_sn
    assert got["signature"]["timestampToken"] == sig.timestamp_token and got["signature"]["timestampTime"]
    assert sig.method == "ukey" and esign.verify_signature(sig).valid
    polled = client.get(f"/api/lab/v1/reviews/{rid}/1", **lis).json()
    assert polled["signature"] == got["signature"] and polled["reviewStatus"] == "approved"

    # archived on approval; the transfer service's pass and the worker's delivery, no LIS call
    assert service.run_once().enqueued == 1
    inline_delivery()
    held = held_by_platform(sim, rid, 1)
    assert held is not None
    assert_signed_upload(sim, held, sig, tmp_path)
