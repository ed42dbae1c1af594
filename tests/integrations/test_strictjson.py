"""The strict JSON parser of every machine API: each hostile input is refused with its path, and
whatever JSON a well-behaved system sends comes back unchanged (Hypothesis)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hospital_interop.integrations.strictjson import MAX_DEPTH, MAX_SAFE_INTEGER, JsonRefused, loads

HOSTILE = [
    ("invalid UTF-8", b'{"name": "\xff\xfe"}', "", "encoding"),
    ("NUL in a name", b'{"patient": {"name": "\\u0000\xe5\xbc\xa0"}}', "patient.name", "nul"),
    ("NUL in a key", b'{"a\\u0000": 1}', "（字段名）", "nul"),
    ("lone surrogate", b'{"patient": {"name": "\\ud800"}}', "patient.name", "surrogate"),
    ("duplicate keys", b'{"patient": {"idNo": "1", "idNo": "2"}}', "patient.idNo", "duplicate"),
    ("100,000-deep nesting", b"[" * 100_000 + b"]" * 100_000, "", "depth"),
    (f"{MAX_DEPTH + 1}-deep nesting", b'{"a": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}", None, "depth"),
    ("NaN", b'{"n": NaN}', "n", "number"),
    ("Infinity", b'{"n": -Infinity}', "n", "number"),
    ("integer beyond 2^53", b'{"items": [{"n": 9007199254740993}]}', "items[0].n", "number"),
    ("5,000-digit integer", b'{"n": ' + b"9" * 5000 + b"}", "", "number"),
    ("overflowing float", b'{"n": 1e400}', "n", "number"),
    ("a list at the top", b"[1]", "", "type"),
    ("a string at the top", b'"x"', "", "type"),
    ("truncated", b'{"x": ', "", "json"),
    ("trailing garbage", b'{"x": 1} {}', "", "json"),
]


@pytest.mark.parametrize("name, raw, field, rule", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_refused_with_its_path_and_rule(name, raw, field, rule):
    with pytest.raises(JsonRefused) as caught:
        loads(raw)
    assert caught.value.rule == rule
    if field is not None:
        assert caught.value.field == field
    assert caught.value.message  # a Chinese sentence for the caller


def test_an_array_is_accepted_where_bulk_expects_one_and_a_bom_is_ignored():
    assert loads(b'\xef\xbb\xbf[{"a": 1}]', top="array") == [{"a": 1}]
    with pytest.raises(JsonRefused):
        loads(b'{"a": 1}', top="array")


def test_the_largest_safe_integer_and_64_levels_pass():
    assert loads(json.dumps({"n": MAX_SAFE_INTEGER, "m": -MAX_SAFE_INTEGER}).encode()) == {
        "n": MAX_SAFE_INTEGER,
        "m": -MAX_SAFE_INTEGER,
    }
    deep = {"a": 1}
    for _ in range(MAX_DEPTH - 1):
        deep = {"a": deep}
    assert loads(json.dumps(deep).encode()) == deep


def test_the_result_is_made_of_plain_dicts():
    assert type(loads(b'{"a": {"b": 1}}')["a"]) is dict


safe_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | safe_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(safe_text, children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(safe_text, json_values, max_size=5))
def test_any_well_formed_record_comes_back_unchanged(value):
    assert loads(json.dumps(value, ensure_ascii=False).encode()) == value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_are_parsed_or_refused_never_anything_else(raw):
    try:
        loads(raw)
    except JsonRefused as refused:
        assert refused.rule in {
            "encoding",
            "json",
            "nul",
            "surrogate",
            "duplicate",
            "depth",
            "number",
            "type",
        }
