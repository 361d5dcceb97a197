"""The DetectionEngine interface the streams layer relies on, end to end."""

from __future__ import annotations

import json

from detector_helpers import T0, cascade

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DetectionEngine
from crisiswatch.detectors.events import Assessment, BrandProfile


def test_negative_cascade_pages_and_resolves():
    engine = DetectionEngine(DetectorsConfig())
    out = engine.update_many(cascade("bad", T0, 200, 20, comment_every=4))
    fired = [a for a in out if a.detector == "forward_surge" and a.root_id == "bad"]
    assert fired and fired[0].severity == "warning"
    assert all(isinstance(a, Assessment) for a in out)
    m = fired[0].metrics
    for key in (
        "forwards_per_minute",
        "forwards_total",
        "reach_followers",
        "projected_final_size",
        "projected_reach",
        "negative_share",
        "top_amplifiers",
        "sample_comments",
        "root_text",
        "root_url",
    ):
        assert key in m
    json.dumps(m)
    later = engine.advance(T0 + 3 * 3600)
    resolved = [a for a in later if a.root_id == "bad" and a.detector == "forward_surge"]
    assert resolved and resolved[-1].severity is None


def test_positive_viral_cascade_is_at_most_info():
    engine = DetectionEngine(DetectorsConfig())
    out = engine.update_many(
        cascade("good", T0, 400, 30, root_negative=0.05, comment_every=4, comment_negative=0.05)
    )
    assert out
    assert {a.severity for a in out if a.detector == "forward_surge"} <= {"info", None}


def test_state_round_trip_and_dirty_keys():
    config = DetectorsConfig()
    posts = cascade("bad", T0, 120, 20, comment_every=4)
    a = DetectionEngine(config)
    a.update_many(posts[:60])
    roots, brands = a.drain_dirty()
    assert roots == {"bad"} and brands == {"acme"}
    assert a.drain_dirty() == (set(), set())
    b = DetectionEngine(config)
    b.load_cascade_state("bad", json.loads(json.dumps(a.cascade_state("bad"))))
    b.load_brand_state("acme", json.loads(json.dumps(a.brand_state("acme"))))
    assert a.update_many(posts[60:]) == b.update_many(posts[60:])
    assert a.cascade_state("bad") == b.cascade_state("bad")


def test_brand_overrides_apply():
    brands = {"acme": BrandProfile(name="acme", detector_overrides={"forward_surge": {"min_events": 500}})}
    engine = DetectionEngine(DetectorsConfig(), brands)
    assert engine.config_for("acme").forward_surge.min_events == 500
    out = engine.update_many(cascade("bad", T0, 200, 20, comment_every=0))
    assert not [a for a in out if a.detector == "forward_surge" and a.severity]


def test_idle_keys_expire():
    engine = DetectionEngine(DetectorsConfig())
    engine.update_many(cascade("bad", T0, 30, 20))
    assert engine.active_keys == (1, 1)
    engine.advance(T0 + 8 * 86400)
    assert engine.active_keys == (0, 0)
    roots, brands = engine.drain_dirty()
    assert engine.cascade_state("bad") is None and "bad" in roots
