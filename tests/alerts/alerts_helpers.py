"""Builders shared by the alerting tests."""

from __future__ import annotations

from typing import Any

from crisiswatch.detectors.events import Assessment

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def metrics(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "forwards_per_minute": 120.0,
        "forwards_total": 3400,
        "reach_followers": 1_250_000,
        "projected_reach": 400_000,
        "projected_final_size": 9000,
        "negative_share": 0.78,
        "top_amplifiers": [
            {"author_id": "bigvoice", "followers": 1_200_000, "verified": True},
            {"author_id": "small", "followers": 900, "verified": False},
        ],
        "sample_comments": ["This is outrageous", "never buying again"],
        "root_text": "My Acme phone exploded while charging!",
        "root_url": "https://social.example/p/123",
        "category": "product_safety",
    }
    base.update(extra)
    return base


def assessment(
    severity: str | None = "warning",
    t: float = 0.0,
    detector: str = "forward_surge",
    brand: str = "acme",
    root_id: str | None = "r1",
    labels: dict[str, str] | None = None,
    **metric_overrides: Any,
) -> Assessment:
    return Assessment(
        detector=detector,
        brand=brand,
        root_id=root_id,
        severity=severity,  # type: ignore[arg-type]
        score=3.0,
        event_time_s=T0 + t,
        explanation="test",
        metrics=metrics(**metric_overrides),
        labels=labels if labels is not None else {"lang": "en", "platform": "weibo", "role": "own"},
    )
