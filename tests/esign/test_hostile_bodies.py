"""The signing pages' JSON requests with a field of the wrong JSON type: a precise 400 naming the
field, and nothing signed or opened. Found 2026-12-05 probing the pages' JSON endpoints: a number,
list or object as ``signature`` reached ``base64.b64decode`` and as ``keySerial`` ``str.strip``
(TypeError / AttributeError: a 500) on UKey login and approval."""

import json

import pytest

from esign.demo import create_sample_reports
from esign.models import ReportSignature, SigningSession

from .conftest import agent_sign
from .helpers import browser_client, ukey_session

pytestmark = pytest.mark.django_db
NOT_TEXT = [1, 1.5, True, None, ["x"], {"a": "b"}]


def _assert_refused(answer, field: str):
    body = answer.json()
    assert answer.status_code == 400, body
    assert body["ok"] is False and body["code"] == "bad_input" and body["field"] == field
    assert field in body["message"] and "必须是文本" in body["message"]


@pytest.mark.parametrize("field", ["challenge", "certificate", "signature", "keySerial"])
def test_ukey_login_refuses_a_field_that_is_not_text(field, client, ca_on, identities, signer):
    alice = identities["alice"]
    c = browser_client(client, signer("u-alice", alice))
    for value in NOT_TEXT:
        challenge = c.post("/esign/ukey/challenge").json()["challenge"]
        signed = agent_sign(alice, challenge)
        body = {
            "challenge": challenge,
            "certificate": signed["certificate"],
            "signature": signed["signature"],
            "keySerial": signed["keySerial"],
            field: value,
        }
        answer = c.post("/esign/ukey/login", json.dumps(body), content_type="application/json")
        if value is None:  # JSON null reads as missing: the usual refusal, not a 500
            assert answer.status_code in (400, 403) and answer.json()["ok"] is False
            continue
        _assert_refused(answer, field)
    assert not SigningSession.objects.exists()


@pytest.mark.parametrize("field", ["signature", "certificate"])
def test_approval_refuses_a_field_that_is_not_text(field, client, ca_on, identities, signer):
    alice = identities["alice"]
    user = signer("u-alice", alice)
    ukey_session(user, alice)
    report = create_sample_reports(1)[0]
    c = browser_client(client, user)
    prepared = c.post(f"/esign/reports/{report.pk}/sign-data").json()
    signed = agent_sign(alice, prepared["data"], cert_sn=prepared["certSn"])
    for value in (7, ["x"], {"a": "b"}):
        body = {"signature": signed["signature"], "certificate": signed["certificate"], field: value}
        answer = c.post(
            f"/esign/reports/{report.pk}/approve", json.dumps(body), content_type="application/json"
        )
        _assert_refused(answer, field)
    report.refresh_from_db()
    assert report.status != "approved" and not ReportSignature.objects.exists()
