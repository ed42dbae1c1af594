"""The UKey agent answers only its own page: the real agent process over loopback, spoken to the way
a browser (or a DNS-rebinding attacker's page) would — Origin, Host, preflight — and the way a
signer uses it: the PIN for every signing batch, an idle log-out, the PIN retry counter."""

import base64
import json
import time

import pytest
import requests

from esign import certs, ukey_agent

from .conftest import PIN, _stop, new_identity, start_agent

PAGE = "http://lis.hospital.example:8000"  # the origin the agent is configured to serve
EVIL = "https://evil.example"
ITEMS = [base64.b64encode(f"报告 {n} 的签名原文".encode()).decode() for n in range(3)]


@pytest.fixture
def agent(ca_sim, tmp_path):
    """A fresh UKey (full PIN retries) served by a real agent process that allows only ``PAGE``."""
    ident = new_identity(ca_sim, "赵持钥")
    proc = start_agent(ca_sim, ident, tmp_path, allow_origins=[PAGE])
    yield ident
    _stop(proc)


def call(
    ident,
    method: str,
    path: str,
    *,
    origin: str | None = None,
    host: str | None = None,
    body: dict | None = None,
    headers: dict | None = None,
) -> requests.Response:
    """One HTTP request to the agent at 127.0.0.1, with the browser headers given."""
    h = dict(headers or {})
    if origin is not None:
        h["Origin"] = origin
    if host is not None:
        h["Host"] = host
    return requests.request(method, ident.agent_url + path, json=body, headers=h, timeout=10)


def port(ident) -> int:
    return int(ident.agent_url.rsplit(":", 1)[1])


def retries_in_keystore(ident) -> int:
    return json.loads(ident.keystore.read_text())["retriesLeft"]


def sign_body(ident, pin: str | None = PIN, items: list[str] = ITEMS) -> dict:
    body = {"certSn": ident.ukey_cert_sn, "items": items}
    if pin is not None:
        body["pin"] = pin
    return body


def assert_refused_without_signature(response: requests.Response, code: str) -> None:
    assert response.status_code == 403, response.text
    answer = response.json()
    assert answer["code"] == code and answer["message"]
    assert "signature" not in answer and "signatures" not in answer and "certificate" not in answer
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Private-Network" not in response.headers


def test_a_foreign_origin_gets_403_before_the_pin_check_with_no_signature_and_no_retry_counted(agent):
    # a correct PIN from a foreign page: no signature
    assert_refused_without_signature(
        call(agent, "POST", "/api/v1/sign", origin=EVIL, body=sign_body(agent)), "FORBIDDEN_ORIGIN"
    )
    # wrong PINs from a foreign page: nothing is counted, the key cannot be locked from there
    for _ in range(ukey_agent.MAX_RETRIES):
        assert_refused_without_signature(
            call(agent, "POST", "/api/v1/sign", origin=EVIL, body=sign_body(agent, pin="000000")),
            "FORBIDDEN_ORIGIN",
        )
        assert_refused_without_signature(
            call(
                agent,
                "POST",
                "/api/v1/login",
                origin=EVIL,
                body={"certSn": agent.ukey_cert_sn, "pin": "000000"},
            ),
            "FORBIDDEN_ORIGIN",
        )
    assert retries_in_keystore(agent) == ukey_agent.MAX_RETRIES
    # reading the key from a foreign page leaks neither its serial nor its certificate
    for path in ("/api/v1/status", "/api/v1/certs"):
        response = call(agent, "GET", path, origin=EVIL)
        assert_refused_without_signature(response, "FORBIDDEN_ORIGIN")
        assert agent.ukey_serial not in response.text and agent.ukey_cert_sn not in response.text
    # `Origin: null` (sandboxed frame, file://, no-referrer form) is foreign too
    assert_refused_without_signature(
        call(agent, "POST", "/api/v1/sign", origin="null", body=sign_body(agent)), "FORBIDDEN_ORIGIN"
    )
    assert call(agent, "GET", "/api/v1/status").json()["retriesLeft"] == ukey_agent.MAX_RETRIES


def test_a_foreign_host_header_gets_403_so_dns_rebinding_reaches_nothing(agent):
    # a rebinding page at evil.example:PORT resolves to 127.0.0.1: same-origin for the browser, so
    # its GETs carry no Origin and its POSTs carry its own origin; only the Host header tells
    rebound = f"evil.example:{port(agent)}"
    rebound_origin = f"http://{rebound}"
    for origin in (None, rebound_origin, PAGE):
        assert_refused_without_signature(
            call(agent, "POST", "/api/v1/sign", host=rebound, origin=origin, body=sign_body(agent)),
            "FORBIDDEN_HOST",
        )
        assert_refused_without_signature(
            call(
                agent,
                "POST",
                "/api/v1/sign",
                host=rebound,
                origin=origin,
                body=sign_body(agent, pin="000000"),
            ),
            "FORBIDDEN_HOST",
        )
        status = call(agent, "GET", "/api/v1/status", host=rebound, origin=origin)
        assert_refused_without_signature(status, "FORBIDDEN_HOST")
        assert agent.ukey_serial not in status.text
    # a loopback name on another port is not this agent either
    assert_refused_without_signature(
        call(agent, "GET", "/api/v1/status", host=f"127.0.0.1:{port(agent) + 1}"), "FORBIDDEN_HOST"
    )
    assert retries_in_keystore(agent) == ukey_agent.MAX_RETRIES
    # the loopback names with the agent's port are the agent
    for host in (
        f"127.0.0.1:{port(agent)}",
        f"localhost:{port(agent)}",
        f"LocalHost:{port(agent)}",
        f"[::1]:{port(agent)}",
    ):
        assert call(agent, "GET", "/api/v1/status", host=host, origin=PAGE).status_code == 200, host


def test_the_allowed_origin_gets_cors_headers_and_a_signed_batch(agent):
    status = call(agent, "GET", "/api/v1/status", origin=PAGE)
    assert status.status_code == 200
    assert status.headers["Access-Control-Allow-Origin"] == PAGE and "Origin" in status.headers["Vary"]
    assert status.json()["keySerial"] == agent.ukey_serial
    signed = call(agent, "POST", "/api/v1/sign", origin=PAGE, body=sign_body(agent))
    assert signed.status_code == 200, signed.text
    assert signed.headers["Access-Control-Allow-Origin"] == PAGE
    answer = signed.json()
    cert = certs.load_certificate(answer["certificate"])
    assert answer["certSn"] == cert.serial == agent.ukey_cert_sn and answer["keySerial"] == agent.ukey_serial
    assert len(answer["signatures"]) == len(ITEMS)
    for item, signature in zip(ITEMS, answer["signatures"], strict=True):
        assert cert.verify(base64.b64decode(item), base64.b64decode(signature))


def test_a_preflight_from_a_foreign_origin_gets_no_cors_allow_headers(agent):
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
        "Access-Control-Request-Private-Network": "true",
    }
    foreign = call(agent, "OPTIONS", "/api/v1/sign", origin=EVIL, headers=preflight)
    assert foreign.status_code == 403
    assert not [h for h in foreign.headers if h.lower().startswith("access-control-allow")]
    allowed = call(agent, "OPTIONS", "/api/v1/sign", origin=PAGE, headers=preflight)
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == PAGE
    assert allowed.headers["Access-Control-Allow-Private-Network"] == "true"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]


def test_a_browser_request_marked_cross_site_without_an_origin_is_refused(agent):
    # a foreign page's navigation or <script src> to the agent carries no Origin, but the browser
    # marks it cross-site; a local program (curl, the tests) sends neither header and is served
    assert_refused_without_signature(
        call(
            agent,
            "GET",
            "/api/v1/certs",
            headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        ),
        "FORBIDDEN_ORIGIN",
    )
    assert call(agent, "GET", "/api/v1/certs").json()["certs"][0]["certSn"] == agent.ukey_cert_sn


def test_signing_after_a_login_still_needs_the_pin_for_each_batch(agent):
    assert call(
        agent, "POST", "/api/v1/login", origin=PAGE, body={"certSn": agent.ukey_cert_sn, "pin": PIN}
    ).json()["ok"]
    assert call(agent, "GET", "/api/v1/status", origin=PAGE).json()["loggedIn"] is True
    refused = call(agent, "POST", "/api/v1/sign", origin=PAGE, body=sign_body(agent, pin=None))
    assert refused.status_code == 401
    answer = refused.json()
    assert answer["code"] == "PIN_REQUIRED" and answer["field"] == "pin" and answer["rule"] == "required"
    assert "signature" not in answer and "signatures" not in answer
    # a batch signed with the PIN leaves nothing open for the next one
    assert (
        len(call(agent, "POST", "/api/v1/sign", origin=PAGE, body=sign_body(agent)).json()["signatures"]) == 3
    )
    again = call(agent, "POST", "/api/v1/sign", origin=PAGE, body=sign_body(agent, pin=None))
    assert again.status_code == 401 and again.json()["code"] == "PIN_REQUIRED"


def test_the_agent_logs_out_after_the_idle_timeout(ca_sim, tmp_path):
    ident = new_identity(ca_sim, "孙空闲")
    proc = start_agent(ca_sim, ident, tmp_path, allow_origins=[PAGE], idle_logout=1)
    try:
        assert call(
            ident, "POST", "/api/v1/login", origin=PAGE, body={"certSn": ident.ukey_cert_sn, "pin": PIN}
        ).json()["ok"]
        time.sleep(1.5)  # longer than the configured idle log-out
        status = call(ident, "GET", "/api/v1/status", origin=PAGE).json()
        assert status["loggedIn"] is False and status["present"] is True
    finally:
        _stop(proc)


def test_only_the_allowed_origins_wrong_pins_count_and_six_of_them_lock_the_key(agent):
    for _ in range(3):
        call(agent, "POST", "/api/v1/sign", origin=EVIL, body=sign_body(agent, pin="000000"))
    for tried in range(1, ukey_agent.MAX_RETRIES):
        answer = call(agent, "POST", "/api/v1/sign", origin=PAGE, body=sign_body(agent, pin="000000"))
        assert answer.status_code == 401 and answer.json()["code"] == "PIN_INCORRECT"
        assert answer.json()["retriesLeft"] == ukey_agent.MAX_RETRIES - tried == retries_in_keystore(agent)
        assert answer.headers["Access-Control-Allow-Origin"] == PAGE  # the page can show the retries left
    last = call(agent, "POST", "/api/v1/sign", origin=PAGE, body=sign_body(agent, pin="000000")).json()
    assert last["code"] == "LOCKED" and last["retriesLeft"] == 0
    # locked: even the right PIN signs nothing
    locked = call(agent, "POST", "/api/v1/sign", origin=PAGE, body=sign_body(agent))
    assert (
        locked.status_code == 401 and locked.json()["code"] == "LOCKED" and "signatures" not in locked.json()
    )
    assert call(agent, "GET", "/api/v1/status", origin=PAGE).json()["locked"] is True


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"pin": PIN}, "items", "required"),
        ({"pin": PIN, "items": "not-a-list"}, "items", "type"),
        ({"pin": PIN, "items": ["not base64!"]}, "items", "base64"),
        ({"pin": PIN, "items": [""]}, "items", "required"),
        ({"pin": PIN, "items": ITEMS * 100}, "items", "max_count"),
        ({"pin": ["246810"], "items": ITEMS}, "pin", "type"),
    ],
)
def test_a_malformed_signing_request_gets_a_precise_error_and_counts_no_retry(agent, body, field, rule):
    body = {"certSn": agent.ukey_cert_sn, **body}
    response = call(agent, "POST", "/api/v1/sign", origin=PAGE, body=body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert (answer["field"], answer["rule"]) == (field, rule) and answer["message"]
    assert "signatures" not in answer and retries_in_keystore(agent) == ukey_agent.MAX_RETRIES


def test_a_request_body_that_is_not_a_json_object_gets_400(agent):
    for raw, content_type in (
        (b"[1, 2]", "application/json"),
        (b"{not json", "application/json"),
        (b'{"pin": "246810"}', "text/plain"),
    ):
        response = requests.post(
            agent.agent_url + "/api/v1/sign",
            data=raw,
            timeout=10,
            headers={"Content-Type": content_type, "Origin": PAGE},
        )
        assert response.status_code in (400, 415), (raw, response.status_code)
        assert response.json()["code"] in ("BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE")


def test_the_agent_refuses_to_start_with_a_wildcard_or_malformed_origin(tmp_path):
    for bad in ("*", "https://evil.example/path", "ftp://lis.hospital.example", "lis.hospital.example"):
        with pytest.raises(SystemExit):
            ukey_agent.main(["serve", "--keystore", str(tmp_path / "none.json"), "--allow-origin", bad])


def test_allowed_origins_default_to_the_demo_server_and_are_compared_as_browsers_serialise_them():
    assert ukey_agent.parse_origin("HTTP://LIS.Hospital.example:80") == "http://lis.hospital.example"
    assert ukey_agent.parse_origin("https://lis.hospital.example:443/") == "https://lis.hospital.example"
    assert ukey_agent.DEFAULT_ORIGINS == ("http://127.0.0.1:8000", "http://localhost:8000")


@pytest.mark.parametrize("length", ["9" * 5000, "00000000000000000000000000000001", "99999999999"])
def test_a_content_length_of_any_size_is_answered_precisely(agent, length):
    """A Content-Length of 5,000 digits reached ``int()``, which refuses 4,300+ (a 500); one with
    leading zeros is its value; a huge one is too large, before anything is read."""
    import socket

    with socket.create_connection(("127.0.0.1", port(agent)), timeout=10) as s:
        s.sendall(
            f"POST /api/v1/sign HTTP/1.1\r\nHost: 127.0.0.1:{port(agent)}\r\nOrigin: {PAGE}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{{".encode()
        )
        head = s.recv(65536).decode(errors="replace")
    expected = "400" if length.lstrip("0") == "1" else "413"  # "{" alone is no JSON object
    assert head.startswith(f"HTTP/1.0 {expected}") or head.startswith(f"HTTP/1.1 {expected}"), head[:200]
