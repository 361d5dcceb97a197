"""A cascade's comments turning negative: evidence for the cascade's forward_surge, not a page of their own
(`paging.cascade_comments_max_severity`, default `info`)."""

from __future__ import annotations

from detector_helpers import T0, make_post, timeline_reactions

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import FORWARD_SURGE, NEGATIVE_SURGE, DetectionEngine
from crisiswatch.detectors.events import SEVERITY_RANK


def run(timeline: str, config: DetectorsConfig | None = None) -> dict[str, tuple[str | None, str]]:
    """A neutral root (not negative, not a complaint) and its reactions as an ASCII timeline
    (`timeline_reactions`: every third one a negative comment). Returns, per detector, the worst severity and
    its explanation."""
    engine = DetectionEngine(config or DetectorsConfig())
    root = make_post("r", T0, kind="post", followers=5000, negative=0.1, complaint=0.1, text="our new route")
    out = engine.update_cascade(root)
    for minute, posts in timeline_reactions(timeline):
        for post in posts:
            out += engine.update_cascade(post)
        out += engine.advance(T0 + (minute + 1) * 60)
    worst: dict[str, tuple[str | None, str]] = {}
    for a in out:
        if SEVERITY_RANK[a.severity] > SEVERITY_RANK[worst.get(a.detector, (None, ""))[0]]:
            worst[a.detector] = (a.severity, a.explanation)
    return worst


# one reaction a minute for 40 minutes (14 negative comments): far below a rate surge
SMALL = "1" * 40
# then it takes off: 20 reactions a minute
TAKES_OFF = "1" * 10 + "#" * 10


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
