"""SM2 X.509 v3 certificates: built by the CA simulator, read and checked by the hospital side.

Pure Python, no Django: the simulator process imports it too. The certificates are ordinary
DER X.509 v3 with an SM2 public key (id-ecPublicKey, curve 1.2.156.10197.1.301) signed with
SM3withSM2 (1.2.156.10197.1.501), the shape Chinese CAs issue (GM/T 0015). ``cryptography``
parses the names and dates; the SM2 parts (public key, signature check) go through
``hospital_interop.municipal.gm``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from hospital_interop.municipal import gm

OID_SM3_WITH_SM2 = "1.2.156.10197.1.501"
OID_USER_ID = "0.9.2342.19200300.100.1.1"  # UID: the CA's user id
OID_SUBJECT_KEY_ID = "2.5.29.14"
OID_AUTHORITY_KEY_ID = "2.5.29.35"

# -- a minimal DER encoder (only what a certificate needs) --------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _len(len(body)) + body


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _int(v: int) -> bytes:
    return _tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return _tlv(0x06, bytes(out))


def _time(dt: datetime) -> bytes:
    dt = dt.astimezone(UTC)
    if 1950 <= dt.year < 2050:
        return _tlv(0x17, dt.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, dt.strftime("%Y%m%d%H%M%SZ").encode())


_NAME_OIDS = {
    "C": "2.5.4.6",
    "O": "2.5.4.10",
    "OU": "2.5.4.11",
    "CN": "2.5.4.3",
    "serialNumber": "2.5.4.5",
    "UID": OID_USER_ID,
}


def _name(attrs: list[tuple[str, str]]) -> bytes:
    rdns = []
    for key, value in attrs:
        tag = 0x13 if key in ("C", "serialNumber") else 0x0C  # PrintableString / UTF8String
        rdns.append(_tlv(0x31, _seq(_oid(_NAME_OIDS[key]), _tlv(tag, value.encode("utf-8")))))
    return _seq(*rdns)


_SIG_ALG = _seq(_oid(OID_SM3_WITH_SM2))
_SPKI_ALG = _seq(_oid("1.2.840.10045.2.1"), _oid("1.2.156.10197.1.301"))


def key_identifier(public_key: gm.SM2PublicKey) -> bytes:
    """The key identifier of RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits.

    Only an identifier (it links a certificate's Authority Key Identifier to its issuer's
    Subject Key Identifier when chains are built); nothing relies on SHA-1 for security.
    """
    return hashlib.sha1(bytes.fromhex(public_key.hex), usedforsecurity=False).digest()


def build_certificate(
    *,
    ca_key: gm.SM2PrivateKey,
    issuer: list[tuple[str, str]],
    subject: list[tuple[str, str]],
    public_key: gm.SM2PublicKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    is_ca: bool = False,
) -> bytes:
    """DER of an X.509 v3 certificate signed by ``ca_key`` with SM3withSM2.

    Extensions (RFC 5280): basicConstraints (critical; CA:TRUE for a CA), keyUsage (critical;
    keyCertSign + cRLSign for a CA, digitalSignature + nonRepudiation otherwise), Subject Key
    Identifier of ``public_key`` and Authority Key Identifier of ``ca_key``, so that strict
    validators (``openssl verify -x509_strict``) accept the chain.
    """
    point = bytes.fromhex(public_key.hex)  # 04||x||y
    spki = _seq(_SPKI_ALG, _tlv(0x03, b"\x00" + point))
    basic = _seq(_tlv(0x01, b"\xff")) if is_ca else _seq()
    key_usage = _tlv(
        0x03, b"\x01\x06" if is_ca else b"\x06\xc0"
    )  # CA: keyCertSign|cRLSign; else digitalSignature|nonRepudiation
    ski = _tlv(0x04, key_identifier(public_key))
    aki = _seq(_tlv(0x80, key_identifier(ca_key.public_key())))  # [0] IMPLICIT KeyIdentifier
    exts = _seq(
        _seq(_oid("2.5.29.19"), _tlv(0x01, b"\xff"), _tlv(0x04, basic)),
        _seq(_oid("2.5.29.15"), _tlv(0x01, b"\xff"), _tlv(0x04, key_usage)),
        _seq(_oid(OID_SUBJECT_KEY_ID), _tlv(0x04, ski)),
        _seq(_oid(OID_AUTHORITY_KEY_ID), _tlv(0x04, aki)),
    )
    tbs = _seq(
        _tlv(0xA0, _int(2)),
        _int(serial),
        _SIG_ALG,
        _name(issuer),
        _seq(_time(not_before), _time(not_after)),
        _name(subject),
        spki,
        _tlv(0xA3, exts),
    )
    signature = ca_key.sign(tbs)  # DER SEQUENCE{r,s}
    return _seq(tbs, _SIG_ALG, _tlv(0x03, b"\x00" + signature))


# -- reading ------------------------------------------------------------------------------------


class CertificateError(ValueError):
    """The bytes are not an SM2 certificate this system can read."""


@dataclass(frozen=True)
class Certificate:
    der: bytes
    serial: str  # upper-case hex, the form CAs print
    subject_cn: str
    subject_uid: str
    subject_serial: str  # the staff number (工号)
    subject_ou: str
    issuer_cn: str
    not_before: datetime
    not_after: datetime
    public_key: gm.SM2PublicKey
    tbs: bytes
    signature: bytes
    subject_key_id: bytes = b""  # empty when the certificate has no Subject Key Identifier

    @property
    def b64(self) -> str:
        return base64.b64encode(self.der).decode()

    def is_current(self, at: datetime | None = None) -> bool:
        at = at or datetime.now(UTC)
        return self.not_before <= at <= self.not_after

    def signed_by(self, issuer_public_key: gm.SM2PublicKey) -> bool:
        return issuer_public_key.verify(self.tbs, self.signature)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """SM3withSM2 signature (DER r,s) of ``data`` by this certificate's key."""
        return self.public_key.verify(data, signature)


def _attr(name: x509.Name, oid) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _subject_key_id(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return b""


def _read_spki_point(tbs: bytes) -> bytes:
    """The subjectPublicKey bit string of a v3 TBSCertificate (the 7th element)."""
    from Cryptodome.Util.asn1 import DerBitString, DerSequence

    seq = DerSequence().decode(tbs)
    spki = DerSequence().decode(seq[6])
    if spki[0] != _SPKI_ALG:
        raise CertificateError("not an SM2 public key")
    return DerBitString().decode(spki[1]).value


def load_certificate(data: bytes | str) -> Certificate:
    """From DER bytes, Base64 text or PEM; raises CertificateError."""
    try:
        if isinstance(data, str):
            text = data.strip()
            if text.startswith("-----BEGIN"):
                text = "".join(ln for ln in text.splitlines() if not ln.startswith("-----"))
            data = base64.b64decode(text, validate=True)
        cert = x509.load_der_x509_certificate(bytes(data))
        if cert.signature_algorithm_oid.dotted_string != OID_SM3_WITH_SM2:
            raise CertificateError("certificate is not signed with SM3withSM2")
        point = _read_spki_point(cert.tbs_certificate_bytes)
        public_key = gm.load_public_key_hex(point.hex())
        subject_key_id = _subject_key_id(cert)
    except CertificateError:
        raise
    except (ValueError, TypeError, IndexError, binascii.Error) as exc:
        raise CertificateError(f"cannot read certificate: {exc}") from None
    return Certificate(
        der=bytes(data),
        serial=f"{cert.serial_number:X}",
        subject_cn=_attr(cert.subject, NameOID.COMMON_NAME),
        subject_uid=_attr(cert.subject, NameOID.USER_ID),
        subject_serial=_attr(cert.subject, NameOID.SERIAL_NUMBER),
        subject_ou=_attr(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        issuer_cn=_attr(cert.issuer, NameOID.COMMON_NAME),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        public_key=public_key,
        tbs=cert.tbs_certificate_bytes,
        signature=cert.signature,
        subject_key_id=subject_key_id,
    )


def to_pem(der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    return (
        "-----BEGIN CERTIFICATE-----\n"
        + "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
        + "\n-----END CERTIFICATE-----\n"
    )
