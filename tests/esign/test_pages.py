"""The pages in headless Chromium against the live server, the CA simulator and UKey agents."""

import http.server
import re
import threading

import pytest

from esign import services
from esign.demo import create_sample_reports
from esign.models import ReportSignature, SignerProfile, SigningSession

from .conftest import PIN, agent_call, fresh_staff_no, valid_id_number

pytestmark = pytest.mark.browser


def login(page, base, username):
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests-0")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def new_workstation(browser):
    return browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()


def ukey_login(page, base, pin=PIN):
    page.goto(base + "/esign/ukey/")
    page.wait_for_selector(".cert-option")
    page.fill("#ukey-pin", pin)
    page.click("#ukey-submit")


def test_ukey_login_pin_workstations_and_logout(
    live_server, browser, page, ca_on, page_identities, signer, artifacts_dir
):
    alice = page_identities["alice"]
    signer("alice", alice, first_name="王审核")
    services.set_parameters({"UKEY_AGENT_URL": alice.agent_url})
    base = live_server.url
    login(page, base, "alice")
    page.goto(base + "/esign/ukey/")
    option = page.wait_for_selector(".cert-option")
    assert alice.ukey_cert_sn in option.inner_text() and alice.name in option.inner_text()
    assert alice.ukey_serial in page.inner_text("#agent-state")
    page.screenshot(path=str(artifacts_dir / "esign-ukey-login.png"), full_page=True)
    # wrong PIN: the UKey refuses, nothing is opened
    page.fill("#ukey-pin", "999999")
    page.click("#ukey-submit")
    page.wait_for_selector("#ukey-message.err")
    assert "PIN 码错误" in page.inner_text("#ukey-message")
    assert not SigningSession.objects.exists()
    # right PIN
    page.fill("#ukey-pin", PIN)
    page.click("#ukey-submit")
    page.wait_for_url(base + "/esign/")
    assert "UKey 已登录" in page.inner_text("#session-state")
    assert "UKey 电子签名登录成功" in page.inner_text(".messages")
    # a second management workstation is refused while the first holds the UKey session
    other = new_workstation(browser)
    login(other, base, "alice")
    ukey_login(other, base)
    other.wait_for_selector("#ukey-message.err")
    assert "只能在一台管理机上使用" in other.inner_text("#ukey-message")
    assert SigningSession.objects.filter(ended_at__isnull=True).count() == 1
    # 退出电子签名 on the first, then the second may log in
    with page.expect_navigation():
        page.click("#logout-here")
    assert "已退出电子签名" in page.inner_text(".messages")
    assert "未登录" in page.inner_text("#session-state")
    ukey_login(other, base)
    other.wait_for_url(base + "/esign/")
    assert "UKey 已登录" in other.inner_text("#session-state")
    other.context.close()


def test_ukey_of_another_person_is_refused(live_server, page, ca_on, page_identities, signer):
    signer("alice", page_identities["alice"])
    signer("bob", page_identities["bob"])
    services.set_parameters({"UKEY_AGENT_URL": page_identities["alice"].agent_url})  # bob uses alice's key
    login(page, live_server.url, "bob")
    ukey_login(page, live_server.url)
    page.wait_for_selector("#ukey-message.err")
    message = page.inner_text("#ukey-message")
    assert "已绑定给 王审核" in message and "不能用于当前账号" in message
    assert not SigningSession.objects.exists()


def test_qr_login_confirmed_in_the_app_then_logout(
    live_server, page, ca_on, page_identities, signer, artifacts_dir
):
    bob = page_identities["bob"]
    signer("bob", bob)
    base = live_server.url
    login(page, base, "bob")
    page.goto(base + "/esign/qr/")
    page.wait_for_selector(".qr-box svg")
    assert "等待" in page.inner_text("#qr-state") or "扫描" in page.inner_text("#qr-state")
    page.screenshot(path=str(artifacts_dir / "esign-qr-login.png"), full_page=True)
    ca_on.scan(page.input_value("#qr-content"), bob.staff_no)
    page.wait_for_url(base + "/esign/")
    assert "二维码 已登录" in page.inner_text("#session-state")
    session = SigningSession.objects.get(ended_at__isnull=True)
    assert session.kind == "qr" and session.cert_sn == bob.cert_sn
    with page.expect_navigation():
        page.click("#esign-logout")
    assert "已退出电子签名" in page.inner_text(".messages")
    session.refresh_from_db()
    assert session.ended_at is not None


def test_registration_refuses_a_bad_id_number(live_server, page, ca_on, make_user):
    make_user("carol", role="lab")
    base = live_server.url
    login(page, base, "carol")
    page.goto(base + "/esign/register/")
    staff_no = fresh_staff_no()
    page.fill("#id_staff_no", staff_no)
    page.fill("#id_name", "陈注册")
    good = valid_id_number()
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    page.fill("#id_id_number", bad)
    page.click("#register-submit")
    error = page.wait_for_selector(".field-error[data-field=id_number]")
    assert "身份证号校验位不正确" in error.inner_text()
    assert page.input_value("#id_staff_no") == staff_no  # what was typed is kept
    assert not SignerProfile.objects.exists()
    page.fill("#id_id_number", good)
    with page.expect_navigation():
        page.click("#register-submit")
    page.wait_for_selector("#registered")
    assert "注册用户成功" in page.inner_text(".messages")
    assert SignerProfile.objects.get(staff_no=staff_no).registered
    page.fill("#id_mobile", "13912345678")
    with page.expect_navigation():
        page.click("#mobile-submit")
    assert "修改手机号成功" in page.inner_text(".messages")


def test_ukey_signing_on_a_review_page(live_server, page, ca_on, page_identities, signer, artifacts_dir):
    alice = page_identities["alice"]
    signer("alice", alice, first_name="王审核")
    services.set_parameters({"UKEY_AGENT_URL": alice.agent_url})
    reports = create_sample_reports(3, modules=["clinical"])
    base = live_server.url
    login(page, base, "alice")
    ukey_login(page, base)
    page.wait_for_url(base + "/esign/")
    page.goto(base + "/esign/review/clinical/")
    assert "UKey 已登录" in page.inner_text("#session-state")
    assert page.locator("#pending tbody tr").count() == 3
    page.screenshot(path=str(artifacts_dir / "esign-review-module.png"), full_page=True)
    page.click(f"text={reports[0].report_id}")
    page.wait_for_selector("#approve[data-mode=ukey]")
    page.screenshot(path=str(artifacts_dir / "esign-report-detail.png"), full_page=True)
    # the UKey login's PIN does not sign: 审核并签名 asks for the PIN of this signing
    page.click("#approve")
    page.wait_for_selector("#approve-state.err")
    assert "请输入证书密码（PIN 码）" in page.inner_text("#approve-state")
    page.fill("#approve-pin", "999999")
    page.click("#approve")
    page.wait_for_selector("#approve-state.err >> text=PIN 码错误")
    assert not ReportSignature.objects.filter(report=reports[0]).exists()
    page.fill("#approve-pin", PIN)
    page.click("#approve")
    page.wait_for_url(re.compile(r".*/esign/review/clinical/$"))
    assert "已审核并完成 UKey 电子签名" in page.inner_text(".messages")
    sig = ReportSignature.objects.get(report=reports[0])
    assert services.verify_signature(sig).valid and sig.cert_sn == alice.ukey_cert_sn
    page.goto(f"{base}/esign/reports/{reports[0].pk}/")
    page.click("#verify-link")
    assert "签名有效" in page.inner_text("#verify-result")
    page.screenshot(path=str(artifacts_dir / "esign-verify.png"), full_page=True)


class _PlainPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>foreign</title><p>another origin</p>")

    def log_message(self, *args):
        pass


def test_a_page_from_another_origin_can_neither_read_nor_use_the_ukey(
    live_server, page, ca_on, page_identities, signer
):
    """The agent allows the server's origin (``http://localhost:PORT``); a plain page on another
    loopback port is another origin, as any foreign page on this workstation would be. (Not this
    site's own pages reached as 127.0.0.1: their Content-Security-Policy connect-src already stops the
    fetches in the browser, and the agent's own origin check is what is tested here.)"""
    alice = page_identities["alice"]
    signer("alice", alice)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PlainPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
    outcome = page.evaluate(
        """async ([agent, certSn, pin]) => {
        const read = async (init, path) => {
            try { const r = await fetch(agent + path, init); return {status: r.status, body: await r.text()}; }
            catch (e) { return {blocked: true}; }
        };
        const json = {method: "POST", headers: {"Content-Type": "application/json"}};
        const signed = await read({...json, body: JSON.stringify({certSn, pin, items: ["5Y+C6ICD"]})}, "/api/v1/sign");
        const status = await read({}, "/api/v1/status");
        // fire-and-forget wrong PINs, as a page trying to lock the key would send them (no preflight)
        for (let n = 0; n < 6; n++) {
            await fetch(agent + "/api/v1/login", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                                  body: JSON.stringify({certSn, pin: "000000"})});
        }
        return {signed, status};
    }""",
        [alice.agent_url, alice.ukey_cert_sn, PIN],
    )
    assert outcome == {"signed": {"blocked": True}, "status": {"blocked": True}}
    state = agent_call(alice, "/api/v1/status")
    assert state["retriesLeft"] == 6 and not state["locked"]
    server.shutdown()
