"""The `alerting` section: empty is valid, errors name the key, secrets never show."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from crisiswatch.alerts.config import CONFIG_SCHEMA, AlertingConfig
from crisiswatch.alerts.routing import build_runtime
from crisiswatch.detectors.settings import ConfigError

FULL = """
callback:
  public_base_url: https://cw.example.com
  signing_key: k-very-secret-1
receivers:
  - name: pr-slack
    slack: {bot_token: xoxb-secret-token, channel: C123, signing_secret: slack-sign-secret}
    escalation_policy: pr
  - name: pr-mail
    email: {smtp_host: 127.0.0.1, smtp_port: 2525, username: u, password: smtp-secret-pw, from: cw@example.com, to: [pr@example.com]}
  - name: pd
    pagerduty: {routing_key: pd-routing-secret}
  - name: hook
    webhook: {url: "https://hooks.example/x?token=abc", signing_key: hook-secret}
  - name: demo
    console: {}
    jsonl: {path: /tmp/alerts.jsonl}
route:
  receiver: demo
  group_wait_s: 30s
  routes:
    - matchers: ['role="own"', 'severity=~"warning|critical"']
      receiver: pr-slack
      continue: true
      mute_time_intervals: [quiet-hours]
    - match: {severity: critical}
      receiver: pd
time_intervals:
  - name: quiet-hours
    time_intervals:
      - times: [{start_time: "22:00", end_time: "07:00"}]
        location: Asia/Shanghai
people:
  - {id: alice, email: alice@example.com, slack_user_id: U01ALICE}
  - {id: bob, email: bob@example.com}
  - {id: carol, email: carol@example.com}
schedules:
  - {name: pr-primary, participants: [alice, bob], time_zone: Asia/Shanghai, rotation: weekly, start: "2026-11-02T09:00"}
escalation_policies:
  - name: pr
    steps:
      - {targets: ["schedule:pr-primary"], wait_s: 10m}
      - {targets: ["person:carol"], wait_s: 15m}
playbooks:
  default: Respond within 2 h.
  product_safety: {en: Pause ads., zh: 暂停广告。}
"""


def test_empty_section_is_valid_and_routes_to_console() -> None:
    config = AlertingConfig.from_mapping({})
    assert [r.name for r in config.receivers] == ["console"]
    runtime = build_runtime(config)
    assert [r.receiver for r in runtime.routes_for({"brand": "x"})] == ["console"]
    jsonschema.validate({}, CONFIG_SCHEMA)


def test_full_example_builds_and_validates_against_schema() -> None:
    data = yaml.safe_load(FULL)
    jsonschema.validate(data, CONFIG_SCHEMA)
    config = AlertingConfig.from_mapping(data)
    runtime = build_runtime(config)
    assert runtime.root.group_wait_s == 30.0
    assert config.escalation_policies[0].steps[0].wait_s == 600.0
    assert config.receiver("pd").escalation_owner == "pagerduty"
    assert config.receiver("pr-slack").escalation_owner == "crisiswatch"


def test_secrets_never_appear_in_repr_or_errors() -> None:
    config = AlertingConfig.from_mapping(yaml.safe_load(FULL))
    text = repr(config) + str(config)
    for secret in (
        "xoxb-secret-token",
        "smtp-secret-pw",
        "pd-routing-secret",
        "hook-secret",
        "token=abc",
        "k-very-secret-1",
    ):
        assert secret not in text
    with pytest.raises(ConfigError) as info:
        AlertingConfig.from_mapping(
            {"receivers": [{"name": "s", "slack": {"webhook_url": "not-a-url-secret"}}]}
        )
    assert "not-a-url-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"route": {"receiver": "missing"}}, "route.receiver"),
        (
            {"route": {"receiver": "console", "routes": [{"matchers": ["brand=~'('"]}]}},
            "route.routes[0].matchers[0]",
        ),
        ({"route": {"receiver": "console", "group_wait_s": "soon"}}, "route.group_wait_s"),
        ({"receivers": [{"name": "x"}]}, "receivers[0]"),
        ({"receivers": [{"name": "x", "email": {"to": ["a@b.c"], "ssl": True}}]}, "receivers[0].email.ssl"),
        ({"receivers": [{"name": "x", "pagerduty": {}}]}, "receivers[0].pagerduty.routing_key"),
        ({"route": {"receiver": "console", "mute_time_intervals": ["nope"]}}, "route.mute_time_intervals"),
        (
            {"time_intervals": [{"name": "q", "time_intervals": [{"weekdays": ["funday"]}]}]},
            "time_intervals[0].time_intervals[0].weekdays",
        ),
        (
            {"time_intervals": [{"name": "q", "time_intervals": [{"location": "Mars/Base"}]}]},
            "time_intervals[0].time_intervals[0].location",
        ),
        ({"incidents": {"growth_factor": 0.5}}, "incidents.growth_factor"),
        ({"delivery": {"jitter": 2}}, "delivery.jitter"),
        (
            {"people": [{"id": "a"}], "schedules": [{"name": "s", "participants": ["zed"]}]},
            "schedules[0].participants",
        ),
        (
            {"escalation_policies": [{"name": "p", "steps": [{"targets": ["schedule:none"]}]}]},
            "escalation_policies[0].steps[0].targets",
        ),
        (
            {"receivers": [{"name": "c", "console": {}, "escalation_policy": "ghost"}]},
            "receivers[0].escalation_policy",
        ),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_errors_name_the_key(data, key) -> None:
    with pytest.raises(ConfigError) as info:
        build_runtime(AlertingConfig.from_mapping(data))
    assert info.value.key == key, str(info.value)
