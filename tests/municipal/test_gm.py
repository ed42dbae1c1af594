"""GM/T algorithms: standard vectors and interoperability with gmssl and the OpenSSL 3 CLI."""

import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import func as gm_func
from gmssl import sm3 as gm_sm3
from gmssl import sm4 as gm_sm4
from gmssl.sm2 import CryptSM2

from hospital_interop.municipal import gm

OPENSSL = "/usr/bin/openssl"
DISTID = "distid:1234567812345678"
BACKENDS = ["tongsuopy", "gmssl"]


def openssl(*args, input=None):
    """Run the OpenSSL CLI; returns (returncode, stdout+stderr)."""
    proc = subprocess.run([OPENSSL, *args], input=input, capture_output=True, timeout=30)
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")


@pytest.fixture(params=BACKENDS)
def backend(request):
    previous = gm.set_sm2_backend(request.param)
    yield request.param
    gm.set_sm2_backend(previous)


# --- SM3 / HMAC-SM3 ---------------------------------------------------------------------------


def test_sm3_standard_vectors():
    assert gm.sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert gm.sm3_hex(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    assert gm.sm3(b"abc") == bytes.fromhex(gm.sm3_hex(b"abc"))


def _gmssl_sm3(data: bytes) -> bytes:
    return bytes.fromhex(gm_sm3.sm3_hash(gm_func.bytes_to_list(data)))


def _hmac_rfc2104(key: bytes, data: bytes) -> bytes:
    block = 64  # SM3 block size in bytes
    if len(key) > block:
        key = _gmssl_sm3(key)
    key = key.ljust(block, b"\x00")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    return _gmssl_sm3(opad + _gmssl_sm3(ipad + data))


@pytest.mark.parametrize("key", [b"app-secret-0001", b"k" * 64, bytes(range(100)), "秘密".encode()])
def test_hmac_sm3_matches_rfc2104_built_on_gmssl_sm3(key):
    data = "appId=BJ-HOSP-0001&data=数据&nonce=00ff".encode() * 3
    assert gm.hmac_sm3(key, data) == _hmac_rfc2104(key, data)
    assert len(gm.hmac_sm3(key, b"")) == 32


# --- SM4 --------------------------------------------------------------------------------------

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
SM4_BLOCK_CT = bytes.fromhex("681edf34d206965e86b3e94f536e4246")


def test_sm4_gbt32907_example_raw_block():
    enc = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor()
    assert enc.update(SM4_KEY) + enc.finalize() == SM4_BLOCK_CT


def test_sm4_gbt32907_example_through_api():
    ct = gm.sm4_encrypt(SM4_KEY, SM4_KEY, mode="ECB")
    assert len(ct) == 32  # one data block + one full PKCS#7 padding block
    assert ct[:16] == SM4_BLOCK_CT
    assert gm.sm4_decrypt(SM4_KEY, ct, mode="ECB") == SM4_KEY


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 1000, 4096])
def test_sm4_cbc_matches_gmssl_and_round_trips(length):
    iv = bytes(range(16))
    plain = bytes((i * 7 + 3) % 256 for i in range(length))
    ct = gm.sm4_encrypt(SM4_KEY, plain, mode="CBC", iv=iv)
    ref = gm_sm4.CryptSM4()
    ref.set_key(SM4_KEY, gm_sm4.SM4_ENCRYPT)
    assert ct == ref.crypt_cbc(iv, plain)  # gmssl pads with PKCS#7 too
    assert gm.sm4_decrypt(SM4_KEY, ct, mode="CBC", iv=iv) == plain


@pytest.mark.parametrize("length", [0, 5, 32])
def test_sm4_ecb_matches_gmssl(length):
    plain = b"\xa5" * length
    ref = gm_sm4.CryptSM4()
    ref.set_key(SM4_KEY, gm_sm4.SM4_ENCRYPT)
    assert gm.sm4_encrypt(SM4_KEY, plain, mode="ECB") == ref.crypt_ecb(plain)


def test_sm4_rejects_bad_input():
    iv = bytes(16)
    with pytest.raises(ValueError):
        gm.sm4_encrypt(SM4_KEY, b"x", mode="CBC")  # CBC needs an IV
    with pytest.raises(ValueError):
        gm.sm4_encrypt(SM4_KEY[:15], b"x", mode="ECB")
    with pytest.raises(ValueError):
        gm.sm4_encrypt(SM4_KEY, b"x", mode="CTR", iv=iv)
    with pytest.raises(ValueError):
        gm.sm4_decrypt(SM4_KEY, b"\x00" * 17, mode="CBC", iv=iv)
    enc = Cipher(algorithms.SM4(SM4_KEY), modes.CBC(iv)).encryptor()
    bad_padding = enc.update(b"\x00" * 15 + b"\x05") + enc.finalize()
    with pytest.raises(ValueError):
        gm.sm4_decrypt(SM4_KEY, bad_padding, mode="CBC", iv=iv)


# RFC 8998 (ShangMi cipher suites for TLS 1.3), appendix A.1: SM4-GCM
GCM_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
GCM_IV = bytes.fromhex("00001234567800000000ABCD")
GCM_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
GCM_PLAIN = bytes.fromhex(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)
GCM_CIPHER = bytes.fromhex(
    "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
)
GCM_TAG = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")


def test_sm4_gcm_matches_rfc8998_and_refuses_any_changed_byte():
    sealed = gm.sm4_gcm_encrypt(GCM_KEY, GCM_IV, GCM_PLAIN, GCM_AAD)
    assert sealed == GCM_CIPHER + GCM_TAG
    assert gm.sm4_gcm_decrypt(GCM_KEY, GCM_IV, sealed, GCM_AAD) == GCM_PLAIN
    for i in (0, len(GCM_CIPHER) - 1, len(sealed) - 1):  # ciphertext and tag
        changed = bytearray(sealed)
        changed[i] ^= 0x01
        with pytest.raises(ValueError):
            gm.sm4_gcm_decrypt(GCM_KEY, GCM_IV, bytes(changed), GCM_AAD)
    with pytest.raises(ValueError):
        gm.sm4_gcm_decrypt(GCM_KEY, GCM_IV, sealed, GCM_AAD + b"x")  # other associated data
    with pytest.raises(ValueError):
        gm.sm4_gcm_decrypt(bytes(16), GCM_IV, sealed, GCM_AAD)  # another key


# --- SM2 --------------------------------------------------------------------------------------


def test_backend_is_tongsuopy_by_default_and_env_var_forces_one():
    assert gm.sm2_backend() == (os.environ.get("HOSPITAL_INTEROP_SM2_BACKEND") or "tongsuopy")
    clean = {k: v for k, v in os.environ.items() if k != "HOSPITAL_INTEROP_SM2_BACKEND"}
    for name in ["", *BACKENDS]:
        env = {**clean, "HOSPITAL_INTEROP_SM2_BACKEND": name}
        out = subprocess.run(
            [sys.executable, "-c", "from hospital_interop.municipal import gm; print(gm.sm2_backend())"],
            env=env, capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert out.stdout.strip() == (name or "tongsuopy")
    with pytest.raises(ValueError):
        gm.set_sm2_backend("nope")


@pytest.mark.parametrize("encoding", ["der", "raw"])
def test_sign_verify_round_trip(backend, encoding):
    key = gm.generate_sm2_key()
    pub = key.public_key()
    data = "检验报告 lab report".encode()
    sig = key.sign(data, encoding=encoding)
    if encoding == "raw":
        assert len(sig) == 64
    else:
        assert sig[0] == 0x30 and 8 <= len(sig) <= 72
    assert pub.verify(data, sig, encoding=encoding)
    assert not pub.verify(data + b"!", sig, encoding=encoding)
    assert not pub.verify(data, sig, encoding="raw" if encoding == "der" else "der")
    assert not gm.generate_sm2_key().public_key().verify(data, sig, encoding=encoding)
    other_id = key.sign(data, signer_id=b"ALICE123@YAHOO.COM", encoding=encoding)
    assert not pub.verify(data, other_id, encoding=encoding)
    assert pub.verify(data, other_id, signer_id="ALICE123@YAHOO.COM", encoding=encoding)


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x30\x00",
        b"\x00" * 64,
        b"\xff" * 64,
        b"\x30\x06\x02\x01\x00\x02\x01\x01",
        b"not a signature" * 5,
    ],
)
def test_verify_never_raises_on_garbage(backend, bad):
    pub = gm.generate_sm2_key().public_key()
    assert pub.verify(b"x", bad) is False
    assert pub.verify(b"x", bad, encoding="raw") is False


def test_pem_readable_by_openssl_and_round_trips(backend, tmp_path):
    key = gm.generate_sm2_key()
    (tmp_path / "k.pem").write_bytes(key.to_pem())
    (tmp_path / "p.pem").write_bytes(key.public_key().to_pem())
    rc, out = openssl("pkey", "-in", str(tmp_path / "k.pem"), "-check", "-noout")
    assert rc == 0 and "Key is valid" in out, out
    rc, out = openssl("pkey", "-in", str(tmp_path / "k.pem"), "-pubout")
    assert rc == 0 and out.encode() == key.public_key().to_pem(), out
    rc, out = openssl("pkey", "-pubin", "-in", str(tmp_path / "p.pem"), "-noout", "-text")
    assert rc == 0 and "SM2" in out, out
    assert key.to_pem().startswith(
        b"-----BEGIN " + b"PRIVATE KEY-----\n"
    )  # split: no key-like literal in the repo
    assert gm.load_private_key_pem(key.to_pem()).to_pem() == key.to_pem()
    assert gm.load_public_key_pem(key.public_key().to_pem()) == key.public_key()
    assert gm.load_private_key_hex(key.hex).public_key() == key.public_key()
    assert gm.load_public_key_hex(key.public_key().hex) == key.public_key()
    assert gm.load_public_key_hex(key.public_key().hex[2:]) == key.public_key()


def test_our_signatures_verify_with_openssl_cli(backend, tmp_path):
    key = gm.generate_sm2_key()
    (tmp_path / "p.pem").write_bytes(key.public_key().to_pem())
    data = "appId=BJ-HOSP-0001&data=数据&nonce=1".encode()
    (tmp_path / "data").write_bytes(data)
    for i in range(3):
        (tmp_path / "sig.der").write_bytes(key.sign(data))
        rc, out = openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "p.pem"), "-rawin", "-in", str(tmp_path / "data"),
            "-sigfile", str(tmp_path / "sig.der"), "-digest", "sm3", "-pkeyopt", DISTID,
        )  # fmt: skip
        assert rc == 0 and "Signature Verified Successfully" in out, (i, out)
    (tmp_path / "sig.der").write_bytes(key.sign(data + b"x"))
    rc, _ = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "p.pem"), "-rawin", "-in", str(tmp_path / "data"),
        "-sigfile", str(tmp_path / "sig.der"), "-digest", "sm3", "-pkeyopt", DISTID,
    )  # fmt: skip
    assert rc != 0


def test_openssl_key_and_signatures_verify_with_ours(backend, tmp_path):
    k, d = str(tmp_path / "k.pem"), str(tmp_path / "data")
    rc, out = openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", k)
    assert rc == 0, out
    key = gm.load_private_key_pem((tmp_path / "k.pem").read_bytes())
    assert key.to_pem() == (tmp_path / "k.pem").read_bytes()  # same PKCS#8 bytes as OpenSSL 3 writes
    data = b"signed by openssl"
    (tmp_path / "data").write_bytes(data)
    sig = str(tmp_path / "sig.der")
    rc, out = openssl(
        "pkeyutl", "-sign", "-inkey", k, "-rawin", "-in", d, "-out", sig, "-digest", "sm3", "-pkeyopt", DISTID
    )
    assert rc == 0, out
    der = (tmp_path / "sig.der").read_bytes()
    assert key.public_key().verify(data, der)
    assert not key.public_key().verify(data + b".", der)
    # and with a non-default distinguishing ID
    rc, out = openssl(
        "pkeyutl", "-sign", "-inkey", k, "-rawin", "-in", d, "-out", sig, "-digest", "sm3", "-pkeyopt", "distid:hospital-7"
    )  # fmt: skip
    assert rc == 0, out
    assert key.public_key().verify(data, (tmp_path / "sig.der").read_bytes(), signer_id=b"hospital-7")


def test_encrypted_and_sec1_pem_load(tmp_path):
    k = str(tmp_path / "k.pem")
    assert openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", k)[0] == 0
    plain = gm.load_private_key_pem((tmp_path / "k.pem").read_bytes())
    rc, enc_pem = openssl("pkcs8", "-topk8", "-in", k, "-v2", "aes-256-cbc", "-passout", "pass:s3cret")
    assert rc == 0, enc_pem
    assert "ENCRYPTED PRIVATE KEY" in enc_pem
    assert gm.load_private_key_pem(enc_pem.encode(), password=b"s3cret").to_pem() == plain.to_pem()
    with pytest.raises(ValueError):
        gm.load_private_key_pem(enc_pem.encode(), password=b"wrong")
    rc, out = openssl("ec", "-in", k, "-out", str(tmp_path / "sec1.pem"))
    sec1 = (tmp_path / "sec1.pem").read_bytes()
    assert rc == 0 and b"-----BEGIN SM2 PRIVATE KEY-----" in sec1, out  # OpenSSL 3's label for SEC1 SM2
    assert gm.load_private_key_pem(sec1).to_pem() == plain.to_pem()
    assert gm.load_private_key_pem(sec1.replace(b"SM2 PRIVATE", b"EC PRIVATE")).to_pem() == plain.to_pem()


def test_non_sm2_keys_are_rejected(tmp_path):
    k = str(tmp_path / "p256.pem")
    assert openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k)[0] == 0
    with pytest.raises(ValueError):
        gm.load_private_key_pem((tmp_path / "p256.pem").read_bytes())
    rc, pub = openssl("pkey", "-in", k, "-pubout")
    assert rc == 0, pub
    with pytest.raises(ValueError):
        gm.load_public_key_pem(pub.encode())
    with pytest.raises(ValueError):
        gm.load_public_key_hex("04" + "11" * 64)  # not on the curve


def test_gmssl_library_interop_both_ways(backend):
    key = gm.generate_sm2_key()
    ref = CryptSM2(private_key=key.hex, public_key=key.public_key().hex)
    ref.public_key = key.public_key().hex[2:]  # gmssl's "04" stripping uses lstrip: set x||y directly
    data = b'{"reportId":"R-1"}'
    assert ref.verify_with_sm3(key.sign(data, encoding="raw").hex(), data)
    theirs = bytes.fromhex(ref.sign_with_sm3(data))
    assert key.public_key().verify(data, theirs, encoding="raw")
    assert not key.public_key().verify(data + b" ", theirs, encoding="raw")


def test_backends_interoperate_and_serialise_identically():
    previous = gm.sm2_backend()
    try:
        data = b"cross-backend"
        made = {}
        for name in BACKENDS:
            gm.set_sm2_backend(name)
            key = gm.generate_sm2_key()
            made[name] = (
                key.to_pem(),
                key.public_key().to_pem(),
                key.sign(data),
                key.sign(data, encoding="raw"),
            )
        for signer in BACKENDS:
            priv_pem, pub_pem, der, raw = made[signer]
            for verifier in BACKENDS:
                gm.set_sm2_backend(verifier)
                pub = gm.load_public_key_pem(pub_pem)
                assert pub.verify(data, der) and pub.verify(data, raw, encoding="raw"), (signer, verifier)
                assert gm.load_private_key_pem(priv_pem).to_pem() == priv_pem
                assert gm.load_private_key_pem(priv_pem).public_key().to_pem() == pub_pem
        # a key object survives a backend switch
        gm.set_sm2_backend("tongsuopy")
        key = gm.generate_sm2_key()
        gm.set_sm2_backend("gmssl")
        assert key.public_key().verify(data, key.sign(data))
    finally:
        gm.set_sm2_backend(previous)
