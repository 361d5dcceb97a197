"""The river-style contract, run over every registered detector class (`engine.DETECTOR_CLASSES`):
`update(event) -> Score`, determinism, no wall clock, serialise + restore gives identical future scores,
versioned state, and the batch path (`update_many`) folding to the same state as one event at a time, also
when events arrive out of order. Each detector gets a stream that makes it judge, so the contract is tested
on the interesting path, not on silence."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from detector_helpers import T0, cascade, make_post

from crisiswatch.detectors.base import PostBatch, Score, pack_ids, unpack_ids
from crisiswatch.detectors.cascade import ForwardSurge
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DETECTOR_CLASSES, DetectionEngine
from crisiswatch.detectors.negative import BrandNegativeSurge, CascadeNegativeSurge
from crisiswatch.detectors.volume import IntervalCount, VolumeSurge
from crisiswatch.detectors.windows import Ring

CONFIG = DetectorsConfig()
DATA = Path(__file__).parent / "data"


def _brand_negative_events() -> list[Any]:
    """A day at a steady 20% negative share, then an hour at 80%."""
    posts = [
        make_post(f"b{i}", T0 + i * 60.0, kind="post", root_id=f"b{i}", negative=0.9 if i % 5 == 0 else 0.1)
        for i in range(1440)
    ]
    posts += [
        make_post(
            f"s{i}", T0 + 86400 + i * 30.0, kind="post", root_id=f"s{i}", negative=0.9 if i % 5 else 0.1
        )
        for i in range(120)
    ]
    return posts


def _volume_events() -> list[Any]:
    """Two quiet days (2 mentions a minute), then 60 a minute for 20 minutes."""
    posts = []
    for minute in range(2 * 1440 + 20):
        per_min = 60 if minute >= 2 * 1440 else 2
        posts += [
            make_post(
                f"v{minute}-{j}", T0 + minute * 60 + j * 60 / per_min, kind="post", root_id=f"v{minute}-{j}"
            )
            for j in range(per_min)
        ]
    return posts


def _count_events() -> list[Any]:
    counts = [5.0 + (i % 288) / 20 for i in range(1200)] + [400.0] * 3 + [5.0] * 100
    return [IntervalCount(T0 + 300.0 * i, c) for i, c in enumerate(counts)]


# name -> (factory, events, restore); each factory builds a fresh detector for key "k"
CASES: dict[str, tuple[Callable[[], Any], Callable[[], list[Any]], Callable[[dict[str, Any]], Any]]] = {
    "ForwardSurge": (
        lambda: ForwardSurge("c1", CONFIG.forward_surge),
        lambda: cascade("c1", T0, 150, 20, comment_every=5),
        lambda s: ForwardSurge.from_state("c1", s, CONFIG.forward_surge),
    ),
    "CascadeNegativeSurge": (
        lambda: CascadeNegativeSurge("c1", CONFIG.negative_surge),
        lambda: cascade("c1", T0, 150, 20, comment_every=2),
        lambda s: CascadeNegativeSurge.from_state("c1", s, CONFIG.negative_surge),
    ),
    "BrandNegativeSurge": (
        lambda: BrandNegativeSurge("acme", CONFIG.negative_surge),
        _brand_negative_events,
        lambda s: BrandNegativeSurge.from_state("acme", s, CONFIG.negative_surge),
    ),
    "VolumeSurge": (
        lambda: VolumeSurge("acme", CONFIG.volume_surge),
        _volume_events,
        lambda s: VolumeSurge.from_state("acme", s, CONFIG.volume_surge),
    ),
    "VolumeSurge/counts": (
        lambda: VolumeSurge("acme", CONFIG.volume_surge),
        _count_events,
        lambda s: VolumeSurge.from_state("acme", s, CONFIG.volume_surge),
    ),
}
# detectors that take posts, for the batch path
POST_CASES = [name for name in CASES if name != "VolumeSurge/counts"]


def view(score: Score) -> tuple[Any, ...]:
    return (
        score.detector,
        score.key,
        score.value,
        score.event_time_s,
        json.dumps(score.metrics, sort_keys=True),
        score.explanation,
    )


def run(detector: Any, events: list[Any]) -> list[Score]:
    return [detector.update(event) for event in events]


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


def test_every_registered_detector_class_has_a_case():
    covered = {name.split("/")[0] for name in CASES}
    registered = {cls.__name__ for classes in DETECTOR_CLASSES.values() for cls in classes}
    assert covered == registered
    for name, classes in DETECTOR_CLASSES.items():
        for cls in classes:
            assert cls.name == name
            assert isinstance(cls.STATE_VERSION, int)
            for verb in ("update", "update_many", "score_at", "to_state", "from_state"):
                assert callable(getattr(cls, verb)), f"{cls.__name__} lacks {verb}"


def test_scores_keep_the_contract(case):
    make, events, _ = case
    detector = make()
    scores = run(detector, events())
    assert all(isinstance(s, Score) and s.detector == detector.name for s in scores)
    assert all(isinstance(s.value, float | int) and math.isfinite(s.value) for s in scores)
    judged = [s for s in scores if s.judged]
    assert judged, "the stream never made the detector judge"
    for s in judged:
        assert isinstance(s.explanation, str) and s.explanation
        json.dumps(s.metrics)
    final = detector.score_at(
        events()[-1][0] + 3600 if isinstance(events()[-1], IntervalCount) else T0 + 5 * 86400
    )
    assert isinstance(final, Score)


def test_deterministic(case):
    make, events, _ = case
    assert [view(s) for s in run(make(), events())] == [view(s) for s in run(make(), events())]


def test_never_reads_the_wall_clock(case, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a detector read the wall clock")

    make, events, _ = case
    stream = events()
    for name in ("time", "time_ns", "monotonic", "perf_counter", "localtime", "gmtime"):
        monkeypatch.setattr(time, name, boom)
    run(make(), stream)


@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_serialise_restore_gives_identical_future_scores(case, fraction):
    make, events, restore = case
    stream = events()
    cut = int(len(stream) * fraction)
    original = make()
    run(original, stream[:cut])
    state = original.to_state()
    assert state["v"] == original.STATE_VERSION
    copy = restore(json.loads(json.dumps(state)))
    assert copy.to_state() == state
    assert [view(s) for s in run(original, stream[cut:])] == [view(s) for s in run(copy, stream[cut:])]


def test_state_of_another_version_is_refused(case):
    make, _, restore = case
    state = make().to_state()
    state["v"] = 99
    with pytest.raises(ValueError, match="version"):
        restore(state)


def _fold_in_batches(make: Callable[[], Any], posts: list[Any], size: int) -> Any:
    detector = make()
    for start in range(0, len(posts), size):
        chunk = posts[start : start + size]
        rows = np.arange(len(chunk), dtype=np.int64)
        scores = type(detector).update_many(
            [detector], PostBatch(chunk), rows, np.zeros(len(chunk), np.int64)
        )
        assert len(scores) == 1
    return detector


def _same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    if "exp" in a:  # the projection's sums are added in one numpy step: equal up to rounding
        assert np.allclose(a["exp"][2], b["exp"][2], rtol=1e-9)
        a, b = dict(a, exp=None), dict(b, exp=None)
    a, b = dict(a, eval=None), dict(b, eval=None)  # when to judge next differs by design
    assert a == b


@pytest.mark.parametrize("name", POST_CASES)
@pytest.mark.parametrize("size", [1, 7, 200])
def test_batch_path_folds_to_the_same_state(name, size):
    make, events, _ = CASES[name]
    posts = events()
    one = make()
    run(one, posts)
    _same_state(one.to_state(), _fold_in_batches(make, posts, size).to_state())


@pytest.mark.parametrize("name", POST_CASES)
def test_batch_path_handles_disorder_like_the_event_path(name):
    make, events, _ = CASES[name]
    posts = events()
    rng = random.Random(5)
    # local disorder: swap neighbours across bucket edges, and a few posts an hour late
    for i in range(1, len(posts) - 1, 3):
        if rng.random() < 0.5:
            posts[i], posts[i + 1] = posts[i + 1], posts[i]
    for i in range(50, len(posts), 97):
        posts.insert(i - 40, posts.pop(i))
    one = make()
    run(one, posts)
    _same_state(one.to_state(), _fold_in_batches(make, posts, 64).to_state())


def test_batch_scores_are_taken_at_each_detectors_newest_row():
    posts = cascade("a", T0, 30, 20) + cascade("b", T0 + 5, 30, 20)
    posts.sort(key=lambda p: p.created_at_s)
    detectors = [ForwardSurge("a", CONFIG.forward_surge), ForwardSurge("b", CONFIG.forward_surge)]
    owners = np.array([0 if p.post.root_id == "a" else 1 for p in posts], dtype=np.int64)
    scores = ForwardSurge.update_many(detectors, PostBatch(posts), np.arange(len(posts)), owners)
    newest = [max(p.created_at_s for p in posts if p.post.root_id == key) for key in ("a", "b")]
    assert [s.event_time_s for s in scores if s is not None] == newest


# ------------------------------------------------------------------ the engine keeps reading old states
def _v1_fixture() -> dict[str, Any]:
    return json.loads((DATA / "state_v1.json").read_text())


@pytest.mark.parametrize("stream", ["forward_surge", "negative_surge", "volume_surge"])
def test_engine_loads_version_1_states_and_carries_on(stream):
    """States written before the detectors were split (version 1) load, and the rest of the stream gives
    the verdicts the old engine gave (recorded in the fixture)."""
    from test_contract import STREAMS, key
    from test_contract import run as run_engine

    fixture = _v1_fixture()[stream]
    engine = _load_old_states(fixture, version=1)
    steps = STREAMS[stream]()[fixture["split_step"] :]
    _, rest = run_engine(steps, engine)
    seen = sorted({(a.detector, a.severity or "normal") for a in rest})
    assert seen == [tuple(x) for x in fixture["expected_after"]], [key(a) for a in rest][:5]


# ------------------------------------------------------------------ cascade state version 2 still loads
def _chunked(steps: list[tuple[str, Any]], size: int) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for kind, value in steps:
        if kind == "posts":
            out += [("posts", value[i : i + size]) for i in range(0, len(value), size)]
        else:
            out.append((kind, value))
    return out


@pytest.mark.parametrize("stream", ["forward_surge", "negative_surge", "volume_surge"])
def test_engine_loads_version_2_cascade_states_and_carries_on_identically(stream):
    """`state_v2.json` was written by the version-2 code (dense rings, one versioned sub-state per
    detector) halfway through each contract stream (posts in chunks of 40), with every assessment the
    version-2 engine gave after loading them. The current engine loads the same states and gives the same
    assessments, number for number; a reloaded state is written as version 3 and round-trips."""
    from test_contract import STREAMS, key
    from test_contract import run as run_engine

    fixture = json.loads((DATA / "state_v2.json").read_text())[stream]
    engine = _load_old_states(fixture, version=2)
    steps = _chunked(STREAMS[stream](), fixture["chunk"])[fixture["split_step"] :]
    _, rest = run_engine(steps, engine)
    assert [_as_recorded(key(a)) for a in rest] == fixture["expected_after"]


def test_cascade_state_v3_is_small_and_exact():
    """Sparse rings, packed ids, no zero rings or empty records: a busy cascade (150 reactions, comments,
    amplifiers, an open incident) stays well under 1 KiB, and restores to the same state."""
    from test_contract import forward_stream

    engine = DetectionEngine(DetectorsConfig())
    _, posts = forward_stream()[0]
    engine.update_many(posts)
    state = engine.cascade_state("c1")
    assert state is not None and state["v"] == 3
    assert isinstance(state["ids"], str) and state["paging"]
    assert len(json.dumps(state, separators=(",", ":"))) <= 1024
    again = DetectionEngine(DetectorsConfig())
    again.load_cascade_state("c1", json.loads(json.dumps(state)))
    assert again.cascade_state("c1") == state


def test_sparse_ring_state_restores_the_same_floats():
    ring = Ring(60.0, 10, 2)
    ring.add(30.0, (1.0, 0.1))
    ring.add(95.0, (1.0, 0.2))
    ring.add(100.0, (1.0, 0.7))  # 0.1 + 0.2 + 0.7 summed as they came differs from sum() of the buckets
    state = json.loads(json.dumps(ring.sparse_state()))
    assert state == [1, [[0, 1, 0.1], [1, 2, 0.8999999999999999]], [3, 1]]  # totals kept: 1.0, not 0.99..
    copy = Ring(60.0, 10, 2)
    copy.load_sparse(state)
    assert (copy.head, copy.sums, copy.totals) == (ring.head, ring.sums, ring.totals)
    empty = Ring(60.0, 10, 2)
    assert empty.sparse_state() == [empty.head, []]
    copy.load_sparse(empty.sparse_state())
    assert (copy.head, copy.sums, copy.totals) == (empty.head, empty.sums, empty.totals)


def test_packed_ids_round_trip():
    ids = [0, 1, 2**32 - 1, 123456789]
    assert unpack_ids(json.loads(json.dumps(pack_ids(ids)))) == ids
    assert pack_ids([]) == "" and unpack_ids("") == []
    assert pack_ids([2**40]) == [2**40] and unpack_ids([2**40]) == [2**40]  # not a 32-bit hash: kept as is


@pytest.mark.parametrize("root_last", [False, True])
def test_forward_surge_state_keeps_the_exposure_reference_when_it_is_not_the_newest_event(root_last):
    """Version 2 writes the exposure's reference time only when it differs from `last` (a root that arrived
    after its reactions, or no reaction yet); either way a restored detector scores the future the same."""
    root = make_post("r1", T0 + 120, kind="post", followers=5000, negative=0.9, text="broken")
    reactions = [make_post(f"f{i}", T0 + i, root_id="r1", verified=i == 3) for i in range(30)]
    original = ForwardSurge("r1", CONFIG.forward_surge)
    for item in (reactions + [root]) if root_last else [root]:
        original.update(item)
    state = json.loads(json.dumps(original.to_state()))
    assert "ref" in state  # the root is the newest event; no reaction, or an older one, set ref
    copy = ForwardSurge.from_state("r1", state, CONFIG.forward_surge)
    assert copy.to_state() == original.to_state()
    later = [make_post(f"g{i}", T0 + 130 + i * 7, root_id="r1", followers=10 * i) for i in range(40)]
    assert [original.update(p)[2:5] for p in later] == [copy.update(p)[2:5] for p in later]


RECORDED_POLICY = DetectorsConfig.from_mapping(
    {
        "paging": {"cascade_comments_max_severity": "critical"},
        "negative_surge": {"brand_originals_only": False, "fast_window_s": 0},
    }
)
NEW_METRICS = ("window_s",)  # metrics added since the fixtures were recorded


def _as_recorded(assessment_key: tuple[Any, ...]) -> list[Any]:
    *head, metrics = assessment_key
    recorded = {k: v for k, v in json.loads(metrics).items() if k not in NEW_METRICS}
    return [*head, json.dumps(recorded, sort_keys=True)]


def _load_old_states(fixture: dict[str, Any], version: int) -> DetectionEngine:
    """An engine holding a fixture's old-version cascade and brand states; each reloaded cascade state is
    written in the current version (3) and round-trips. The fixtures' verdicts were recorded when a
    cascade's comments could page on their own, so that is the paging policy here (the states are what is
    under test)."""
    engine = DetectionEngine(RECORDED_POLICY)
    for root, state in fixture["cascades"].items():
        assert state["v"] == version
        engine.load_cascade_state(root, state)
    for brand, state in fixture["brands"].items():
        engine.load_brand_state(brand, state)
    for root in fixture["cascades"]:
        state = engine.cascade_state(root)
        assert state is not None and state["v"] == 3
        again = DetectionEngine(DetectorsConfig())
        again.load_cascade_state(root, json.loads(json.dumps(state)))
        assert again.cascade_state(root) == state
    return engine
