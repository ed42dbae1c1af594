"""Issue 18: 开启自动签名, confirmed on the phone, then 批量审核 signs the selected reports — in
headless Chromium. The grant's page is reached by post/redirect/get, and the page the poll opens
once the grant is confirmed is a GET: nothing posts 开启自动签名 a second time (which replaced the
confirmed grant with a new unconfirmed one, so that 批量审核 always refused)."""

import pytest

from esign import services
from esign.demo import create_sample_reports
from esign.models import ReportSignature, ReviewReport

from .test_pages import login

pytestmark = pytest.mark.browser


def test_auto_sign_on_then_batch_approval_signs_the_selected_reports(
    live_server, page, ca_on, page_identities, signer, artifacts_dir
):
    bob = page_identities["bob"]
    user = signer("bob", bob, first_name="李签名")
    reports = create_sample_reports(3, modules=["immuno"])
    base = live_server.url
    login(page, base, "bob")
    page.goto(base + "/esign/qr/")
    page.wait_for_selector(".qr-box svg")
    ca_on.scan(page.input_value("#qr-content"), bob.staff_no)
    page.wait_for_url(base + "/esign/")

    page.goto(base + "/esign/autosign/")
    page.select_option("#id_minutes", "60")
    with page.expect_navigation():
        page.click("#autosign-enable")
    assert page.url == base + "/esign/autosign/"  # redirected: the QR page is a GET
    page.wait_for_selector(".qr-box svg")
    first_grant = page.input_value("#qr-content")
    page.reload()  # reloading the QR page shows the same grant, posts nothing
    page.wait_for_selector(".qr-box svg")
    assert page.input_value("#qr-content") == first_grant
    ca_on.scan(first_grant, bob.staff_no)
    page.wait_for_selector("#autosign-disable")  # the poll opened the page again, by GET
    assert "自动签名已开启" in page.inner_text("#autosign-panel")
    assert services.auto_sign_status(user).is_open
    page.screenshot(path=str(artifacts_dir / "esign-autosign-open.png"), full_page=True)

    page.goto(base + "/esign/review/immuno/")
    for r in reports[:2]:
        page.check(f"input[name=report][value='{r.pk}']")
    with page.expect_navigation():
        page.click("#batch-approve")
    assert "批量审核 2 份报告并完成自动签名" in page.inner_text(".messages")
    signed = ReportSignature.objects.filter(report__in=reports[:2])
    assert signed.count() == 2 and set(signed.values_list("method", flat=True)) == {"auto"}
    assert all(services.verify_signature(s).valid for s in signed)
    assert ReviewReport.objects.get(pk=reports[2].pk).status == "pending"  # not selected
    assert page.locator("#pending tbody input[name=report]").count() == 1
