"""Envelopes, timestamps, nonces, browse links and file fields (platform-protocol.md §2–§6)."""

import base64
import gzip
import json
import os
import threading
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis
from gmssl import sm4 as gm_sm4

from hospital_interop.municipal import envelope as ev
from hospital_interop.municipal import gm
from hospital_interop.municipal.profile import DEFAULT_PROFILE, PROFILE_KEYS, Profile

NOW = datetime(2026, 11, 27, 10, 15, 0, 123000, tzinfo=ev.PLATFORM_TZ)
SM4_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
PAYLOAD = {
    "orgCode": "12110000400000000X",
    "reportId": "LAB-2026-000123",
    "patientName": "张三",
    "items": [{"code": "GLU", "name": "葡萄糖", "value": 5.6, "unit": "mmol/L"}],
}
REQUEST_KEYS = [
    "appId", "orgCode", "serviceCode", "version", "timestamp", "nonce",
    "signType", "encryptType", "compressType", "iv", "data", "sign",
]  # fmt: skip


@pytest.fixture(scope="module")
def keys():
    return {"hospital": gm.generate_sm2_key(), "platform": gm.generate_sm2_key()}


@pytest.fixture(scope="module")
def sides(keys):
    """(hospital credentials, platform's view of the hospital's appId)."""
    hospital = ev.Credentials(
        app_id="BJ-HOSP-0001", org_code="12110000400000000X", sm4_key=SM4_KEY,
        private_key=keys["hospital"], peer_public_key=keys["platform"].public_key(), app_secret=b"app-secret-1",
    )  # fmt: skip
    platform = ev.Credentials(
        app_id="BJ-HOSP-0001", org_code="12110000400000000X", sm4_key=SM4_KEY,
        private_key=keys["platform"], peer_public_key=keys["hospital"].public_key(), app_secret=b"app-secret-1",
    )  # fmt: skip
    return hospital, platform


def seal(creds, profile=DEFAULT_PROFILE, payload=PAYLOAD, **kw):
    kw.setdefault("timestamp", NOW)
    return ev.seal_request(
        payload, service_code="LAB_REPORT_DETAIL", version="3.0.2.0", creds=creds, profile=profile, **kw
    )


def open_(env, platform, profile=DEFAULT_PROFILE, now=NOW, cache=None):
    return ev.open_request(
        env,
        creds_for_app=lambda app_id: platform if app_id == platform.app_id else None,
        profile=profile,
        now=now,
        nonce_cache=cache if cache is not None else ev.MemoryNonceCache(600),
    )


def resign(env, creds, profile=DEFAULT_PROFILE):
    env = {k: v for k, v in env.items() if k != "sign"}
    env["sign"] = base64.b64encode(
        creds.private_key.sign(ev.string_to_sign(env), encoding=profile.signature_encoding)
    ).decode()
    return env


def open_resp(resp, hospital, profile=DEFAULT_PROFILE, now=NOW, cache=None):
    """Client side: open an answer checked like a request (window around ``now``, nonce unseen)."""
    return ev.open_response(
        resp,
        creds=hospital,
        profile=profile,
        now=now,
        nonce_cache=cache if cache is not None else ev.MemoryNonceCache(600),
    )


def answer(platform, profile=DEFAULT_PROFILE, timestamp=NOW, **kw):
    return ev.seal_response(
        "0", "成功", {"receiptId": "RC-1"}, creds=platform, profile=profile, timestamp=timestamp, **kw
    )


def multi_member(raw: bytes, members: int = 3) -> bytes:
    """``raw`` as several concatenated gzip members (RFC 1952 §2.2), as ``cat a.gz b.gz`` makes."""
    step = -(-len(raw) // members)
    return b"".join(gzip.compress(raw[i : i + step], mtime=0) for i in range(0, len(raw), step))


def expect_code(code, fn, *args, **kw):
    with pytest.raises(ev.EnvelopeError) as info:
        fn(*args, **kw)
    assert info.value.code == code, info.value
    assert info.value.message
    return info.value


PROFILES = [
    Profile(sign_type=s, signature_encoding=e, encrypt_type=enc, cipher_mode=m, compress_type=c)
    for s, e in [("SM2", "der"), ("SM2", "raw"), ("HMAC-SM3", "der")]
    for enc, m in [("SM4", "CBC"), ("SM4", "ECB"), ("NONE", "CBC")]
    for c in ["GZIP", "NONE"]
]


# --- envelope layout --------------------------------------------------------------------------


def test_request_envelope_layout_and_independent_decoding(sides):
    hospital, _ = sides
    env = seal(hospital)
    assert list(env) == REQUEST_KEYS
    assert env["timestamp"] == "20261127101500123"
    assert len(env["nonce"]) == 32 and int(env["nonce"], 16) >= 0 and env["nonce"] == env["nonce"].lower()
    assert (env["signType"], env["encryptType"], env["compressType"]) == ("SM2", "SM4", "GZIP")
    # decode the layers with other implementations: Base64 → gmssl SM4-CBC → gzip → JSON
    sm4 = gm_sm4.CryptSM4()
    sm4.set_key(SM4_KEY, gm_sm4.SM4_DECRYPT)
    plain = sm4.crypt_cbc(bytes.fromhex(env["iv"]), base64.b64decode(env["data"]))
    assert json.loads(gzip.decompress(plain)) == PAYLOAD
    # the signature is Base64 DER over the sorted string-to-sign, verifiable with the public key
    sts = "&".join(f"{k}={env[k]}" for k in sorted(env) if k != "sign").encode()
    assert ev.string_to_sign(env) == sts
    assert hospital.private_key.public_key().verify(sts, base64.b64decode(env["sign"]))
    assert seal(hospital)["iv"] != env["iv"]  # fresh IV per message


def test_string_to_sign_rule():
    env = {"sign": "x", "b": "2", "a": "1", "empty": "", "num": 5, "none": None, "B": "3", "中": "文"}
    assert ev.string_to_sign(env) == "B=3&a=1&b=2&中=文".encode()


def test_payload_json_is_compact_utf8_and_gzip_is_deterministic():
    profile = Profile(encrypt_type="NONE")
    data, iv = ev.encode_payload(PAYLOAD, profile, None)
    assert iv is None
    raw = gzip.decompress(base64.b64decode(data))
    assert raw == json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":")).encode()
    assert "张三".encode() in raw
    assert ev.encode_payload(PAYLOAD, profile, None) == (data, None)  # mtime=0
    assert ev.decode_payload(data, None, profile, None) == PAYLOAD


def test_a_large_payload_is_gzip_any_reader_opens_deterministic_and_round_trips(sides):
    """Payloads (here one of over 1 MiB) are compressed by ISA-L, not zlib: still one RFC 1952 member that
    the standard library, the platform side and zlib's own gzip mode open, byte for byte."""
    hospital, platform = sides
    pdf = base64.b64encode(b"%PDF-1.4\n" + bytes(range(256)) * 8192).decode()
    payload = dict(PAYLOAD, fileContent=pdf)
    profile = Profile(encrypt_type="NONE")
    data, _ = ev.encode_payload(payload, profile, None)
    raw = base64.b64decode(data)
    assert len(raw) < len(pdf) and raw[:2] == b"\x1f\x8b"
    expected = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert gzip.decompress(raw) == expected
    assert zlib.decompress(raw, wbits=31) == expected
    assert ev.encode_payload(payload, profile, None) == (data, None)  # mtime=0
    env = seal(hospital, payload=payload)
    assert open_(env, platform).payload == payload


@pytest.mark.parametrize(
    "profile", PROFILES, ids=lambda p: "-".join(map(str, list(p.to_dict().values())[:5]))
)
def test_round_trip_every_profile(sides, profile):
    hospital, platform = sides
    env = seal(hospital, profile)
    assert ("iv" in env) == (profile.encrypt_type == "SM4" and profile.cipher_mode == "CBC")
    assert env["signType"] == profile.sign_type
    sig = base64.b64decode(env["sign"])
    if profile.sign_type == "HMAC-SM3":
        assert len(sig) == 32
    elif profile.signature_encoding == "raw":
        assert len(sig) == 64
    opened = open_(env, platform, profile)
    assert opened.payload == PAYLOAD
    assert (opened.app_id, opened.org_code, opened.service_code, opened.version) == (
        "BJ-HOSP-0001", "12110000400000000X", "LAB_REPORT_DETAIL", "3.0.2.0",
    )  # fmt: skip
    assert opened.timestamp == NOW and opened.nonce == env["nonce"]

    resp = ev.seal_response(
        "0", "成功", {"receiptId": "RC-1"}, creds=platform, profile=profile, timestamp=NOW
    )
    opened = open_resp(resp, hospital, profile)
    assert (opened.code, opened.message, opened.data, opened.timestamp) == (
        "0",
        "成功",
        {"receiptId": "RC-1"},
        NOW,
    )
    tampered = {**resp, "message": "失败"}
    expect_code("1001", open_resp, tampered, hospital, profile)


def test_round_trip_with_gmssl_backend(sides):
    hospital, platform = sides
    previous = gm.set_sm2_backend("gmssl")
    try:
        assert open_(seal(hospital), platform).payload == PAYLOAD
    finally:
        gm.set_sm2_backend(previous)


# --- rejections, in the protocol's order ------------------------------------------------------


def test_tampered_fields_are_1001(sides):
    hospital, platform = sides
    env = seal(hospital)
    other = seal(hospital, payload={"reportId": "other"})
    for field, value in [
        ("data", other["data"]),
        ("serviceCode", "EMR_UPLOAD"),
        ("iv", other["iv"]),
        ("nonce", "0" * 32),
    ]:
        expect_code("1001", open_, {**env, field: value}, platform)
    expect_code("1001", open_, {**env, "sign": "!!not base64!!"}, platform)
    expect_code("1001", open_, {k: v for k, v in env.items() if k != "sign"}, platform)
    expect_code("1001", open_, {**env, "appId": "BJ-HOSP-9999"}, platform)  # unknown appId
    expect_code("1001", open_, {**env, "signType": "HMAC-SM3"}, platform)  # not the profile's
    expect_code("1001", open_, "not an object", platform)


def test_wrong_key_is_1001(sides, keys):
    hospital, platform = sides
    env = seal(hospital)
    stranger = ev.Credentials(
        app_id=platform.app_id, org_code=platform.org_code, sm4_key=SM4_KEY,
        peer_public_key=keys["platform"].public_key(),  # not the hospital's key
    )  # fmt: skip
    expect_code("1001", open_, env, stranger)
    hmac_profile = Profile(sign_type="HMAC-SM3")
    env = seal(hospital, hmac_profile)
    wrong_secret = ev.Credentials(
        app_id=platform.app_id, org_code=platform.org_code, sm4_key=SM4_KEY, app_secret="other"
    )
    expect_code("1001", open_, env, wrong_secret, hmac_profile)


def test_timestamp_window_is_1002(sides):
    hospital, platform = sides
    for skew in (-299, 299):
        open_(seal(hospital, timestamp=NOW + timedelta(seconds=skew)), platform)
    for skew in (-301, 301, -86400):
        expect_code("1002", open_, seal(hospital, timestamp=NOW + timedelta(seconds=skew)), platform)
    expect_code(
        "1002", open_, resign({**seal(hospital), "timestamp": "2026-11-27 10:15"}, hospital), platform
    )
    # a bad signature wins over a bad timestamp
    stale = seal(hospital, timestamp=NOW - timedelta(hours=1))
    expect_code("1001", open_, {**stale, "version": "9"}, platform)


def test_replayed_nonce_is_1003_memory(sides):
    hospital, platform = sides
    cache = ev.MemoryNonceCache(600)
    env = seal(hospital)
    open_(env, platform, cache=cache)
    expect_code("1003", open_, env, platform, cache=cache)
    expect_code("1003", open_, seal(hospital, nonce=env["nonce"]), platform, cache=cache)
    # signature and timestamp are checked before the nonce
    expect_code("1001", open_, {**env, "data": env["data"][:-4]}, platform, cache=cache)
    expect_code(
        "1002",
        open_,
        seal(hospital, nonce=env["nonce"], timestamp=NOW - timedelta(hours=1)),
        platform,
        cache=cache,
    )
    open_(seal(hospital), platform, cache=cache)  # a fresh nonce passes


@pytest.fixture
def redis_cache():
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    prefix = f"test:nonce:{uuid.uuid4().hex}:"
    yield ev.RedisNonceCache(client, ttl=600, prefix=prefix), client, prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def test_replayed_nonce_is_1003_redis(sides, redis_cache):
    hospital, platform = sides
    cache, client, prefix = redis_cache
    env = seal(hospital)
    open_(env, platform, cache=cache)
    expect_code("1003", open_, env, platform, cache=cache)
    key = f"{prefix}BJ-HOSP-0001:{env['nonce']}"
    assert 0 < client.ttl(key) <= 600
    assert cache.add("OTHER-APP", env["nonce"]) is True  # nonces are per appId


def test_memory_nonce_cache_expires_and_is_thread_safe():
    clock = [1000.0]
    cache = ev.MemoryNonceCache(ttl=600, clock=lambda: clock[0])
    assert cache.add("a", "n1") and not cache.add("a", "n1") and cache.add("b", "n1")
    clock[0] += 599
    assert not cache.add("a", "n1")
    clock[0] += 1
    assert cache.add("a", "n1")  # expired, accepted again, and remembered anew
    assert not cache.add("a", "n1")
    assert len(cache) == 1

    cache = ev.MemoryNonceCache(600)
    results = []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        results.append(cache.add("a", "same"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_undecryptable_with_valid_signature_is_1004(sides):
    hospital, platform = sides
    env = seal(hospital)
    cases = [
        {**env, "data": base64.b64encode(b"\x01" * 17).decode()},  # not a multiple of the block size
        {
            **env,
            "data": base64.b64encode(gm.sm4_encrypt(SM4_KEY, b"not gzip", "CBC", bytes(16))).decode(),
            "iv": "00" * 16,
        },
        {
            **env,
            "data": base64.b64encode(
                gm.sm4_encrypt(SM4_KEY, gzip.compress(b"[1,2"), "CBC", bytes(16))
            ).decode(),
            "iv": "00" * 16,
        },
        {
            **env,
            "data": base64.b64encode(
                gm.sm4_encrypt(SM4_KEY, gzip.compress(b"[1,2]"), "CBC", bytes(16))
            ).decode(),
            "iv": "00" * 16,
        },
        {**env, "data": env["data"] + "*"},  # not Base64
        {k: v for k, v in env.items() if k != "iv"},  # CBC without iv
        {**env, "encryptType": "NONE"},  # not the profile's
    ]
    for case in cases:
        expect_code("1004", open_, resign(case, hospital), platform)
    wrong_key = ev.Credentials(
        app_id=hospital.app_id,
        org_code=hospital.org_code,
        sm4_key=bytes(16),
        private_key=hospital.private_key,
    )
    expect_code("1004", open_, seal(wrong_key), platform)


def test_gzip_bomb_is_1004(sides):
    hospital, platform = sides
    small = Profile(max_file_bytes=1024)
    bomb = gm.sm4_encrypt(SM4_KEY, gzip.compress(b"[" + b"0," * 5000 + b"0]"), "CBC", bytes(16))
    env = resign(
        {**seal(hospital, small), "data": base64.b64encode(bomb).decode(), "iv": "00" * 16}, hospital
    )
    expect_code("1004", open_, env, platform, small)


def test_a_multi_member_gzip_payload_opens_on_both_sides(sides):
    hospital, platform = sides
    raw = json.dumps(PAYLOAD, ensure_ascii=False).encode()
    gz = multi_member(raw)
    assert gzip.decompress(gz) == raw and len(gz) > len(gzip.compress(raw))  # really several members
    iv = bytes(range(16))
    data = base64.b64encode(gm.sm4_encrypt(SM4_KEY, gz, "CBC", iv)).decode()
    request = resign({**seal(hospital), "data": data, "iv": iv.hex()}, hospital)
    assert open_(request, platform).payload == PAYLOAD
    response = resign({**answer(platform), "data": data, "iv": iv.hex()}, platform)
    assert open_resp(response, hospital).data == PAYLOAD
    plain = Profile(encrypt_type="NONE")
    assert ev.decode_payload(base64.b64encode(gz).decode(), None, plain, None) == PAYLOAD


def test_bytes_after_the_last_gzip_member_are_1004():
    plain = Profile(encrypt_type="NONE")
    gz = multi_member(json.dumps(PAYLOAD).encode(), 2)
    for tail in (b"junk", b"\0" * 8, b"\x1f", gzip.compress(b"{}")[:-4]):  # garbage, padding, cut members
        with pytest.raises(ev.EnvelopeError) as err:
            ev.decode_payload(base64.b64encode(gz + tail).decode(), None, plain, None)
        assert err.value.code == "1004"


def test_the_gzip_size_bound_covers_all_members():
    small = Profile(encrypt_type="NONE", max_file_bytes=1024)  # 4 KiB of JSON at most
    member = gzip.compress(b" " * 3000, mtime=0)
    fits = base64.b64encode(member + gzip.compress(b"[1]", mtime=0)).decode()
    assert ev.decode_payload(fits, None, small, None) == [1]
    over = base64.b64encode(
        member + member + gzip.compress(b"[1]", mtime=0)
    ).decode()  # each under, together over
    expect_code("1004", ev.decode_payload, over, None, small, None)


# --- responses --------------------------------------------------------------------------------


def test_response_layout_and_codes(sides):
    hospital, platform = sides
    resp = ev.seal_response(
        "0",
        "成功",
        {"timestamp": "20261127101500123"},
        creds=platform,
        profile=DEFAULT_PROFILE,
        timestamp=NOW,
    )
    assert list(resp) == ["code", "message", "timestamp", "nonce", "iv", "data", "sign"]
    errors = [{"field": "reportId", "rule": "required", "message": "缺少reportId"}]
    resp = ev.seal_response(
        "2001", "业务校验失败", {"errors": errors}, creds=platform, profile=DEFAULT_PROFILE, timestamp=NOW
    )
    assert open_resp(resp, hospital).data == {"errors": errors}
    bare = ev.seal_response(
        "5000", "平台内部错误", creds=platform, profile=DEFAULT_PROFILE, timestamp="20261127101500123"
    )
    assert list(bare) == ["code", "message", "timestamp", "nonce", "sign"]
    opened = open_resp(bare, hospital)
    assert (opened.code, opened.data) == ("5000", None)


def test_unsigned_or_forged_response_is_1001(sides, keys):
    hospital, platform = sides
    resp = answer(platform)
    expect_code("1001", open_resp, {k: v for k, v in resp.items() if k != "sign"}, hospital)
    expect_code("1001", open_resp, {**resp, "sign": ""}, hospital)
    expect_code("1001", open_resp, {**resp, "code": "2001"}, hospital)
    forger = ev.Credentials(app_id="x", org_code="y", sm4_key=SM4_KEY, private_key=keys["hospital"])
    expect_code("1001", open_resp, answer(forger), hospital)
    expect_code("1001", open_resp, {"code": "0", "message": "成功"}, hospital)
    expect_code("1001", open_resp, ["not", "a", "dict"], hospital)
    # the nonce is required and signed like every other field
    expect_code(
        "1001", open_resp, resign({k: v for k, v in resp.items() if k != "nonce"}, platform), hospital
    )
    expect_code("1001", open_resp, {**resp, "nonce": ev.new_nonce()}, hospital)


def test_response_timestamp_outside_the_window_is_1002(sides):
    hospital, platform = sides
    for skew in (-299, 299):
        open_resp(answer(platform, timestamp=NOW + timedelta(seconds=skew)), hospital)
    for skew in (-301, 301, -86400):  # stale, future-dated, a day-old capture
        expect_code("1002", open_resp, answer(platform, timestamp=NOW + timedelta(seconds=skew)), hospital)
    expect_code(
        "1002", open_resp, resign({**answer(platform), "timestamp": "2026-11-27 10:15"}, platform), hospital
    )
    # the window is the profile's knob
    narrow = Profile(timestamp_window_seconds=60, nonce_ttl_seconds=120)
    ninety_s_old = answer(platform, narrow, timestamp=NOW - timedelta(seconds=90))
    expect_code("1002", open_resp, ninety_s_old, hospital, narrow)
    assert open_resp(ninety_s_old, hospital).code == "0"
    # a bad signature wins over a bad timestamp
    stale = answer(platform, timestamp=NOW - timedelta(hours=1))
    expect_code("1001", open_resp, {**stale, "code": "5000"}, hospital)


def test_replayed_response_nonce_is_1003(sides):
    hospital, platform = sides
    cache = ev.MemoryNonceCache(600)
    resp = answer(platform)
    open_resp(resp, hospital, cache=cache)
    expect_code("1003", open_resp, resp, hospital, cache=cache)
    # another answer, correctly signed, re-using a seen nonce
    expect_code("1003", open_resp, answer(platform, nonce=resp["nonce"]), hospital, cache=cache)
    # the timestamp is checked before the nonce: a stale replay is 1002 and its nonce not recorded
    other = answer(platform, timestamp=NOW - timedelta(hours=1))
    expect_code("1002", open_resp, other, hospital, cache=cache)
    assert cache.add(hospital.app_id, other["nonce"])


def test_response_opened_without_a_window_still_checks_its_nonce(sides):
    hospital, platform = sides
    cache = ev.MemoryNonceCache(600)
    day_old = answer(platform, timestamp=NOW - timedelta(days=1))
    assert open_resp(day_old, hospital, now=None, cache=cache).timestamp == NOW - timedelta(days=1)
    expect_code("1003", open_resp, day_old, hospital, now=None, cache=cache)


# --- timestamps -------------------------------------------------------------------------------


def test_timestamps_are_platform_time():
    assert ev.format_timestamp(NOW) == "20261127101500123"
    utc = datetime(2026, 11, 27, 2, 15, 0, 123999, tzinfo=UTC)
    assert ev.format_timestamp(utc) == "20261127101500123"  # Beijing = UTC+8, milliseconds truncated
    assert ev.parse_timestamp("20261127101500123") == NOW
    assert ev.parse_timestamp("20261127101500123").utcoffset() == timedelta(hours=8)
    with pytest.raises(ValueError):
        ev.format_timestamp(datetime(2026, 1, 1))
    for bad in (
        "2026112710150012",
        "2026-11-27T10:15",
        "20261327101500123",
        "２０２６１１２７１０１５００１２３",
    ):
        with pytest.raises(ValueError):
            ev.parse_timestamp(bad)


# --- browse links -----------------------------------------------------------------------------

VIEWER = "https://viewer.example.test/report/view"
LINK_FIELDS = {"orgCode": "12110000400000000X", "reportId": "R 1/检", "doctorId": "D001"}


def test_browse_link_valid(keys):
    key = keys["hospital"]
    url = ev.make_browse_link(VIEWER, LINK_FIELDS, private_key=key, profile=DEFAULT_PROFILE, now=NOW)
    assert url.startswith(VIEWER + "?orgCode=")
    query = dict(parse_qsl(urlsplit(url).query))
    assert list(query) == ["orgCode", "reportId", "doctorId", "expires", "sign"]
    assert int(query["expires"]) == int(NOW.timestamp()) + 300
    assert "=" not in query["sign"] and "+" not in query["sign"] and "/" not in query["sign"]
    fields = ev.verify_browse_link(
        url, public_key=key.public_key(), profile=DEFAULT_PROFILE, now=NOW + timedelta(seconds=300)
    )
    assert fields == {**LINK_FIELDS, "expires": query["expires"]}
    # the viewer's own query parameters are kept and signed too
    url2 = ev.make_browse_link(
        VIEWER + "?system=pacs", {"reportId": "R1"}, private_key=key, profile=DEFAULT_PROFILE, now=NOW
    )
    assert (
        ev.verify_browse_link(url2, public_key=key.public_key(), profile=DEFAULT_PROFILE, now=NOW)["system"]
        == "pacs"
    )


def test_browse_link_tampered_or_wrong_key(keys):
    key = keys["hospital"]
    url = ev.make_browse_link(VIEWER, LINK_FIELDS, private_key=key, profile=DEFAULT_PROFILE, now=NOW)
    pub = key.public_key()
    expect_code(
        "1001",
        ev.verify_browse_link,
        url.replace("D001", "D002"),
        public_key=pub,
        profile=DEFAULT_PROFILE,
        now=NOW,
    )
    expect_code(
        "1001", ev.verify_browse_link, url + "&extra=1", public_key=pub, profile=DEFAULT_PROFILE, now=NOW
    )
    expect_code(
        "1001",
        ev.verify_browse_link,
        url.split("&sign=")[0],
        public_key=pub,
        profile=DEFAULT_PROFILE,
        now=NOW,
    )
    expect_code(
        "1001",
        ev.verify_browse_link,
        url,
        public_key=keys["platform"].public_key(),
        profile=DEFAULT_PROFILE,
        now=NOW,
    )
    later = str(int(NOW.timestamp()) + 3000)
    moved = url.replace(f"expires={int(NOW.timestamp()) + 300}", f"expires={later}")
    expect_code("1001", ev.verify_browse_link, moved, public_key=pub, profile=DEFAULT_PROFILE, now=NOW)


def test_browse_link_expired(keys):
    key = keys["hospital"]
    url = ev.make_browse_link(VIEWER, LINK_FIELDS, private_key=key, profile=DEFAULT_PROFILE, now=NOW)
    with pytest.raises(ev.LinkExpiredError) as info:
        ev.verify_browse_link(
            url, public_key=key.public_key(), profile=DEFAULT_PROFILE, now=NOW + timedelta(seconds=301)
        )
    assert info.value.code == "1002" and "expired" in info.value.message
    long_lived = ev.make_browse_link(
        VIEWER, LINK_FIELDS, private_key=key, profile=Profile(browse_link_lifetime_seconds=86400), now=NOW
    )
    with pytest.raises(ev.EnvelopeError) as info:
        ev.verify_browse_link(long_lived, public_key=key.public_key(), profile=DEFAULT_PROFILE, now=NOW)
    assert info.value.code == "1002" and not isinstance(info.value, ev.LinkExpiredError)


# --- files ------------------------------------------------------------------------------------


def test_file_fields_and_checks():
    content = b"%PDF-1.4\n" + bytes(range(256)) * 10
    f = ev.file_fields("report.pdf", content)
    assert f["fileName"] == "report.pdf" and f["fileType"] == "pdf" and f["fileSize"] == len(content)
    assert f["fileHash"] == gm.sm3_hex(content) and base64.b64decode(f["fileContent"]) == content
    assert ev.check_file_fields(f, DEFAULT_PROFILE) == []
    assert ev.check_file_fields({**f, "fileHash": f["fileHash"].upper()}, DEFAULT_PROFILE) == []

    def rules(d, profile=DEFAULT_PROFILE):
        return [(e["field"], e["rule"]) for e in ev.check_file_fields(d, profile)]

    assert rules({**f, "fileHash": gm.sm3_hex(b"other")}) == [("fileHash", "hashMismatch")]
    assert rules({**f, "fileSize": len(content) + 1}) == [("fileSize", "sizeMismatch")]
    assert rules({**f, "fileContent": "***"}) == [("fileContent", "base64")]
    assert rules(f, Profile(max_file_bytes=100)) == [("fileSize", "maxSize")]
    assert rules({**f, "fileSize": 10}, Profile(max_file_bytes=100)) == [("fileContent", "maxSize")]
    assert rules({"fileContent": f["fileContent"]}) == [
        ("fileName", "required"), ("fileType", "required"), ("fileHash", "required"), ("fileSize", "type"),
    ]  # fmt: skip
    for e in ev.check_file_fields({**f, "fileHash": "0" * 64}, DEFAULT_PROFILE):
        assert set(e) == {"field", "rule", "message"} and "/" in e["message"]


# --- profile ----------------------------------------------------------------------------------


def test_profile_defaults_and_dict_round_trip():
    p = Profile()
    assert (p.sign_type, p.signature_encoding, p.encrypt_type, p.cipher_mode, p.compress_type) == (
        "SM2", "der", "SM4", "CBC", "GZIP",
    )  # fmt: skip
    assert (p.signer_id, p.timestamp_window_seconds, p.nonce_ttl_seconds) == ("1234567812345678", 300, 600)
    assert (p.browse_link_lifetime_seconds, p.max_file_bytes) == (300, 20 * 1024 * 1024)
    assert list(p.to_dict()) == list(PROFILE_KEYS)
    assert Profile.from_dict(p.to_dict()) == p
    assert Profile.from_dict({}) == p == Profile.from_dict(None)
    custom = Profile.from_dict({"signType": "HMAC-SM3", "cipherMode": "ECB", "maxFileBytes": 1024})
    assert (custom.sign_type, custom.cipher_mode, custom.max_file_bytes) == ("HMAC-SM3", "ECB", 1024)
    assert Profile.from_dict(custom.to_dict()) == custom


@pytest.mark.parametrize(
    "bad, named",
    [
        ({"signtype": "SM2"}, "signtype"),
        ({"signType": "RSA"}, "signType"),
        ({"signatureEncoding": "DER"}, "signatureEncoding"),
        ({"encryptType": "AES"}, "encryptType"),
        ({"cipherMode": "GCM"}, "cipherMode"),
        ({"compressType": "ZIP"}, "compressType"),
        ({"signerId": ""}, "signerId"),
        ({"timestampWindowSeconds": 0}, "timestampWindowSeconds"),
        ({"nonceTtlSeconds": "600"}, "nonceTtlSeconds"),
        ({"browseLinkLifetimeSeconds": True}, "browseLinkLifetimeSeconds"),
        ({"maxFileBytes": -1}, "maxFileBytes"),
        ({"nonceTtlSeconds": 500}, "nonceTtlSeconds"),  # shorter than 2 x window: replays would pass
    ],
)
def test_profile_rejects_unknown_keys_and_illegal_values(bad, named):
    with pytest.raises(ValueError, match=named):
        Profile.from_dict(bad)


def test_errors_pickle_and_nan_is_refused():
    import pickle

    for err in (ev.EnvelopeError("1003", "nonce n1 already used"), ev.LinkExpiredError("expired 5s ago")):
        again = pickle.loads(pickle.dumps(err))
        assert (type(again), again.code, again.message, str(again)) == (
            type(err),
            err.code,
            err.message,
            str(err),
        )
    with pytest.raises(ValueError):
        ev.encode_payload({"value": float("nan")}, DEFAULT_PROFILE, SM4_KEY)
