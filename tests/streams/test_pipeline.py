"""The plain-Python pipeline: accounting, watermark, dedup, lateness, root resolution, batch independence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import planted  # noqa: E402

from crisiswatch.streams.config import settings_from_mapping  # noqa: E402
from crisiswatch.streams.pipeline import Pipeline, RawRecord, Watermark  # noqa: E402

SETTINGS = settings_from_mapping({"brands": planted.BRAND_CONFIG}, environ={})


def records(raw: list[bytes]) -> list[RawRecord]:
    return [RawRecord(value, 0, index, f"test:{index + 1}") for index, value in enumerate(raw)]


def run(raw: list[bytes], batch: int) -> list[dict]:
    pipeline = Pipeline(SETTINGS)
    events = []
    items = records(raw)
    for start in range(0, len(items), batch):
        events += pipeline.process(items[start : start + batch])[1]
    assert pipeline.totals.balanced()
    return [event.to_dict() for event in events]


def test_incidents_do_not_depend_on_batch_boundaries() -> None:
    raw = planted.encode(planted.stream())
    reference = run(raw, 5000)
    assert any(event["root_id"] == planted.SURGE_ROOT and event["status"] == "firing" for event in reference)
    for batch in (1, 7, 333):
        assert run(raw, batch) == reference


def test_hostile_lines_do_not_change_the_incidents() -> None:
    raw = planted.encode(planted.stream())
    hostile = [bad for bad, _ in planted.MALFORMED]
    mixed = []
    for index, line in enumerate(raw):
        mixed.append(line)
        if index % 50 == 0:
            mixed.append(hostile[index // 50 % len(hostile)])
    assert run(mixed, 500) == run(raw, 500)


def test_accounting_identity_with_duplicates_late_and_rejects() -> None:
    pipeline = Pipeline(SETTINGS)
    t0 = planted.START_S
    lines = [json.dumps(planted.post(f"p{i}", t0 + i * 10, "hello Acme")).encode() for i in range(100)]
    lines += lines[:5]  # redelivered
    lines.append(json.dumps(planted.post("old", t0 - 3600, "late Acme")).encode())  # an hour behind
    lines.append(b"not json")
    result = pipeline.ingest(records(lines))
    counts = result.accounting
    assert (counts.consumed, counts.processed, counts.duplicate, counts.late, counts.dead_lettered_total) == (
        107,
        100,
        5,
        1,
        1,
    )
    assert counts.balanced()


def test_one_far_future_post_does_not_move_the_watermark() -> None:
    watermark = Watermark(quorum=3)
    for t in (100.0, 110.0, 120.0, 130.0):
        watermark.observe(t)
    watermark.observe(10_000_000.0)
    assert watermark.value_s == 120.0
    watermark.observe(140.0)
    assert watermark.value_s == 130.0


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(1, 16),
    st.lists(st.integers(0, 60).map(float), max_size=200),
)
def test_the_watermark_is_the_kth_largest_of_the_recent_times_never_going_down(
    quorum: int, recent_limit: int, times: list[float]
) -> None:
    """The incremental k largest give what sorting the recent times after every post gave."""
    quorum = min(quorum, recent_limit)
    watermark = Watermark(quorum, recent_limit)
    value: float | None = None
    for i, t in enumerate(times):
        watermark.observe(t)
        recent = times[max(0, i + 1 - recent_limit) : i + 1]
        if len(recent) >= quorum:
            candidate = sorted(recent)[-quorum]
            value = candidate if value is None else max(value, candidate)
        assert watermark.value_s == value


def test_far_future_post_is_rejected_in_replay_and_does_not_silence_the_stream() -> None:
    pipeline = Pipeline(SETTINGS)
    t0 = planted.START_S
    lines = [json.dumps(planted.post(f"a{i}", t0 + i, "Acme")).encode() for i in range(10)]
    lines.append(json.dumps(planted.post("future", t0 + 86_400 * 365, "Acme")).encode())
    lines += [json.dumps(planted.post(f"b{i}", t0 + 20 + i, "Acme")).encode() for i in range(10)]
    result = pipeline.ingest(records(lines))
    assert [d.reason for d in result.dead_letters] == ["timestamp_in_future"]
    assert result.accounting.processed == 20 and result.accounting.late == 0


@pytest.mark.parametrize(
    ("posts", "expected_roots", "rejected"),
    [
        # a comment without root_id inherits the root of its known parent
        ([("r", "post", None), ("f", "forward", "r"), ("c", "comment", "f")], ["r", "r", "r"], []),
        # a parent never seen: the parent itself is taken as the root
        ([("c", "comment", "ghost")], ["ghost"], []),
        # A's parent is B, B's parent is A: the loop is dead-lettered
        ([("a", "forward", "b"), ("b", "forward", "a")], ["b"], ["parent_cycle"]),
    ],
)
def test_root_resolution(
    posts: list[tuple[str, str, str | None]], expected_roots: list[str], rejected: list[str]
) -> None:
    pipeline = Pipeline(SETTINGS)
    lines = []
    for index, (post_id, kind, parent) in enumerate(posts):
        data = planted.post(post_id, planted.START_S + index, "Acme", kind=kind)
        if parent is not None:
            data["parent_id"] = parent
        lines.append(json.dumps(data).encode())
    result = pipeline.ingest(records(lines))
    assert [post.post.root_id for post in result.posts] == expected_roots
    assert [d.reason for d in result.dead_letters] == rejected


def test_same_id_with_different_content_is_a_duplicate() -> None:
    pipeline = Pipeline(SETTINGS)
    first = json.dumps(planted.post("x", planted.START_S, "Acme is fine")).encode()
    second = json.dumps(planted.post("x", planted.START_S + 5, "Acme is terrible")).encode()
    result = pipeline.ingest(records([first, second]))
    assert result.accounting.processed == 1 and result.accounting.duplicate == 1
    assert result.posts[0].post.text == "Acme is fine"


def test_reactions_inherit_their_roots_brands_after_a_restore() -> None:
    first = Pipeline(SETTINGS)
    root = json.dumps(planted.post("r", planted.START_S, "Acme lost my parcel")).encode()
    first.ingest(records([root]))
    brands = first.cascade_brands("r")
    assert brands == ("Acme Parcel",)
    second = Pipeline(SETTINGS)
    second.remember_cascade_brands("r", brands)
    forward = planted.post("f", planted.START_S + 5, "", kind="forward", parent="r")
    result = second.ingest(records([json.dumps(forward).encode()]))
    assert result.posts[0].brands == ("Acme Parcel",)
