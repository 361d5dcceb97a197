"""Scoring rules of `replay --incidents` as tables of hand-made incidents and events.

Timeline notation in comments: minutes after T0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crisiswatch.alerts.incidents import IncidentEvent, labelled_incident_row
from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.evaluation import (
    AlertEvent,
    LabelledIncident,
    episodes_of,
    evaluate,
    format_score,
    goal_rows,
    pool,
    read_labelled_incidents,
)

T0 = 1_795_525_200.0  # 2026-11-24T13:00:00Z
MIN = 60.0


def alert(
    minute: float,
    *,
    brand: str = "acme",
    detector: str = "forward_surge",
    root: str | None = "r1",
    severity: str = "warning",
    status: str = "firing",
) -> AlertEvent:
    return AlertEvent(brand, detector, root, severity, status, T0 + minute * MIN)


def cascade(
    root: str = "r1",
    *,
    brand: str = "acme",
    start: float = 0,
    end: float = 120,
    crisis: bool = True,
    kind: str = "viral_complaint",
) -> LabelledIncident:
    return LabelledIncident(brand, root, T0 + start * MIN, T0 + end * MIN, crisis, kind)


def brand_wide(
    *, brand: str = "acme", start: float = 0, end: float = 120, crisis: bool = True, kind: str = "outage"
) -> LabelledIncident:
    return LabelledIncident(brand, None, T0 + start * MIN, T0 + end * MIN, crisis, kind)


# -- episodes ------------------------------------------------------------------------------------------------
EPISODE_CASES = [
    # (events, expected episode count, why)
    ([alert(0), alert(10), alert(39)], 1, "gaps under 30 min chain into one episode"),
    ([alert(0), alert(31)], 2, "a gap of 31 min starts a new episode"),
    ([alert(0), alert(29.9)], 1, "29.9 min is within"),
    ([alert(0), alert(5, detector="negative_surge")], 2, "another detector is another episode"),
    ([alert(0), alert(5, root="r2")], 2, "another root is another episode"),
    ([alert(0), alert(5, brand="other")], 2, "another brand is another episode"),
    ([alert(0, severity="info")], 0, "info never counts"),
    ([alert(0, status="resolved")], 0, "a resolved event detects nothing"),
    (
        [alert(0, severity="info"), alert(3, status="updated")],
        1,
        "an info incident escalated to warning counts from the escalation",
    ),
    (
        [alert(0, root=None, detector="volume_surge"), alert(20, root=None, detector="volume_surge")],
        1,
        "brand-wide keys group the same way",
    ),
]


@pytest.mark.parametrize(
    ("events", "expected", "why"), EPISODE_CASES, ids=[case[2] for case in EPISODE_CASES]
)
def test_episodes(events: list[AlertEvent], expected: int, why: str) -> None:
    assert len(episodes_of(events)) == expected, why


def test_episode_takes_the_highest_severity() -> None:
    (episode,) = episodes_of([alert(0), alert(5, severity="critical", status="updated")])
    assert episode.severity == "critical"
    assert episode.first_s == T0 and episode.last_s == T0 + 5 * MIN


# -- matching, recall, precision, delay ------------------------------------------------------------------------
MATCH_CASES = [
    # (incidents, events, recall, precision, false episodes, why)
    ([cascade()], [alert(12)], 1.0, 1.0, 0, "same brand and root detects a cascade incident"),
    (
        [cascade()],
        [alert(12, root="r2")],
        0.0,
        0.0,
        1,
        "another root of the brand does not detect a cascade incident",
    ),
    ([cascade()], [alert(12, brand="other")], 0.0, 0.0, 1, "another brand never detects"),
    ([cascade()], [alert(300)], 1.0, 1.0, 0, "a cascade incident has no time window: its root is enough"),
    (
        [brand_wide()],
        [alert(12, root="anything")],
        1.0,
        1.0,
        0,
        "any event of the brand in the window detects a brand-wide incident",
    ),
    ([brand_wide()], [alert(149, root=None, detector="negative_surge")], 1.0, 1.0, 0, "up to end + 30 min"),
    ([brand_wide()], [alert(151, root=None)], 0.0, 0.0, 1, "after end + 30 min is too late"),
    ([brand_wide(start=10)], [alert(9, root=None)], 0.0, 0.0, 1, "before start is not a detection"),
    (
        [cascade(crisis=False, kind="positive_campaign")],
        [alert(12)],
        1.0,
        0.0,
        1,
        "an episode matching only a non-crisis is false",
    ),
    ([], [alert(12)], 1.0, 0.0, 1, "an unlabelled episode is false; recall of nothing is 1"),
    (
        [cascade()],
        [alert(12), alert(13, detector="negative_surge")],
        1.0,
        1.0,
        0,
        "two detectors on the crisis: two true episodes",
    ),
    ([cascade()], [alert(12), alert(100)], 1.0, 1.0, 0, "a re-fire after 30 min is a second true episode"),
    (
        [cascade(), brand_wide(start=0, end=60, crisis=False, kind="daily_peak")],
        [alert(5)],
        1.0,
        1.0,
        0,
        "matching a crisis wins over a non-crisis",
    ),
    (
        [cascade("r9", brand="rival"), cascade("r9", crisis=False, kind="other_brand_crisis")],
        [alert(5, brand="rival", root="r9"), alert(6, root="r9")],
        1.0,
        0.5,
        1,
        "another brand's crisis mentioning us: true for them, false for us",
    ),
]


@pytest.mark.parametrize(
    ("incidents", "events", "recall", "precision", "false_episodes", "why"),
    MATCH_CASES,
    ids=[case[5] for case in MATCH_CASES],
)
def test_matching(
    incidents: list[LabelledIncident],
    events: list[AlertEvent],
    recall: float,
    precision: float,
    false_episodes: int,
    why: str,
) -> None:
    score = evaluate(incidents, events, brands=1, duration_s=86_400.0)
    assert score.recall == pytest.approx(recall), why
    assert score.precision == pytest.approx(precision), why
    assert score.false_episodes == false_episodes, why


def test_delay_is_first_detection_minus_start_and_median_pools() -> None:
    incidents = [cascade("a", start=0), cascade("b", start=0), brand_wide(brand="zeta", start=0)]
    events = [
        alert(20, root="a"),
        alert(4, root="a", detector="negative_surge"),
        alert(10, root="b"),
        alert(30, brand="zeta", root=None),
    ]
    score = evaluate(incidents, events, brands=2, duration_s=86_400.0)
    delays = sorted(outcome.delay_s / MIN for outcome in score.outcomes if outcome.delay_s is not None)
    assert delays == [4.0, 10.0, 30.0]
    assert score.median_delay_min == pytest.approx(10.0)


def test_false_alerts_per_brand_per_day() -> None:
    events = [alert(0, root="x"), alert(100, root="y"), alert(200, root="z"), alert(300, root="w")]
    score = evaluate([], events, brands=4, duration_s=2 * 86_400.0)
    assert score.false_alerts_per_brand_day == pytest.approx(4 / (4 * 2))


# -- early: before the cascade had 10% of its final forwards ---------------------------------------------------------
EARLY_CASES = [
    # (forward minutes, detection minute or None, early?)
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5, True),  # 0 of 10 forwards seen
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1.5, False),  # 1 of 10 = 10%: not before 10%
    ([float(m) for m in range(1, 101)], 9.5, True),  # 9 of 100
    ([float(m) for m in range(1, 101)], 10.0, False),  # 10 of 100 (a forward at the detection instant counts)
    ([1, 2, 3], None, False),  # missed: not early
]


@pytest.mark.parametrize(("forwards", "detected", "early"), EARLY_CASES)
def test_early_share(forwards: list[float], detected: float | None, early: bool) -> None:
    events = [] if detected is None else [alert(detected)]
    times = {"r1": [T0 + m * MIN for m in forwards]}
    score = evaluate([cascade()], events, forward_times=times, brands=1, duration_s=86_400.0)
    assert score.early_known == 1
    assert score.early_share == (1.0 if early else 0.0)
    assert score.outcomes[0].early is early


def test_brand_wide_crises_are_not_in_the_early_share() -> None:
    score = evaluate([brand_wide()], [alert(5, root=None)], forward_times={}, brands=1, duration_s=86_400.0)
    assert score.early_known == 0 and score.early_share is None


def test_pool_adds_counts_and_brand_days() -> None:
    one = evaluate([cascade()], [alert(5), alert(50, root="q")], brands=2, duration_s=86_400.0)
    two = evaluate([cascade("z")], [], brands=3, duration_s=2 * 86_400.0)
    total = pool([one, two])
    assert (total.crises, total.detected, total.false_episodes) == (2, 1, 1)
    assert total.false_alerts_per_brand_day == pytest.approx(1 / (2 * 1 + 3 * 2))


def test_goal_table_marks_misses() -> None:
    score = evaluate([cascade(), cascade("b")], [alert(5)], brands=1, duration_s=86_400.0)
    rows = {label: met for label, _, _, met in goal_rows(score)}
    assert rows["recall"] is False and rows["precision"] is True
    assert "missed: viral_complaint on acme (root b)" in format_score(score)


# -- files ------------------------------------------------------------------------------------------------------
def test_reads_generator_rows_and_false_alarm_records(tmp_path: Path) -> None:
    false_alarm = IncidentEvent(
        id="e",
        incident_id="acme/forward_surge/r5:1",
        dedup_key="acme/forward_surge/r5",
        status="resolved",
        severity="warning",
        detector="forward_surge",
        brand="acme",
        root_id="r5",
        started_at="2026-11-24T13:00:00.000Z",
        detected_at="2026-11-24T13:10:00.000Z",
        acknowledged_by="ana",
        resolution="false_alarm",
    )
    rows = [
        {
            "brand": "acme",
            "root_id": "r1",
            "start": "2026-11-24T13:00:00.000Z",
            "end": "2026-11-24T15:00:00Z",
            "is_crisis": True,
            "kind": "viral_complaint",
        },
        {"brand": "acme", "root_id": None, "start": T0, "end": T0 + 3600, "is_crisis": False},
        labelled_incident_row(false_alarm),
    ]
    path = tmp_path / "incidents.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n", encoding="utf-8")
    incidents = read_labelled_incidents(path)
    assert [i.root_id for i in incidents] == ["r1", None, "r5"]
    assert incidents[0].start_s == T0 and incidents[1].end_s == T0 + 3600
    assert incidents[2].is_crisis is False and incidents[2].kind == "false_alarm"
    # The false alarm's own alert is now a false episode.
    score = evaluate(incidents, [alert(10, root="r5")], brands=1, duration_s=86_400.0)
    assert score.false_episodes == 1


@pytest.mark.parametrize(
    "row",
    [
        {"brand": "a", "start": "2026-11-24T13:00:00Z", "end": "2026-11-24T14:00:00Z"},
        {"brand": "a", "start": "2026-11-24T13:00:00", "end": "2026-11-24T14:00:00Z", "is_crisis": True},
        {"brand": "a", "start": "2026-11-24T15:00:00Z", "end": "2026-11-24T14:00:00Z", "is_crisis": True},
        {"brand": "a", "start": "2026-11-24T13:00:00Z", "end": "2026-11-24T14:00:00Z", "is_crisis": "yes"},
    ],
)
def test_bad_rows_name_the_line(tmp_path: Path, row: dict[str, object]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.jsonl:1"):
        read_labelled_incidents(path)
