"""Brand-wide negative surges wait for a learnt baseline: a gloomy brand does not page on its first hour."""

from __future__ import annotations

from detector_helpers import T0, make_post

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DetectionEngine


def brand_pages(
    engine: DetectionEngine, start_s: float, minutes: int, negative_every: int, prefix: str
) -> list[str]:
    """One own-text post every 20 s; every `negative_every`-th of them negative. Returns severities seen."""
    severities = []
    for index in range(minutes * 3):
        t = start_s + index * 20
        negative = 0.95 if index % negative_every == 0 else 0.05
        post = make_post(f"{prefix}{index}", t, kind="post", negative=negative, text="x")
        severities += [
            a.severity or "normal"
            for a in engine.update_brand("acme", post)
            if a.detector == "negative_surge"
        ]
        severities += [a.severity or "normal" for a in engine.advance(t) if a.detector == "negative_surge"]
    return severities


def test_a_brand_that_is_always_negative_does_not_page_while_its_baseline_is_learnt() -> None:
    engine = DetectionEngine(DetectorsConfig.from_mapping({}))
    # Every post negative from the very start (far above the 25% prior), for three hours.
    seen = brand_pages(engine, T0, 180, negative_every=1, prefix="gloom") + brand_pages(
        engine, T0 + 180 * 60, 1, 3, "x"
    )
    assert "warning" not in seen and "critical" not in seen


def test_after_warm_up_a_real_shift_pages() -> None:
    engine = DetectionEngine(DetectorsConfig.from_mapping({}))
    brand_pages(engine, T0, 240, negative_every=10, prefix="calm")  # 10% negative for four hours
    seen = brand_pages(engine, T0 + 240 * 60, 60, negative_every=1, prefix="storm")  # then all negative
    assert "warning" in seen or "critical" in seen


def test_warm_up_is_configurable() -> None:
    config = DetectorsConfig.from_mapping({"negative_surge": {"baseline_min_posts": 0}})
    assert config.negative_surge.baseline_min_posts == 0
