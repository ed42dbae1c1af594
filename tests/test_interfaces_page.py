"""The interface browser: catalogue, every interface's field page, the payload checker."""

import json

import pytest

from hospital_interop.municipal.specs import load_catalogue

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_client(client, make_user):
    make_user("ops-if", role="ops")
    client.login(username="ops-if", password="pw-for-tests-0")
    return client


def test_catalogue_lists_every_interface(ops_client):
    text = ops_client.get("/interfaces/").content.decode()
    for spec in load_catalogue().interfaces:
        assert spec.code in text
    assert "检验互认接口文档" in text


def test_catalogue_search(ops_client):
    text = ops_client.get("/interfaces/", {"q": "pdf"}).content.decode()
    assert "LAB_REPORT_PDF" in text and "OP_REGISTRATION" not in text


@pytest.mark.parametrize("code", [s.code for s in load_catalogue().interfaces])
def test_every_interface_page_shows_its_fields(ops_client, code):
    spec = load_catalogue().interface(code)
    response = ops_client.get(f"/interfaces/{code}/")
    assert response.status_code == 200
    text = response.content.decode()
    assert spec.path in text
    for path, f in list(spec.request.walk())[:15]:
        assert path in text and f.title in text


def test_payload_checker_reports_field_errors(ops_client):
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    payload, violations = spec.invalid_example(expected=True)
    text = ops_client.post(
        "/interfaces/LAB_REPORT_DETAIL/", {"payload": json.dumps(payload)}
    ).content.decode()
    assert f"发现 {len(violations)} 处问题" in text
    for field, rule in violations:
        assert field in text and rule in text
    ok = ops_client.post(
        "/interfaces/LAB_REPORT_DETAIL/", {"payload": json.dumps(spec.example(2))}
    ).content.decode()
    assert "报文符合接口规范" in ok
    bad_json = ops_client.post("/interfaces/LAB_REPORT_DETAIL/", {"payload": "{oops"}).content.decode()
    assert "不是有效的 JSON" in bad_json


def test_clinicians_cannot_open_the_catalogue(client, make_user):
    make_user("doc-if", role="clinician")
    client.login(username="doc-if", password="pw-for-tests-0")
    assert client.get("/interfaces/").status_code == 403


def test_unknown_interface_is_404(ops_client):
    assert ops_client.get("/interfaces/NOPE/").status_code == 404
