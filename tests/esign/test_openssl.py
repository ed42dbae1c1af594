"""Checked with the OpenSSL command line, not with the project's code: the CA simulator's
certificates pass strict X.509 verification (RFC 5280 key identifiers, basic constraints, key
usage), and a stored report signature verifies over its original text.

OpenSSL 3.0 needs the SM2 distinguishing ID spelled out for SM2 (GM/T 0009 default
``1234567812345678``): ``-vfyopt distid:…`` for certificates, ``-pkeyopt distid:…`` for
``pkeyutl``."""

import base64
import subprocess

import pytest

from esign import certs, services
from esign.demo import create_sample_reports
from hospital_interop.municipal import gm

from .conftest import new_identity
from .helpers import WS1, qr_session

DISTID = "distid:1234567812345678"


def openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True)


def write_pem(path, certificate_b64: str):
    path.write_text(certs.to_pem(base64.b64decode(certificate_b64)))
    return path


def test_ca_simulator_certificates_pass_strict_x509_verification(ca_sim, tmp_path):
    client = ca_sim.client()
    ca_pem = write_pem(tmp_path / "ca.pem", client.ca_certificate())
    ident = new_identity(ca_sim, "钱严格")
    cloud = client.get_cert_info(user_id=ident.ca_user_id)
    key = gm.generate_sm2_key()
    ukey = client.apply_ukey_certificate(
        user_id=ident.ca_user_id, public_key_hex=key.public_key().hex, key_serial="UKSTRICT01"
    )
    for name, info in (("cloud", cloud), ("ukey", ukey)):
        leaf = write_pem(tmp_path / f"{name}.pem", info.certificate)
        result = openssl("verify", "-x509_strict", "-vfyopt", DISTID, "-CAfile", str(ca_pem), str(leaf))
        assert result.returncode == 0 and result.stdout.strip().endswith(": OK"), (
            result.stdout + result.stderr
        )
        text = openssl("x509", "-in", str(leaf), "-noout", "-text").stdout
        assert "X509v3 Subject Key Identifier" in text and "X509v3 Authority Key Identifier" in text
    ca_text = openssl("x509", "-in", str(ca_pem), "-noout", "-text").stdout
    assert (
        "X509v3 Subject Key Identifier" in ca_text and "CA:TRUE" in ca_text and "Certificate Sign" in ca_text
    )
    # the leaf's Authority Key Identifier is the CA's Subject Key Identifier
    ca_cert = certs.load_certificate(client.ca_certificate())
    assert ca_cert.subject_key_id and ca_cert.subject_key_id.hex(":").upper() in text
    # a certificate from another CA (same names) is refused
    other_key = gm.generate_sm2_key()
    forged = certs.build_certificate(
        ca_key=other_key,
        issuer=[("C", "CN"), ("O", "模拟数字认证中心"), ("CN", "模拟 SM2 医疗 CA")],
        subject=[("CN", "x")],
        public_key=key.public_key(),
        serial=7,
        not_before=ca_cert.not_before,
        not_after=ca_cert.not_after,
    )
    forged_pem = write_pem(tmp_path / "forged.pem", base64.b64encode(forged).decode())
    assert (
        openssl(
            "verify", "-x509_strict", "-vfyopt", DISTID, "-CAfile", str(ca_pem), str(forged_pem)
        ).returncode
        != 0
    )


@pytest.mark.django_db
def test_a_stored_signature_verifies_with_the_openssl_cli(ca_on, signer, tmp_path):
    ident = new_identity(ca_on, "冯互操作")
    user = signer("feng", ident)
    qr_session(user, ca_on, ident.staff_no)
    ca_on.grant_auto_sign(ident.ca_user_id, ident.staff_no)
    report = create_sample_reports(1, modules=["clinical"])[0]
    sig = services.approve_report(report.pk, user, workstation_id=WS1).signature
    sig.refresh_from_db()  # what is stored

    (tmp_path / "text").write_bytes(sig.original_text.encode("utf-8"))
    (tmp_path / "sig.der").write_bytes(base64.b64decode(sig.signature))
    cert_pem = write_pem(tmp_path / "cert.pem", sig.certificate)
    pub = openssl("x509", "-in", str(cert_pem), "-pubkey", "-noout")
    assert pub.returncode == 0, pub.stderr
    (tmp_path / "pub.pem").write_text(pub.stdout)
    serial = openssl("x509", "-in", str(cert_pem), "-noout", "-serial").stdout.strip()
    assert serial == f"serial={sig.cert_sn}"

    def verify(text_file: str) -> subprocess.CompletedProcess:
        return openssl(
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(tmp_path / "pub.pem"),
            "-rawin",
            "-digest",
            "sm3",
            "-in",
            str(tmp_path / text_file),
            "-sigfile",
            str(tmp_path / "sig.der"),
            "-pkeyopt",
            DISTID,
        )

    good = verify("text")
    assert good.returncode == 0 and "Signature Verified Successfully" in good.stdout, (
        good.stdout + good.stderr
    )
    digest = openssl("dgst", "-sm3", "-r", str(tmp_path / "text")).stdout.split()[0]
    assert digest == sig.original_hash
    # one byte of the text changed: OpenSSL refuses it
    (tmp_path / "tampered").write_bytes(
        sig.original_text.replace('"result":"102"', '"result":"103"').encode("utf-8")
    )
    bad = verify("tampered")
    assert bad.returncode != 0 and "Signature Verification Failure" in bad.stdout
