"""The envelope's JSON through orjson: the same bytes as the standard library's encoder, the same
values as ``json.loads`` (issue 19). ``json`` is the reference: every case compares against it."""

import base64
import json
import math
import random
import struct

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hospital_interop.municipal import envelope as ev
from hospital_interop.municipal.profile import Profile
from hospital_interop.municipal.specs import load_catalogue

STDLIB = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False)
PLAIN = Profile(encrypt_type="NONE")


def stdlib_bytes(value):
    """What encode_payload wrote before orjson: bytes, or the exception's type."""
    try:
        return STDLIB.encode(value).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        return type(exc)


def ours(value):
    try:
        return ev.json_bytes(value)
    except (ValueError, TypeError, RecursionError) as exc:
        return type(exc)


def loads_outcome(fn, raw):
    """repr of the value (tells int from float, -0.0, nan, key order) or the exception's type."""
    try:
        return repr(fn(raw))
    except (ValueError, TypeError, RecursionError) as exc:
        return type(exc)


def test_every_catalogue_example_is_encoded_by_orjson_to_the_stdlib_bytes():
    """The project's own payloads, requests and responses: orjson's fast path (no fallback) already
    writes the stdlib's bytes, and reading them back gives the payload."""
    catalogue = load_catalogue()
    specs = [spec for document in catalogue.documents for spec in document.interfaces]
    assert len(specs) > 30
    seen = 0
    for spec in specs:
        for seed in range(8):
            for payload in (spec.example(seed), spec.response_example(seed)):
                if payload is None:
                    continue
                expected = STDLIB.encode(payload).encode("utf-8")
                assert orjson.dumps(payload, option=ev._ORJSON_OPTIONS) == expected, spec.code
                assert ev.json_bytes(payload) == expected, spec.code
                assert repr(ev.json_loads(expected)) == repr(json.loads(expected)), spec.code
                data, _ = ev.encode_payload(payload, PLAIN, None)
                assert ev.decode_payload(data, None, PLAIN, None) == payload
                seen += 1
    assert seen > 300


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and ±Infinity included: _JSON refuses them with ValueError
    | st.floats(min_value=1e-10, max_value=1e-3)  # the exponents where orjson's format differs
    | st.text()
    | st.text(alphabet='\x00\x1f\x7f\u2028\u2029"\\/😀é张\ud800\udfff e-0.')  # escapes, lone surrogates
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
        | st.dictionaries(st.integers() | st.booleans() | st.floats(), children, max_size=3)
    ),  # json turns keys to str
    max_leaves=30,
)


@settings(max_examples=3000, deadline=None)
@given(json_values)
@example({"v": 1e-05, "w": 1.5e-07, "x": 1e-10, "y": 1e16, "z": -2.5e-05})
@example({"v": float("nan")})
@example([2**64, -(2**63) - 1, 2**63, 18446744073709551615])
@example({"s": "null e-7 0.0000", "t": "\u2028\x00\ud800"})
@example({"s": "null e-7 0.0000", "n": None, "deep": [[{"x": None, "i": 2**63 - 1}]]})
@example({"n": None, "deep": [[{"v": float("nan")}]], "w": 1e-05})
def test_json_bytes_are_the_stdlib_bytes(value):
    assert ours(value) == stdlib_bytes(value)


def dumps_outcome(value):
    """json.dumps's compact bytes (what payloads are sealed at rest with before orjson), or the
    exception's type."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        return type(exc)


def circular():
    loop: list = []
    loop.append(loop)
    return loop


@settings(max_examples=3000, deadline=None)
@given(json_values)
@example({"v": float("nan"), "w": float("-inf"), "x": [float("inf")]})
@example({"v": 1e-05, "s": "null"})
@example(circular())
def test_json_bytes_with_dumps_compact_are_json_dumps_bytes(value):
    """The at-rest seal and payload_size write json.dumps's bytes, NaN and ±Infinity included."""
    try:
        ours_ = ev.json_bytes(value, ev.DUMPS_COMPACT)
    except (ValueError, TypeError, RecursionError) as exc:
        ours_ = type(exc)
    assert ours_ == dumps_outcome(value)


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
@example(1e-05)
@example(9.99999e-05)
@example(1e-06)
@example(1e-09)
@example(5e-324)
@example(1e16)
def test_a_float_is_written_as_repr_writes_it(x):
    assert ev.json_bytes([x]) == f"[{float.__repr__(x)}]".encode()


def test_floats_of_every_exponent_are_written_as_repr_writes_them():
    """Doubles from random bit patterns (every exponent) and decimals of every exponent: wherever
    orjson's own bytes differ, the guard sends the payload to json."""
    rng = random.Random(19)
    values = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(100_000)]
    values += [float(f"{m}e{e}") for e in range(-330, 310) for m in (1, 1.5, 4.9, 9.999999999999999)]
    for x in values:
        if math.isfinite(x):
            assert ev.json_bytes([x, -x]) == f"[{float.__repr__(x)},{float.__repr__(-x)}]".encode()


def test_what_json_refuses_is_still_refused_with_its_exception():
    for value, exc in [
        ({"v": float("nan")}, ValueError),
        ({"v": float("-inf")}, ValueError),
        ({"s": "\ud800"}, UnicodeEncodeError),  # json writes it, UTF-8 refuses it, as before
        ({"when": __import__("datetime").date(2026, 11, 27)}, TypeError),
        ({"set": {1}}, TypeError),
        ({"b": b"x"}, TypeError),
    ]:
        with pytest.raises(exc):
            ev.json_bytes(value)
    deep: list = []
    cur = deep
    for _ in range(100_000):
        cur.append([])
        cur = cur[0]
    with pytest.raises(RecursionError):
        ev.json_bytes(deep)


def test_subclasses_and_non_str_keys_are_written_as_json_writes_them():
    from collections import OrderedDict
    from enum import IntEnum, StrEnum

    class Code(StrEnum):
        GLU = "GLU"

    class Level(IntEnum):
        HIGH = 3

    class Name(str):
        pass

    value = OrderedDict(
        [("a", Code.GLU), ("b", Level.HIGH), (Name("c"), Name("张三")), ("d", {1: True, 2.5: None, False: 0})]
    )
    assert ev.json_bytes(value) == STDLIB.encode(value).encode()


def json_texts():
    """JSON texts as a peer may send them: from values, and hand-made edge cases."""
    from_values = json_values.map(
        lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
    ints = st.integers(min_value=-(2**80), max_value=2**80).map(
        lambda n: f'{{"n":{n},"m":[{n}, -{abs(n)}]}}'.encode()
    )
    in_strings = st.integers(min_value=10**18, max_value=10**30).map(
        lambda n: f'{{"id":"{n}","x":"A-{n}"}}'.encode()
    )
    edges = st.sampled_from(
        [
            b'{"a":1,"b":2,"a":3}', b"NaN", b'{"v":NaN,"w":-Infinity,"x":Infinity}', b"1e400", b"[-1e400]",
            b"\xef\xbb\xbf{}", '{"a":1}'.encode("utf-16"), '{"a":1}'.encode("utf-32"), b'"\\ud800"',
            b'"\xed\xa0\x80"', b"-0", b"[-0.0]", b"12345678901234567890", b"-1234567890123456789",
            b" 18446744073709551616", b"[1,]", b"", b"\x00", b'"\x01"', b"1 2", b"0.1e-400",
            b"1.0000000000000000000000000001", b'{"a" : [ 1 , 2 ] }\n',
        ]
    )  # fmt: skip
    return from_values | ints | in_strings | edges | st.binary(max_size=40)


@settings(max_examples=3000, deadline=None)
@given(json_texts())
def test_json_loads_gives_the_stdlib_values(raw):
    assert loads_outcome(ev.json_loads, raw) == loads_outcome(json.loads, raw)


def test_decode_keeps_json_behaviour_for_big_ints_nan_and_deep_nesting():
    def data(text: bytes) -> str:
        return base64.b64encode(__import__("gzip").compress(text, mtime=0)).decode()

    got = ev.decode_payload(data(b'{"n":18446744073709551616,"m":-9223372036854775809}'), None, PLAIN, None)
    assert got == {"n": 2**64, "m": -(2**63) - 1} and type(got["n"]) is int
    got = ev.decode_payload(data(b'{"v":NaN,"w":Infinity}'), None, PLAIN, None)  # json reads them: kept
    assert math.isnan(got["v"]) and got["w"] == math.inf
    with pytest.raises(ev.EnvelopeError) as err:
        ev.decode_payload(data(b"[" * 100_000 + b"]" * 100_000), None, PLAIN, None)
    assert err.value.code == "1004"
    with pytest.raises(ev.EnvelopeError) as err:
        ev.decode_payload(data(b'{"a":1,}'), None, PLAIN, None)
    assert err.value.code == "1004"
    big = {"n": 2**64, "small": 1e-05, "none": None}
    encoded, _ = ev.encode_payload(big, PLAIN, None)
    assert ev.decode_payload(encoded, None, PLAIN, None) == big


class Refuses(json.JSONEncoder):
    def encode(self, o):
        raise AssertionError("json was asked: orjson's bytes were not used")


def test_a_payload_without_floats_is_written_by_orjson_even_with_null_in_it():
    """A file as Base64 nearly always holds "null"; with no float in the payload that is a None or
    text, and orjson's bytes (json's bytes) are used: json is not asked."""
    pdf = base64.b64encode(random.Random(20).randbytes(300_000)).decode() + "null"  # as it may hold it
    payload = {"reportId": "R-1", "pdf": pdf, "note": None, "items": [{"v": "e-0.0000", "n": None}]}
    assert ev.json_bytes(payload, Refuses()) == STDLIB.encode(payload).encode()
    with pytest.raises(AssertionError, match="json was asked"):  # a float beside it: json writes it
        ev.json_bytes({**payload, "x": 0.5}, Refuses())
