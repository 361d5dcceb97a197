"""Schedules across DST with overrides, escalation timelines, the service facade and config reload."""

from __future__ import annotations

import io
import json

import pytest
from alerts_helpers import T0, assessment
from prometheus_client import CollectorRegistry

from crisiswatch.alerts.clock import ManualClock, parse_time
from crisiswatch.alerts.config import AlertingConfig, EscalationPolicyConfig, ScheduleConfig
from crisiswatch.alerts.incidents import IncidentTracker
from crisiswatch.alerts.oncall import Directory, escalation_pages, next_handoff_s, on_call
from crisiswatch.alerts.receivers.local import ConsoleIntegration, JsonlIntegration
from crisiswatch.alerts.service import AlertingService
from crisiswatch.alerts.silences import MemorySilenceStore
from crisiswatch.detectors.settings import ConfigError

BERLIN = {
    "name": "eu",
    "participants": ["alice", "bob", "carol"],
    "rotation": "daily",
    "start": "2026-10-20T09:00",
    "time_zone": "Europe/Berlin",
    "overrides": [
        {"person": "dave", "start": "2026-10-26T12:00:00+01:00", "end": "2026-10-26T14:00:00+01:00"}
    ],
}


@pytest.mark.parametrize(
    ("when", "person"),
    [
        ("2026-10-20T09:00:00+02:00", "alice"),
        ("2026-10-21T08:59:00+02:00", "alice"),  # before the handoff
        ("2026-10-21T09:00:00+02:00", "bob"),
        ("2026-10-25T09:00:00+01:00", "carol"),  # DST ended overnight: handoff still 09:00 local
        ("2026-10-25T08:30:00+01:00", "bob"),
        ("2026-10-26T12:30:00+01:00", "dave"),  # override
        ("2026-10-26T14:00:00+01:00", "alice"),
    ],
)
def test_daily_rotation_across_dst_with_override(when: str, person: str) -> None:
    schedule = ScheduleConfig.from_mapping(BERLIN, "schedules[0]")
    assert on_call(schedule, parse_time(when)) == person


def test_next_handoff_is_local_time() -> None:
    schedule = ScheduleConfig.from_mapping(BERLIN, "schedules[0]")
    assert next_handoff_s(schedule, parse_time("2026-10-24T10:00:00+02:00")) == parse_time(
        "2026-10-25T09:00:00+01:00"
    )


def test_escalation_timeline_stops_at_ack_and_repeats() -> None:
    schedule = ScheduleConfig.from_mapping({"name": "p", "participants": ["alice"]}, "s")
    policy = EscalationPolicyConfig.from_mapping(
        {
            "name": "x",
            "repeat": 1,
            "steps": [{"targets": ["schedule:p"], "wait_s": "5m"}, {"targets": ["lead"], "wait_s": "5m"}],
        },
        "p",
    )
    directory = Directory([], [schedule])
    pages = escalation_pages(policy, directory, 0.0, 10_000.0)
    assert [(p.at_s, p.people) for p in pages] == [
        (0, ("alice",)),
        (300, ("lead",)),
        (600, ("alice",)),
        (900, ("lead",)),
    ]
    assert len(escalation_pages(policy, directory, 0.0, 10_000.0, acknowledged_at_s=400)) == 2


def test_service_sync_path_console_and_jsonl(tmp_path) -> None:
    config = AlertingConfig.from_mapping(
        {
            "receivers": [{"name": "demo", "console": {}, "jsonl": {"path": str(tmp_path / "alerts.jsonl")}}],
            "route": {"receiver": "demo", "group_wait_s": 0},
            "delivery": {"dead_letter_path": str(tmp_path / "dead.jsonl")},
        }
    )
    clock = ManualClock(T0)
    buffer = io.StringIO()
    registry = CollectorRegistry()
    service = AlertingService(
        config,
        clock=clock,
        registry=registry,
        silences=MemorySilenceStore(),
        integrations={"demo": [ConsoleIntegration(buffer), JsonlIntegration(str(tmp_path / "alerts.jsonl"))]},
    )
    tracker = IncidentTracker()
    for event in tracker.observe(assessment("warning", 0)):
        service.on_event(event)
    outcomes = service.tick_sync()
    assert [o.result for o in outcomes] == ["sent", "sent"]
    assert "--- page -> demo" in buffer.getvalue()
    line = json.loads((tmp_path / "alerts.jsonl").read_text().splitlines()[0])
    assert line["kind"] == "page" and line["event"]["incident_id"] == "acme/forward_surge/r1:1"
    assert registry.get_sample_value("crisiswatch_notifications_sent_total", {"receiver": "demo"}) == 2
    # state survives a restart
    again = AlertingService(
        config, clock=clock, silences=MemorySilenceStore(), integrations=service.notifier.integrations
    )
    again.load_state(json.loads(json.dumps(service.state())))
    assert again.dispatcher.open_groups() == service.dispatcher.open_groups()


def test_reload_refuses_bad_config_and_keeps_old(tmp_path) -> None:
    config = AlertingConfig.from_mapping({"delivery": {"dead_letter_path": str(tmp_path / "d.jsonl")}})
    service = AlertingService(config, clock=ManualClock(T0), silences=MemorySilenceStore())
    with pytest.raises(ConfigError):
        service.reload({"route": {"receiver": "ghost"}})
    assert service.runtime.root.receiver == "console"
    service.reload({"receivers": [{"name": "new", "console": {}}], "route": {"receiver": "new"}})
    assert service.runtime.root.receiver == "new"
