"""Signed prompt links: one canonical string per link (a value never shifts into another field),
a bounded lifetime, and the page token never in a URL.

Links are built here the way docs/recognition.md tells the HIS to build them, independently of
mutual_recognition/links.py: percent-encoding with the standard library, HMAC-SM3 with the
OpenSSL command line."""

import json
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.http import QueryDict
from django.urls import reverse

from mutual_recognition import links
from mutual_recognition.links import LinkContext, LinkError, OrderedItem
from mutual_recognition.models import AuditEntry

from .conftest import ITEMS, TOKEN, prompt_body

pytestmark = pytest.mark.django_db

SECRET = "link-secret-for-tests"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "recognition.md"
DAY = 24 * 3600


@pytest.fixture
def secret(settings):
    settings.RECOGNITION_LINK_SECRET = SECRET
    return SECRET


def openssl_hmac_sm3(key: str, data: str) -> str:
    out = subprocess.run(
        ["openssl", "mac", "-digest", "SM3", "-macopt", f"key:{key}", "HMAC"],
        input=data.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return out.decode().strip().lower()


def his_link(fields: dict[str, str], key: str = SECRET) -> str:
    """The query of a link as the HIS builds it by hand (docs/recognition.md, 'Signed links')."""
    canonical = "&".join(
        f"{name}={quote(fields[name], safe='')}"
        for name in ("v", "pid", "vid", "doc", "dept", "items", "exp")
    )
    return canonical + "&sig=" + openssl_hmac_sm3(key, canonical)


def link_fields(**overrides) -> dict[str, str]:
    fields = {
        "v": "2",
        "pid": "P000123",
        "vid": "V2026112700012",
        "doc": "D1001",
        "dept": "1001",
        "items": "E~CT0012~~YZ001,L~GGN~~YZ003",
        "exp": str(int(time.time()) + 600),
    }
    return {**fields, **overrides}


def refusal(query: str, now: float | None = None) -> LinkError:
    with pytest.raises(LinkError) as exc:
        links.verify(QueryDict(query), now=now)
    return exc.value


# --------------------------------------------------------------------------- canonical string


def test_a_link_whose_fields_were_shifted_into_other_fields_does_not_verify(secret, client):
    query = links.make_query(
        patient_id="P000123",
        visit_id="V2026112700012",
        doctor="D1001",
        dept="1001",
        items=[OrderedItem("exam", "CT0012", "", "YZ001")],
    )
    genuine = QueryDict(query)
    assert links.verify(genuine).patient_id == "P000123"
    shifted = genuine.dict()
    shifted.update(
        items=shifted["items"] + "&pid=" + shifted["pid"],
        pid="",
        dept=shifted["dept"] + "&doc=" + shifted["doc"],
        doc="",
    )
    assert refusal(urlencode(shifted)).reason == "tampered"
    page = client.get(reverse("recognition:embed") + "?" + urlencode(shifted))
    assert page.status_code == 403 and "无效或已被修改" in page.content.decode()


def test_a_link_signed_with_the_old_ambiguous_rule_does_not_verify(secret):
    fields = link_fields()
    del fields["v"]
    old = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if fields[k])  # sorted, raw, empty dropped
    error = refusal(urlencode({**fields, "sig": openssl_hmac_sm3(SECRET, old)}))
    assert error.reason == "version" and "v=2" in error.message


def test_a_link_that_repeats_a_field_does_not_verify(secret):
    query = his_link(link_fields())
    error = refusal(query + "&pid=P999999")
    assert error.reason == "malformed" and "pid" in error.message


def test_a_canonical_link_with_reserved_characters_and_chinese_verifies_and_round_trips(secret):
    now = time.time()
    values = {
        "patient_id": "P&1=2,3%25",
        "visit_id": "V=就诊&1",
        "doctor": "王医生 %",
        "dept": "内科,急诊&外科",
    }
    items = [
        OrderedItem("exam", "CT=12&x", "胸部%20", "YZ&001"),
        OrderedItem("lab", "肝功能+", "", "YZ=002%"),
    ]
    query = links.make_query(**values, items=items, now=now, lifetime=600)

    assert query == his_link(
        {
            "v": "2",
            "pid": "P&1=2,3%25",
            "vid": "V=就诊&1",
            "doc": "王医生 %",
            "dept": "内科,急诊&外科",
            "items": "E~CT=12&x~胸部%20~YZ&001,L~肝功能+~~YZ=002%",
            "exp": str(int(now) + 600),
        }
    )
    ctx = links.verify(QueryDict(query), now=now)
    assert (ctx.patient_id, ctx.visit_id, ctx.doctor, ctx.dept) == tuple(values.values())
    assert ctx.items == tuple(items)
    # a HIS that form-encodes (space as "+") builds the same link: verification decodes first
    assert links.verify(QueryDict(query.replace("%20", "+")), now=now) == ctx


def test_the_worked_example_in_the_docs_is_what_the_code_signs(settings):
    settings.RECOGNITION_LINK_SECRET = "example-link-secret"
    fields = {
        "pid": "P000123",
        "vid": "V2026112700012",
        "doc": "D1001",
        "dept": "内科,急诊",
        "items": "E~CT0012~~YZ001,L~GGN~~YZ003",
        "exp": "1795745742",
    }
    canonical = links.string_to_sign(fields).decode()
    sig = openssl_hmac_sm3("example-link-secret", canonical)
    docs = DOCS.read_text()
    assert canonical in docs and sig in docs and links.signature(fields) == sig
    assert f"{canonical}&sig={sig}" in docs


def test_values_a_link_cannot_carry_are_refused_when_the_link_is_made(secret):
    def make(**over):
        args = {
            "patient_id": "P1",
            "visit_id": "V1",
            "doctor": "D1001",
            "dept": "1001",
            "items": [OrderedItem("exam", "CT0012", "", "YZ001")],
            **over,
        }
        return links.make_query(**args)

    for bad in (
        {"items": [OrderedItem("exam", "CT~12", "", "YZ001")]},
        {"items": [OrderedItem("lab", "GGN", "", "YZ,1")]},
        {"visit_id": ""},
        {"doctor": "D1\n001"},
        {"dept": "\ud800"},
    ):
        with pytest.raises(ValueError):
            make(**bad)


@pytest.mark.parametrize("exp", ["１２３４５６７８９０", "²", "-1", "1e9", "9" * 40])
def test_a_link_with_a_malformed_expiry_is_refused_not_failed(secret, client, exp):
    query = his_link(link_fields(exp=exp))
    assert refusal(query).reason == "malformed"
    assert client.get(reverse("recognition:embed") + "?" + query).status_code == 403


def test_the_prompt_api_links_any_patient_id_and_refuses_one_a_link_cannot_carry(
    client, recognition, patient
):
    def prompt(**patient_fields):
        body = prompt_body({**patient, **patient_fields}, ITEMS)
        return client.post(
            reverse("recognition:api-prompt"),
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        )

    answer = prompt(patientId="P&1=2 住院").json()
    link = QueryDict(answer["promptUrl"].split("?", 1)[1])
    assert links.verify(link).patient_id == "P&1=2 住院"
    refused = prompt(patientId="P1\n2")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "patient.patientId"


# --------------------------------------------------------------------------- bounded lifetime


def test_a_link_that_expires_beyond_the_lifetime_cap_does_not_verify(secret, settings):
    now = time.time()
    error = refusal(his_link(link_fields(exp=str(int(now) + DAY + 3600))), now=now)
    assert error.reason == "lifetime" and "24 小时" in error.message
    assert links.verify(QueryDict(his_link(link_fields(exp=str(int(now) + DAY)))), now=now).visit_id

    settings.RECOGNITION_LINK_MAX_LIFETIME_SECONDS = 3600
    error = refusal(his_link(link_fields(exp=str(int(now) + 7200))), now=now)
    assert error.reason == "lifetime" and "1 小时" in error.message


def test_make_query_never_issues_a_link_longer_than_the_cap(secret, settings):
    now = time.time()
    args = {
        "patient_id": "P1",
        "visit_id": "V1",
        "doctor": "D1001",
        "dept": "1001",
        "items": [OrderedItem("exam", "CT0012", "", "YZ001")],
        "now": now,
    }
    assert QueryDict(links.make_query(**args, lifetime=30 * DAY))["exp"] == str(int(now) + DAY)
    settings.RECOGNITION_LINK_LIFETIME_SECONDS = 10 * DAY
    assert QueryDict(links.make_query(**args))["exp"] == str(int(now) + DAY)
    settings.RECOGNITION_LINK_MAX_LIFETIME_SECONDS = 1800
    assert QueryDict(links.make_query(**args))["exp"] == str(int(now) + 1800)


# --------------------------------------------------------------------------- page token out of URLs


@pytest.fixture
def opened(client, recognition, patient):
    """A visit prompted through the API, the page token the prompt page would hold, and its reports."""
    answer = client.post(
        reverse("recognition:api-prompt"),
        json.dumps(prompt_body(patient, ITEMS)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    ).json()
    items = tuple(OrderedItem(i["kind"], i["itemCode"], "", i["orderId"]) for i in ITEMS)
    ctx = LinkContext(
        patient["patientId"], patient["visitId"], "D1001", "1001", items, int(time.time()) + 600
    )
    by_order = {i["orderId"]: i for i in answer["items"]}
    lab = by_order["YZ003"]["results"][0]
    exam = by_order["YZ001"]["results"][0]
    return {
        "token": ctx.to_token(),
        "lab": {"org": lab["externalOrgCode"], "report": lab["reportId"]},
        "exam": {"org": exam["externalOrgCode"], "report": exam["reportId"]},
    }


@pytest.mark.parametrize(
    "endpoint,kind", [("recognition:embed-lab-pdf", "lab"), ("recognition:embed-exam-view", "exam")]
)
def test_report_endpoints_refuse_a_page_token_in_the_url(client, opened, endpoint, kind):
    report = opened[kind]
    in_url = reverse(endpoint) + "?" + urlencode({"ctx": opened["token"], **report})
    assert client.get(in_url).status_code == 405
    answer = client.post(in_url, json.dumps(report), content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "ctx" and answer.json()["errors"][0]["rule"] == "location"
    both = client.post(
        in_url, json.dumps({"ctx": opened["token"], **report}), content_type="application/json"
    )
    assert both.status_code == 400
    assert not AuditEntry.objects.exists()


def test_the_lab_pdf_is_served_for_a_token_in_the_body_and_audited(client, opened):
    answer = client.post(
        reverse("recognition:embed-lab-pdf"),
        json.dumps({"ctx": opened["token"], **opened["lab"]}),
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF-")
    assert answer["Cache-Control"] == "no-store" and answer["Referrer-Policy"] == "no-referrer"
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.kind, entry.report_id) == ("view_report", "lab", opened["lab"]["report"])


def test_the_exam_viewer_link_is_answered_for_a_token_in_the_body_and_audited(client, opened, recognition):
    answer = client.post(
        reverse("recognition:embed-exam-view"),
        json.dumps({"ctx": opened["token"], **opened["exam"]}),
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    assert answer.json()["url"].startswith(recognition.viewer_url + "?")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.kind, entry.report_id) == ("view_images", "exam", opened["exam"]["report"])


def test_report_endpoints_answer_bad_input_with_field_errors(client, opened):
    url = reverse("recognition:embed-lab-pdf")
    cases = [
        (b"not json", 400, ""),
        (b"[1]", 400, ""),
        (json.dumps({"ctx": "forged", **opened["lab"]}), 403, "ctx"),
        (
            json.dumps({"ctx": opened["token"], "org": opened["lab"]["org"], "report": "EJY-NOSUCH"}),
            404,
            "reportId",
        ),
    ]
    for body, status, field in cases:
        answer = client.post(url, body, content_type="application/json")
        assert answer.status_code == status, body
        error = answer.json()["errors"][0]
        assert error["field"] == field and re.search(r"[\u4e00-\u9fff]", error["message"])
    assert not AuditEntry.objects.exists()


def test_the_web_servers_access_log_records_paths_without_queries_or_referers(tmp_path):
    """gunicorn as deployed (hospital_interop/gunicorn_conf.py), a real process on a free port."""
    import os
    import signal
    import socket
    import sys

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "access.log"
    env = {**os.environ, "WEB_ACCESS_LOG": str(log), "WEB_WORKERS": "1", "WEB_BIND": f"127.0.0.1:{port}"}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            "python:hospital_interop.gunicorn_conf",
            "hospital_interop.wsgi",
        ],
        cwd=DOCS.parents[1],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    secret_query = "ctx=page-token-secret&idNo=11010519700307123X&pid=P000123"
    try:
        deadline = time.time() + 60
        while True:
            try:
                requests.get(
                    base + "/recognition/embed/lab-pdf?" + secret_query,
                    timeout=2,
                    headers={"Referer": "http://his.example/order?idNo=11010519700307123X"},
                )
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.time() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        requests.post(base + "/recognition/embed/exam-view?" + secret_query, json={}, timeout=5)
        while log.read_text().count("\n") < 2:
            assert time.time() < deadline, "no access log lines"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    lines = log.read_text().splitlines()
    assert '"GET /recognition/embed/lab-pdf HTTP/1.1" 405' in lines[0]
    assert '"POST /recognition/embed/exam-view HTTP/1.1" 400' in lines[1]
    text = log.read_text()
    assert (
        "?" not in text and "page-token-secret" not in text and "110105" not in text and "P000123" not in text
    )
