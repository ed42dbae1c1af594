"""The municipal platform simulator: a real process on loopback, driven by the real PlatformClient.

Every interface of the catalogue is exercised with a valid and an invalid record; then ordering,
versions and voids; the protocol's security checks; fault injection; the report viewer; the
seeded results of other hospitals; and the inspection API.
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime, timedelta

import pytest
import requests

from hospital_interop.municipal import envelope, gm
from hospital_interop.municipal.client import Outcome
from hospital_interop.municipal.specs import load_catalogue
from simulators.platform import seeds

CATALOGUE = load_catalogue()
INTERFACES = sorted(CATALOGUE.interfaces, key=lambda s: s.code)
SEED = 7
OTHER_CAMPUS = "12110000400009999Z"  # a second organisation code asking the platform


def spec_of(code):
    return CATALOGUE.interface(code)


def key_str(spec, payload) -> str:
    return "|".join(str(v) for v in spec.key_of(payload))


def now():
    return datetime.now(envelope.PLATFORM_TZ)


def send_parents(client, spec, seed):
    """Upload what the ordering rules need first (parents of parents included)."""
    for parent in spec.parents:
        pspec = spec_of(parent.interface)
        send_parents(client, pspec, seed)
        result = client.call(pspec.code, pspec.example(seed))
        assert result.code == "0", (pspec.code, result)


def seal(sim, spec, payload, *, creds=None, timestamp=None, nonce=None) -> dict:
    return envelope.seal_request(
        payload,
        service_code=spec.code,
        version=spec.version,
        creds=creds or sim.config.credentials,
        profile=spec.profile,
        timestamp=timestamp or now(),
        nonce=nonce,
    )


# answers are opened like the client opens them: platform time window, nonce never seen before
ANSWER_NONCES = envelope.MemoryNonceCache(600)


def post_raw(sim, spec, body) -> envelope.Response:
    """POST a ready envelope (or plain JSON) and open the signed answer."""
    r = requests.post(sim.url + spec.path, json=body, timeout=5)
    assert r.status_code == 200, r.text
    return envelope.open_response(
        r.json(), creds=sim.config.credentials, profile=spec.profile, now=now(), nonce_cache=ANSWER_NONCES
    )


def patient_id(seed=SEED) -> str:
    return spec_of("LAB_RECOGNIZABLE_ITEMS").example(seed)["patient"]["idNo"]


def valid_query(sim, client, spec) -> dict:
    payload = spec.example(SEED)
    if spec.code in ("EXAM_RECOGNIZABLE_ITEMS", "LAB_RECOGNIZABLE_ITEMS"):
        payload.pop("recognitionItemCodes", None)
    elif spec.code == "LAB_REPORT_PDF_PREVIEW":
        lab = sim.seeded(patient_id())["lab"][0]
        payload.update(orgCode=lab["externalOrgCode"], reportId=lab["reportId"])
    elif spec.code == "LAB_REPORT_LIST_BY_ORG":
        detail = spec_of("LAB_REPORT_DETAIL").example(SEED)
        assert client.call("LAB_REPORT_DETAIL", detail).code == "0"
        day = detail["reportDateTime"][:8]
        payload.update(orgCode=detail["orgCode"], startDate=day, endDate=day)
    elif spec.code == "LAB_REPORT_LIST_BY_ID":
        payload.pop("startDate", None)
        payload.pop("endDate", None)
    elif spec.code == "QC_FEEDBACK_QUERY":
        raise_missing_finding(sim, payload["orgCode"])
    return payload


def raise_missing_finding(sim, org_code, feedback_id=None) -> dict:
    body = {"kind": "missing", "serviceCode": "OP_VISIT", "businessKey": f"{org_code}|V404"}
    if feedback_id:
        body["feedbackId"] = feedback_id
    return sim.raise_findings(body)[0]


# --------------------------------------------------------------------------- every interface


@pytest.mark.parametrize("spec", INTERFACES, ids=lambda s: s.code)
def test_every_interface_accepts_a_valid_record(sim, spec):
    client = sim.client()
    if spec.kind == "security":
        offset = client.refresh_time()
        assert abs(offset.total_seconds()) < 5
        answer = post_raw(sim, spec, {"appId": sim.config.app_id})
        assert answer.code == "0"
        assert spec.validate_response(answer.data) == []
        return
    if spec.kind == "query":
        result = client.call(spec.code, valid_query(sim, client, spec))
        assert (result.outcome, result.code) == (Outcome.ACCEPTED, "0"), result
        assert spec.validate_response(result.data) == []
        assert any(result.data.values()), result.data  # something was found
        return
    if spec.kind == "void":
        for code in spec.voids:
            assert client.call(code, spec_of(code).example(SEED)).code == "0"
    send_parents(client, spec, SEED)
    payload = spec.example(SEED)
    if spec.code == "QC_FEEDBACK_REPLY":  # a reply answers a finding the platform issued
        raise_missing_finding(sim, payload["orgCode"], payload["feedbackId"])
    result = client.call(spec.code, payload)
    assert (result.outcome, result.code) == (Outcome.ACCEPTED, "0"), result
    assert result.receipt and spec.validate_response(result.data) == []
    held = sim.record(spec.code, spec.key_of(payload))
    assert held["payload"] == payload  # what the platform decrypted is what was sent
    assert (held["version"], held["voided"], held["receipt"]) == (1, False, result.receipt)
    for code in spec.voids:
        assert sim.record(code, spec.key_of(payload))["voided"] is True


@pytest.mark.parametrize("spec", INTERFACES, ids=lambda s: s.code)
def test_every_interface_rejects_an_invalid_record_naming_the_fields(sim, spec):
    payload, violations = spec.invalid_example(SEED, expected=True)
    if spec.kind == "security":
        answer = post_raw(sim, spec, payload)
        code, errors = answer.code, answer.data["errors"]
    else:
        result = sim.client().call(spec.code, payload)
        assert result.outcome == Outcome.ATTENTION, result
        code, errors = result.code, result.errors
    assert code == "2001"
    assert {f for f, _ in violations} <= {e["field"] for e in errors}
    assert all(e["message"] for e in errors)
    assert sim.records(spec.code) == []


# --------------------------------------------------------------------------- versions, voids, ordering


def test_resubmission_with_the_same_key_replaces_the_record_as_version_2(sim):
    spec, client = spec_of("LAB_REPORT_DETAIL"), sim.client()
    first = spec.example(SEED)
    second = {**first, "reportRemark": "复核后更正：第二版"}
    assert client.call(spec.code, first).data["version"] == 1
    result = client.call(spec.code, second)
    assert (result.code, result.data["version"]) == ("0", 2)
    held = sim.record(spec.code, spec.key_of(first))
    assert (held["version"], held["payload"]) == (2, second)
    assert len(sim.records(spec.code)) == 1


def _recognisable_exam(seed=SEED) -> dict:
    yesterday = (now() - timedelta(days=1)).strftime("%Y%m%d%H%M%S")
    return spec_of("EXAM_RESULT_SUBMIT").example(
        seed,
        recognitionItemCode="JC0012",
        recognitionItemName="胸部CT平扫",
        recognitionMark="HR",
        examDateTime=yesterday,
    )


def test_void_of_a_held_report_voids_it_and_hides_it_from_queries(sim):
    client = sim.client()
    exam = _recognisable_exam()
    assert client.call("EXAM_RESULT_SUBMIT", exam).code == "0"
    query = spec_of("EXAM_RECOGNIZABLE_ITEMS").example(SEED, orgCode=OTHER_CAMPUS, recognitionItemCodes=None)

    def found():
        result = client.call("EXAM_RECOGNIZABLE_ITEMS", query)
        assert result.code == "0" and spec_of("EXAM_RECOGNIZABLE_ITEMS").validate_response(result.data) == []
        return [i for i in result.data["items"] if i["reportId"] == exam["reportId"]]

    assert found()[0]["findings"] == exam["findings"]
    void = spec_of("EXAM_REPORT_VOID").example(SEED)
    assert key_str(spec_of("EXAM_REPORT_VOID"), void) == key_str(spec_of("EXAM_RESULT_SUBMIT"), exam)
    result = client.call("EXAM_REPORT_VOID", void)
    assert (result.outcome, result.code) == (Outcome.ACCEPTED, "0")
    held = sim.record("EXAM_RESULT_SUBMIT", spec_of("EXAM_RESULT_SUBMIT").key_of(exam))
    assert held["voided"] is True and held["void_info"]["reason"] == void["voidReason"]
    assert found() == []
    assert sim.records("EXAM_RESULT_SUBMIT", include_voided=False) == []
    assert client.call("EXAM_REPORT_VOID", void).code == "0"  # a repeated void is harmless


def test_void_of_a_report_never_uploaded_is_2002(sim):
    result = sim.client().call("EXAM_REPORT_VOID", spec_of("EXAM_REPORT_VOID").example(SEED))
    assert (result.outcome, result.code) == (Outcome.ATTENTION, "2002")
    assert sim.records("EXAM_REPORT_VOID") == []


def test_child_before_parent_is_2002_until_the_parent_is_held(sim):
    client = sim.client()
    visit = spec_of("OP_VISIT").example(SEED)
    result = client.call("OP_VISIT", visit)
    assert (result.outcome, result.code) == (Outcome.ATTENTION, "2002")
    assert "OP_REGISTRATION" in result.message
    assert client.call("OP_REGISTRATION", spec_of("OP_REGISTRATION").example(SEED)).code == "0"
    assert client.call("OP_VISIT", visit).code == "0"
    # a grandchild needs the chain: the discharge record needs the discharge, which needs the admission
    record = spec_of("IP_DISCHARGE_RECORD").example(SEED)
    assert client.call("IP_DISCHARGE_RECORD", record).code == "2002"
    assert client.call("IP_DISCHARGE", spec_of("IP_DISCHARGE").example(SEED)).code == "2002"


# --------------------------------------------------------------------------- security


def test_tampered_data_is_1001(sim):
    spec = spec_of("LAB_REPORT_DETAIL")
    env = seal(sim, spec, spec.example(SEED))
    raw = bytearray(base64.b64decode(env["data"]))
    raw[5] ^= 0x01
    env["data"] = base64.b64encode(bytes(raw)).decode()
    assert post_raw(sim, spec, env).code == "1001"
    assert sim.records(spec.code) == []


def test_a_request_signed_with_another_key_is_1001(sim):
    spec = spec_of("LAB_REPORT_DETAIL")
    stranger = envelope.Credentials(
        app_id=sim.config.app_id,
        org_code=sim.config.org_code,
        sm4_key=sim.config.sm4_key,
        private_key=gm.generate_sm2_key(),
    )
    assert post_raw(sim, spec, seal(sim, spec, spec.example(SEED), creds=stranger)).code == "1001"


def test_a_wrong_sm4_key_is_1004(sim):
    spec = spec_of("LAB_REPORT_DETAIL")
    creds = envelope.Credentials(
        app_id=sim.config.app_id,
        org_code=sim.config.org_code,
        sm4_key=bytes(16),
        private_key=sim.config.private_key,
    )
    assert post_raw(sim, spec, seal(sim, spec, spec.example(SEED), creds=creds)).code == "1004"


def test_a_multi_member_gzip_request_is_accepted(sim):
    spec, payload = spec_of("LAB_REPORT_DETAIL"), spec_of("LAB_REPORT_DETAIL").example(SEED)
    raw = json.dumps(payload, ensure_ascii=False).encode()
    members = gzip.compress(raw[: len(raw) // 2], mtime=0) + gzip.compress(raw[len(raw) // 2 :], mtime=0)
    iv = bytes(range(16))
    env = {k: v for k, v in seal(sim, spec, payload).items() if k != "sign"}
    env.update(
        iv=iv.hex(), data=base64.b64encode(gm.sm4_encrypt(sim.config.sm4_key, members, "CBC", iv)).decode()
    )
    signature = sim.config.private_key.sign(
        envelope.string_to_sign(env),
        signer_id=spec.profile.signer_id,
        encoding=spec.profile.signature_encoding,
    )
    env["sign"] = base64.b64encode(signature).decode()
    assert post_raw(sim, spec, env).code == "0"
    assert sim.record(spec.code, spec.key_of(payload))["payload"] == payload


def test_answers_carry_a_fresh_nonce_and_the_platform_time(sim):
    spec = spec_of("SECURITY_TIMESTAMP")
    sim.set_faults(clock_skew_seconds=3600)  # the platform's clock, not the host's, stamps answers
    answers = [
        requests.post(sim.url + spec.path, json={"appId": sim.config.app_id}, timeout=5).json()
        for _ in range(3)
    ]
    assert len({a["nonce"] for a in answers}) == 3 and all(len(a["nonce"]) == 32 for a in answers)
    for raw in answers:
        opened = envelope.open_response(
            raw,
            creds=sim.config.credentials,
            profile=spec.profile,
            now=now() + timedelta(hours=1),
            nonce_cache=ANSWER_NONCES,
        )
        assert abs(envelope.parse_timestamp(opened.data["timestamp"]) - opened.timestamp) < timedelta(
            seconds=5
        )


def test_a_stale_timestamp_is_1002(sim):
    spec = spec_of("LAB_REPORT_DETAIL")
    stale = now() - timedelta(seconds=spec.profile.timestamp_window_seconds + 60)
    assert post_raw(sim, spec, seal(sim, spec, spec.example(SEED), timestamp=stale)).code == "1002"


def test_a_replayed_nonce_is_1003(sim):
    spec = spec_of("LAB_REPORT_DETAIL")
    env = seal(sim, spec, spec.example(SEED))
    assert post_raw(sim, spec, env).code == "0"
    assert post_raw(sim, spec, env).code == "1003"
    assert sim.record(spec.code, spec.key_of(spec.example(SEED)))["version"] == 1


def test_a_forged_response_signature_is_retry_never_accepted(sim):
    spec, payload = spec_of("LAB_REPORT_DETAIL"), spec_of("LAB_REPORT_DETAIL").example(SEED)
    sim.set_faults(bad_signature=1, services=[spec.code])
    result = sim.client().call(spec.code, payload)
    assert (result.outcome, result.code, result.http_status) == (Outcome.RETRY, "", 200)
    assert "应答无效" in result.message
    assert sim.record(spec.code, spec.key_of(payload)) is not None  # processed: the answer was lost
    sim.set_faults(unsigned=1, services=[spec.code])
    assert sim.client().call(spec.code, payload).outcome == Outcome.RETRY


def test_clock_skew_makes_the_client_refresh_its_time_and_succeed(sim):
    spec, client = spec_of("LAB_REPORT_DETAIL"), sim.client()
    assert client.call(spec.code, spec.example(SEED)).code == "0"  # offset measured: about 0
    sim.set_faults(clock_skew_seconds=3600)
    result = client.call(spec.code, spec.example(SEED + 1))
    assert (result.outcome, result.code) == (Outcome.ACCEPTED, "0")
    assert sim.stats()["requests"][spec.code] == {"0": 2, "1002": 1}
    assert abs(client.platform_now() - now() - timedelta(hours=1)) < timedelta(seconds=5)


# --------------------------------------------------------------------------- faults


def test_http_5xx_is_retry_with_the_status(sim):
    spec, payload = spec_of("LAB_REPORT_DETAIL"), spec_of("LAB_REPORT_DETAIL").example(SEED)
    sim.set_faults(http_5xx=1, services=[spec.code])
    result = sim.client().call(spec.code, payload)
    assert (result.outcome, result.http_status) == (Outcome.RETRY, 500)
    assert sim.records(spec.code) == []
    assert sim.stats()["faults_fired"]["http_5xx"] == 1


def test_rate_limit_is_retry_after_the_given_delay(sim):
    spec = spec_of("LAB_REPORT_DETAIL")
    sim.set_faults(rate_limit=1, retry_after=2.5)
    result = sim.client().call(spec.code, spec.example(SEED))
    assert (result.outcome, result.code, result.retry_after) == (Outcome.RETRY, "3001", 2.5)
    sim.set_faults(error_5000=1)
    assert (sim.client().call(spec.code, spec.example(SEED)).code) == "5000"
    assert sim.records(spec.code) == []


def test_a_timeout_is_retry_and_the_record_was_stored_like_a_lost_answer(sim):
    spec, payload = spec_of("LAB_REPORT_DETAIL"), spec_of("LAB_REPORT_DETAIL").example(SEED)
    sim.set_faults(timeout=1, timeout_seconds=2, services=[spec.code])
    client = sim.client(timeout=1.0)
    result = client.call(spec.code, payload)
    assert result.outcome == Outcome.RETRY and result.code == ""
    assert 900 <= result.elapsed_ms < 1900
    assert sim.record(spec.code, spec.key_of(payload))["version"] == 1
    sim.set_faults()
    assert client.call(spec.code, payload).data["version"] == 2  # the retry: harmless duplicate


def test_rejected_keys_get_2001_with_a_field_error(sim):
    spec, client = spec_of("LAB_REPORT_DETAIL"), sim.client()
    bad, good = spec.example(SEED), spec.example(SEED + 1)
    sim.set_faults(reject_keys=[key_str(spec, bad)])
    result = client.call(spec.code, bad)
    assert (result.outcome, result.code) == (Outcome.ATTENTION, "2001")
    assert [e["field"] for e in result.errors] == ["reportId"]
    assert client.call(spec.code, good).code == "0"
    sim.set_faults()
    assert client.call(spec.code, bad).code == "0"


def test_faults_are_validated_and_readable(sim):
    r = requests.post(sim.url + "/_sim/faults", json={"http_5xx": 2}, timeout=5)
    assert r.status_code == 400 and "[0, 1]" in r.json()["error"]
    r = requests.post(sim.url + "/_sim/faults", json={"no_such_fault": 1}, timeout=5)
    assert r.status_code == 400
    sim.set_faults(latency_ms=5, reject_keys=["a|b"])
    requests.post(sim.url + "/_sim/faults", json={"rate_limit": 0.5}, timeout=5)  # merges by default
    assert {k: sim.faults()[k] for k in ("latency_ms", "rate_limit", "reject_keys")} == {
        "latency_ms": 5.0,
        "rate_limit": 0.5,
        "reject_keys": ["a|b"],
    }


def test_faults_follow_the_seeded_rng(sim):
    spec = spec_of("LAB_REPORT_DETAIL")

    def run():
        sim.reset()
        sim.set_faults(http_5xx=0.5, seed=99, services=[spec.code])
        client = sim.client()
        return [client.call(spec.code, spec.example(s)).outcome for s in range(12)]

    first = run()
    assert Outcome.RETRY in first and Outcome.ACCEPTED in first
    assert run() == first


# --------------------------------------------------------------------------- viewer


def _link(sim, report, *, at=None, doctor="D00001") -> str:
    return envelope.make_browse_link(
        sim.viewer_url,
        {"orgCode": report["externalOrgCode"], "reportId": report["reportId"], "doctorId": doctor},
        private_key=sim.config.private_key,
        profile=spec_of("SECURITY_TIMESTAMP").profile,
        now=at or now(),
    )


def test_viewer_shows_the_report_behind_a_valid_link(sim):
    seeded = sim.seeded(patient_id())
    lab, exam = seeded["lab"][0], seeded["exam"][0]
    page = requests.get(_link(sim, lab), timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert lab["externalOrgName"] in page.text and lab["items"][0]["itemName"] in page.text
    assert seeds.mask_id(patient_id()) in page.text and patient_id() not in page.text
    page = requests.get(_link(sim, exam), timeout=5)
    assert page.status_code == 200 and exam["impression"] in page.text and "影像" in page.text


def test_viewer_refuses_tampered_and_expired_links(sim):
    lab = sim.seeded(patient_id())["lab"][0]
    tampered = _link(sim, lab).replace("D00001", "D00002")
    page = requests.get(tampered, timeout=5)
    assert page.status_code == 403 and "签名无效" in page.text
    lifetime = spec_of("SECURITY_TIMESTAMP").profile.browse_link_lifetime_seconds
    expired = _link(sim, lab, at=now() - timedelta(seconds=lifetime + 60))
    page = requests.get(expired, timeout=5)
    assert page.status_code == 403 and "过期" in page.text
    assert sim.stats()["requests"]["VIEWER"] == {"403": 2}


# --------------------------------------------------------------------------- other hospitals' results


def test_seeded_results_are_realistic_and_deterministic_per_id_number(sim):
    first = sim.seeded(patient_id())
    sim.reset()
    assert sim.seeded(patient_id()) == first
    other = sim.seeded(patient_id(SEED + 1))
    assert other["lab"] != first["lab"]
    names = dict(seeds.HOSPITALS)
    lab_spec, exam_spec = spec_of("LAB_RECOGNIZABLE_ITEMS"), spec_of("EXAM_RECOGNIZABLE_ITEMS")
    assert lab_spec.validate_response({"reports": first["lab"]}) == []
    assert exam_spec.validate_response({"items": first["exam"]}) == []
    for report in first["lab"] + first["exam"]:
        assert names[report["externalOrgCode"]] == report["externalOrgName"]
        assert report["externalOrgCode"] != sim.config.org_code
    for report in first["lab"]:
        assert report["reportTitle"] in seeds.LAB_PANELS
        for item in report["items"]:
            assert item["referenceRange"] and item["abnormalFlagCode"] in ("N", "H", "L", "P")
            assert item["validUntil"] >= now().strftime("%Y%m%d")
    for report in first["exam"]:
        assert report["examCategoryCode"] in ("CT", "MR", "DR", "US")
        assert report["findings"] and report["impression"]


def test_recognisable_items_queries_return_the_seeded_results(sim):
    client, seeded = sim.client(), sim.seeded(patient_id())
    query = spec_of("LAB_RECOGNIZABLE_ITEMS").example(SEED, recognitionItemCodes=None)
    result = client.call("LAB_RECOGNIZABLE_ITEMS", query)
    assert result.data["reports"] == seeded["lab"]
    wanted = seeded["lab"][0]["items"][0]["recognitionItemCode"]
    result = client.call("LAB_RECOGNIZABLE_ITEMS", {**query, "recognitionItemCodes": [wanted]})
    assert {i["recognitionItemCode"] for r in result.data["reports"] for i in r["items"]} == {wanted}
    query = spec_of("EXAM_RECOGNIZABLE_ITEMS").example(SEED, recognitionItemCodes=None)
    assert client.call("EXAM_RECOGNIZABLE_ITEMS", query).data["items"] == seeded["exam"]


def test_seed_adds_results_and_replace_can_leave_a_patient_without_any(sim):
    client, id_no = sim.client(), patient_id()
    before = sim.seeded(id_no)
    after = sim.seed(id_no, lab=["凝血"], exam=["JC0105"], orgCode="12110000400003018K")
    assert len(after["lab"]) == len(before["lab"]) + 1 and len(after["exam"]) == len(before["exam"]) + 1
    added = after["lab"][-1]
    assert (added["reportTitle"], added["externalOrgName"]) == ("凝血", "首都医科大学宣武医院")
    query = spec_of("LAB_RECOGNIZABLE_ITEMS").example(SEED, recognitionItemCodes=None)
    assert added["reportId"] in {
        r["reportId"] for r in client.call("LAB_RECOGNIZABLE_ITEMS", query).data["reports"]
    }
    old = sim.seed(id_no, lab=["血常规"], daysAgo=60)["lab"][-1]  # outside its recognition window
    reports = client.call("LAB_RECOGNIZABLE_ITEMS", query).data["reports"]
    assert old["reportId"] not in {r["reportId"] for r in reports}
    own = sim.seed(id_no, lab=["肾功能"], orgCode=sim.config.org_code)["lab"][-1]  # the asking hospital's own
    reports = client.call("LAB_RECOGNIZABLE_ITEMS", query).data["reports"]
    assert own["reportId"] not in {r["reportId"] for r in reports}
    assert sim.seed(id_no, replace=True) == {**before, "lab": [], "exam": []}
    assert client.call("LAB_RECOGNIZABLE_ITEMS", query).data == {"reports": []}


def test_pdf_preview_returns_a_valid_pdf_of_an_external_or_held_report(sim):
    client, spec = sim.client(), spec_of("LAB_REPORT_PDF_PREVIEW")
    lab = sim.seeded(patient_id())["lab"][0]
    query = spec.example(SEED, orgCode=lab["externalOrgCode"], reportId=lab["reportId"])
    result = client.call(spec.code, query)
    content = base64.b64decode(result.data["fileContent"])
    assert content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF")
    assert gm.sm3_hex(content) == result.data["fileHash"] and len(content) == result.data["fileSize"]
    pdf_spec = spec_of("LAB_REPORT_PDF")
    uploaded = pdf_spec.example(SEED)
    assert client.call(pdf_spec.code, uploaded).code == "0"
    result = client.call(
        spec.code, {**query, "orgCode": uploaded["orgCode"], "reportId": uploaded["reportId"]}
    )
    assert result.data["fileContent"] == uploaded["fileContent"]
    unknown = client.call(spec.code, {**query, "reportId": "NOPE0001"})
    assert (unknown.outcome, unknown.code) == (Outcome.ATTENTION, "2002")


def test_report_lists_show_uploads_and_seeded_reports_paginated(sim):
    client = sim.client()
    detail_spec = spec_of("LAB_REPORT_DETAIL")
    details = [detail_spec.example(s) for s in (SEED, SEED + 1, SEED + 2)]
    for d in details:
        assert client.call(detail_spec.code, d).code == "0"
    by_org = spec_of("LAB_REPORT_LIST_BY_ORG").example(
        SEED, startDate="20000101", endDate="20991231", pageSize=2
    )
    page1 = client.call("LAB_REPORT_LIST_BY_ORG", by_org).data
    page2 = client.call("LAB_REPORT_LIST_BY_ORG", {**by_org, "pageNo": 2}).data
    assert page1["total"] == 3 and len(page1["reports"]) == 2 and len(page2["reports"]) == 1
    assert {r["reportId"] for r in page1["reports"] + page2["reports"]} == {d["reportId"] for d in details}
    by_id = spec_of("LAB_REPORT_LIST_BY_ID").example(SEED, startDate=None, endDate=None, pageSize=50)
    rows = client.call("LAB_REPORT_LIST_BY_ID", by_id).data["reports"]
    seeded = sim.seeded(patient_id())["lab"]
    assert {r["reportId"] for r in rows} == {details[0]["reportId"]} | {r["reportId"] for r in seeded}
    assert all("*" in r["idNoMasked"] for r in rows)


# --------------------------------------------------------------------------- inspection API


def test_stats_count_requests_and_queries_per_service(sim):
    client = sim.client()
    client.call("LAB_REPORT_DETAIL", spec_of("LAB_REPORT_DETAIL").example(SEED))
    client.call("LAB_REPORT_DETAIL", spec_of("LAB_REPORT_DETAIL").invalid_example(SEED))
    query = spec_of("LAB_RECOGNIZABLE_ITEMS").example(SEED)
    client.call("LAB_RECOGNIZABLE_ITEMS", query)
    stats = sim.stats()
    assert stats["requests"]["LAB_REPORT_DETAIL"] == {"0": 1, "2001": 1}
    assert stats["queries"] == {"LAB_RECOGNIZABLE_ITEMS": 1}
    assert stats["requests"]["SECURITY_TIMESTAMP"] == {"0": 1}  # the client measured the time once
    sim.reset()
    assert sim.stats() == {"total": 0, "requests": {}, "queries": {}, "faults_fired": {}}


def test_feedback_list_round_trip(sim):
    item = {
        "interface": "LAB_REPORT_DETAIL",
        "key": "12110000400000000X|JY0000000007",
        "field": "items[2].referenceRange",
        "rule": "plausibility",
        "message": "参考区间与同类机构差异较大，请核对",
    }
    created = sim.add_feedback(item)
    assert created[0]["id"] and created[0]["created_at"]
    assert [{k: f[k] for k in item} for f in sim.feedback()] == [item]
    assert sim.feedback(interface="OP_VISIT") == []
    assert requests.post(sim.url + "/_sim/feedback", json={"interface": "X"}, timeout=5).status_code == 400


def test_quality_findings_are_raised_against_what_the_platform_holds_and_paged_by_cursor(sim):
    client = sim.client()
    visit = spec_of("OP_VISIT")
    send_parents(client, visit, SEED)
    held = visit.example(SEED)
    assert client.call("OP_VISIT", held).code == "0"
    key = key_str(visit, held)
    org = held["orgCode"]
    # content and late need a record the platform holds; missing one it does not
    with pytest.raises(requests.HTTPError):
        sim.raise_findings({"kind": "content", "serviceCode": "OP_VISIT", "businessKey": f"{org}|V404"})
    with pytest.raises(requests.HTTPError):
        sim.raise_findings({"kind": "missing", "serviceCode": "OP_VISIT", "businessKey": key})
    bad = requests.post(sim.url + "/_sim/qc/findings", json={"kind": "odd"}, timeout=5)
    assert bad.status_code == 400 and "kind" in bad.json()["error"]
    raised = sim.raise_findings(
        {
            "kind": "content",
            "serviceCode": "OP_VISIT",
            "businessKey": key,
            "field": "diagnosisCode",
            "issuer": "WJW",
        },
        {"kind": "late", "serviceCode": "OP_VISIT", "businessKey": key, "replyInHours": -1},
        {"kind": "missing", "serviceCode": "OP_VISIT", "businessKey": f"{org}|V404"},
    )
    query = spec_of("QC_FEEDBACK_QUERY")
    first = client.call("QC_FEEDBACK_QUERY", {"orgCode": org, "cursor": "", "pageSize": 2})
    assert first.code == "0" and query.validate_response(first.data) == []
    assert [i["kind"] for i in first.data["items"]] == ["content", "late"] and first.data["nextCursor"]
    assert first.data["items"][0]["issuer"] == "WJW"
    rest = client.call(
        "QC_FEEDBACK_QUERY", {"orgCode": org, "cursor": first.data["nextCursor"], "pageSize": 2}
    )
    assert [i["feedbackId"] for i in rest.data["items"]] == [raised[2]["feedbackId"]]
    assert rest.data["nextCursor"] == ""
    # a re-issued finding comes again after the cursor
    again = sim.raise_findings({"kind": "content", "serviceCode": "OP_VISIT", "businessKey": key,
                                "feedbackId": raised[0]["feedbackId"], "message": "仍未修正"})  # fmt: skip
    later = client.call(
        "QC_FEEDBACK_QUERY", {"orgCode": org, "cursor": first.data["nextCursor"], "pageSize": 9}
    )
    assert [i["feedbackId"] for i in later.data["items"]] == [raised[2]["feedbackId"], again[0]["feedbackId"]]
    assert later.data["items"][1]["message"] == "仍未修正"
    wrong = client.call("QC_FEEDBACK_QUERY", {"orgCode": org, "cursor": "garbage", "pageSize": 9})
    assert wrong.code == "2001" and wrong.errors[0]["field"] == "cursor"


def test_quality_replies_are_checked_and_kept(sim):
    client = sim.client()
    org = "12110000400000000X"
    finding = raise_missing_finding(sim, org)
    reply = {"orgCode": org, "feedbackId": finding["feedbackId"], "result": "3", "handledBy": "D001"}
    refused = client.call("QC_FEEDBACK_REPLY", reply)
    assert refused.code == "2001" and [e["field"] for e in refused.errors] == ["note"]
    unknown = client.call("QC_FEEDBACK_REPLY", {**reply, "feedbackId": "QCNOPE", "note": "x"})
    assert unknown.code == "2002"
    assert client.call("QC_FEEDBACK_REPLY", {**reply, "note": "原始记录已归档"}).code == "0"
    [kept] = sim.qc_replies(feedbackId=finding["feedbackId"])
    assert (kept["result"], kept["note"], kept["handledBy"]) == ("3", "原始记录已归档", "D001")
    assert kept["receivedAt"]
    sim.reset()
    assert sim.qc_replies() == [] and sim.qc_findings() == []


def test_health_and_unknown_paths(sim):
    health = requests.get(sim.url + "/_sim/health", timeout=5).json()
    assert health["status"] == "ok" and health["interfaces"] == len(INTERFACES)
    assert requests.post(sim.url + "/no/such/interface", json={}, timeout=5).status_code == 404
    assert requests.get(sim.url + "/lab/report/detail", timeout=5).status_code == 405
    assert sim.record("LAB_REPORT_DETAIL", "no|such") is None
