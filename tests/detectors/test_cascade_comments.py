"""A cascade's comments turning negative: evidence for the cascade's forward_surge, not a page of their own
(`paging.cascade_comments_max_severity`, default `info`)."""

from __future__ import annotations

from detector_helpers import T0, make_post

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import FORWARD_SURGE, NEGATIVE_SURGE, DetectionEngine
from crisiswatch.detectors.events import SEVERITY_RANK


def run(per_min: list[int], config: DetectorsConfig | None = None) -> dict[str, tuple[str | None, str]]:
    """A neutral root (not negative, not a complaint) whose reactions come `per_min[m]` in minute m, every
    other one a negative comment. Returns, per detector, the worst severity and its explanation."""
    engine = DetectionEngine(config or DetectorsConfig())
    root = make_post("r", T0, kind="post", followers=5000, negative=0.1, complaint=0.1, text="our new route")
    out = engine.update_cascade(root)
    n = 0
    for minute, count in enumerate(per_min):
        for j in range(count):
            comment = n % 2 == 0
            post = make_post(
                f"r-{n}",
                T0 + minute * 60 + (j + 0.5) * 60 / count,
                kind="comment" if comment else "forward",
                root_id="r",
                negative=0.9 if comment else None,
                text="this is awful" if comment else "",
            )
            out += engine.update_cascade(post)
            n += 1
        out += engine.advance(T0 + (minute + 1) * 60)
    worst: dict[str, tuple[str | None, str]] = {}
    for a in out:
        if SEVERITY_RANK[a.severity] > SEVERITY_RANK[worst.get(a.detector, (None, ""))[0]]:
            worst[a.detector] = (a.severity, a.explanation)
    return worst


# 12 negative comments and 12 forwards over 40 minutes: far below a rate surge
SMALL = [1] * 40
# then it takes off: 20 reactions a minute
TAKES_OFF = [1] * 10 + [20] * 10


def test_a_small_cascade_with_negative_comments_does_not_page():
    worst = run(SMALL)
    severity, why = worst[NEGATIVE_SURGE]
    assert severity == "info"
    assert "pages with the cascade's forward_surge" in why
    assert FORWARD_SURGE not in worst


def test_the_old_policy_is_one_setting_away():
    config = DetectorsConfig.from_mapping({"paging": {"cascade_comments_max_severity": "critical"}})
    severity, why = run(SMALL, config)[NEGATIVE_SURGE]
    assert severity == "warning"
    assert why.startswith("negative surge: ")


def test_negative_comments_make_a_spreading_cascade_page_through_forward_surge():
    worst = run(TAKES_OFF)
    severity, why = worst[FORWARD_SURGE]
    assert severity in ("warning", "critical")
    assert "comments negative" in why  # the comments were the only negativity evidence
    assert worst[NEGATIVE_SURGE][0] == "info"
