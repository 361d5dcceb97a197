"""Routing tree (table-driven, inline YAML), inhibition, silences, mute intervals, grouping, escalation."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from alerts_helpers import T0, assessment

from crisiswatch.alerts.clock import parse_time
from crisiswatch.alerts.config import AlertingConfig
from crisiswatch.alerts.dispatch import Dispatcher, RouteSimulator
from crisiswatch.alerts.incidents import AckEvent, IncidentEvent, IncidentTracker
from crisiswatch.alerts.routing import Matcher, build_runtime
from crisiswatch.alerts.silences import FileSilenceStore, MemorySilenceStore, new_silence
from crisiswatch.detectors.settings import ConfigError

TREE = """
receivers:
  - {name: default, console: {}}
  - {name: pr-own, console: {}}
  - {name: pr-zh, console: {}}
  - {name: pager, console: {}}
  - {name: competitors, jsonl: {path: /tmp/x.jsonl}}
route:
  receiver: default
  group_by: [incident_id]
  routes:
    - matchers: ['role="competitor"']
      receiver: competitors
    - matchers: ['role="own"', 'severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['role="own"', 'lang="zh"']
      receiver: pr-zh
    - matchers: ['role="own"']
      receiver: pr-own
      routes:
        - match_re: {platform: "twitter|x"}
          receiver: pr-own
          group_wait_s: 5m
"""


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"role": "competitor", "severity": "critical"}, ["competitors"]),
        ({"role": "own", "severity": "critical", "lang": "en"}, ["pager", "pr-own"]),
        ({"role": "own", "severity": "critical", "lang": "zh"}, ["pager", "pr-zh"]),
        ({"role": "own", "severity": "warning", "lang": "zh"}, ["pr-zh"]),
        ({"role": "own", "severity": "warning", "platform": "x"}, ["pr-own"]),
        ({"brand": "acme"}, ["default"]),
        ({}, ["default"]),
    ],
)
def test_route_tree_table(labels, expected) -> None:
    runtime = build_runtime(AlertingConfig.from_mapping(yaml.safe_load(TREE)))
    assert [r.receiver for r in runtime.routes_for(labels)] == expected


def test_child_routes_inherit_and_override_timings() -> None:
    runtime = build_runtime(AlertingConfig.from_mapping(yaml.safe_load(TREE)))
    (route,) = runtime.routes_for({"role": "own", "platform": "twitter"})
    assert route.path == "route.routes[3].routes[0]"
    assert route.group_wait_s == 300 and route.group_by == ("incident_id",)
    assert route.group_wait_critical_s == 0 and route.repeat_interval_s == 4 * 3600


@pytest.mark.parametrize(
    ("text", "labels", "hit"),
    [
        ('brand="acme"', {"brand": "acme"}, True),
        ('brand!="acme"', {"brand": "acme"}, False),
        ('severity=~"warning|critical"', {"severity": "critical"}, True),
        ('severity=~"warn"', {"severity": "warning"}, False),  # anchored
        ('lang!~"zh|ja"', {}, True),
        ("brand=acme", {"brand": "acme"}, True),
    ],
)
def test_matchers(text, labels, hit) -> None:
    assert Matcher.parse(text).matches(labels) is hit


def _runtime(extra: str = "", route: str = "") -> object:
    doc = yaml.safe_load(
        """
receivers:
  - {name: pr, console: {}, escalation_policy: pr}
people:
  - {id: alice, slack_user_id: U1}
  - {id: bob}
  - {id: lead}
schedules:
  - {name: primary, participants: [alice, bob], rotation: daily, start: "2026-11-01T09:00", time_zone: UTC}
escalation_policies:
  - name: pr
    steps:
      - {targets: ["schedule:primary"], wait_s: 600}
      - {targets: ["person:lead"], wait_s: 600}
"""
        + extra
    )
    doc["route"] = (
        yaml.safe_load(route)
        if route
        else {"receiver": "pr", "group_wait_s": 30, "group_interval_s": 300, "repeat_interval_s": 3600}
    )
    return build_runtime(AlertingConfig.from_mapping(doc))


def _events(*steps) -> list[IncidentEvent]:
    tracker = IncidentTracker()
    out: list[IncidentEvent] = []
    for step in steps:
        if isinstance(step, AckEvent):
            out += tracker.apply_ack(step)
        elif isinstance(step, float | int):
            out += tracker.advance(T0 + step)
        else:
            out += tracker.observe(step)
    return out


def test_group_wait_then_single_page_with_on_call_and_escalation() -> None:
    sim = RouteSimulator(_runtime())
    (firing,) = _events(assessment("warning", 0))
    assert sim.feed(firing) == []  # group_wait 30 s
    sent = sim.advance(T0 + 30)
    assert [n.kind for n in sent] == ["page"]
    assert [r.id for r in sent[0].recipients] == ["bob"]  # 17 days after the start: odd shift
    escalations = sim.advance(T0 + 30 + 600)
    assert [(n.kind, [r.id for r in n.recipients]) for n in escalations] == [("escalation", ["lead"])]
    # no more steps; a reminder comes after repeat_interval in the same thread
    reminders = sim.advance(T0 + 30 + 3600)
    assert [n.kind for n in reminders] == ["reminder"]
    assert reminders[0].thread_key == sent[0].thread_key == firing.incident_id


def test_critical_goes_out_at_once_and_ack_stops_escalation() -> None:
    sim = RouteSimulator(_runtime())
    events = _events(
        assessment("critical", 0),
        AckEvent("acme/forward_surge/r1:1", "acknowledge", "alice", T0 + 120, "slack"),
    )
    first = sim.feed(events[0])
    assert [n.kind for n in first] == ["page"]
    ack = sim.feed(events[1])
    assert [n.kind for n in ack] == ["update"]  # the ack is shown at once
    assert sim.advance(T0 + 5000) == []  # no escalation, no reminder once acknowledged


def test_resolved_before_group_wait_is_never_sent() -> None:
    sim = RouteSimulator(_runtime())
    events = _events(
        assessment("warning", 0), AckEvent("acme/forward_surge/r1:1", "false_alarm", "a", T0 + 5)
    )
    out = [n for e in events for n in sim.feed(e)] + sim.advance(T0 + 10_000)
    assert out == []


def test_updates_wait_group_interval_and_resolve_is_sent() -> None:
    sim = RouteSimulator(_runtime())
    events = _events(assessment("warning", 0), assessment("warning", 400, forwards_total=99_999), 400 + 2000)
    kinds = []
    for event in events:
        kinds += [(n.kind, n.created_at_s - T0) for n in sim.feed(event)]
    kinds += [(n.kind, n.created_at_s - T0) for n in sim.advance(T0 + 10_000)]
    assert kinds[0] == ("page", 30)
    assert ("update", 400) in kinds
    assert kinds[-1][0] == "resolved"


def test_inhibition_critical_negative_surge_suppresses_volume() -> None:
    runtime = _runtime()
    dispatcher = Dispatcher(runtime)
    negative = _events(assessment("critical", 0, detector="negative_surge", root_id=None))[0]
    volume = _events(assessment("warning", 0, detector="volume_surge", root_id=None))[0]
    other_brand = dataclasses.replace(
        volume, brand="other", incident_id="other/volume_surge/*:1", dedup_key="other/volume_surge/*", id="x"
    )
    out = dispatcher.submit(negative, T0)
    out += dispatcher.submit(volume, T0)
    out += dispatcher.submit(other_brand, T0)
    out += dispatcher.tick(T0 + 60)
    assert sorted(n.event.brand + "/" + n.event.detector for n in out) == [
        "acme/negative_surge",
        "other/volume_surge",
    ]
    assert any(s.reason == "inhibited" for s in dispatcher.suppressions)


def test_silence_holds_page_until_it_expires() -> None:
    store = MemorySilenceStore()
    store.add(new_silence(['brand="acme"'], T0, T0 + 900, "alice", "known issue"))
    sim = RouteSimulator(_runtime(), store)
    (firing,) = _events(assessment("warning", 0))
    assert sim.feed(firing) == []
    assert sim.advance(T0 + 899) == []
    sent = sim.advance(T0 + 1000)
    assert [n.kind for n in sent] == ["page"] and sent[0].created_at_s >= T0 + 900


def test_silence_requires_a_non_empty_matcher_and_expiry(tmp_path) -> None:
    with pytest.raises(ConfigError):
        new_silence(['brand=~".*"'], T0, T0 + 60, "a")
    with pytest.raises(ConfigError):
        new_silence(['brand="acme"'], T0, T0 - 1, "a")
    store = FileSilenceStore(str(tmp_path / "s.json"))
    silence = store.add(new_silence(['brand="acme"', 'detector!="volume_surge"'], T0, T0 + 60, "alice"))
    other = FileSilenceStore(str(tmp_path / "s.json"))  # another worker
    assert [s.id for s in other.all()] == [silence.id]
    other.expire(silence.id[:6], T0 + 10)
    assert store.all()[0].ends_at_s == T0 + 10


def test_mute_time_interval_quiet_hours() -> None:
    extra = """
time_intervals:
  - name: quiet
    time_intervals:
      - times: [{start_time: "22:00", end_time: "07:00"}]
        location: Asia/Shanghai
"""
    route = "{receiver: pr, group_wait_s: 0, mute_time_intervals: [quiet]}"
    runtime = _runtime(extra, route)
    night = parse_time("2026-11-18T23:30:00+08:00")
    morning = parse_time("2026-11-19T07:00:00+08:00")
    tracker = IncidentTracker()
    event = tracker.observe(dataclasses.replace(assessment("warning"), event_time_s=night))[0]
    sim = RouteSimulator(runtime)
    assert sim.feed(event) == []
    sent = sim.advance(morning + 60)
    assert [n.kind for n in sent] == ["page"] and sent[0].created_at_s >= morning


def test_campaign_range_mutes() -> None:
    extra = """
time_intervals:
  - name: launch
    ranges: [{start: "2026-11-18T00:00:00Z", end: "2026-11-19T00:00:00Z"}]
"""
    runtime = _runtime(extra, "{receiver: pr, mute_time_intervals: [launch]}")
    assert runtime.muted_by(runtime.root, T0) == "launch"
    assert runtime.muted_by(runtime.root, T0 + 86400) is None


def test_dispatcher_state_round_trip() -> None:
    runtime = _runtime()
    a = Dispatcher(runtime)
    (firing,) = _events(assessment("warning", 0))
    a.submit(firing, T0)
    b = Dispatcher(runtime)
    b.load_state(a.state())
    assert [n.id for n in a.tick(T0 + 30)] == [n.id for n in b.tick(T0 + 30)]


def test_pagerduty_owned_receivers_are_not_escalated_by_us() -> None:
    doc = {
        "receivers": [{"name": "pd", "pagerduty": {"routing_key": "k" * 32}}],
        "route": {"receiver": "pd", "group_wait_s": 0},
    }
    sim = RouteSimulator(build_runtime(AlertingConfig.from_mapping(doc)))
    (firing,) = _events(assessment("warning", 0))
    sent = sim.feed(firing)
    assert [n.kind for n in sent] == ["page"] and sent[0].recipients == ()
    assert [n.kind for n in sim.advance(T0 + 3000)] == []
