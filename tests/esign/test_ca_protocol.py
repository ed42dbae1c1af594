"""The reference vendor protocol end to end: the adapter against the simulator process."""

import base64

import pytest
import requests

from esign import certs, protocol
from esign.client import CAError, CAUnavailable, ReferenceVendorClient

from .conftest import APP_ID, fresh_staff_no, new_identity, past, valid_id_number


def test_requests_and_answers_are_hmac_sm3_signed(ca_sim):
    body = protocol.sign_request(APP_ID, ca_sim.secret, {"staffNo": "nobody"})
    assert body["signAlg"] == "HMAC-SM3" and len(body["sign"]) == 64
    answer = requests.post(f"{ca_sim.url}/service/v1/queryUser", json=body, timeout=5).json()
    assert answer["code"] == "3001" and protocol.check_mac(ca_sim.secret, answer)
    # replaying the same nonce is refused
    again = requests.post(f"{ca_sim.url}/service/v1/queryUser", json=body, timeout=5).json()
    assert again["code"] == "1004"
    # a tampered field breaks the signature
    forged = {**protocol.sign_request(APP_ID, ca_sim.secret, {"staffNo": "a"}), "staffNo": "b"}
    assert (
        requests.post(f"{ca_sim.url}/service/v1/queryUser", json=forged, timeout=5).json()["code"] == "1001"
    )


def test_wrong_secret_and_unreachable_server_become_clear_errors(ca_sim):
    with pytest.raises(CAError) as wrong:
        ReferenceVendorClient(ca_sim.url, APP_ID, b"not-the-secret").query_user(staff_no="x")
    assert wrong.value.kind == "auth" and "验证密钥" in wrong.value.message
    with pytest.raises(CAUnavailable):
        ReferenceVendorClient("http://127.0.0.1:9", APP_ID, ca_sim.secret, timeout=1).query_user(staff_no="x")


def test_hmac_sha256_is_a_setting(ca_sim):
    client = ReferenceVendorClient(ca_sim.url, APP_ID, ca_sim.secret, algorithm="HMAC-SHA256")
    assert client.query_user(staff_no="nobody-here") is None


def test_user_operations(ca_sim):
    client = ca_sim.client()
    staff_no, id_number = fresh_staff_no(), valid_id_number()
    user = client.add_user(name="赵测试", id_number=id_number, staff_no=staff_no, mobile="13700000000")
    assert (
        user.user_id.startswith("U") and user.id_number_masked == id_number[:6] + "********" + id_number[-4:]
    )
    with pytest.raises(CAError) as exists:
        client.add_user(name="赵测试", id_number=id_number, staff_no=fresh_staff_no())
    assert exists.value.kind == "user_exists"
    with pytest.raises(CAError) as bad:
        client.add_user(
            name="赵测试",
            id_number=id_number[:-1] + ("0" if id_number[-1] != "0" else "1"),
            staff_no=fresh_staff_no(),
        )
    assert bad.value.field == "idNumber" and "校验位" in bad.value.message
    assert client.query_user(staff_no=staff_no).user_id == user.user_id
    assert client.query_user(id_number=id_number).user_id == user.user_id
    assert client.modify_user(user_id=user.user_id, mobile="13600000000").mobile == "13600000000"
    assert client.query_user(user_id=user.user_id).mobile == "13600000000"


def test_certificates_are_sm2_x509_with_serial_validity_and_revocation(ca_sim):
    ident = new_identity(ca_sim, "钱证书")
    client = ca_sim.client()
    info = client.get_cert_info(user_id=ident.ca_user_id)
    assert info.cert_sn == ident.cert_sn and info.algorithm == "SM3withSM2" and info.status == "VALID"
    cert = certs.load_certificate(info.certificate)
    assert (
        cert.subject_cn == "钱证书"
        and cert.subject_serial == ident.staff_no
        and cert.subject_uid == ident.ca_user_id
    )
    assert cert.serial == info.cert_sn and cert.is_current()
    ca_cert = certs.load_certificate(
        requests.post(
            f"{ca_sim.url}/service/v1/getCaCert",
            json=protocol.sign_request(APP_ID, ca_sim.secret, {}),
            timeout=5,
        ).json()["data"]["certificate"]
    )
    assert cert.signed_by(ca_cert.public_key)
    assert client.validate_certificate(certificate=info.certificate).ok
    ca_sim.revoke(info.cert_sn)
    state = client.validate_certificate(certificate=info.certificate)
    assert state.status == "REVOKED" and not state.ok
    expired = ca_sim.reissue(ident.ca_user_id, past(10), past(1))
    assert client.validate_certificate(certificate=expired["certificate"]).status == "EXPIRED"
    # a certificate the CA did not issue
    foreign = certs.build_certificate(
        ca_key=__import__("hospital_interop.municipal.gm", fromlist=["gm"]).generate_sm2_key(),
        issuer=[("CN", "别的 CA")],
        subject=[("CN", "x")],
        public_key=cert.public_key,
        serial=12345,
        not_before=past(1),
        not_after=past(-10),
    )
    assert client.validate_certificate(certificate=base64.b64encode(foreign).decode()).status == "UNTRUSTED"


def test_auto_sign_sign_result_and_verification(ca_sim):
    ident = new_identity(ca_sim, "孙自动")
    client = ca_sim.client()
    with pytest.raises(CAError) as not_open:
        client.auto_sign(user_id=ident.ca_user_id, data=b"report")
    assert not_open.value.kind == "no_auto_sign"
    task = client.enable_auto_sign(user_id=ident.ca_user_id, minutes=10)
    assert client.query_auto_sign_task(user_id=ident.ca_user_id).status == "TOSIGN"
    ca_sim.scan(task.qr_content, ident.staff_no)
    assert client.query_auto_sign_task(user_id=ident.ca_user_id).is_open
    signed = client.auto_sign(user_id=ident.ca_user_id, data="报告原文".encode(), biz_no="R1")
    assert signed.status == "FINISH" and signed.cert_sn == ident.cert_sn and signed.timestamp_token
    again = client.get_sign_result(sign_data_id=signed.sign_data_id)
    assert again.signature == signed.signature
    assert client.verify_signature(
        certificate=signed.certificate, data="报告原文".encode(), signature=signed.signature
    )
    assert not client.verify_signature(
        certificate=signed.certificate, data="报告原文!".encode(), signature=signed.signature
    )
    client.disable_auto_sign(user_id=ident.ca_user_id)
    with pytest.raises(CAError):
        client.auto_sign(user_id=ident.ca_user_id, data=b"report")


def test_push_sign_qr_login_and_mobile_certificate_download(ca_sim):
    ident = new_identity(ca_sim, "李手机")
    client = ca_sim.client()
    job = client.push_sign(user_id=ident.ca_user_id, data=b"x", title="审核")
    assert client.get_sign_result(sign_data_id=job.sign_data_id).status == "TOSIGN"
    ca_sim.confirm_sign(job.sign_data_id, ident.staff_no, action="refuse")
    assert client.get_sign_result(sign_data_id=job.sign_data_id).status == "REFUSE"

    login = client.create_login_qr()
    assert login.qr_content.startswith(ca_sim.url + "/app/qr/")
    assert client.query_login_qr(transaction_id=login.transaction_id).status == "TOSIGN"
    ca_sim.scan(login.qr_content, ident.staff_no)
    done = client.query_login_qr(transaction_id=login.transaction_id)
    assert done.status == "FINISH" and done.user_id == ident.ca_user_id
    cert = certs.load_certificate(done.certificate)
    assert cert.verify(base64.b64decode(done.signed_data), base64.b64decode(done.signature))

    download = client.download_certificate(user_id=ident.ca_user_id)
    assert client.query_certificate_download(transaction_id=download.transaction_id).status == "TOSIGN"
    phone = ca_sim.scan(download.qr_content, ident.staff_no)
    assert certs.load_certificate(phone["certificate"]).serial == ident.cert_sn
    assert client.query_certificate_download(transaction_id=download.transaction_id).status == "FINISH"


class _SignedAnswers:
    """A signing server on loopback that answers every operation with one correctly signed body
    (the shared secret), whatever its data: a server with a bug, or one that changed its format."""

    def __init__(self, secret: bytes):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        owner = self
        self.answer: dict = {}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps(owner.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.secret = secret
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer_with(self, code: str, data) -> None:
        body = {"code": code, "message": "测试", "data": data, "timestamp": protocol.now_ms()}
        body["sign"] = protocol.mac(self.secret, body)
        self.answer = body


@pytest.mark.parametrize(
    ("code", "data", "call"),
    [
        ("0", {}, lambda c: c.get_cert_info(user_id="u1")),  # certSn missing
        ("0", {}, lambda c: c.validate_certificate(certificate="MII=")),  # status missing
        ("0", {}, lambda c: c.timestamp(digest_hex="00" * 32)),  # timestampToken missing
        ("0", ["not", "an", "object"], lambda c: c.query_user(staff_no="x")),
        ("0", "text", lambda c: c.get_sign_result(sign_data_id="s1")),
        ("3001", "text", lambda c: c.query_user(staff_no="x")),  # an error whose data is not an object
    ],
    ids=["no-certSn", "no-status", "no-timestampToken", "data-list", "data-text", "error-data-text"],
)
def test_a_signed_answer_of_the_wrong_shape_is_a_ca_error_not_a_crash(code, data, call):
    """Found 2026-12-05: a correctly signed answer missing a field the adapter reads raised
    KeyError (``d["certSn"]``), and one whose ``data`` was not an object AttributeError or
    TypeError: the signing pages, which handle CAError with a message, answered 500."""
    server = _SignedAnswers(b"s" * 32)
    try:
        server.answer_with(code, data)
        client = ReferenceVendorClient(server.url, APP_ID, server.secret)
        with pytest.raises(CAError) as refused:
            call(client)
        assert refused.value.message and "签名服务器" in refused.value.message
    finally:
        server.server.shutdown()
