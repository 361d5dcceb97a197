"""Plain-text pages (console, JSONL, email text part), SMS, and the console / JSONL receivers."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json

import pytest
from alerts_golden import check_golden
from alerts_helpers import T0, assessment

from crisiswatch.alerts.incidents import AckEvent, IncidentEvent, IncidentTracker
from crisiswatch.alerts.receivers.base import Notification, SendContext
from crisiswatch.alerts.receivers.local import ConsoleIntegration, JsonlIntegration
from crisiswatch.alerts.render import RenderOptions, human_number, render_sms, render_text

PLAYBOOKS = {
    "product_safety": {
        "en": "Pause paid promotion; publish a holding statement within 1 h; route to the safety team.",
        "zh": "暂停付费推广；1小时内发布声明；转交安全团队。",
    },
    "default": "Acknowledge publicly within 2 h and move the conversation to DMs.",
}
OPTIONS = RenderOptions(
    playbooks=PLAYBOOKS, ack_url="https://cw.example/alerts/a?t=tok", time_zone="Asia/Shanghai"
)


def firing(lang: str = "en", **metric_overrides) -> IncidentEvent:
    tracker = IncidentTracker()
    labels = {"lang": lang, "platform": "weibo", "role": "own"}
    tracker.observe(assessment("warning", 0, labels=labels, **metric_overrides))
    return tracker.observe(assessment("critical", 600, labels=labels, **metric_overrides))[0]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_text_golden(lang: str) -> None:
    check_golden(f"text_{lang}.txt", render_text(firing(lang), OPTIONS))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_text_resolved_golden(lang: str) -> None:
    tracker = IncidentTracker()
    labels = {"lang": lang, "platform": "weibo", "role": "own"}
    tracker.observe(assessment("warning", 0, labels=labels))
    tracker.apply_ack(AckEvent("acme/forward_surge/r1:1", "acknowledge", "alice", T0 + 60, "slack"))
    resolved = tracker.advance(T0 + 4000)[0]
    check_golden(f"text_resolved_{lang}.txt", render_text(resolved, OPTIONS))


def test_text_has_what_a_pr_person_needs() -> None:
    text = render_text(firing(), OPTIONS)
    for needle in (
        "a complaint is being forwarded fast",
        '"My Acme phone exploded while charging!"',
        "https://social.example/p/123",
        "120 forwards/min",
        "projected reach",
        "@bigvoice (1.2M followers, verified)",
        "78% negative",
        '"never buying again"',
        "CRITICAL",
        "2026-11-18 19:06 CST (10 min ago)",
        "Pause paid promotion",
        "https://cw.example/alerts/a?t=tok",
    ):
        assert needle in text


def test_default_playbook_and_missing_metrics() -> None:
    event = firing(category="unknown_category")
    event = dataclasses.replace(event, metrics={}, labels={"lang": "en"})
    text = render_text(event, OPTIONS)
    assert "Acknowledge publicly within 2 h" in text
    assert "Spread" not in text  # no made-up numbers


def test_untrusted_text_is_not_interpreted() -> None:
    hostile = "{summary} {{7*7}} ${HOME} %s \x1b[31mred\r\nBcc: x@y"
    event = firing(root_text=hostile, sample_comments=[hostile])
    text = render_text(event, OPTIONS)
    assert "{summary} {{7*7}} ${HOME} %s" in text
    assert "\x1b" not in text and "\r" not in text


def test_sms_fits_and_keeps_link() -> None:
    sms = render_sms(firing(root_text="x" * 1000), OPTIONS)
    assert len(sms) <= 160 and sms.endswith("https://cw.example/alerts/a?t=tok")
    assert len(render_sms(firing("zh"), OPTIONS, limit=70)) <= 70


def test_human_numbers() -> None:
    assert human_number(1_250_000) == "1.2M" or human_number(1_250_000) == "1.3M"
    assert human_number(2_300_000, "zh") == "230万"
    assert human_number(350_000_000, "zh") == "3.5亿"
    assert human_number(None) == "?"


def _notification(event: IncidentEvent) -> Notification:
    return Notification(
        id="n1", receiver="demo", kind="page", group_key="g", thread_key=event.incident_id, event=event
    ).with_id()


def test_console_receiver_writes_page() -> None:
    buffer = io.StringIO()
    event = firing()
    ConsoleIntegration(buffer).send_sync(_notification(event), SendContext(OPTIONS))
    assert "--- page -> demo" in buffer.getvalue()
    assert "120 forwards/min" in buffer.getvalue()


def test_jsonl_receiver_appends_round_trippable_lines(tmp_path) -> None:
    path = tmp_path / "sub" / "alerts.jsonl"
    sink = JsonlIntegration(str(path))
    event = firing()
    asyncio.run(sink.send(_notification(event), SendContext(OPTIONS)))
    sink.send_sync(_notification(event), SendContext(OPTIONS))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert Notification.from_dict(record) == _notification(event)
    assert "120 forwards/min" in record["text"]
