"""Slack, PagerDuty and webhook receivers against real HTTP servers on 127.0.0.1, and an outage."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

import pytest
from aiohttp import web
from alerts_golden import check_golden
from alerts_helpers import T0, assessment
from alerts_servers import FakeHttp, Recorded, make_notifier

from crisiswatch.alerts.clock import ManualClock
from crisiswatch.alerts.config import AlertingConfig
from crisiswatch.alerts.delivery import Notifier
from crisiswatch.alerts.dispatch import RouteSimulator
from crisiswatch.alerts.incidents import AckEvent, IncidentEvent, IncidentTracker
from crisiswatch.alerts.receivers.base import Notification
from crisiswatch.alerts.receivers.slack import render_blocks
from crisiswatch.alerts.render import RenderOptions
from crisiswatch.alerts.routing import build_runtime

pytestmark = pytest.mark.integration
HOSTILE = "<!channel> <@U999> <https://evil.example|click> & @here *bold* {{x}}"


def _notifications(receiver: str, lang: str = "en", **overrides) -> list[Notification]:
    """page -> ack update -> resolved for one incident, through the real dispatcher."""
    tracker = IncidentTracker()
    labels = {"lang": lang, "role": "own", "platform": "weibo"}
    events: list[IncidentEvent] = []
    events += tracker.observe(assessment("critical", 0, labels=labels, **overrides))
    events += tracker.apply_ack(AckEvent("acme/forward_surge/r1:1", "acknowledge", "alice", T0 + 60, "slack"))
    events += tracker.apply_ack(AckEvent("acme/forward_surge/r1:1", "resolve", "alice", T0 + 120, "slack"))
    config = AlertingConfig.from_mapping(
        {"receivers": [{"name": receiver, "console": {}}], "route": {"receiver": receiver}}
    )
    sim = RouteSimulator(build_runtime(config))
    out: list[Notification] = []
    for event in events:
        out += sim.feed(event)
    return out


def _config(receiver: dict, **extra) -> AlertingConfig:
    return AlertingConfig.from_mapping(
        {"receivers": [receiver], "route": {"receiver": receiver["name"]}, **extra}
    )


async def _deliver_all(
    notifier: Notifier, clock: ManualClock, rounds: int = 200, step_s: float = 1.0
) -> None:
    for _ in range(rounds):
        if not notifier.pending():
            return
        await notifier.deliver_due()
        due = notifier.next_due_s()
        if due is not None and due > clock.now():
            clock.set(due)
        else:
            clock.advance(step_s)


_notifier = make_notifier


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_slack_blocks_golden(lang: str) -> None:
    page = _notifications("s", lang)[0]
    options = RenderOptions(playbooks={"default": "Respond within 2 h."}, time_zone="Asia/Shanghai")
    rendered = render_blocks(page, options)
    check_golden(
        f"slack_{lang}.json", json.dumps(rendered, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    )


def test_slack_escapes_hostile_text_and_respects_limits() -> None:
    page = _notifications("s", root_text=HOSTILE * 200, sample_comments=[HOSTILE] * 5, brand_label="x")[0]
    rendered = render_blocks(page, RenderOptions())
    payload = json.dumps(rendered, ensure_ascii=False)
    assert "<!channel>" not in payload and "<@U999>" not in payload and "<https://evil" not in payload
    assert "&lt;!channel&gt;" in payload and "@\u200bhere" in payload
    assert len(rendered["blocks"]) <= 50
    for block in rendered["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150


def test_slack_webhook_and_bot_thread(tmp_path) -> None:
    async def run() -> tuple[list[Recorded], list[Recorded]]:
        hook, api = await FakeHttp().start(), await FakeHttp().start()
        clock = ManualClock(T0)
        webhook_cfg = _config({"name": "s", "slack": {"webhook_url": hook.base_url + "/services/T/B/secret"}})
        bot_cfg = _config(
            {
                "name": "s",
                "slack": {
                    "bot_token": "xoxb-test-token",
                    "channel": "C123",
                    "api_base_url": api.base_url + "/api",
                },
            }
        )
        for cfg in (webhook_cfg, bot_cfg):
            notifier = _notifier(cfg, clock, tmp_path)
            for n in _notifications("s"):
                notifier.submit(n)
                await _deliver_all(notifier, clock)
            await notifier.aclose()
        await hook.stop()
        await api.stop()
        return hook.requests, api.requests

    hook_requests, api_requests = asyncio.run(run())
    assert [r.method for r in hook_requests] == ["POST"] * 3
    assert hook_requests[0].path == "/services/T/B/secret"
    assert hook_requests[0].headers["content-type"].startswith("application/json")
    assert "blocks" in hook_requests[0].json()
    # bot: post the page, then update the message and reply in its thread for the ack and the resolve
    assert [r.path for r in api_requests] == [
        "/api/chat.postMessage",
        "/api/chat.update",
        "/api/chat.postMessage",
        "/api/chat.update",
        "/api/chat.postMessage",
    ]
    assert all(r.headers["authorization"] == "Bearer xoxb-test-token" for r in api_requests)
    assert api_requests[1].json()["ts"] == "1700000000.000100"
    assert api_requests[2].json()["thread_ts"] == "1700000000.000100"
    actions = [b for b in api_requests[0].json()["blocks"] if b["type"] == "actions"][0]
    assert [e["action_id"] for e in actions["elements"]] == ["cw_ack", "cw_resolve", "cw_false_alarm"]
    assert not any(b["type"] == "actions" for b in api_requests[3].json()["blocks"])  # resolved: no buttons


def test_slack_api_error_is_not_retried_but_ratelimit_is(tmp_path) -> None:
    def behaviour(server: FakeHttp, request: Recorded) -> web.Response:
        if len(server.requests) == 1:
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "7"}
            )
        return web.json_response({"ok": False, "error": "channel_not_found"})

    async def run() -> list:
        api = await FakeHttp(behaviour).start()
        clock = ManualClock(T0)
        cfg = _config(
            {"name": "s", "slack": {"bot_token": "xoxb-t", "channel": "C1", "api_base_url": api.base_url}}
        )
        notifier = _notifier(cfg, clock, tmp_path)
        notifier.submit(_notifications("s")[0])
        first = await notifier.deliver_due()
        clock.advance(7)
        second = await notifier.deliver_due()
        await notifier.aclose()
        await api.stop()
        return [first[0], second[0]]

    first, second = asyncio.run(run())
    assert first.result == "retry" and first.reason == "rate_limited" and first.next_attempt_s == T0 + 7
    assert second.result == "dead" and second.reason == "rejected"
    record = json.loads((tmp_path / "dead.jsonl").read_text())
    assert record["reason"] == "rejected" and "xoxb" not in json.dumps(record)


def test_pagerduty_trigger_acknowledge_resolve(tmp_path) -> None:
    async def run() -> list[Recorded]:
        pd = await FakeHttp(
            lambda s, r: web.json_response({"status": "success", "dedup_key": "x"}, status=202)
        ).start()
        clock = ManualClock(T0)
        cfg = _config({"name": "pd", "pagerduty": {"routing_key": "R" * 32, "api_base_url": pd.base_url}})
        notifier = _notifier(cfg, clock, tmp_path)
        for n in _notifications("pd"):
            notifier.submit(n)
            await _deliver_all(notifier, clock)
        await notifier.aclose()
        await pd.stop()
        return pd.requests

    requests = asyncio.run(run())
    bodies = [r.json() for r in requests]
    assert [r.path for r in requests] == ["/v2/enqueue"] * 3
    assert [b["event_action"] for b in bodies] == ["trigger", "acknowledge", "resolve"]
    assert {b["dedup_key"] for b in bodies} == {"acme/forward_surge/r1:1"}
    assert bodies[0]["routing_key"] == "R" * 32
    assert bodies[0]["payload"]["severity"] == "critical" and len(bodies[0]["payload"]["summary"]) <= 1024


def test_webhook_signed_with_event_id(tmp_path) -> None:
    async def run() -> list[Recorded]:
        hook = await FakeHttp().start()
        clock = ManualClock(T0)
        cfg = _config({"name": "h", "webhook": {"url": hook.base_url + "/hook", "signing_key": "whsec"}})
        notifier = _notifier(cfg, clock, tmp_path)
        for n in _notifications("h"):
            notifier.submit(n)
            await _deliver_all(notifier, clock)
        await notifier.aclose()
        await hook.stop()
        return hook.requests

    requests = asyncio.run(run())
    assert len(requests) == 3
    for request in requests:
        timestamp = request.headers["x-crisiswatch-timestamp"]
        expected = (
            "v1=" + hmac.new(b"whsec", timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
        )
        assert request.headers["x-crisiswatch-signature"] == expected
        assert request.json()["notification_id"] == request.headers["x-crisiswatch-event-id"]
    assert [r.json()["kind"] for r in requests] == ["page", "update", "resolved"]


def test_outage_then_recovery_delivers_everything_once(tmp_path, caplog) -> None:
    """Refused connections, 500s, 429 with Retry-After and timeouts (scaled time), then recovery."""
    caplog.set_level(logging.DEBUG)
    accepted: dict[str, int] = {}
    plan = ["500", "429", "slow", "500", "slow"]

    async def behaviour(server: FakeHttp, request: Recorded) -> web.Response:
        step = plan.pop(0) if plan else "ok"
        if step == "500":
            return web.Response(status=500)
        if step == "429":
            return web.Response(status=429, headers={"Retry-After": "30"})
        if step == "slow":
            # The server processes it but answers too late: the client retries, the event id dedups.
            accepted[request.headers["x-crisiswatch-event-id"]] = (
                accepted.get(request.headers["x-crisiswatch-event-id"], 0) + 1
            )
            await asyncio.sleep(0.6)
            return web.Response(status=200)
        accepted[request.headers["x-crisiswatch-event-id"]] = (
            accepted.get(request.headers["x-crisiswatch-event-id"], 0) + 1
        )
        return web.Response(status=200)

    async def run() -> tuple[Notifier, list[str]]:
        hook = FakeHttp(behaviour)
        await hook.start()
        port = hook.port
        await hook.stop()  # outage: connection refused
        clock = ManualClock(T0)
        cfg = _config(
            {
                "name": "h",
                "webhook": {
                    "url": f"http://127.0.0.1:{port}/hook?token=s3cret-token",
                    "signing_key": "k",
                    "timeout_s": 0.3,
                },
            }
        )
        notifier = _notifier(
            cfg, clock, tmp_path, initial_backoff_s=5, max_backoff_s=60, budget_s=3600, timeout_s=0.3
        )
        sent_ids = []
        tracker = IncidentTracker()
        # 5 incidents, each page + later an update that supersedes nothing (pages are kept)
        for i in range(5):
            for event in tracker.observe(assessment("critical", i, root_id=f"r{i}")):
                n = Notification(
                    id="",
                    receiver="h",
                    kind="page",
                    group_key=f"g{i}",
                    thread_key=event.incident_id,
                    event=event,
                ).with_id()
                notifier.submit(n)
                sent_ids.append(n.id)
        for _ in range(4):  # 4 rounds of refused connections
            await notifier.deliver_due()
            clock.set((notifier.next_due_s() or clock.now()) + 0.001)
        await hook.start(port)  # the receiver comes back but misbehaves for a while
        await _deliver_all(notifier, clock, rounds=400)
        await hook.stop()
        await notifier.aclose()
        return notifier, sent_ids

    notifier, sent_ids = asyncio.run(run())
    assert not notifier.pending()
    assert set(accepted) == set(sent_ids)  # every notification arrived...
    assert not (tmp_path / "dead.jsonl").exists()
    metrics = notifier.metrics
    assert metrics.sent.labels(receiver="h")._value.get() == 5  # ...and was counted once
    assert metrics.failed.labels(receiver="h", reason="connection")._value.get() >= 4
    assert metrics.failed.labels(receiver="h", reason="rate_limited")._value.get() == 1
    assert metrics.failed.labels(receiver="h", reason="timeout")._value.get() >= 1
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("crisiswatch")]
    assert ours and not any("s3cret-token" in message for message in ours)


def test_superseded_updates_are_merged(tmp_path) -> None:
    async def run() -> list[Recorded]:
        hook = FakeHttp()
        await hook.start()
        port = hook.port
        await hook.stop()
        clock = ManualClock(T0)
        cfg = _config({"name": "h", "webhook": {"url": f"http://127.0.0.1:{port}/h"}})
        notifier = _notifier(cfg, clock, tmp_path)
        page, *rest = _notifications("h")
        notifier.submit(page)
        for n in rest:  # the ack update and the resolve arrive while the receiver is down
            notifier.submit(n)
        await notifier.deliver_due()
        await hook.start(port)
        clock.advance(3600)
        await _deliver_all(notifier, clock)
        await notifier.aclose()
        await hook.stop()
        return hook.requests

    requests = asyncio.run(run())
    # the page, then only the latest state (resolved) — not the intermediate ack update
    assert [r.json()["kind"] for r in requests] == ["page", "resolved"]


def test_budget_exhausted_goes_to_dead_letters_and_resend(tmp_path) -> None:
    from crisiswatch.alerts.cli import notifications_main

    async def run() -> Notifier:
        hook = FakeHttp()
        await hook.start()
        port = hook.port
        await hook.stop()
        clock = ManualClock(T0)
        cfg = _config({"name": "h", "webhook": {"url": f"http://127.0.0.1:{port}/h"}})
        notifier = _notifier(cfg, clock, tmp_path, budget_s=60, initial_backoff_s=10)
        notifier.submit(_notifications("h")[0])
        await _deliver_all(notifier, clock)
        await notifier.aclose()
        return notifier

    notifier = asyncio.run(run())
    record = json.loads((tmp_path / "dead.jsonl").read_text())
    assert record["reason"] == "budget_exhausted" and record["last_reason"] == "connection"
    assert notifier.metrics.dead_lettered.labels(receiver="h", reason="budget_exhausted")._value.get() == 1

    # the receiver is back: `crisiswatch notifications resend --all`
    import socket
    import threading

    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1]
        )
        while len(body) < length:
            body += conn.recv(65536)
        received.append(body)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    cfg = AlertingConfig.from_mapping(
        {
            "receivers": [{"name": "h", "webhook": {"url": f"http://127.0.0.1:{port}/h"}}],
            "route": {"receiver": "h"},
            "delivery": {"dead_letter_path": str(tmp_path / "dead.jsonl")},
        }
    )
    import io

    out = io.StringIO()
    assert notifications_main(["resend", "--all"], cfg, clock=ManualClock(T0 + 7200), out=out) == 0, (
        out.getvalue()
    )
    thread.join(5)
    assert len(received) == 1 and json.loads(received[0])["kind"] == "page"
    assert (tmp_path / "dead.jsonl").read_text() == ""
