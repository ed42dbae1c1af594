"""Issue 18: QR push-signing finished from the demo phone page, in headless Chromium.

A lab user logs in by QR (the code confirmed on the CA simulator's phone page, as the demo does),
approves a report without an auto-sign grant, so the CA pushes a sign job to the phone; the phone
page lists the user's pending requests with the text to sign, 确认签名 there finishes the signing
(the review page's poll takes the user back to the module with the report signed), and 拒绝 on a
second one leaves that report waiting for review.
"""

import pytest
from playwright.sync_api import expect

from esign import services
from esign.demo import create_sample_reports
from esign.models import ReportSignature, ReviewReport

from .conftest import new_identity
from .test_pages import login

pytestmark = pytest.mark.browser


def phone_page(browser):
    return browser.new_context(locale="zh-CN", viewport={"width": 412, "height": 900}).new_page()


def test_push_signing_is_confirmed_and_refused_on_the_phone_page(
    live_server, browser, page, ca_on, signer, artifacts_dir
):
    ident = new_identity(ca_on, "赵推送")
    user = signer("zhao", ident, first_name="赵推送")
    first, second = create_sample_reports(2, modules=["immuno"])
    base = live_server.url
    phone = phone_page(browser)

    # QR login, the code confirmed on the phone page
    login(page, base, "zhao")
    page.goto(base + "/esign/qr/")
    page.wait_for_selector(".qr-box svg")
    phone.goto(page.input_value("#qr-content"))
    phone.locator("#scan input[name=staffNo]").fill(ident.staff_no)
    phone.locator("#scan button[value=confirm]").click()
    expect(phone.locator("#app-message")).to_have_text("已确认扫码登录。")
    page.wait_for_url(base + "/esign/")
    assert not services.auto_sign_status(user).is_open

    # 审核并签名 without a grant: the CA pushes the job to the phone, the report waits
    page.goto(f"{base}/esign/reports/{first.pk}/")
    with page.expect_navigation():
        page.click("#approve")
    expect(page.locator("#approve-state")).to_contain_text("等待手机确认签名")
    assert ReviewReport.objects.get(pk=first.pk).status == "signing"

    # the phone page lists it, with the text to be signed
    phone.goto(ca_on.url + "/app/")
    expect(phone.locator("#push-jobs")).not_to_contain_text("没有待确认")
    phone.fill("#push-staff", ident.staff_no)
    phone.click("#push-refresh")
    job = phone.locator("article.job")
    expect(job).to_have_count(1)
    expect(job.locator(".title")).to_have_text(f"免疫报告审核 {first.report_id}")
    expect(job.locator(".biz")).to_have_text(first.report_id)
    job.locator("summary").click()
    expect(job.locator("pre.data")).to_contain_text("癌胚抗原")
    phone.screenshot(path=str(artifacts_dir / "ca-phone-push-sign.png"), full_page=True)
    job.locator("button.confirm").click()
    expect(phone.locator("#app-message")).to_have_text(f"已确认签名请求「免疫报告审核 {first.report_id}」。")
    expect(phone.locator("#no-jobs")).to_have_text("没有待确认的签名请求。")

    # the review page's poll finishes the signing and goes back to the module
    page.wait_for_url(base + "/esign/review/immuno/")
    expect(page.locator(".messages")).to_contain_text(f"报告 {first.report_id} 已审核并完成手机确认签名")
    signature = ReportSignature.objects.get(report=first)
    assert (signature.method, signature.cert_sn) == ("phone", ident.cert_sn)
    assert services.verify_signature(signature).valid
    assert ReviewReport.objects.get(pk=first.pk).status == "approved"

    # refused on the phone: the report is back in the queue, unsigned
    page.goto(f"{base}/esign/reports/{second.pk}/")
    with page.expect_navigation():
        page.click("#approve")
    phone.goto(f"{ca_on.url}/app/?staffNo={ident.staff_no}")
    job = phone.locator(f"article.job:has-text('{second.report_id}')")
    job.locator("button.refuse").click()
    expect(phone.locator("#app-message")).to_have_text(f"已拒绝签名请求「免疫报告审核 {second.report_id}」。")
    page.wait_for_url(base + "/esign/review/immuno/")
    expect(page.locator(".messages")).to_contain_text("协同签名 APP 拒绝签名")
    assert ReviewReport.objects.get(pk=second.pk).status == "pending"
    assert not ReportSignature.objects.filter(report=second).exists()

    # a job already answered cannot be answered again from a stale page
    phone.go_back()
    phone.locator(f"article.job:has-text('{second.report_id}') button.confirm").click()
    expect(phone.locator("#app-message")).to_have_text("失败：该签名任务已拒绝")
    phone.context.close()
