"""Second-pass behaviour: the volume interval's grace for late posts, the threshold-free alarm score, and
the batch path agreeing with the per-post path."""

from __future__ import annotations

import json

import pytest
from detector_helpers import T0, cascade, make_post

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DetectionEngine
from crisiswatch.detectors.settings import ConfigError
from crisiswatch.detectors.volume import CountSurge

START = 1_700_000_100.0  # an interval boundary (a multiple of 300 s)


def _brand_post(i: int, t: float):
    return make_post(f"g{i}", t, kind="post", root_id=f"g{i}")


def test_slightly_late_post_still_counts_in_its_interval():
    # interval [START, START+300): 3 posts, then one at START+310 (next interval) and a late one at
    # START+290 arriving after it, within grace_s=60: it counts, nothing is late.
    engine = DetectionEngine(DetectorsConfig())
    times = [START + 10, START + 100, START + 200, START + 310, START + 290]
    engine.update_many([_brand_post(i, t) for i, t in enumerate(times)])
    state = engine._brand_states["acme"].volume
    assert (state.interval_count, state.next_count, state.late) == (4, 1, 0)
    # after the grace the interval closes with 4 mentions; a post later still is late
    engine.update_many([_brand_post(10, START + 300 + 61), _brand_post(11, START + 100)])
    assert state.interval == int(START // 300) + 1 and state.interval_count == 2 and state.late == 1


def test_advance_closes_an_interval_only_after_its_grace():
    engine = DetectionEngine(DetectorsConfig())
    engine.update_many([_brand_post(0, START + 10)])
    state = engine._brand_states["acme"].volume
    first = state.interval
    engine.advance(START + 300 + 30)
    assert state.interval == first  # still within grace
    engine.advance(START + 300 + 61)
    assert state.interval == first + 1


def test_grace_must_be_shorter_than_an_interval():
    with pytest.raises(ConfigError) as caught:
        DetectorsConfig.from_mapping({"volume_surge": {"grace_s": 300}})
    assert caught.value.key == "volume_surge.grace_s"


def test_alarm_score_fires_once_per_surge_whatever_the_threshold():
    config = DetectorsConfig().volume_surge
    detector = CountSurge(config)
    counts = [20.0 + (i % 7) for i in range(600)] + [300.0, 400.0, 350.0] + [20.0] * 50 + [200.0]
    alarms = []
    for i, c in enumerate(counts):
        detector.update(T0 + 300 * i, c)
        alarms.append(detector.alarm_score)
    surge = alarms[600:603]
    assert surge[0] > 1.0 and surge[1:] == [0.0, 0.0]  # inside the open episode: silent
    assert alarms[-1] == 0.0  # a smaller second spike soon after: silent
    copy = CountSurge(config)
    copy.load(json.loads(json.dumps(detector.state())))
    assert copy.state() == detector.state()


def test_batch_and_per_post_paths_agree_on_verdicts():
    posts = cascade("bad", T0, 200, 20, comment_every=4) + cascade("ok", T0 + 30, 200, 20, root_negative=0.05)
    posts.sort(key=lambda p: p.created_at_s)
    single = DetectionEngine(DetectorsConfig())
    per_post = []
    for p in posts:
        per_post += single.update_cascade(p)
        for b in p.brands:
            per_post += single.update_brand(b, p)
    batch = DetectionEngine(DetectorsConfig())
    batched = []
    for i in range(0, len(posts), 50):
        batched += batch.update_many(posts[i : i + 50])

    def worst(out, root):
        return {a.severity for a in out if a.root_id == root and a.detector == "forward_surge"}

    assert worst(per_post, "bad") == worst(batched, "bad") == {"warning"}
    assert worst(per_post, "ok") == worst(batched, "ok") == {"info"}
    # the folded counts are identical; the projection's sums agree up to rounding
    a, b = single.cascade_state("bad"), batch.cascade_state("bad")
    assert a is not None and b is not None
    fa, fb = a["forward"], b["forward"]
    assert a["root"] == b["root"]
    assert (fa["counts"], fa["rate"], fa["amp"]) == (fb["counts"], fb["rate"], fb["amp"])
    assert a["negative"]["counts"] == b["negative"]["counts"]
    assert a["negative"]["talk"] == b["negative"]["talk"]
    assert fb["exp"][1:] == pytest.approx(fa["exp"][1:], rel=1e-9)  # [resharer weight, sums...]


def test_update_cascades_many_is_the_cascade_side_of_update_many():
    posts = cascade("bad", T0, 120, 20, comment_every=4)
    one, two = DetectionEngine(DetectorsConfig()), DetectionEngine(DetectorsConfig())
    out_one = one.update_many(posts)
    out_two = two.update_cascades_many(posts) + two.update_brands_many(posts)
    assert [(a.detector, a.severity, a.metrics) for a in out_one] == [
        (a.detector, a.severity, a.metrics) for a in out_two
    ]
