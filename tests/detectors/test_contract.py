"""One contract, run over every detector: determinism, no wall clock, serialise/restore, duplicates,
out-of-order delivery, expiry. Each detector gets a stream that makes it fire, so the contract is tested
on the interesting path, not on silence."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from detector_helpers import T0, cascade, make_post

from crisiswatch.detectors import volume
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DETECTORS, DetectionEngine
from crisiswatch.detectors.events import SEVERITY_RANK
from crisiswatch.detectors.volume import CountSurge

DETECTORS_DIR = Path(volume.__file__).parent


def forward_stream():
    return [("posts", cascade("c1", T0, 150, 20, comment_every=5)), ("advance", T0 + 3 * 3600)]


def negative_stream():
    """A brand with a steady 20% negative share for a day, then an hour at 80%."""
    steps = []
    posts = []
    for i in range(1440):
        t = T0 + i * 60.0
        posts.append(
            make_post(f"b{i}", t, kind="post", root_id=f"b{i}", negative=0.9 if i % 5 == 0 else 0.1, text="x")
        )
    for i in range(120):
        t = T0 + 1440 * 60.0 + i * 30.0
        posts.append(
            make_post(f"s{i}", t, kind="post", root_id=f"s{i}", negative=0.9 if i % 5 else 0.1, text="bad")
        )
    for k in range(0, len(posts), 100):
        steps.append(("posts", posts[k : k + 100]))
        steps.append(("advance", posts[min(k + 99, len(posts) - 1)].created_at_s))
    steps.append(("advance", T0 + 3 * 86400))
    return steps


def volume_stream():
    """Two quiet days (2 mentions a minute), then 60 a minute for 20 minutes, neutral."""
    posts = []
    n = 0
    for minute in range(2 * 1440 + 20):
        per_min = 60 if minute >= 2 * 1440 else 2
        for j in range(per_min):
            posts.append(
                make_post(f"v{n}", T0 + minute * 60 + j * 60 / per_min, kind="post", root_id=f"v{n}")
            )
            n += 1
    steps = []
    for k in range(0, len(posts), 200):
        steps.append(("posts", posts[k : k + 200]))
        steps.append(("advance", posts[min(k + 199, len(posts) - 1)].created_at_s))
    steps.append(("advance", T0 + 4 * 86400))
    return steps


STREAMS = {"forward_surge": forward_stream, "negative_surge": negative_stream, "volume_surge": volume_stream}


def run(steps, engine=None):
    engine = engine or DetectionEngine(DetectorsConfig())
    out = []
    for kind, value in steps:
        out += engine.update_many(value) if kind == "posts" else engine.advance(value)
    return engine, out


def key(a):
    return (
        a.detector,
        a.brand,
        a.root_id,
        a.severity,
        a.score,
        a.event_time_s,
        json.dumps(a.metrics, sort_keys=True),
    )


@pytest.fixture(params=sorted(STREAMS))
def detector(request):
    return request.param


def test_every_detector_has_a_contract_stream():
    assert set(STREAMS) == set(DETECTORS)


def test_stream_makes_the_detector_fire(detector):
    _, out = run(STREAMS[detector]())
    assert any(a.detector == detector and a.severity for a in out)
    assert any(a.detector == detector and a.severity is None for a in out), "never resolved"


def test_deterministic(detector):
    _, a = run(STREAMS[detector]())
    _, b = run(STREAMS[detector]())
    assert [key(x) for x in a] == [key(x) for x in b]


def test_never_reads_the_wall_clock(detector, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("detectors read the wall clock")

    for name in ("time", "time_ns", "monotonic", "perf_counter", "localtime", "gmtime"):
        monkeypatch.setattr(time, name, boom)
    run(STREAMS[detector]())
    for path in DETECTORS_DIR.glob("*.py"):
        source = path.read_text()
        for forbidden in ("time.time(", "datetime.now(", "datetime.utcnow(", "date.today(", "perf_counter("):
            assert forbidden not in source, f"{path.name} calls {forbidden}"


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_serialise_restore_gives_identical_future(detector, fraction):
    steps = STREAMS[detector]()
    split = max(1, int(len(steps) * fraction))
    a, _ = run(steps[:split])
    roots, brands = a.drain_dirty()
    b = DetectionEngine(DetectorsConfig())
    for root in sorted(roots):
        state = a.cascade_state(root)
        if state is not None:
            b.load_cascade_state(root, json.loads(json.dumps(state)))
    for brand in sorted(brands):
        state = a.brand_state(brand)
        if state is not None:
            b.load_brand_state(brand, json.loads(json.dumps(state)))
    _, rest_a = run(steps[split:], a)
    _, rest_b = run(steps[split:], b)
    assert [key(x) for x in rest_a] == [key(x) for x in rest_b]


def test_duplicates_change_nothing(detector):
    steps = STREAMS[detector]()
    doubled = [
        ("posts", [p for p in value for _ in range(2)]) if kind == "posts" else (kind, value)
        for kind, value in steps
    ]
    _, clean = run(steps)
    _, dup = run(doubled)
    assert [key(x) for x in clean] == [key(x) for x in dup]


def test_small_disorder_keeps_the_verdict(detector):
    steps = STREAMS[detector]()
    swapped = []
    for kind, value in steps:
        if kind == "posts":
            value = list(value)
            for i in range(1, len(value) - 1, 2):
                value[i], value[i + 1] = value[i + 1], value[i]
        swapped.append((kind, value))
    _, clean = run(steps)
    _, shuffled = run(swapped)

    def worst(out):
        return max(SEVERITY_RANK[a.severity] for a in out if a.detector == detector)

    assert worst(clean) == worst(shuffled)


def test_idle_keys_expire(detector):
    engine, _ = run(STREAMS[detector]())
    engine.advance(T0 + 60 * 86400)
    assert engine.active_keys == (0, 0)


def test_count_detector_contract():
    counts = [5.0 + (i % 288) / 20 for i in range(3000)] + [400.0] * 3 + [5.0] * 200
    first = CountSurge(DetectorsConfig().volume_surge)
    scores = [first.update(T0 + 300 * i, c) for i, c in enumerate(counts[:2000])]
    copy = CountSurge(DetectorsConfig().volume_surge)
    copy.load(json.loads(json.dumps(first.state())))
    rest_a = [first.update(T0 + 300 * (2000 + i), c) for i, c in enumerate(counts[2000:])]
    rest_b = [copy.update(T0 + 300 * (2000 + i), c) for i, c in enumerate(counts[2000:])]
    assert rest_a == rest_b
    assert max(rest_a) >= 1.0 and max(scores) < 1.0
