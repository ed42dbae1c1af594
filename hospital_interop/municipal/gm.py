"""Chinese national (GM/T) algorithms behind one small API.

* SM3, HMAC-SM3 and SM4 (CBC/ECB with PKCS#7; GCM, an AEAD mode: RFC 8998, GB/T 36624) go
  through ``cryptography`` (OpenSSL, C).
* SM2 (SM3withSM2 signatures, GB/T 32918 / GM/T 0003) goes through ``tongsuopy`` (Tongsuo, C)
  where importable, else through ``gmssl`` (pure Python). ``HOSPITAL_INTEROP_SM2_BACKEND=
  tongsuopy|gmssl`` forces one. Both backends only provide the elliptic-curve core
  ("sign/verify this 32-byte digest e"); the Z value, e = SM3(Z || M), the signature encodings
  (DER ``SEQUENCE{r,s}`` or raw ``r||s``) and the PEM formats are computed here once, so the two
  backends produce identical bytes and verify each other's signatures.

Keys are PKCS#8 (private) and SubjectPublicKeyInfo (public) PEM with the algorithm
``id-ecPublicKey`` and the curve ``SM2`` (1.2.156.10197.1.301), exactly what OpenSSL 3 writes
and reads (``openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2``).
"""

from __future__ import annotations

import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _c_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "DEFAULT_SIGNER_ID",
    "SM2PrivateKey",
    "SM2PublicKey",
    "generate_sm2_key",
    "hmac_sm3",
    "load_private_key_hex",
    "load_private_key_pem",
    "load_public_key_hex",
    "load_public_key_pem",
    "set_sm2_backend",
    "sm2_backend",
    "sm3",
    "sm3_hex",
    "sm4_decrypt",
    "sm4_encrypt",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]

DEFAULT_SIGNER_ID = b"1234567812345678"  # GM/T 0009 default distinguishing identifier

# ---------------------------------------------------------------------------------------------
# SM3 / HMAC-SM3 / SM4
# ---------------------------------------------------------------------------------------------

_SM3 = hashes.SM3()


def sm3(data: bytes) -> bytes:
    """SM3 digest (32 bytes)."""
    h = hashes.Hash(_SM3)
    h.update(data)
    return h.finalize()


def sm3_hex(data: bytes) -> str:
    """SM3 digest as 64 lowercase hex characters."""
    return sm3(data).hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) over SM3, 32 bytes."""
    h = _c_hmac.HMAC(key, _SM3)
    h.update(data)
    return h.finalize()


_SM4_MODES = ("CBC", "ECB")


def _sm4_cipher(key: bytes, mode: str, iv: bytes | None) -> Cipher:
    if len(key) != 16:
        raise ValueError("SM4 key must be 16 bytes")
    if mode == "CBC":
        if iv is None or len(iv) != 16:
            raise ValueError("SM4-CBC needs a 16-byte IV")
        return Cipher(algorithms.SM4(key), modes.CBC(iv))
    if mode == "ECB":
        if iv is not None:
            raise ValueError("SM4-ECB takes no IV")
        return Cipher(algorithms.SM4(key), modes.ECB())
    raise ValueError(f"unsupported SM4 mode {mode!r}; expected one of {_SM4_MODES}")


# PKCS#7 pad for each tail length: 16 - len % 16 bytes of that value (a whole block when aligned).
_PKCS7 = {n: bytes([n]) * n for n in range(1, 17)}


def sm4_encrypt(key: bytes, plaintext: bytes, mode: str = "CBC", iv: bytes | None = None) -> bytes:
    """SM4 with PKCS#7 padding. CBC needs the caller's fresh 16-byte ``iv``; ECB takes none."""
    enc = _sm4_cipher(key, mode, iv).encryptor()
    # The cipher buffers the partial last block itself: feeding it the bulk and then the pad bytes
    # gives the padded ciphertext without a padded copy of the plaintext or a padder object.
    return enc.update(plaintext) + enc.update(_PKCS7[16 - len(plaintext) % 16]) + enc.finalize()


def sm4_decrypt(key: bytes, ciphertext: bytes, mode: str = "CBC", iv: bytes | None = None) -> bytes:
    """Inverse of :func:`sm4_encrypt`; raises ValueError on a bad length or bad padding."""
    if not ciphertext or len(ciphertext) % 16:
        raise ValueError("SM4 ciphertext length must be a positive multiple of 16")
    dec = _sm4_cipher(key, mode, iv).decryptor()
    plain = dec.update(ciphertext) + dec.finalize()
    n = plain[-1]
    # Same rule as PKCS7(128).unpadder(): 1..16 bytes, each equal to the count. No padding oracle
    # to guard against here: envelopes are decrypted only after their signature verified.
    if not 0 < n <= 16 or plain[-n:] != _PKCS7[n]:
        raise ValueError("Invalid padding bytes.")
    return plain[:-n]


SM4_GCM_NONCE = 12  # bytes (96 bits, the GCM default)
SM4_GCM_TAG = 16  # bytes (the full 128-bit tag)


def sm4_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """SM4-GCM: ciphertext followed by the 16-byte tag, which authenticates it and ``aad``.

    ``cryptography`` has no SM4 class among its AEADs (``aead`` holds AES and ChaCha20 only), but
    its ``Cipher`` API runs SM4 in GCM mode through OpenSSL (checked against RFC 8998 A.1 in
    tests/municipal/test_gm.py). The caller's ``nonce`` must never repeat under one key."""
    if len(key) != 16:
        raise ValueError("SM4 key must be 16 bytes")
    if len(nonce) != SM4_GCM_NONCE:
        raise ValueError(f"SM4-GCM needs a {SM4_GCM_NONCE}-byte nonce")
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    return enc.update(plaintext) + enc.finalize() + enc.tag


def sm4_gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """Inverse of :func:`sm4_gcm_encrypt`. A changed byte of ciphertext, tag or ``aad``, or another
    key, raises ValueError: nothing is returned that the tag does not vouch for."""
    if len(key) != 16:
        raise ValueError("SM4 key must be 16 bytes")
    if len(nonce) != SM4_GCM_NONCE or len(data) < SM4_GCM_TAG:
        raise ValueError("SM4-GCM: bad nonce or data length")
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, data[-SM4_GCM_TAG:])).decryptor()
    dec.authenticate_additional_data(aad)
    try:
        return dec.update(data[:-SM4_GCM_TAG]) + dec.finalize()
    except InvalidTag:
        raise ValueError("SM4-GCM: authentication failed") from None


# ---------------------------------------------------------------------------------------------
# SM2 curve constants (GB/T 32918.5) and the Z value
# ---------------------------------------------------------------------------------------------

_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
_GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
_Z_CURVE = b"".join(v.to_bytes(32, "big") for v in (_A, _B, _GX, _GY))


def _signer_id_bytes(signer_id: bytes | str) -> bytes:
    sid = signer_id.encode("utf-8") if isinstance(signer_id, str) else bytes(signer_id)
    if len(sid) * 8 > 0xFFFF:
        raise ValueError("SM2 signer ID too long")
    return sid


def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < _P and 0 <= y < _P and (y * y - (x * x * x + _A * x + _B)) % _P == 0


# ---------------------------------------------------------------------------------------------
# DER helpers: ECDSA-style signature SEQUENCE{r,s}, PKCS#8 and SubjectPublicKeyInfo
# ---------------------------------------------------------------------------------------------


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_int(v: int) -> bytes:
    body = v.to_bytes(v.bit_length() // 8 + 1, "big")  # minimal, with a 0x00 if the high bit is set
    return b"\x02" + _der_len(len(body)) + body


def _sig_to_der(r: int, s: int) -> bytes:
    body = _der_int(r) + _der_int(s)
    return b"\x30" + _der_len(len(body)) + body


def _sig_from_der(sig: bytes) -> tuple[int, int]:
    """Strict DER SEQUENCE{INTEGER r, INTEGER s}; ValueError if not exactly that."""
    if len(sig) < 8 or sig[0] != 0x30 or sig[1] != len(sig) - 2:
        raise ValueError("bad DER signature")
    pos, out = 2, []
    for _ in range(2):
        if pos + 2 > len(sig) or sig[pos] != 0x02:
            raise ValueError("bad DER signature")
        ln = sig[pos + 1]
        body = sig[pos + 2 : pos + 2 + ln]
        if ln == 0 or ln > 33 or len(body) != ln or body[0] & 0x80:
            raise ValueError("bad DER signature")
        if ln > 1 and body[0] == 0 and not body[1] & 0x80:
            raise ValueError("non-minimal DER integer")
        out.append(int.from_bytes(body, "big"))
        pos += 2 + ln
    if pos != len(sig):
        raise ValueError("trailing bytes after DER signature")
    return out[0], out[1]


def _sig_decode(signature: bytes, encoding: str) -> tuple[int, int]:
    if encoding == "der":
        r, s = _sig_from_der(signature)
    elif encoding == "raw":
        if len(signature) != 64:
            raise ValueError("raw SM2 signature must be 64 bytes")
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    else:
        raise ValueError(f"unknown signature encoding {encoding!r}")
    if not (0 < r < _N and 0 < s < _N):
        raise ValueError("signature value out of range")
    return r, s


def _sig_encode(r: int, s: int, encoding: str) -> bytes:
    if encoding == "der":
        return _sig_to_der(r, s)
    if encoding == "raw":
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise ValueError(f"unknown signature encoding {encoding!r}")


# AlgorithmIdentifier { id-ecPublicKey 1.2.840.10045.2.1, namedCurve SM2 1.2.156.10197.1.301 }
_ALG_ID = bytes.fromhex("301306072a8648ce3d020106082a811ccf5501822d")
_SM2_CURVE_OID = bytes.fromhex("06082a811ccf5501822d")


def _pkcs8_der(d: int, xy: bytes) -> bytes:
    ec_priv = (
        b"\x02\x01\x01"
        + b"\x04\x20" + d.to_bytes(32, "big")
        + b"\xa1\x44\x03\x42\x00\x04" + xy
    )  # fmt: skip
    ec_priv = b"\x30" + _der_len(len(ec_priv)) + ec_priv
    body = b"\x02\x01\x00" + _ALG_ID + b"\x04" + _der_len(len(ec_priv)) + ec_priv
    return b"\x30" + _der_len(len(body)) + body


def _spki_der(xy: bytes) -> bytes:
    body = _ALG_ID + b"\x03\x42\x00\x04" + xy
    return b"\x30" + _der_len(len(body)) + body


def _pem(der: bytes, label: str) -> bytes:
    import base64

    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return b"".join([f"-----BEGIN {label}-----\n".encode(), *(ln + b"\n" for ln in lines),
                     f"-----END {label}-----\n".encode()])  # fmt: skip


_SEC1_LABELS = ("EC PRIVATE KEY", "SM2 PRIVATE KEY")  # OpenSSL 3 labels SEC1 SM2 keys "SM2 PRIVATE KEY"
_EC_ALG_OIDS = ("1.2.840.10045.2.1", "1.2.156.10197.1.301")  # id-ecPublicKey; bare SM2 (older tools)


def _parse_private_der(der: bytes, marker: str, password: bytes | None) -> tuple[int, bytes | None]:
    """PKCS#8 (optionally encrypted) or SEC1 ``ECPrivateKey`` DER → (d, x||y or None)."""
    from Cryptodome.IO import PKCS8
    from Cryptodome.Util.asn1 import DerBitString, DerObjectId, DerOctetString, DerSequence

    if marker in _SEC1_LABELS:
        inner = der
    else:
        oid, inner, params = PKCS8.unwrap(der, password)
        if oid not in _EC_ALG_OIDS:
            raise ValueError(f"not an EC key (algorithm {oid})")
        if (
            params is not None
            and oid == _EC_ALG_OIDS[0]
            and DerObjectId().decode(params).value != _EC_ALG_OIDS[1]
        ):
            raise ValueError("not an SM2 key (curve is not 1.2.156.10197.1.301)")
    seq = DerSequence().decode(inner, nr_elements=(2, 3, 4))
    if seq[0] != 1:
        raise ValueError("unsupported ECPrivateKey version")
    d = int.from_bytes(DerOctetString().decode(seq[1]).payload, "big")
    xy = None
    for extra in seq[2:]:
        if extra[0] == 0xA0:  # [0] parameters: must name the SM2 curve
            if extra[2:] != _SM2_CURVE_OID:
                raise ValueError("not an SM2 key")
        elif extra[0] == 0xA1:  # [1] public key
            point = DerBitString().decode(extra[2:]).value
            if len(point) != 65 or point[0] != 4:
                raise ValueError("unsupported public key point encoding")
            xy = point[1:]
    return d, xy


def _parse_public_der(der: bytes) -> bytes:
    from Cryptodome.Util.asn1 import DerBitString, DerSequence

    seq = DerSequence().decode(der, nr_elements=2)
    if seq[0] != _ALG_ID:
        raise ValueError("not an SM2 public key (id-ecPublicKey with curve SM2 expected)")
    point = DerBitString().decode(seq[1]).value
    if len(point) != 65 or point[0] != 4:
        raise ValueError("unsupported public key point encoding (uncompressed expected)")
    return point[1:]


# ---------------------------------------------------------------------------------------------
# SM2 backends: each provides generate / public-from-private / sign digest / verify digest
# ---------------------------------------------------------------------------------------------


class _TongsuoBackend:
    name = "tongsuopy"

    def __init__(self) -> None:
        from tongsuopy.backends.tongsuo.backend import backend
        from tongsuopy.crypto.asymciphers import ec

        self._ec = ec
        self._backend = backend
        self._lib = backend._lib
        self._ffi = backend._ffi

    @staticmethod
    def _xy(public_key) -> bytes:
        nums = public_key.public_numbers()
        return nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")

    def generate(self) -> tuple[int, bytes, object]:
        key = self._ec.generate_private_key(self._ec.SM2())
        return key.private_numbers().private_value, self._xy(key.public_key()), key

    def private_handle(self, d: int) -> tuple[object, bytes]:
        key = self._ec.derive_private_key(d, self._ec.SM2())
        return key, self._xy(key.public_key())

    def public_handle(self, xy: bytes) -> object:
        return self._ec.EllipticCurvePublicKey.from_encoded_point(self._ec.SM2(), b"\x04" + xy)

    def sign_digest(self, handle, e: bytes) -> tuple[int, int]:
        return _sig_from_der(self.sign_digest_der(handle, e))

    def sign_digest_der(self, handle, e: bytes) -> bytes:
        # EVP_PKEY_sign on an SM2 key signs the given e = SM3(Z || M) as is (no second hash). Its
        # output is i2d_ECDSA_SIG: minimal DER SEQUENCE{r,s}, byte for byte what _sig_to_der writes.
        lib, ffi = self._lib, self._ffi
        ctx = lib.EVP_PKEY_CTX_new(handle._evp_pkey, ffi.NULL)
        try:
            buf = ffi.new("unsigned char[]", 80)
            buflen = ffi.new("size_t *", 80)
            if lib.EVP_PKEY_sign_init(ctx) != 1 or lib.EVP_PKEY_sign(ctx, buf, buflen, e, len(e)) != 1:
                self._backend._consume_errors()
                raise RuntimeError("SM2 signing failed in Tongsuo")
            return ffi.buffer(buf, buflen[0])[:]
        finally:
            lib.EVP_PKEY_CTX_free(ctx)

    def verify_digest(self, handle, e: bytes, r: int, s: int, der: bytes | None = None) -> bool:
        """``der``: the signature already in strict DER (checked by _sig_from_der), else made from r, s."""
        lib, ffi = self._lib, self._ffi
        if der is None:
            der = _sig_to_der(r, s)
        ctx = lib.EVP_PKEY_CTX_new(handle._evp_pkey, ffi.NULL)
        try:
            ok = (
                lib.EVP_PKEY_verify_init(ctx) == 1 and lib.EVP_PKEY_verify(ctx, der, len(der), e, len(e)) == 1
            )
        finally:
            lib.EVP_PKEY_CTX_free(ctx)
        if not ok:
            self._backend._consume_errors()
        return ok


class _GmsslBackend:
    name = "gmssl"

    def __init__(self) -> None:
        from gmssl.sm2 import CryptSM2

        self._cls = CryptSM2
        self._g_hex = f"{_GX:064x}{_GY:064x}"
        self._g = self._crypt(None, bytes.fromhex(self._g_hex))

    def _crypt(self, d: int | None, xy: bytes) -> object:
        c = self._cls(private_key=None if d is None else f"{d:064x}", public_key=xy.hex())
        c.public_key = xy.hex()  # gmssl strips a "04" prefix with str.lstrip, which can eat digits of x
        return c

    def generate(self) -> tuple[int, bytes, object]:
        d = secrets.randbelow(_N - 2) + 1  # [1, n-2]
        handle, xy = self.private_handle(d)
        return d, xy, handle

    def private_handle(self, d: int) -> tuple[object, bytes]:
        xy = bytes.fromhex(self._g._kg(d, self._g_hex))
        return self._crypt(d, xy), xy

    def public_handle(self, xy: bytes) -> object:
        return self._crypt(None, xy)

    def sign_digest(self, handle, e: bytes) -> tuple[int, int]:
        while True:  # gmssl returns None for a (negligibly rare) degenerate k: draw another one
            sig = handle.sign(e, f"{secrets.randbelow(_N - 1) + 1:064x}")
            if sig:
                return int(sig[:64], 16), int(sig[64:], 16)

    def sign_digest_der(self, handle, e: bytes) -> bytes:
        return _sig_to_der(*self.sign_digest(handle, e))

    def verify_digest(self, handle, e: bytes, r: int, s: int, der: bytes | None = None) -> bool:
        return bool(handle.verify(f"{r:064x}{s:064x}", e))


_BACKEND_CLASSES = {"tongsuopy": _TongsuoBackend, "gmssl": _GmsslBackend}
_backends: dict[str, object] = {}


def _load_backend(name: str):
    if name not in _BACKEND_CLASSES:
        raise ValueError(f"unknown SM2 backend {name!r}; expected one of {sorted(_BACKEND_CLASSES)}")
    if name not in _backends:
        _backends[name] = _BACKEND_CLASSES[name]()
    return _backends[name]


def _auto_backend():
    forced = os.environ.get("HOSPITAL_INTEROP_SM2_BACKEND", "").strip()
    if forced:
        return _load_backend(forced)
    try:
        return _load_backend("tongsuopy")
    except ImportError:
        return _load_backend("gmssl")


_backend = _auto_backend()


def sm2_backend() -> str:
    """Name of the SM2 backend in use: ``"tongsuopy"`` or ``"gmssl"``."""
    return _backend.name


def set_sm2_backend(name: str) -> str:
    """Switch the SM2 backend for the whole process (tests, diagnostics); returns the previous name.

    Existing key objects keep working: they rebuild their backend handle on first use.
    """
    global _backend
    previous = _backend.name
    _backend = _load_backend(name)
    return previous


# ---------------------------------------------------------------------------------------------
# Key classes
# ---------------------------------------------------------------------------------------------


class SM2PublicKey:
    """SM2 public key (the point x||y); verifies SM3withSM2 signatures."""

    __slots__ = ("_handle", "_handle_backend", "_xy", "_z", "_zh")

    def __init__(self, xy: bytes, _handle: object = None) -> None:
        if len(xy) != 64 or not _on_curve(int.from_bytes(xy[:32], "big"), int.from_bytes(xy[32:], "big")):
            raise ValueError("not a point on the SM2 curve")
        self._xy = bytes(xy)
        self._handle = _handle
        self._handle_backend = _backend if _handle is not None else None
        self._z: dict[bytes, bytes] = {}
        self._zh: dict[bytes | str, hashes.Hash] = {}  # SM3 state after Z, per signer ID as given

    @property
    def hex(self) -> str:
        """Uncompressed point ``04||x||y`` as 130 lowercase hex characters (gmssl's format)."""
        return "04" + self._xy.hex()

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``)."""
        return _pem(_spki_der(self._xy), "PUBLIC KEY")

    def z_value(self, signer_id: bytes | str = DEFAULT_SIGNER_ID) -> bytes:
        """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), cached per signer ID."""
        sid = _signer_id_bytes(signer_id)
        z = self._z.get(sid)
        if z is None:
            z = self._z[sid] = sm3((len(sid) * 8).to_bytes(2, "big") + sid + _Z_CURVE + self._xy)
        return z

    def _digest(self, data: bytes, signer_id: bytes | str) -> bytes:
        """e = SM3(Z || data), from a copy of the SM3 state that has absorbed Z (no digest fetch)."""
        base = self._zh.get(signer_id)
        if base is None:
            base = hashes.Hash(_SM3)
            base.update(self.z_value(signer_id))
            self._zh[signer_id] = base
        h = base.copy()
        h.update(data)
        return h.finalize()

    def _native(self):
        if self._handle_backend is not _backend:
            self._handle = _backend.public_handle(self._xy)
            self._handle_backend = _backend
        return self._handle

    def verify(
        self,
        data: bytes,
        signature: bytes,
        signer_id: bytes | str = DEFAULT_SIGNER_ID,
        encoding: str = "der",
    ) -> bool:
        """True if ``signature`` is a valid SM3withSM2 signature of ``data``; never raises on bad input."""
        try:
            signature = bytes(signature)
            r, s = _sig_decode(signature, encoding)
            e = self._digest(data, signer_id)
        except (ValueError, TypeError):
            return False
        # A DER signature passed _sig_decode's strict check: the backend takes it as is.
        return _backend.verify_digest(self._native(), e, r, s, signature if encoding == "der" else None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and other._xy == self._xy

    def __hash__(self) -> int:
        return hash(self._xy)

    def __repr__(self) -> str:
        return f"SM2PublicKey({self.hex[:18]}…)"


class SM2PrivateKey:
    """SM2 private key; signs with SM3withSM2."""

    __slots__ = ("_d", "_handle", "_handle_backend", "_public")

    def __init__(self, d: int, _xy: bytes | None = None, _handle: object = None) -> None:
        """From the private scalar ``d``; the public point is computed (``_xy``/``_handle`` are internal)."""
        if not 0 < d < _N - 1:
            raise ValueError("SM2 private key out of range")
        if _xy is None or _handle is None:
            _handle, _xy = _backend.private_handle(d)
        self._d = d
        self._public = SM2PublicKey(_xy)
        self._handle = _handle
        self._handle_backend = _backend

    @property
    def hex(self) -> str:
        """The private scalar d as 64 lowercase hex characters (gmssl's format)."""
        return f"{self._d:064x}"

    def public_key(self) -> SM2PublicKey:
        return self._public

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM (PEM label ``PRIVATE KEY``)."""
        return _pem(_pkcs8_der(self._d, self._public._xy), "PRIVATE KEY")

    def _native(self):
        if self._handle_backend is not _backend:
            self._handle = _backend.private_handle(self._d)[0]
            self._handle_backend = _backend
        return self._handle

    def sign(self, data: bytes, signer_id: bytes | str = DEFAULT_SIGNER_ID, encoding: str = "der") -> bytes:
        """SM3withSM2 signature of ``data``: DER ``SEQUENCE{r,s}`` or raw 64-byte ``r||s``."""
        if encoding not in ("der", "raw"):
            raise ValueError(f"unknown signature encoding {encoding!r}")
        e = self._public._digest(data, signer_id)
        if encoding == "der":
            return _backend.sign_digest_der(self._native(), e)
        r, s = _backend.sign_digest(self._native(), e)
        return _sig_encode(r, s, encoding)

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self._public.hex[:18]}…)"


def generate_sm2_key() -> SM2PrivateKey:
    d, xy, handle = _backend.generate()
    return SM2PrivateKey(d, _xy=xy, _handle=handle)


def _pem_decode(pem: bytes | str, password: bytes | None) -> tuple[bytes, str]:
    from Cryptodome.IO import PEM

    text = pem.decode("ascii") if isinstance(pem, bytes | bytearray) else pem
    der, marker, _legacy_encrypted = PEM.decode(text.strip(), password)
    return der, marker


def load_private_key_pem(pem: bytes | str, password: bytes | None = None) -> SM2PrivateKey:
    """PKCS#8 (``PRIVATE KEY`` / ``ENCRYPTED PRIVATE KEY``) or SEC1 (``EC``/``SM2 PRIVATE KEY``) SM2 key."""
    try:
        der, marker = _pem_decode(pem, password)
        if marker not in ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY", *_SEC1_LABELS):
            raise ValueError(f"unexpected PEM label {marker!r}")
        d, xy = _parse_private_der(der, marker, password)
        key = SM2PrivateKey(d)  # recomputes the public point from d
    except (ValueError, IndexError, TypeError) as exc:
        raise ValueError(f"cannot load SM2 private key: {exc}") from None
    if xy is not None and xy != key.public_key()._xy:
        raise ValueError("cannot load SM2 private key: public point does not match the private scalar")
    return key


def load_public_key_pem(pem: bytes | str) -> SM2PublicKey:
    """SubjectPublicKeyInfo (``PUBLIC KEY``) SM2 key."""
    try:
        der, marker = _pem_decode(pem, None)
        if marker != "PUBLIC KEY":
            raise ValueError(f"unexpected PEM label {marker!r}")
        return SM2PublicKey(_parse_public_der(der))
    except (ValueError, IndexError, TypeError) as exc:
        raise ValueError(f"cannot load SM2 public key: {exc}") from None


def load_private_key_hex(d_hex: str) -> SM2PrivateKey:
    """Private scalar as 64 hex characters (the form gmssl and many platform SDKs use)."""
    return SM2PrivateKey(int(d_hex, 16))


def load_public_key_hex(point_hex: str) -> SM2PublicKey:
    """Uncompressed point ``04||x||y`` (130 hex) or bare ``x||y`` (128 hex)."""
    raw = bytes.fromhex(point_hex)
    if len(raw) == 65 and raw[0] == 4:
        raw = raw[1:]
    return SM2PublicKey(raw)
