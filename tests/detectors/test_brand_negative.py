"""The brand-wide negative_surge: original posts only (`negative_surge.brand_originals_only`) and the fast
window judged beside the hour (`negative_surge.fast_window_s`)."""

from __future__ import annotations

import pytest
from detector_helpers import T0, make_post

from crisiswatch.detectors.config import DetectorsConfig, NegativeSurgeConfig
from crisiswatch.detectors.engine import NEGATIVE_SURGE, DetectionEngine
from crisiswatch.detectors.settings import ConfigError
from crisiswatch.detectors.windows import Ring

DAY_S = 86400.0


def ordinary_day(minutes: int = 1440) -> list:
    """One original a minute, every fifth negative (a 20% baseline share)."""
    return [
        make_post(
            f"b{i}",
            T0 + i * 60.0,
            kind="post",
            root_id=f"b{i}",
            negative=0.9 if i % 5 == 0 else 0.1,
            text="x",
        )
        for i in range(minutes)
    ]


def run(posts: list, config: DetectorsConfig) -> list:
    engine = DetectionEngine(config)
    out = []
    for k in range(0, len(posts), 50):
        chunk = posts[k : k + 50]
        out += engine.update_many(chunk)
        out += engine.advance(chunk[-1].created_at_s)
    return [a for a in out if a.detector == NEGATIVE_SURGE and a.root_id is None]


def outage(start_s: float, minutes: int, per_min: int) -> list:
    """Extra originals, 85% negative, `per_min` a minute on top of the ordinary one."""
    posts = []
    for m in range(minutes):
        for j in range(per_min):
            n = m * per_min + j
            posts.append(
                make_post(
                    f"o{n}",
                    start_s + m * 60.0 + (j + 0.5) * 60.0 / per_min,
                    kind="post",
                    root_id=f"o{n}",
                    negative=0.1 if n % 7 == 0 else 0.9,
                    text="down again",
                )
            )
    return posts


def first_page(assessments: list) -> float | None:
    times = [a.event_time_s for a in assessments if a.severity in ("warning", "critical")]
    return min(times) if times else None


def config(**negative_surge) -> DetectorsConfig:
    return DetectorsConfig.from_mapping({"negative_surge": negative_surge})


def test_the_fast_window_pages_an_outage_sooner_and_says_which_window():
    start = T0 + DAY_S
    posts = sorted(ordinary_day(1440 + 90) + outage(start, 60, 2), key=lambda p: p.created_at_s)
    hour_only = first_page(run(posts, config(fast_window_s=0)))
    with_fast = run(posts, config(fast_window_s=1800))
    fast = first_page(with_fast)
    assert hour_only is not None and fast is not None
    assert fast < hour_only, (fast - start, hour_only - start)
    firing = next(a for a in with_fast if a.severity in ("warning", "critical"))
    assert firing.metrics["window_s"] == 1800
    assert " in 30 min " in firing.explanation


def test_one_cascades_negative_comments_do_not_move_the_brand_wide_share():
    """A steady brand, then one post drawing 300 negative comments in an hour: that is the cascade's
    business (forward_surge with negative comments), not a brand-wide shift."""
    start = T0 + DAY_S
    root = make_post("big", start, kind="post", root_id="big", negative=0.2, text="our new menu")
    comments = [
        make_post(f"c{i}", start + 30 + i * 12.0, kind="comment", root_id="big", negative=0.9, text="awful")
        for i in range(300)
    ]
    posts = sorted(ordinary_day(1440 + 90) + [root] + comments, key=lambda p: p.created_at_s)
    assert first_page(run(posts, config())) is None
    assert first_page(run(posts, config(brand_originals_only=False))) is not None


def test_a_negative_fast_window_names_the_key():
    with pytest.raises(ConfigError) as error:
        NegativeSurgeConfig(fast_window_s=-60.0)
    assert "fast_window_s" in str(error.value) and ">= 0" in str(error.value)


@pytest.mark.parametrize(
    "settings, buckets",
    [
        ({}, 6),  # 1800 s of 300-s buckets
        ({"fast_window_s": 0}, 0),  # off
        ({"fast_window_s": 1000.0}, 3),  # rounded down to whole buckets
        ({"window_s": 1200.0}, 0),  # not shorter than the window: off, and no error for a key left alone
        ({"window_s": 1800.0}, 0),
        ({"bucket_s": 240.0}, 7),  # 1680 s: a bucket_s that does not divide 1800 needs no change here
        ({"fast_window_s": 100.0}, 0),  # shorter than a bucket: off
    ],
)
def test_the_fast_window_is_whole_buckets_shorter_than_the_window(settings, buckets):
    assert NegativeSurgeConfig(**settings).fast_buckets == buckets


def test_the_reported_fast_window_is_the_whole_buckets_judged():
    start = T0 + DAY_S
    posts = sorted(ordinary_day(1440 + 90) + outage(start, 60, 2), key=lambda p: p.created_at_s)
    firing = next(a for a in run(posts, config(fast_window_s=1000)) if a.severity in ("warning", "critical"))
    assert firing.metrics["window_s"] == 900
    assert " in 15 min " in firing.explanation


def test_ring_recent_sums_the_newest_buckets():
    ring = Ring(300.0, 12, 2)
    for minute in range(0, 60, 5):  # one event a bucket, the i-th worth i
        ring.add(minute * 60.0, (1.0, float(minute // 5)))
    assert ring.recent(3) == [3.0, 9.0 + 10.0 + 11.0]
    assert ring.recent(12) == ring.totals
    assert ring.recent(50) == ring.totals
