"""Swagger UI in a real browser, offline (assets from drf-spectacular-sidecar): an integrator logs
in, opens the integration page, follows a record type's Swagger link and sees its fields with
their Chinese descriptions."""

import pytest


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_integrator_reaches_a_record_types_fields_in_swagger(live_server, page, make_user, artifacts_dir):
    make_user("integrator2", role="ops")  # the integration pages are ops' and the admin's
    page.goto(live_server.url + "/accounts/login/?next=/emr/integration/")
    page.fill("#id_username", "integrator2")
    page.fill("#id_password", "pw-for-tests-0")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/emr/integration/")
    assert "电子病历共享 · 数据接入" in page.locator("h1").inner_text()
    page.screenshot(path=str(artifacts_dir / "emr-integration.png"), full_page=True)
    row = page.locator("tr", has_text="op-registration")
    row.get_by_role("link", name="Swagger").click()
    page.wait_for_selector(".swagger-ui .info .title", timeout=30000)
    assert "电子病历共享 · 数据接入 API" in page.locator(".swagger-ui .info .title").inner_text()
    operation = page.locator("#operations-门（急）诊病历-op_registration_create")
    operation.wait_for(timeout=30000)
    if not operation.locator(".opblock-body").count():  # the deep link opens it; click if it did not
        operation.locator(".opblock-summary").click()
    request_body = operation.locator(".opblock-section-request-body")
    request_body.get_by_text("Schema", exact=True).first.click()
    request_body.locator(".model-box").first.wait_for(timeout=30000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts_dir / "emr-swagger.png"), full_page=False)
    body = request_body.inner_text()
    assert "registrationId" in body and "挂号流水号" in body
    assert "patient" in body and "registrationFee" in body
