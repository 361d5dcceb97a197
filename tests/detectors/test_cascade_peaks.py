"""The brand's learnt floor of a rate surge: the tail of its ordinary cascades' peak window counts.

A brand whose ordinary complaints routinely reach 25 forwards in ten minutes must not be paged for the
26th such complaint; a cascade well beyond what the brand's cascades do must still be paged, and an
incident must not teach the floor to ignore the next one.
"""

from __future__ import annotations

import json

import pytest
from detector_helpers import T0, make_post, timeline_reactions

from crisiswatch.detectors.brand import BrandState, CascadePeaks
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DetectionEngine

DAY = 86400.0


def config(**forward_surge) -> DetectorsConfig:
    return DetectorsConfig.from_mapping({"forward_surge": forward_surge} if forward_surge else None)


def peaks_over_days(days: int, per_day: dict[float, int], cfg: DetectorsConfig) -> CascadePeaks:
    """`per_day`: peak window count -> cascades per day with that peak, spread evenly over each day."""
    peaks = CascadePeaks()
    daily = sorted((peak for peak, n in per_day.items() for _ in range(n)), key=lambda p: hash(p) % 7)
    for day in range(days):
        for i, peak in enumerate(daily):
            peaks.note(peak, T0 + day * DAY + (i + 1) * DAY / (len(daily) + 1), cfg)
    return peaks


@pytest.mark.parametrize(
    ("budget_per_day", "floor_above", "floor_at_most"),
    [
        # one cascade a day reaches 100, three reach 40, the rest stay at 5
        (0.5, 100, 200),  # fewer than one crossing a day allowed: the floor is above the daily 100
        (1.5, 40, 100),  # more than one a day allowed: the 100s may cross, the 40s may not
        (4.0, 5, 40),  # more than three a day: both may cross, the 5s may not
    ],
)
def test_floor_is_where_ordinary_cascades_cross_at_most_the_budget(
    budget_per_day, floor_above, floor_at_most
):
    cfg = config(ordinary_surges_per_day=budget_per_day)
    peaks = peaks_over_days(14, {5.0: 100, 40.0: 2, 100.0: 1}, cfg)
    assert floor_above < peaks.surge_floor <= floor_at_most, peaks.surge_floor


def test_no_floor_before_enough_history_or_when_turned_off():
    cfg = config(peak_history_min_s=2 * DAY)
    young = peaks_over_days(1, {5.0: 100, 40.0: 3}, cfg)
    assert young.surge_floor == 0.0
    assert peaks_over_days(3, {5.0: 100, 40.0: 3}, cfg).surge_floor > 40
    assert peaks_over_days(3, {5.0: 100, 40.0: 3}, config(ordinary_surges_per_day=0)).surge_floor == 0.0


def test_typical_rate_is_the_geometric_mean_of_the_peaks():
    cfg = config()
    peaks = peaks_over_days(2, {3.0: 50, 15.0: 50}, cfg)
    # geometric mean of (1+3) and (1+15) is 8, minus one: 7 events per 10-minute window
    assert peaks.typical_per_min == pytest.approx(0.7, rel=0.1)


def test_old_peaks_fade_with_the_half_life():
    cfg = config(peak_half_life_s=DAY, ordinary_surges_per_day=1.0)
    peaks = peaks_over_days(3, {5.0: 50, 200.0: 5}, cfg)  # a noisy week ...
    assert peaks.surge_floor > 200
    last = peaks.last_s
    assert last is not None
    for i in range(20 * 50):  # ... then twenty quiet days
        peaks.note(5.0, last + (i + 1) * 20 * DAY / 1000, cfg)
    assert peaks.surge_floor <= 8


def test_state_is_bounded_and_round_trips():
    cfg = config()
    peaks = CascadePeaks()
    for i in range(200_000):
        peaks.note(float(i % 5000), T0 + i * 30.0, cfg)
    state = json.loads(json.dumps(peaks.to_state()))
    assert len(state["counts"]) <= CascadePeaks.BUCKETS
    again = CascadePeaks.from_state(state, cfg)
    assert again.surge_floor == peaks.surge_floor
    assert again.typical_per_min == pytest.approx(peaks.typical_per_min, rel=1e-6)


def test_a_version_2_brand_record_keeps_its_typical_rate():
    cfg = config()
    v3 = BrandState("acme", cfg).state()
    v2 = {**v3, "v": 2, "cascades": [1.6094379, 120.0]}  # log1p(4): cascades typically peak at 4 events
    state = BrandState.from_state(v2, cfg)
    assert state.cascade_peaks.typical_per_min == pytest.approx(0.4, rel=0.2)
    assert state.cascade_peaks.surge_floor == 0.0  # the tail learns afresh
    assert BrandState.from_state(json.loads(json.dumps(state.state())), cfg).state() == state.state()


# ------------------------------------------------------------------------------------------ engine
ORDINARY = "2222222222.........."  # a brand's everyday complaint: 20 reactions in 10 minutes
VIRAL = "2222######.........."  # one that takes off: 108 reactions in 10 minutes


def run_cascade(engine: DetectionEngine, root: str, start_s: float, reactions: str) -> list:
    # both sides, as the worker and replay drive them: the brand learns from its cascades
    out = engine.update_many(
        [make_post(root, start_s, kind="post", followers=5000, negative=0.9, text="lost my parcel again")]
    )
    for minute, posts in timeline_reactions(reactions, root_id=root, start_s=start_s):
        for post in posts:
            out += engine.update_many([post])
        out += engine.advance(start_s + (minute + 1) * 60)
    return [a for a in out if a.detector == "forward_surge" and a.severity in ("warning", "critical")]


def test_everyday_complaints_stop_paging_once_learnt_and_a_real_surge_still_pages():
    engine = DetectionEngine(config(peak_history_min_s=DAY, ordinary_surges_per_day=0.5))
    # day 0, nothing learnt: an everyday complaint cascade of the brand pages (rate z over the prior)
    assert run_cascade(engine, "d0", T0, ORDINARY)
    # three days of four everyday complaints a day teach the brand what its cascades do
    for day in range(3):
        for k in range(4):
            run_cascade(engine, f"h{day}-{k}", T0 + day * DAY + (k + 1) * 5 * 3600, ORDINARY)
    t = T0 + 3 * DAY + 3600
    assert not run_cascade(engine, "everyday", t, ORDINARY), "an everyday complaint paged"
    paged = run_cascade(engine, "viral", t + 3600, VIRAL)
    assert paged and "surge from" in paged[0].explanation


def test_an_incident_does_not_raise_the_floor():
    # a budget below one crossing in the history: were the incident learnt, the floor would rise above it
    engine = DetectionEngine(config(peak_history_min_s=DAY, ordinary_surges_per_day=0.25))
    for day in range(3):
        for k in range(4):
            run_cascade(engine, f"h{day}-{k}", T0 + day * DAY + (k + 1) * 5 * 3600, ORDINARY)
    t = T0 + 3 * DAY + 3600
    first = run_cascade(engine, "viral-1", t, VIRAL)
    assert first
    floor = first[0].metrics["surge_floor_events"]
    assert 20 < floor < 60, floor
    engine.advance(t + DAY)  # the incident's cascade expires and is learnt
    second = run_cascade(engine, "viral-2", t + DAY + 3600, VIRAL)
    assert second, "the first incident hid the second"
    # it counted as one crossing of the floor (at most a bucket higher), not as an ordinary 108
    assert floor <= second[0].metrics["surge_floor_events"] <= floor * 2**0.25 + 1
