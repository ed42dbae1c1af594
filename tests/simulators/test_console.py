"""The platform simulator's joint-debugging console (联调台, issue 18), in headless Chromium.

A real simulator process (its own, with the access log on, so that its log lines can be checked),
records sent through the project's PlatformClient, the console opened in the browser: the
received record with its decrypted payload and the answer, search by business key, fault switches
of one interface turned on from the page (the next send gets that fault) and off again (the send
is accepted). The switches and the tests' ``/_sim/faults`` hook are one fault set: each sees what
the other sets.
"""

from __future__ import annotations

import json

import pytest
import requests
from playwright.sync_api import expect

from hospital_interop.municipal.client import Outcome
from hospital_interop.municipal.specs import load_catalogue
from tests.platform_fixtures import start_platform_simulator, stop_process

CATALOGUE = load_catalogue()
CODE = "LAB_REPORT_DETAIL"
SPEC = CATALOGUE.interface(CODE)
SEED = 31


@pytest.fixture(scope="module")
def console_sim(tmp_path_factory):
    sim = start_platform_simulator(tmp_path_factory.mktemp("console-sim"), extra_args=("--access-log",))
    yield sim
    stop_process(sim.process)


@pytest.fixture
def csim(console_sim):
    console_sim.reset()
    return console_sim


def key_of(payload) -> str:
    return "|".join(str(v) for v in SPEC.key_of(payload))


def switch(page, fault):
    return page.locator(f".faults-panel [data-interface='{CODE}'] input[data-fault='{fault}']")


@pytest.mark.browser
def test_console_shows_what_was_received_and_switches_faults(csim, page, artifacts_dir):
    client = csim.client()
    first, second = SPEC.example(SEED), SPEC.example(SEED + 1)
    accepted = client.call(CODE, first)
    assert accepted.code == "0"
    assert client.call(CODE, second).code == "0"
    receipt = accepted.data["receiptId"]

    # the overview: counts per interface, the newest exchanges
    page.goto(csim.url + "/")
    expect(page.locator("h1")).to_have_text("联调台")
    row = page.locator(f"[data-interface-row='{CODE}']")
    expect(row.locator("[data-count='received']")).to_have_text("2")
    page.screenshot(path=str(artifacts_dir / "platform-console-overview.png"), full_page=True)

    # the interface's page: the record with its decrypted payload and the answer given
    row.get_by_role("link", name=CODE).click()
    expect(page.locator("h1")).to_contain_text(SPEC.name)
    exchange = page.locator("details.exchange").filter(has_text=key_of(first))
    expect(exchange).to_have_count(1)
    expect(exchange.locator("summary .code")).to_have_text("0")
    expect(exchange.locator("summary .receipt")).to_have_text(f"回执 {receipt}")
    exchange.locator("summary").click()
    payload_box = exchange.locator("pre.payload")
    expect(payload_box).to_be_visible()
    assert json.loads(payload_box.text_content()) == first
    expect(exchange.locator(".source")).to_have_text("平台已验签并解密的请求内容")
    expect(exchange.locator(".answer dl")).to_contain_text(receipt)

    # search by business key (part of it: the report number), also from the overview's form
    page.goto(csim.url + "/")
    page.get_by_label("业务主键").fill(first["reportId"])
    page.get_by_role("button", name="搜索").click()
    expect(page.locator(".lead")).to_contain_text("1 条")
    found = page.locator("details.exchange")
    expect(found).to_have_count(1)
    expect(found.locator("summary .key")).to_have_text(key_of(first))
    page.get_by_label("业务主键").fill("JY-NO-SUCH-REPORT")
    page.get_by_role("button", name="搜索").click()
    expect(page.locator(".empty")).to_have_text("没有找到。")

    # 5xx switched on from the page: the next send gets HTTP 500, nothing stored
    page.goto(f"{csim.url}/console/interfaces/{CODE}")
    switch(page, "http_5xx").check()
    expect(page.locator("#console-status")).to_have_text(f"已开启 {CODE} 的「5xx」故障")
    assert csim.faults()["interfaces"] == {CODE: {"http_5xx": 1.0}}  # the tests' hook sees it
    third = SPEC.example(SEED + 2)
    result = client.call(CODE, third)
    assert (result.outcome, result.http_status) == (Outcome.RETRY, 500)
    assert csim.record(CODE, key_of(third)) is None
    assert (
        client.call(
            "LAB_REPORT_LIST_BY_ORG", CATALOGUE.interface("LAB_REPORT_LIST_BY_ORG").example(SEED)
        ).code
        == "0"
    )

    # a validation error on a field typed in on the page: 2001 naming that field
    switch(page, "http_5xx").uncheck()
    expect(page.locator("#console-status")).to_have_text(f"已关闭 {CODE} 的「5xx」故障")
    page.locator(".faults-panel [data-value-for='reject_field']").fill("specimenTypeCode")
    switch(page, "reject_field").check()
    expect(page.locator("#console-status")).to_have_text(f"已开启 {CODE} 的「校验错误」故障")
    result = client.call(CODE, third)
    assert (result.outcome, result.code) == (Outcome.ATTENTION, "2001")
    assert [e["field"] for e in result.errors] == ["specimenTypeCode"]

    # switched off: the same record is accepted
    switch(page, "reject_field").uncheck()
    expect(page.locator("#console-status")).to_have_text(f"已关闭 {CODE} 的「校验错误」故障")
    assert csim.faults()["interfaces"] == {}
    assert client.call(CODE, third).code == "0"

    # the refused sends are in the list too, with what was sent and why they were refused
    page.reload()
    refused = page.locator("details.exchange").filter(has_text=key_of(third))
    expect(refused.locator("summary .code")).to_have_text(["0", "2001", "HTTP500"])
    rejected = refused.nth(1)
    rejected.locator("summary").click()
    expect(rejected.locator("table.errors")).to_contain_text("specimenTypeCode")
    expect(rejected.locator("summary .fault-tag")).to_have_text("注入校验错误")
    failed = refused.nth(2)
    failed.locator("summary").click()
    expect(failed.locator(".source")).to_contain_text("联调台用登记的 SM4 密钥解密所得")
    assert json.loads(failed.locator("pre.payload").text_content()) == third
    page.screenshot(path=str(artifacts_dir / "platform-console-interface.png"), full_page=True)

    # no patient identity in the simulator's log lines (the search went by query string)
    page.goto(f"{csim.url}/console/search?q={first['patient']['idNo']}")
    log = csim.log.read_text(errors="replace")
    assert "GET /console/search " in log
    for secret in (first["patient"]["idNo"], first["patient"]["name"], third["patient"]["idNo"]):
        assert secret not in log


@pytest.mark.browser
def test_switches_reflect_the_fault_set_of_the_tests_hook(csim, page):
    csim.set_faults(interfaces={CODE: {"rate_limit": 1}}, http_5xx=1, services=["EXAM_RESULT_SUBMIT"])
    page.goto(f"{csim.url}/console/interfaces/{CODE}")
    expect(switch(page, "rate_limit")).to_be_checked()
    expect(switch(page, "http_5xx")).not_to_be_checked()
    expect(page.locator(".global-faults")).to_contain_text("http_5xx 100%")
    expect(page.locator(".global-faults")).to_contain_text("不含本接口")
    result = csim.client().call(CODE, SPEC.example(SEED))
    assert (result.outcome, result.code) == (Outcome.RETRY, "3001")

    page.goto(csim.url + "/")
    expect(page.locator(f"[data-interface='{CODE}'] input[data-fault='rate_limit']")).to_be_checked()
    expect(page.locator("[data-interface='EXAM_RESULT_SUBMIT'] .global")).to_have_text("全局 100%")
    page.get_by_role("button", name="关闭全部故障").click()
    expect(page.locator(f"[data-interface='{CODE}'] input[data-fault='rate_limit']")).not_to_be_checked()
    expect(page.locator(".global-faults")).to_contain_text("没有全局故障")
    assert csim.faults()["interfaces"] == {} and csim.faults()["http_5xx"] == 0
    assert csim.client().call(CODE, SPEC.example(SEED)).code == "0"


def test_per_interface_faults_through_the_hook(csim):
    """The same switches set through /_sim/faults (what the page does, without the page)."""
    client = csim.client()
    csim.set_faults(interfaces={CODE: {"reject_field": "reportId"}})
    result = client.call(CODE, SPEC.example(SEED))
    assert (result.code, [e["field"] for e in result.errors]) == ("2001", ["reportId"])
    other = CATALOGUE.interface("EXAM_RESULT_SUBMIT")
    assert client.call(other.code, other.example(SEED)).code == "0"  # only that interface
    csim.set_faults(interfaces={CODE: {"clock_skew_seconds": 3600}})
    assert client.call(CODE, SPEC.example(SEED)).outcome == Outcome.RETRY  # the time refresh does not cure it
    assert client.call(other.code, other.example(SEED + 1)).code == "0"
    csim.set_faults(interfaces={CODE: {"http_5xx": 0, "reject_field": ""}})  # switched off = dropped
    assert csim.faults()["interfaces"] == {}
    assert client.call(CODE, SPEC.example(SEED)).code == "0"


def test_bad_switches_are_refused_in_chinese(csim):
    api = csim.url + "/console/api/faults"
    r = requests.post(api, json={"interface": "NO_SUCH", "fault": "http_5xx", "on": True}, timeout=5)
    assert (r.status_code, r.json()["error"]) == (400, "未知的接口：NO_SUCH")
    r = requests.post(api, json={"interface": CODE, "fault": "explode", "on": True}, timeout=5)
    assert r.status_code == 400 and r.json()["error"].startswith("未知的故障开关：explode")
    r = requests.post(
        api, json={"interface": CODE, "fault": "clock_skew_seconds", "on": True, "value": "x"}, timeout=5
    )
    assert (r.status_code, r.json()["error"]) == (400, "时钟偏差必须是秒数（可为负）")
    r = requests.post(api, data="interface=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json()["error"]) == (400, "请求须为 JSON（Content-Type: application/json）")
    r = requests.post(csim.url + "/_sim/faults", json={"interfaces": {CODE: {"http_5xx": 3}}}, timeout=5)
    assert (r.status_code, r.json()["error"]) == (
        400,
        f"interfaces.{CODE}.http_5xx 是概率，必须在 [0, 1] 之间",
    )
    assert csim.faults()["interfaces"] == {}
    r = requests.get(csim.url + "/console/interfaces/NO_SUCH", timeout=5)
    assert r.status_code == 404 and "未知的接口" in r.text


@pytest.mark.browser
def test_an_interface_list_pages_through_what_was_received(csim, page):
    spec = CATALOGUE.interface("SECURITY_TIMESTAMP")  # plain JSON: quick to send many
    for _ in range(23):
        r = requests.post(csim.url + spec.path, json={"appId": csim.config.app_id}, timeout=5)
        assert r.json()["code"] == "0"
    page.goto(f"{csim.url}/console/interfaces/{spec.code}")
    expect(page.locator("nav.pager")).to_contain_text("第 1 / 2 页（共 23 条）")
    expect(page.locator("details.exchange")).to_have_count(20)
    ids = [int(t.lstrip("#")) for t in page.locator("details.exchange .xid").all_text_contents()]
    assert ids == sorted(ids, reverse=True)  # newest first
    page.get_by_label("跳到第").fill("2")
    page.get_by_role("button", name="跳转").click()
    expect(page.locator("nav.pager")).to_contain_text("第 2 / 2 页（共 23 条）")
    expect(page.locator("details.exchange")).to_have_count(3)
    assert int(page.locator("details.exchange .xid").first.text_content().lstrip("#")) < ids[-1]
    page.get_by_role("link", name="上一页").click()
    expect(page.locator("details.exchange")).to_have_count(20)
    page.goto(f"{csim.url}/console/interfaces/{spec.code}?page=99")  # past the end: the last page
    expect(page.locator("nav.pager")).to_contain_text("第 2 / 2 页")


@pytest.mark.browser
def test_a_finding_is_issued_from_the_console_and_the_hospitals_reply_shows_beside_it(csim, page):
    """The findings tab: a content finding issued from the page against a received record is what
    the hospital's QC_FEEDBACK_QUERY then returns; its QC_FEEDBACK_REPLY shows in the same row."""
    client = csim.client()
    payload = SPEC.example(SEED)
    assert client.call(CODE, payload).code == "0"
    page.goto(csim.url + "/console/findings")
    expect(page.locator("#qc-findings")).to_contain_text("尚未下发质控问题")
    form = page.locator("form[data-raise-finding]")
    form.locator("select[name=serviceCode]").select_option(CODE)
    form.locator("input[name=businessKey]").fill("no|such")
    form.get_by_role("button", name="下发").click()
    expect(page.locator("#console-status")).to_contain_text("平台没有")  # a precise refusal, in Chinese
    form.locator("input[name=businessKey]").fill(key_of(payload))
    form.locator("input[name=field]").fill("items[0].resultValue")
    form.get_by_role("button", name="下发").click()
    row = page.locator("tr[data-finding]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("内容问题")
    expect(row.locator(".reply")).to_have_text("未回复")

    feed = client.call("QC_FEEDBACK_QUERY", {"orgCode": payload["orgCode"], "cursor": "", "pageSize": 50})
    assert feed.code == "0", (feed.message, feed.errors)
    (finding,) = feed.data["items"]
    assert (finding["serviceCode"], finding["businessKey"]) == (CODE, key_of(payload))
    reply = {
        "orgCode": payload["orgCode"],
        "feedbackId": finding["feedbackId"],
        "result": "2",
        "handledBy": "L2002",
    }
    reply["note"] = "经核实数据无误，无需修改。"
    answered = client.call("QC_FEEDBACK_REPLY", reply)
    assert answered.code == "0", (answered.message, answered.errors)
    page.reload()
    expect(page.locator("tr[data-finding] .reply")).to_have_text("无需修改 经核实数据无误，无需修改。")
