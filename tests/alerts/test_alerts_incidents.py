"""Incident lifecycle: fire once, update on growth/severity, resolve with hysteresis, episodes, acks."""

from __future__ import annotations

import json

import pytest
from alerts_helpers import T0, assessment
from hypothesis import given, settings
from hypothesis import strategies as st

from crisiswatch.alerts.incidents import (
    AckEvent,
    IncidentConfig,
    IncidentEvent,
    IncidentTracker,
    append_labelled_incident,
)
from crisiswatch.detectors.settings import ConfigError

CONFIG = IncidentConfig(
    resolve_hold_s=300, quiet_resolve_s=1800, min_update_interval_s=300, growth_factor=1.5
)


def statuses(events: list[IncidentEvent]) -> list[str]:
    return [e.status for e in events]


def test_fires_once_and_repeated_windows_update_nothing() -> None:
    tracker = IncidentTracker(CONFIG)
    first = tracker.observe(assessment("warning", 0))
    assert statuses(first) == ["firing"]
    event = first[0]
    assert event.incident_id == "acme/forward_surge/r1:1"
    assert event.dedup_key == "acme/forward_surge/r1"
    assert event.started_at == "2026-11-18T11:06:40Z"
    assert event.labels["category"] == "product_safety"
    for t in range(10, 200, 10):
        assert tracker.observe(assessment("warning", t)) == []


def test_severity_rise_updates_at_once() -> None:
    tracker = IncidentTracker(CONFIG)
    tracker.observe(assessment("warning", 0))
    events = tracker.observe(assessment("critical", 5))
    assert statuses(events) == ["updated"]
    assert events[0].severity == "critical"
    # severity never falls while open
    assert tracker.observe(assessment("warning", 10)) == []


def test_projected_reach_threshold_escalates_to_critical() -> None:
    tracker = IncidentTracker(CONFIG)
    tracker.observe(assessment("warning", 0, projected_reach=10_000))
    events = tracker.observe(assessment("warning", 30, projected_reach=2_000_000))
    assert statuses(events) == ["updated"] and events[0].severity == "critical"


def test_spread_without_negativity_is_never_escalated_by_reach() -> None:
    # An info assessment (a positive campaign going viral) stays info however far it is projected to reach.
    tracker = IncidentTracker()
    events = tracker.observe(assessment("info", 0, projected_reach=50_000_000))
    assert [event.severity for event in events] == ["info"]


def test_growth_updates_are_rate_limited() -> None:
    tracker = IncidentTracker(CONFIG)
    tracker.observe(assessment("warning", 0, forwards_total=100))
    assert tracker.observe(assessment("warning", 60, forwards_total=1000)) == []  # grew, too soon
    events = tracker.observe(assessment("warning", 301, forwards_total=1000))
    assert statuses(events) == ["updated"]
    assert tracker.observe(assessment("warning", 700, forwards_total=1100)) == []  # not material


def test_resolve_needs_normal_for_hold_period() -> None:
    tracker = IncidentTracker(CONFIG)
    tracker.observe(assessment("warning", 0))
    assert tracker.observe(assessment(None, 100)) == []
    assert tracker.observe(assessment("warning", 200)) == []  # flap: hold restarts
    assert tracker.observe(assessment(None, 300)) == []
    assert tracker.advance(T0 + 500) == []
    events = tracker.advance(T0 + 600)
    assert statuses(events) == ["resolved"] and events[0].resolution == "detector"


def test_quiet_key_resolves_on_advance_and_refire_is_new_episode() -> None:
    tracker = IncidentTracker(CONFIG)
    tracker.observe(assessment("warning", 0))
    assert tracker.advance(T0 + 1799) == []
    events = tracker.advance(T0 + 1800)
    assert statuses(events) == ["resolved"] and events[0].resolution == "quiet"
    again = tracker.observe(assessment("warning", 2000))
    assert statuses(again) == ["firing"]
    assert again[0].incident_id == "acme/forward_surge/r1:2"


def test_brand_wide_dedup_key_uses_star() -> None:
    tracker = IncidentTracker(CONFIG)
    events = tracker.observe(assessment("warning", 0, detector="volume_surge", root_id=None))
    assert events[0].dedup_key == "acme/volume_surge/*"
    assert events[0].incident_id == "acme/volume_surge/*:1"


def test_ids_are_deterministic_and_unique() -> None:
    def run() -> list[IncidentEvent]:
        tracker = IncidentTracker(CONFIG)
        out = tracker.observe(assessment("warning", 0))
        out += tracker.observe(assessment("critical", 10))
        out += tracker.advance(T0 + 5000)
        out += tracker.observe(assessment("warning", 6000))
        return out

    a, b = run(), run()
    assert [e.id for e in a] == [e.id for e in b]
    assert len({e.id for e in a}) == len(a) == 4


def test_event_round_trips_through_dict_and_json() -> None:
    tracker = IncidentTracker(CONFIG)
    event = tracker.observe(assessment("warning", 0.25))[0]
    data = event.to_dict()
    assert set(data) == {
        "schema_version",
        "id",
        "incident_id",
        "dedup_key",
        "status",
        "severity",
        "detector",
        "brand",
        "root_id",
        "started_at",
        "detected_at",
        "labels",
        "metrics",
        "summary",
    }
    assert data["schema_version"] == 1 and data["detected_at"].endswith(".250Z")
    assert IncidentEvent.from_dict(data) == event
    assert IncidentEvent.from_json(event.to_json()) == event


def test_state_round_trip_gives_identical_future() -> None:
    a = IncidentTracker(CONFIG)
    a.observe(assessment("warning", 0))
    a.observe(assessment(None, 50))
    b = IncidentTracker(CONFIG)
    b.load_state(json.loads(json.dumps(a.state())))
    for tracker in (a, b):
        tracker.observe(assessment("warning", 60))
    assert a.advance(T0 + 4000) == b.advance(T0 + 4000)
    assert a.state() == b.state()


def test_key_state_round_trip_and_dirty_keys() -> None:
    a = IncidentTracker(CONFIG)
    a.observe(assessment("warning", 0))
    assert a.drain_dirty() == {"acme/forward_surge/r1"}
    assert a.drain_dirty() == set()
    b = IncidentTracker(CONFIG)
    b.load_key_state("acme/forward_surge/r1", a.key_state("acme/forward_surge/r1"))
    assert b.open_incidents() == ["acme/forward_surge/r1:1"]


def test_ack_then_resolve_and_stale_acks_ignored() -> None:
    tracker = IncidentTracker(CONFIG)
    tracker.observe(assessment("warning", 0))
    ack = AckEvent("acme/forward_surge/r1:1", "acknowledge", by="alice", at_s=T0 + 60, via="slack")
    events = tracker.apply_ack(ack)
    assert statuses(events) == ["updated"] and events[0].acknowledged_by == "alice"
    assert events[0].to_dict()["acknowledged_at"] == "2026-11-18T11:07:40Z"
    assert tracker.apply_ack(ack) == []  # repeated ack
    assert tracker.apply_ack(AckEvent("acme/forward_surge/r1:7", "acknowledge", "bob", T0 + 61)) == []
    resolved = tracker.apply_ack(AckEvent("acme/forward_surge/r1:1", "resolve", "alice", T0 + 120))
    assert statuses(resolved) == ["resolved"] and resolved[0].resolution == "manual"
    # the detector still says surge: no new page until it has said normal
    assert tracker.observe(assessment("warning", 130)) == []
    tracker.observe(assessment(None, 140))
    assert statuses(tracker.observe(assessment("warning", 150))) == ["firing"]


def test_false_alarm_writes_labelled_incident(tmp_path) -> None:
    tracker = IncidentTracker(CONFIG)
    tracker.observe(assessment("warning", 0))
    event = tracker.apply_ack(AckEvent("acme/forward_surge/r1:1", "false_alarm", "alice", T0 + 90, "email"))[
        0
    ]
    assert event.resolution == "false_alarm"
    path = tmp_path / "labels.jsonl"
    append_labelled_incident(str(path), event)
    row = json.loads(path.read_text())
    assert row["is_crisis"] is False and row["brand"] == "acme" and row["root_id"] == "r1"
    assert row["start"] == "2026-11-18T11:06:40Z" and row["end"] == "2026-11-18T11:08:10Z"


def test_ack_event_round_trip_and_key() -> None:
    ack = AckEvent("acme/forward_surge/r1:3", "acknowledge", "alice", T0, "pagerduty")
    assert AckEvent.from_dict(ack.to_dict()) == ack
    assert ack.dedup_key == "acme/forward_surge/r1"
    with pytest.raises(ConfigError):
        AckEvent("acme/forward_surge/r1:3", "delete", "x", T0)  # type: ignore[arg-type]
    for foreign in ("d3640fbd41094207a1c11e58e46b1662", "abc:1", "acme/x:1"):
        with pytest.raises(ConfigError):  # e.g. a PagerDuty incident key crisiswatch did not send
            AckEvent(foreign, "acknowledge", "x", T0)


def test_min_severity_filters_info() -> None:
    tracker = IncidentTracker(IncidentConfig(min_severity="warning"))
    assert tracker.observe(assessment("info", 0)) == []


def test_old_closed_keys_are_forgotten() -> None:
    tracker = IncidentTracker(CONFIG)
    tracker.observe(assessment("warning", 0))
    tracker.advance(T0 + 1800)
    tracker.advance(T0 + 1800 + CONFIG.forget_after_s)
    assert tracker.state()["keys"] == {}


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="growth_factor"):
        IncidentConfig(growth_factor=1.0)
    with pytest.raises(ConfigError, match="nope"):
        IncidentConfig.from_mapping({"nope": 1})


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([None, "info", "warning", "critical"]), st.floats(0, 600)),
        min_size=1,
        max_size=40,
    )
)
def test_property_lifecycle_is_well_formed(steps) -> None:
    tracker = IncidentTracker(CONFIG)
    t = 0.0
    events: list[IncidentEvent] = []
    for severity, gap in steps:
        t += gap
        events += tracker.observe(assessment(severity, t))
        events += tracker.advance(T0 + t)
    events += tracker.advance(T0 + t + 10_000)
    open_ids: set[str] = set()
    seen: set[str] = set()
    for event in events:
        assert event.id not in seen
        seen.add(event.id)
        if event.status == "firing":
            assert event.incident_id not in open_ids
            open_ids.add(event.incident_id)
        else:
            assert event.incident_id in open_ids
            if event.status == "resolved":
                open_ids.remove(event.incident_id)
    assert not open_ids
