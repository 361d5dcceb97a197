"""The input contract: every reason code, the JSON Schema agreeing with the validator, and fuzzing."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crisiswatch.detectors.events import Post
from crisiswatch.streams.contract import REASONS, Rejection, decode_post, post_to_dict

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "streams" / "post.schema.json").read_text())
NOW_S = 1_790_000_000.0  # 2026-09-21


def valid(**overrides: object) -> dict:
    post = {
        "id": "p1",
        "created_at": "2026-09-21T10:00:00Z",
        "text": "my parcel is lost again",
        "kind": "post",
        "author": {"id": "u1", "followers": 10, "verified": False},
    }
    post.update(overrides)
    return {key: value for key, value in post.items() if value is not ...}


def encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


# (case name, raw bytes, expected reason or None for a valid post)
CASES: list[tuple[str, bytes, str | None]] = [
    ("minimal valid", encode(valid()), None),
    ("epoch seconds", encode(valid(created_at=NOW_S)), None),
    ("epoch milliseconds", encode(valid(created_at=NOW_S * 1000)), None),
    ("offset time", encode(valid(created_at="2026-09-21T18:00:00+08:00")), None),
    ("forward with parent", encode(valid(id="f1", kind="forward", parent_id="p1", root_id="p1")), None),
    ("comment without root", encode(valid(id="c1", kind="comment", parent_id="p1")), None),
    ("unknown fields ignored", encode(valid(extra={"a": 1})), None),
    ("null text", encode(valid(text=None)), None),
    ("BOM", b"\xef\xbb\xbf" + encode(valid()), None),
    ("invalid utf8", b'{"id": "\xff"}', "invalid_utf8"),
    ("invalid json", b'{"id": ', "invalid_json"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    ("huge number", b'{"id": "p", "created_at": ' + b"9" * 5000 + b"}", "invalid_json"),
    (
        "duplicate key",
        b'{"id": "a", "id": "b", "created_at": 1790000000, "author": {"id": "u"}}',
        "duplicate_key",
    ),
    ("NaN", b'{"id": "a", "created_at": NaN, "author": {"id": "u"}}', "non_finite_number"),
    (
        "integer beyond float range",
        b'{"id": "a", "created_at": 1' + b"0" * 400 + b', "author": {"id": "u"}}',
        "non_finite_number",
    ),
    (
        "Infinity followers",
        b'{"id": "a", "created_at": 1790000000, "author": {"id": "u", "followers": Infinity}}',
        "non_finite_number",
    ),
    ("array", b"[1, 2]", "not_an_object"),
    ("missing id", encode(valid(id=...)), "missing_field"),
    ("missing author", encode(valid(author=...)), "missing_field"),
    ("missing created_at", encode(valid(created_at=...)), "missing_field"),
    ("id wrong type", encode(valid(id=5)), "wrong_type"),
    ("text wrong type", encode(valid(text=["a"])), "wrong_type"),
    ("verified wrong type", encode(valid(author={"id": "u", "verified": "yes"})), "wrong_type"),
    ("id too long", encode(valid(id="x" * 257)), "id_too_long"),
    ("empty id", encode(valid(id="")), "id_too_long"),
    ("bad timestamp", encode(valid(created_at="yesterday")), "invalid_timestamp"),
    ("naive timestamp", encode(valid(created_at="2026-09-21T10:00:00")), "naive_timestamp"),
    ("epoch zero", encode(valid(created_at=0)), "timestamp_too_old"),
    ("far future", encode(valid(created_at="2126-01-01T00:00:00Z")), "timestamp_in_future"),
    ("bad kind", encode(valid(kind="retweet")), "invalid_kind"),
    ("forward without parent", encode(valid(kind="forward")), "missing_parent"),
    ("negative followers", encode(valid(author={"id": "u", "followers": -1})), "invalid_followers"),
    ("absurd followers", encode(valid(author={"id": "u", "followers": 10**11})), "invalid_followers"),
    ("text too long", encode(valid(text="a" * (64 * 1024 + 1))), "text_too_long"),
    ("sentiment out of range", encode(valid(sentiment=1.5)), "invalid_sentiment"),
    ("bad lang", encode(valid(lang="english")), "invalid_lang"),
    ("brands not a list", encode(valid(brands="Acme")), "invalid_brands"),
    ("own parent", encode(valid(id="c", kind="comment", parent_id="c")), "parent_cycle"),
    ("post with foreign root", encode(valid(root_id="other")), "parent_cycle"),
]


@pytest.mark.parametrize(("name", "raw", "reason"), CASES, ids=[case[0] for case in CASES])
def test_decode_post_table(name: str, raw: bytes, reason: str | None) -> None:
    result = decode_post(raw, reference_time_s=NOW_S)
    if reason is None:
        assert isinstance(result, Post), result
    else:
        assert isinstance(result, Rejection), result
        assert result.reason == reason, (name, result)


def test_every_reason_code_is_exercised_by_the_table() -> None:
    assert {reason for _, _, reason in CASES if reason} == set(REASONS)


# Checks a JSON Schema cannot express; the schema's description names them.
VALIDATOR_ONLY = {
    "invalid_utf8",
    "invalid_json",
    "duplicate_key",
    "non_finite_number",
    "text_too_long",
    "timestamp_too_old",
    "timestamp_in_future",
    "parent_cycle",
}
SCHEMA_CASES = [case for case in CASES if case[2] not in VALIDATOR_ONLY]


def test_schema_description_names_the_validator_only_checks() -> None:
    description = SCHEMA["description"].lower()
    for words in ("duplicate keys", "nan", "utf-8", "64 kib", "2006", "a day ahead", "cycles"):
        assert words in description


@pytest.mark.parametrize(("name", "raw", "reason"), SCHEMA_CASES, ids=[case[0] for case in SCHEMA_CASES])
def test_schema_and_validator_agree(name: str, raw: bytes, reason: str | None) -> None:
    instance = json.loads(raw.decode("utf-8-sig"))
    schema_ok = jsonschema.Draft202012Validator(SCHEMA).is_valid(instance)
    assert schema_ok == (reason is None), (name, reason)


def test_defaults_and_normalisation() -> None:
    post = decode_post(
        encode(valid(kind=None, author={"id": "u"}, lang="EN", brands=[" Acme ", "Acme"])), NOW_S
    )
    assert isinstance(post, Post)
    assert post.kind == "post" and post.root_id == "p1" and post.parent_id is None
    assert post.author.followers == 0 and post.author.verified is False
    assert post.lang == "en" and post.brands == ("Acme",)


def test_milliseconds_equal_seconds() -> None:
    seconds = decode_post(encode(valid(created_at=NOW_S)), NOW_S)
    millis = decode_post(encode(valid(created_at=NOW_S * 1000)), NOW_S)
    assert isinstance(seconds, Post) and isinstance(millis, Post)
    assert seconds.created_at_s == millis.created_at_s


def test_round_trip_through_canonical_form() -> None:
    post = decode_post(
        encode(valid(id="f", kind="forward", parent_id="p1", root_id="p1", sentiment=0.25, brands=["A"])),
        NOW_S,
    )
    assert isinstance(post, Post)
    again = decode_post(encode(post_to_dict(post)), NOW_S)
    assert again == post


def test_lone_surrogates_and_nul_are_data() -> None:
    raw = b'{"id": "s", "created_at": 1790000000, "text": "\\ud800 and \\u0000", "author": {"id": "u"}}'
    post = decode_post(raw, NOW_S)
    assert isinstance(post, Post)
    assert "\ud800" in post.text and "\x00" in post.text


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_give_a_post_or_a_reason(raw: bytes) -> None:
    result = decode_post(raw, NOW_S)
    assert isinstance(result, Post) or result.reason in REASONS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": json_values,
            "created_at": json_values | st.floats(1e9, 2e9),
            "text": json_values,
            "kind": st.sampled_from(["post", "forward", "comment", "x"]) | json_values,
            "parent_id": json_values,
            "root_id": json_values,
            "author": json_values
            | st.fixed_dictionaries({"id": st.text(max_size=5)}, optional={"followers": json_values}),
            "sentiment": json_values,
            "brands": json_values,
            "lang": json_values,
        },
    )
)
def test_structured_garbage_never_raises(obj: dict) -> None:
    raw = json.dumps(obj, allow_nan=True).encode()
    result = decode_post(raw, NOW_S)
    assert isinstance(result, Post) or result.reason in REASONS
