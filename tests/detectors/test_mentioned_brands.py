"""A complaint about one brand that names another ("... switching to Y") pages the first brand only."""

from __future__ import annotations

import dataclasses

from detector_helpers import T0, make_post

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DetectionEngine
from crisiswatch.detectors.events import SEVERITY_RANK


def run(brands: tuple[str, ...], config: DetectorsConfig | None = None) -> dict[str, str | None]:
    """A complaint cascade that takes off (6 then 20 reactions a minute); the worst severity per brand."""
    engine = DetectionEngine(config or DetectorsConfig())
    root = make_post("r", T0, kind="post", followers=5000, negative=0.95, complaint=0.95, text="lost my bag")
    out = engine.update_cascade(dataclasses.replace(root, brands=brands))
    n = 0
    for minute, per_min in enumerate([6] * 5 + [20] * 10):
        for j in range(per_min):
            comment = n % 3 == 0
            post = make_post(
                f"r-{n}",
                T0 + minute * 60 + (j + 0.5) * 60 / per_min,
                kind="comment" if comment else "forward",
                root_id="r",
                negative=0.9 if comment else None,
                text="awful" if comment else "",
            )
            out += engine.update_cascade(dataclasses.replace(post, brands=()))
            n += 1
        out += engine.advance(T0 + (minute + 1) * 60)
    worst: dict[str, str | None] = {}
    for a in out:
        if SEVERITY_RANK[a.severity] > SEVERITY_RANK[worst.get(a.brand)]:
            worst[a.brand] = a.severity
    return worst


def test_the_first_named_brand_is_paged_the_mentioned_one_only_informed():
    worst = run(("Northwind Air", "SkyLark Airlines"))
    assert SEVERITY_RANK[worst["Northwind Air"]] >= SEVERITY_RANK["warning"]
    assert worst["SkyLark Airlines"] == "info"


def test_the_ceiling_is_configurable():
    config = DetectorsConfig.from_mapping({"paging": {"mentioned_brand_max_severity": "critical"}})
    worst = run(("Northwind Air", "SkyLark Airlines"), config)
    assert worst["SkyLark Airlines"] == worst["Northwind Air"]
