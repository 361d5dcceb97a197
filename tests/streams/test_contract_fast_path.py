"""The contract's fast path (`_decode_well_formed`) against the checked path (`_decode_checked`).

`decode_post` takes the fast path for plainly valid records and the checked path for everything else; the
promise is that this changes nothing: the same bytes give an equal `Post` or the same `Rejection` (reason
and detail). These tests compare the two on the contract table, on generated streams, on valid records
mutated at the edges of every check, and on arbitrary bytes and JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_input_contract import CASES, NOW_S, json_values, valid

from crisiswatch.detectors.events import Author, Post
from crisiswatch.streams.contract import (
    Rejection,
    _build_author,
    _build_post,
    _decode_checked,
    _decode_well_formed,
    decode_post,
    parse_created_at,
    slot_builder,
)
from crisiswatch.streams.scenarios import generate, iter_jsonl, preset


def same_result(raw: bytes | str, reference_time_s: float | None = NOW_S) -> Post | Rejection:
    fast = decode_post(raw, reference_time_s)
    checked = _decode_checked(raw, reference_time_s)
    assert fast == checked, (raw[:300], fast, checked)
    assert type(fast) is type(checked)
    return fast


def test_field_order_the_fast_path_relies_on() -> None:
    # `_decode_well_formed` builds Post and Author positionally: a change here must change it too.
    assert [f.name for f in fields(Post)] == [
        "id",
        "created_at_s",
        "text",
        "kind",
        "parent_id",
        "root_id",
        "author",
        "platform",
        "lang",
        "url",
        "sentiment",
        "brands",
    ]
    assert [f.name for f in fields(Author)] == ["id", "followers", "verified"]
    # Built through the slot descriptors, not a fallback to the class (which would still be correct).
    assert _build_post is not Post and _build_author is not Author


def test_slot_builder_builds_the_same_object() -> None:
    author = _build_author("u", 3, True)
    assert author == Author("u", 3, True) and hash(author) == hash(Author("u", 3, True))
    values = ("p", 1.5, "t", "comment", "q", "r", author, "x", "en", None, 0.25, ("A",))
    post = _build_post(*values)
    assert type(post) is Post and post == Post(*values) and repr(post) == repr(Post(*values))
    with pytest.raises(AttributeError):
        post.id = "other"  # type: ignore[misc]  # still frozen


def test_slot_builder_falls_back_to_the_constructor_it_cannot_replace() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    @dataclass(frozen=True, slots=True)
    class Derived:
        value: int
        double: int = field(init=False, default=0)

    @dataclass(frozen=True)
    class Unslotted:
        value: int = 0

    assert slot_builder(Checked) is Checked
    assert slot_builder(Derived) is Derived
    assert slot_builder(Unslotted) is Unslotted


@pytest.mark.parametrize(("name", "raw", "reason"), CASES, ids=[case[0] for case in CASES])
def test_contract_table_gives_the_same_result(name: str, raw: bytes, reason: str | None) -> None:
    result = same_result(raw)
    assert (result.reason if isinstance(result, Rejection) else None) == reason


def test_generated_streams_take_the_fast_path_and_agree() -> None:
    scenario = generate(preset("demo"))
    lines = list(iter_jsonl(scenario))
    assert len(lines) > 1000
    stream_now_s = max(parse_created_at(post["created_at"]) for post in scenario.posts)
    for line in lines:
        raw = line.encode("utf-8")
        assert _decode_well_formed(raw, stream_now_s) is not None, line
        assert decode_post(raw, stream_now_s) == _decode_checked(raw, stream_now_s)
        assert decode_post(line, None) == _decode_checked(line, None)  # str input too
        assert decode_post(raw, NOW_S) == _decode_checked(raw, NOW_S)  # a stream two months ahead


# Values at and just past the edge of each check, per field (`...` removes the field).
EDGES: dict[str, list[object]] = {
    "id": [..., None, "", "x", "x" * 256, "x" * 257, 5, True, ["p"], {"a": 1}, "\ud800", "p\x00"],
    "created_at": [
        ...,
        None,
        NOW_S,
        NOW_S * 1000,
        int(NOW_S),
        1e11,
        1e11 + 1,
        1_136_073_600,
        1_136_073_599.999,
        NOW_S + 86_400,
        NOW_S + 86_401,
        -1,
        0,
        1e300,
        10**400,
        True,
        "2026-09-21T10:00:00Z",
        "2026-09-21T10:00:00.123456+08:00",
        "2026-09-21 10:00:00+0000",
        "2026-09-21T10:00:00",
        "2026-09-21",
        "2026-09-21T10:00:00z",
        "x" * 65,
        "2026-09-21T10:00:00Z" + " " * 44,
        "yesterday",
        ["2026"],
    ],
    "text": [..., None, "", "a" * 16_384, "a" * 16_385, "é" * 32_768, "é" * 32_769, "\ud800", 5, ["a"]],
    "kind": [..., None, "post", "forward", "comment", "Post", "retweet", "", 1, ["post"], {"a": 1}],
    "parent_id": [..., None, "", "p1", "p0", "x" * 256, "x" * 257, 1, ["p"]],
    "root_id": [..., None, "", "p1", "p0", "r", "x" * 257, 1, ["p"]],
    "author": [
        ...,
        None,
        "u",
        [],
        {},
        {"id": "u"},
        {"id": ""},
        {"id": "u", "followers": None, "verified": None},
        {"id": "u", "followers": 0},
        {"id": "u", "followers": 10_000_000_000},
        {"id": "u", "followers": 10_000_000_001},
        {"id": "u", "followers": 1e10},
        {"id": "u", "followers": 2.5},
        {"id": "u", "followers": 3.0},
        {"id": "u", "followers": -0.0},
        {"id": "u", "followers": -1},
        {"id": "u", "followers": 1e400},
        {"id": "u", "followers": 10**400},
        {"id": "u", "followers": True},
        {"id": "u", "followers": "5"},
        {"id": "u", "verified": True},
        {"id": "u", "verified": 1},
        {"id": "u", "extra": {"b": [1, {"c": 2}]}},
        {"id": 7},
    ],
    "platform": [..., None, "", "twitter", "p" * 65, 1],
    "lang": [..., None, "", "en", "EN", "Zh", "en ", "e1", "ɑb", "İ", "eng", 5, ["en"]],
    "url": [..., None, "", "https://x", "u" * 2049, 1],
    "sentiment": [..., None, 0, 1, 0.5, 1.0000001, -0.0, -1e-9, 2, True, False, "0.5", 1e400],
    "brands": [
        ...,
        None,
        [],
        ["Acme"],
        [" Acme "],
        ["Acme", " Acme", "Beta"],
        [""],
        ["  "],
        ["x" * 256],
        ["x" * 257],
        [" " + "x" * 256 + " "],
        ["A"] * 32,
        ["A"] * 33,
        [1],
        [["Acme"]],
        [{"a": 1}],
        "Acme",
        {"Acme": 1},
    ],
    "extra": [..., None, 1, [1, [2, {"a": {"b": None}}]], {"nested": {"x": 1, "y": [{"z": 1}]}}],
}


@settings(max_examples=600, deadline=None)
@given(
    overrides=st.dictionaries(
        st.sampled_from(sorted(EDGES)), st.integers(min_value=0, max_value=40), max_size=4
    ),
    reference=st.sampled_from([NOW_S, None]),
    ensure_ascii=st.booleans(),
    spaced=st.booleans(),
)
def test_edge_mutations_of_a_valid_record_agree(
    overrides: dict[str, int], reference: float | None, ensure_ascii: bool, spaced: bool
) -> None:
    chosen = {key: EDGES[key][index % len(EDGES[key])] for key, index in overrides.items()}
    record = valid(**chosen)
    separators = (", ", ": ") if spaced else (",", ":")
    same_result(
        json.dumps(record, ensure_ascii=ensure_ascii, separators=separators).encode("utf-8", "surrogatepass"),
        reference,
    )


# Raw texts a serialiser would never write: duplicates at every depth, NaN, BOM, whitespace, bad bytes.
RAW_EDGES: list[bytes] = [
    b'{"id":"a","created_at":1790000000,"author":{"id":"u","id":"v"}}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"},"x":{"k":1,"k":2}}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"},"x":[{"k":1,"k":2}]}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u","x":{"k":1,"k":2}}}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"},"brands":[{"k":1,"k":2}]}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"},"text":{"k":1,"k":2}}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"},"sentiment":NaN}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"},"x":-Infinity}',
    b'{"id":"a","created_at":1e400,"author":{"id":"u"}}',
    b'{"id":"a","created_at":-1e400,"author":{"id":"u"}}',
    b'\xef\xbb\xbf{"id":"a","created_at":1790000000,"author":{"id":"u"}}',
    b' {"id":"a","created_at":1790000000,"author":{"id":"u"}}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"}} ',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"}}\r',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"}}{}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"},"text":"\\ud800\\u0000"}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"},"text":"tab\there"}',
    b'{"id":"\xc3\x28","created_at":1790000000,"author":{"id":"u"}}',
    b'{"id":"a","created_at":1790000000,"author":{"id":"u"},"lang":"\xc4\xb0n"}',
    "\ufeff".encode("utf-16"),
    b"",
    b"null",
    b"[]",
    b"{}",
]


@pytest.mark.parametrize("raw", RAW_EDGES)
def test_raw_edges_agree(raw: bytes) -> None:
    same_result(raw)
    same_result(raw, None)


def test_caches_do_not_change_results() -> None:
    # The fast path remembers validated `lang` and single-brand values: a second decode is the same.
    raw = json.dumps(valid(lang="EN", brands=[" Acme "])).encode()
    first, second = same_result(raw), same_result(raw)
    assert isinstance(first, Post) and first == second
    assert first.lang == "en" and first.brands == ("Acme",)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_agree(raw: bytes) -> None:
    same_result(raw)


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": json_values | st.text(min_size=1, max_size=8),
            "created_at": json_values | st.floats(1e9, 2e12) | st.integers(1_136_073_600, 2_000_000_000),
            "text": json_values,
            "kind": st.sampled_from(["post", "forward", "comment", "x"]) | json_values,
            "parent_id": json_values | st.just("p"),
            "root_id": json_values | st.just("p"),
            "author": json_values
            | st.fixed_dictionaries(
                {"id": st.text(max_size=5)},
                optional={"followers": json_values, "verified": json_values, "bio": json_values},
            ),
            "sentiment": json_values | st.floats(0, 1),
            "brands": json_values | st.lists(st.text(max_size=6), max_size=3),
            "lang": json_values | st.text(alphabet="abcEZ1 ", min_size=2, max_size=2),
            "platform": json_values,
            "url": json_values,
            "extra": json_values,
        },
    ),
    st.sampled_from([NOW_S, None]),
)
def test_structured_garbage_agrees(obj: dict, reference: float | None) -> None:
    same_result(json.dumps(obj, allow_nan=True).encode(), reference)
