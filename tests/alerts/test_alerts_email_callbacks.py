"""Email via a real SMTP server (aiosmtpd, STARTTLS + AUTH) and the callback endpoint over real HTTP."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import json
import time
from urllib.parse import parse_qs, urlencode, urlparse

import aiohttp
import pytest
from alerts_golden import check_golden
from alerts_helpers import T0, assessment
from alerts_servers import self_signed_cert, serve_callbacks, tls_context

from crisiswatch.alerts.callbacks import (
    CallbackHandler,
    CallbackRequest,
    action_url,
    slack_signature,
)
from crisiswatch.alerts.cli import routes_test_main, silence_main
from crisiswatch.alerts.clock import ManualClock
from crisiswatch.alerts.config import AlertingConfig
from crisiswatch.alerts.incidents import AckEvent, IncidentTracker
from crisiswatch.alerts.receivers.base import Notification, Recipient, SendContext
from crisiswatch.alerts.receivers.email import EmailIntegration, build_message
from crisiswatch.alerts.render import RenderOptions
from crisiswatch.alerts.secrets import Secret
from crisiswatch.alerts.service import render_options_factory

HOSTILE = "<script>alert(1)</script> & \r\nBcc: victim@example.com"


def _page(lang: str = "en", **overrides) -> Notification:
    tracker = IncidentTracker()
    labels = {"lang": lang, "role": "own"}
    tracker.observe(assessment("warning", 0, labels=labels, **overrides))
    tracker.observe(
        assessment(
            "warning",
            120,
            labels=labels,
            forwards_per_minute=300.0,
            **{k: v for k, v in overrides.items() if k != "forwards_per_minute"},
        )
    )
    event = tracker.observe(
        assessment(
            "critical",
            400,
            labels=labels,
            forwards_per_minute=900.0,
            **{k: v for k, v in overrides.items() if k != "forwards_per_minute"},
        )
    )[0]
    return Notification(
        id="",
        receiver="mail",
        kind="page",
        group_key="g",
        thread_key=event.incident_id,
        event=event,
        recipients=(Recipient(id="alice", name="Alice", email="alice@example.com"),),
        created_at_s=T0 + 400,
    ).with_id()


def _config(**email_overrides) -> AlertingConfig:
    mail = {
        "smtp_host": "127.0.0.1",
        "smtp_port": 2525,
        "from": "cw@example.com",
        "to": ["pr@example.com"],
        **email_overrides,
    }
    return AlertingConfig.from_mapping(
        {
            "receivers": [{"name": "mail", "email": mail}],
            "route": {"receiver": "mail"},
            "callback": {"public_base_url": "https://cw.example.com", "signing_key": "link-signing-key"},
            "people": [{"id": "alice", "slack_user_id": "U0ALICE"}],
        }
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_email_golden(lang: str) -> None:
    config = _config()
    clock = ManualClock(T0 + 400)
    notification = _page(lang)
    options = render_options_factory(config, clock)(notification)
    message = build_message(notification, options, config.receivers[0].email, ["pr@example.com"])  # type: ignore[arg-type]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    check_golden(
        f"email_{lang}.txt", f"Subject: {message['Subject']}\nMessage-ID: {message['Message-ID']}\n\n{text}"
    )
    check_golden(f"email_{lang}.html", html + "\n")


def test_email_escapes_html_and_headers() -> None:
    config = _config()
    notification = _page(root_text=HOSTILE, brand_hint=1)
    import dataclasses

    event = dataclasses.replace(notification.event, brand="evil\r\nBcc: x@y.z")
    notification = dataclasses.replace(notification, event=event)
    message = build_message(notification, RenderOptions(), config.receivers[0].email, ["pr@example.com"])  # type: ignore[arg-type]
    parsed = email.message_from_string(message.as_string(), policy=email.policy.default)
    assert "Bcc" not in parsed and "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.integration
def test_email_over_real_smtp_with_starttls_and_auth(tmp_path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    pair = self_signed_cert(tmp_path)
    if pair is None:
        pytest.skip("openssl not available to make a test certificate")
    cert, key = pair
    received: list[tuple[list[str], bytes]] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == b"cw"
            and auth_data.password == b"smtp-pass"
        )
        return AuthResult(success=ok)

    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    free_port = probe.getsockname()[1]
    probe.close()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=free_port,
        tls_context=tls_context(cert, key),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        port = free_port
        config = _config(smtp_port=port, username="cw", password="smtp-pass", ca_path=str(cert), timeout_s=10)
        integration = EmailIntegration(config.receivers[0].email)  # type: ignore[arg-type]
        clock = ManualClock(T0 + 400)
        notification = _page()
        context = SendContext(render_options_factory(config, clock)(notification), {})
        asyncio.run(integration.send(notification, context))
    finally:
        controller.stop()
    (rcpts, raw) = received[0]
    assert sorted(rcpts) == ["alice@example.com", "pr@example.com"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Message-ID"] == f"<{notification.id}@example.com>"
    assert message.get_content_type() == "multipart/alternative"
    html_part = message.get_body(("html",))
    assert html_part is not None
    related = [p for p in message.walk() if p.get_content_type() == "multipart/related"]
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert related and images and images[0].get_content().startswith(b"\x89PNG")
    cid = images[0]["Content-ID"].strip("<>")
    assert f"cid:{cid}" in html_part.get_content()
    link = [
        w
        for w in message.get_body(("plain",)).get_content().split()
        if w.startswith("https://cw.example.com/alerts/action?t=")
    ]  # type: ignore[union-attr]
    assert link, "signed acknowledge link in the text part"


# ---------------------------------------------------------------------- callbacks
def _callback_config() -> AlertingConfig:
    return AlertingConfig.from_mapping(
        {
            "receivers": [
                {
                    "name": "s",
                    "slack": {"bot_token": "xoxb", "channel": "C1", "signing_secret": "slack-signing"},
                },
                {
                    "name": "pd",
                    "pagerduty": {"routing_key": "r" * 32, "webhook_signing_secret": "pd-signing"},
                },
            ],
            "route": {"receiver": "s"},
            "callback": {
                "public_base_url": "https://cw.example.com",
                "signing_key": "link-key",
                "link_ttl_s": 3600,
            },
            "people": [{"id": "alice", "slack_user_id": "U0ALICE"}],
        }
    )


def _slack_request(body: bytes, timestamp: int, secret: str = "slack-signing") -> CallbackRequest:
    signature = slack_signature(Secret(secret), str(timestamp), body)
    return CallbackRequest(
        "POST",
        "/alerts/slack/actions",
        {},
        {"x-slack-request-timestamp": str(timestamp), "x-slack-signature": signature},
        body,
    )


def _slack_body(action_id: str = "cw_ack") -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "actions": [{"action_id": action_id, "value": "acme/forward_surge/r1:1"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_slack_button_verified_and_replay_refused() -> None:
    acks: list[AckEvent] = []
    clock = ManualClock(T0)
    handler = CallbackHandler(_callback_config(), clock=clock, submit_ack=acks.append)
    request = _slack_request(_slack_body(), int(T0))
    assert asyncio.run(handler.handle(request)).status == 200
    assert acks == [AckEvent("acme/forward_surge/r1:1", "acknowledge", "alice", T0, "slack")]
    assert asyncio.run(handler.handle(request)).status == 409  # replayed
    assert (
        asyncio.run(handler.handle(_slack_request(_slack_body("cw_false_alarm"), int(T0) - 301))).status
        == 401
    )  # stale
    assert asyncio.run(handler.handle(_slack_request(_slack_body(), int(T0), "forged"))).status == 401
    tampered = _slack_request(_slack_body(), int(T0) + 1)
    tampered = CallbackRequest(
        tampered.method, tampered.path, {}, tampered.headers, _slack_body("cw_resolve")
    )
    assert asyncio.run(handler.handle(tampered)).status == 401
    assert len(acks) == 1


def test_email_link_confirm_then_post_once_and_expiry() -> None:
    acks: list[AckEvent] = []
    clock = ManualClock(T0)
    config = _callback_config()
    handler = CallbackHandler(config, clock=clock, submit_ack=acks.append)
    url = action_url(config.callback, "acme/forward_surge/r1:1", "false_alarm", T0, person="alice")
    assert url is not None
    token = parse_qs(urlparse(url).query)["t"][0]
    page = asyncio.run(handler.handle(CallbackRequest("GET", "/alerts/action", {"t": token})))
    assert page.status == 200 and "<form method='post'" in page.body and acks == []  # GET never acts
    post = CallbackRequest("POST", "/alerts/action", {}, {}, urlencode({"t": token}).encode())
    assert asyncio.run(handler.handle(post)).status == 200
    assert acks == [AckEvent("acme/forward_surge/r1:1", "false_alarm", "alice", T0, "email")]
    assert asyncio.run(handler.handle(post)).status == 409
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (
        asyncio.run(
            handler.handle(
                CallbackRequest("POST", "/alerts/action", {}, {}, urlencode({"t": forged}).encode())
            )
        ).status
        == 403
    )
    clock.advance(3601)
    fresh = action_url(config.callback, "acme/forward_surge/r1:1", "acknowledge", T0)
    old_token = parse_qs(urlparse(fresh or "").query)["t"][0]
    assert (
        asyncio.run(
            handler.handle(
                CallbackRequest("POST", "/alerts/action", {}, {}, urlencode({"t": old_token}).encode())
            )
        ).status
        == 403
    )


# PagerDuty webhooks: tests/alerts/test_alerts_pagerduty.py (payloads shaped as PagerDuty documents them).


@pytest.mark.integration
def test_handler_mounted_on_real_aiohttp_server() -> None:
    acks: list[AckEvent] = []

    async def run() -> list[int]:
        clock = ManualClock(time.time())  # the test plays Slack, which signs with real time
        handler = CallbackHandler(_callback_config(), clock=clock, submit_ack=acks.append)
        runner, port = await serve_callbacks(handler)
        body = _slack_body()
        ts = str(int(clock.now()))
        headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": slack_signature(Secret("slack-signing"), ts, body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        statuses = []
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.post(
                    f"http://127.0.0.1:{port}/alerts/slack/actions", data=body, headers=headers
                ) as response:
                    statuses.append(response.status)
            async with session.get(f"http://127.0.0.1:{port}/alerts/nope") as response:
                statuses.append(response.status)
        await runner.cleanup()
        return statuses

    assert asyncio.run(run()) == [200, 409, 404]
    assert len(acks) == 1


def test_acks_reach_the_incident_state() -> None:
    tracker = IncidentTracker()
    tracker.observe(assessment("warning", 0))
    acks: list[AckEvent] = []
    handler = CallbackHandler(_callback_config(), clock=ManualClock(T0 + 30), submit_ack=acks.append)
    asyncio.run(handler.handle(_slack_request(_slack_body(), int(T0 + 30))))
    events = [
        e
        for ack in acks
        for e in tracker.apply_ack(AckEvent.from_dict(json.loads(json.dumps(ack.to_dict()))))
    ]
    assert events[0].acknowledged_by == "alice"


# ---------------------------------------------------------------------- CLI
CLI_CONFIG = {
    "receivers": [
        {"name": "default", "console": {}},
        {"name": "pr", "console": {}, "escalation_policy": "pr"},
        {"name": "pd", "pagerduty": {"routing_key": "r" * 32}},
    ],
    "route": {
        "receiver": "default",
        "routes": [
            {"matchers": ['severity="critical"'], "receiver": "pd", "continue": True},
            {"matchers": ['role="own"'], "receiver": "pr", "mute_time_intervals": ["night"]},
        ],
    },
    "time_intervals": [
        {
            "name": "night",
            "time_intervals": [
                {"times": [{"start_time": "22:00", "end_time": "07:00"}], "location": "Asia/Shanghai"}
            ],
        }
    ],
    "people": [{"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}, {"id": "lead", "name": "Lee"}],
    "schedules": [
        {
            "name": "primary",
            "participants": ["alice", "bob"],
            "rotation": "weekly",
            "start": "2026-11-16T09:00",
            "time_zone": "Asia/Shanghai",
        }
    ],
    "escalation_policies": [
        {
            "name": "pr",
            "steps": [
                {"targets": ["schedule:primary"], "wait_s": "10m"},
                {"targets": ["lead"], "wait_s": "15m"},
            ],
        }
    ],
}


def _cli_config(tmp_path) -> AlertingConfig:
    return AlertingConfig.from_mapping({**CLI_CONFIG, "silences_path": str(tmp_path / "silences.json")})


def test_routes_test_cli(tmp_path) -> None:
    config = _cli_config(tmp_path)
    out = io.StringIO()
    code = routes_test_main(
        ["--labels", "role=own,severity=critical,brand=acme", "--at", "2026-11-24T10:00:00+08:00"],
        config,
        out=out,
    )
    assert code == 0
    text = out.getvalue()
    assert text.splitlines()[0] == "pd,pr"
    assert "step 0 (+0s): Bob (bob)" in text and "step 1 (+600s): Lee (lead)" in text
    assert "escalation owned by pagerduty" in text
    out = io.StringIO()
    assert (
        routes_test_main(
            ["--labels", "role=own", "--at", "2026-11-24T23:00:00+08:00", "--json"], config, out=out
        )
        == 0
    )
    result = json.loads(out.getvalue())
    assert result["routes"][0]["muted_by"] == "night" and result["routes"][0]["on_call"][0]["person"] == "bob"
    assert routes_test_main(["--labels", "role=competitor", "--at", "0"], config, out=io.StringIO()) == 1
    assert (
        routes_test_main(
            ["--labels", "role=own", "--at", "0", "--verify-receivers", "pr"], config, out=io.StringIO()
        )
        == 0
    )
    assert (
        routes_test_main(
            ["--labels", "role=own", "--at", "0", "--verify-receivers", "pd"], config, out=io.StringIO()
        )
        == 1
    )
    assert routes_test_main(["--labels", "nonsense"], config, out=io.StringIO()) == 2


def test_silence_cli_add_list_expire(tmp_path) -> None:
    config = _cli_config(tmp_path)
    clock = ManualClock(T0)
    out = io.StringIO()
    assert (
        silence_main(
            ["add", 'brand="acme"', "--duration", "2h", "--author", "alice", "--comment", "known"],
            config,
            clock=clock,
            out=out,
        )
        == 0
    )
    silence_id = out.getvalue().strip()
    out = io.StringIO()
    assert silence_main(["list"], config, clock=clock, out=out) == 0
    assert silence_id in out.getvalue() and "active" in out.getvalue()
    out = io.StringIO()
    routes_test_main(["--labels", "brand=acme,role=own", "--at", str(T0 + 60)], config, out=out)
    assert "SILENCED" in out.getvalue()
    assert (
        silence_main(["expire", silence_id[:8]], config, clock=ManualClock(T0 + 60), out=io.StringIO()) == 0
    )
    out = io.StringIO()
    silence_main(["list"], config, clock=ManualClock(T0 + 61), out=out)
    assert out.getvalue() == ""
    out = io.StringIO()
    assert silence_main(["add", 'brand=~".*"', "--author", "a"], config, clock=clock, out=out) == 2
    assert "does not match the empty string" in out.getvalue()
