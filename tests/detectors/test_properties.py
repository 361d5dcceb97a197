"""Property tests: any stream is handled, states round-trip exactly, statistics stay in range."""

from __future__ import annotations

import json
import math

from detector_helpers import T0, make_post
from hypothesis import given, settings
from hypothesis import strategies as st

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DETECTORS, DetectionEngine
from crisiswatch.detectors.stats import anscombe_count, anscombe_z, wilson_bounds
from crisiswatch.detectors.windows import Ring

post_spec = st.tuples(
    st.floats(0, 7200, allow_nan=False),  # offset in s
    st.sampled_from(["post", "forward", "comment"]),
    st.integers(0, 3),  # root
    st.one_of(st.none(), st.floats(0, 1)),  # negative probability
    st.integers(0, 5_000_000),  # followers
    st.booleans(),  # verified
    st.integers(0, 40),  # id (small: duplicates happen)
)


def build(specs):
    posts = []
    for offset, kind, root, neg, followers, verified, pid in specs:
        root_id = f"r{root}"
        post_id = root_id if kind == "post" else f"p{pid}"
        posts.append(
            make_post(
                post_id,
                T0 + offset,
                kind=kind,
                root_id=root_id,
                followers=followers,
                verified=verified,
                negative=neg if kind != "forward" else None,
                text="t" if neg is not None else "",
            )
        )
    return posts


@settings(max_examples=60, deadline=None)
@given(st.lists(post_spec, max_size=120), st.integers(0, 119))
def test_any_stream_is_handled_and_restores_exactly(specs, cut):
    posts = build(specs)
    cut = min(cut, len(posts))
    a = DetectionEngine(DetectorsConfig())
    out = a.update_many(posts[:cut])
    b = DetectionEngine(DetectorsConfig())
    roots, brands = a.drain_dirty()
    for root in roots:
        state = a.cascade_state(root)
        if state is not None:
            b.load_cascade_state(root, json.loads(json.dumps(state)))
    for brand in brands:
        state = a.brand_state(brand)
        if state is not None:
            b.load_brand_state(brand, json.loads(json.dumps(state)))
    rest_a = a.update_many(posts[cut:]) + a.advance(T0 + 10_000)
    rest_b = b.update_many(posts[cut:]) + b.advance(T0 + 10_000)
    assert [(x.detector, x.severity, x.score, x.metrics) for x in rest_a] == [
        (x.detector, x.severity, x.score, x.metrics) for x in rest_b
    ]
    for assessment in out + rest_a:
        assert assessment.detector in DETECTORS
        assert assessment.severity in (None, "info", "warning", "critical")
        assert math.isfinite(assessment.score)
        json.dumps(assessment.metrics)


@given(st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0.5, 4))
def test_wilson_bounds_bracket_the_share(k, n, z):
    k = min(k, n)
    lower, upper = wilson_bounds(k, n, z)
    assert 0.0 <= lower <= upper <= 1.0
    if n > 0:
        assert lower <= k / n + 1e-9 and upper >= k / n - 1e-9


@given(st.floats(0, 1e5), st.floats(0.01, 1e5))
def test_anscombe_count_inverts_z(count, expected):
    z = anscombe_z(count, expected)
    assert math.isclose(anscombe_count(z, expected), count, rel_tol=1e-6, abs_tol=1e-6)


@given(st.lists(st.tuples(st.floats(0, 5000), st.integers(0, 9)), max_size=200))
def test_ring_totals_are_the_window_sum(events):
    ring = Ring(60.0, 10)
    kept = []
    for t, v in events:
        if ring.add(t, (float(v),)):
            kept.append((t, v))
    start = ring.window_start_s()
    assert ring.totals[0] == sum(v for t, v in kept if t >= start)
