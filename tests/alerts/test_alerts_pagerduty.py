"""PagerDuty, checked against its documentation (developer.pagerduty.com, PagerDuty/developer-docs):

- v3 webhooks ("Webhooks v3 Overview", "Verifying Signatures", "Behavior"): one `{"event": {...}}` per
  delivery; `X-PagerDuty-Signature` holds one or more comma-separated `v1=<hex HMAC-SHA256 of the raw
  body>`; deliveries are retried (5 attempts over ~20 min) and 4xx answers are dropped, not retried.
- Events API v2 ("Send an Alert Event"): `routing_key`, `event_action`, `dedup_key` <= 255 characters,
  `payload.summary` <= 1024 characters, `payload.source`, `payload.severity` in critical/error/warning/
  info, optional timestamp/component/group/class/custom_details, `links` [{href, text}], `client`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from alerts_helpers import T0, assessment
from alerts_servers import FakeHttp, Recorded, make_notifier, serve_callbacks

from crisiswatch.alerts.callbacks import CallbackError, CallbackHandler, CallbackRequest, verify_pagerduty
from crisiswatch.alerts.clock import ManualClock, iso_z
from crisiswatch.alerts.config import AlertingConfig
from crisiswatch.alerts.dispatch import RouteSimulator
from crisiswatch.alerts.incidents import AckEvent, IncidentEvent, IncidentTracker
from crisiswatch.alerts.receivers.base import Notification
from crisiswatch.alerts.receivers.pagerduty import pagerduty_dedup_key
from crisiswatch.alerts.routing import build_runtime
from crisiswatch.alerts.secrets import Secret

INCIDENT = "acme/forward_surge/r1:1"
SECRET = "pd-signing"
OLD_SECRET = "pd-signing-before-rotation"


# ------------------------------------------------------------------------------------- webhooks (in)
def documented_webhook(
    event_type: str = "incident.acknowledged",
    incident_key: str = INCIDENT,
    agent_type: str = "user_reference",
    occurred_at_s: float = T0 - 2,
    event_id: str = "5ac64822-4adc-4fda-ade0-410becf0de4f",
) -> dict[str, Any]:
    """The v3 payload exactly as PagerDuty's overview shows it (its `incident` data type)."""
    status = {"incident.acknowledged": "acknowledged", "incident.resolved": "resolved"}.get(
        event_type, "triggered"
    )
    agent: dict[str, Any] = {
        "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
        "id": "PLH1HKV",
        "self": "https://api.pagerduty.com/users/PLH1HKV",
        "summary": "Tenex Engineer",
        "type": "user_reference",
    }
    if agent_type != "user_reference":  # PagerDuty's echo of our own Events API call
        agent = {
            "html_url": "https://acme.pagerduty.com/services/PF9KMXH/integrations/PCY5RSQ",
            "id": "PCY5RSQ",
            "self": "https://api.pagerduty.com/services/PF9KMXH/integrations/PCY5RSQ",
            "summary": "crisiswatch Events API v2",
            "type": agent_type,
        }
    return {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": iso_z(occurred_at_s),
            "agent": agent,
            "client": {"name": "PagerDuty"},
            "data": {
                "id": "PGR0VU2",
                "type": "incident",
                "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                "number": 2,
                "status": status,
                "incident_key": incident_key,
                "created_at": "2020-04-09T15:16:27Z",
                "title": "Acme 投诉正在扩散 — A little bump in the road",
                "service": {
                    "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
                    "id": "PF9KMXH",
                    "self": "https://api.pagerduty.com/services/PF9KMXH",
                    "summary": "API Service",
                    "type": "service_reference",
                },
                "assignees": [
                    {
                        "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
                        "id": "PTUXL6G",
                        "self": "https://api.pagerduty.com/users/PTUXL6G",
                        "summary": "User 123",
                        "type": "user_reference",
                    }
                ],
                "escalation_policy": {
                    "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
                    "id": "PUS0KTE",
                    "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
                    "summary": "Default",
                    "type": "escalation_policy_reference",
                },
                "teams": [
                    {
                        "html_url": "https://acme.pagerduty.com/teams/PFCVPS0",
                        "id": "PFCVPS0",
                        "self": "https://api.pagerduty.com/teams/PFCVPS0",
                        "summary": "Engineering",
                        "type": "team_reference",
                    }
                ],
                "priority": {
                    "html_url": "https://acme.pagerduty.com/account/incident_priorities",
                    "id": "PSO75BM",
                    "self": "https://api.pagerduty.com/priorities/PSO75BM",
                    "summary": "P1",
                    "type": "priority_reference",
                },
                "urgency": "high",
                "conference_bridge": {
                    "conference_number": "+1 1234123412,,987654321#",
                    "conference_url": "https://example.com",
                },
                "resolve_reason": None,
            },
        }
    }


def sign(body: bytes, *secrets: str) -> str:
    """The header as PagerDuty sends it: one `v1=` signature per secret, comma-separated, no spaces."""
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")


def _config(**extra: Any) -> AlertingConfig:
    return AlertingConfig.from_mapping(
        {
            "receivers": [
                {"name": "pd", "pagerduty": {"routing_key": "r" * 32, "webhook_signing_secret": SECRET}}
            ],
            "route": {"receiver": "pd"},
            "people": [{"id": "alice", "name": "Alice", "pagerduty_user_id": "PLH1HKV"}],
            **extra,
        }
    )


def _post(handler: CallbackHandler, body: bytes, signature: str | None) -> tuple[int, str]:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-pagerduty-signature"] = signature
    response = asyncio.run(handler.handle(CallbackRequest("POST", "/alerts/pagerduty", {}, headers, body)))
    return response.status, response.body


def test_documented_acknowledge_webhook_becomes_one_ack() -> None:
    acks: list[AckEvent] = []
    handler = CallbackHandler(_config(), clock=ManualClock(T0), submit_ack=acks.append)
    body = encode(documented_webhook())
    # During a secret rotation PagerDuty signs with both secrets; ours is the second.
    assert _post(handler, body, sign(body, OLD_SECRET, SECRET)) == (200, "ok")
    assert acks == [AckEvent(INCIDENT, "acknowledge", "alice", T0, "pagerduty")]  # PLH1HKV is alice
    # PagerDuty retries a delivery it thinks failed: answered 200 (a 4xx would count as a drop), not acted on.
    assert _post(handler, body, sign(body, SECRET)) == (200, "duplicate")
    assert len(acks) == 1


def test_documented_resolve_by_an_unknown_user_and_unicode_body() -> None:
    acks: list[AckEvent] = []
    handler = CallbackHandler(_config(people=[]), clock=ManualClock(T0), submit_ack=acks.append)
    body = encode(documented_webhook("incident.resolved", event_id="01BZ7J5N0000000000000000RE"))
    assert b"\xe6\x8a\x95" in body  # raw UTF-8 is what is signed
    assert _post(handler, body, sign(body, SECRET)) == (200, "ok")
    assert acks == [AckEvent(INCIDENT, "resolve", "pagerduty:Tenex Engineer", T0, "pagerduty")]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        # crisiswatch's own acknowledge/resolve events coming back: not a person's decision
        (documented_webhook(agent_type="inbound_integration_reference"), "ignored: not done by a person"),
        (
            documented_webhook("incident.resolved", agent_type="service_reference"),
            "ignored: not done by a person",
        ),
        (documented_webhook("incident.priority_updated"), "ignored: event type"),
        (documented_webhook("incident.unacknowledged"), "ignored: event type"),
        # an incident crisiswatch did not open (a PagerDuty-generated key)
        (
            documented_webhook(incident_key="d3640fbd41094207a1c11e58e46b1662"),
            "ignored: not a crisiswatch incident",
        ),
        (
            documented_webhook(incident_key=pagerduty_dedup_key("acme/x/" + "r" * 300 + ":1")),
            "ignored: not a crisiswatch incident",
        ),
    ],
)
def test_webhooks_that_are_not_acknowledgements_are_ignored(payload: dict[str, Any], reason: str) -> None:
    acks: list[AckEvent] = []
    handler = CallbackHandler(_config(), clock=ManualClock(T0), submit_ack=acks.append)
    body = encode(payload)
    assert _post(handler, body, sign(body, SECRET)) == (200, reason)
    assert acks == []


def test_annotated_event_has_note_data_and_is_ignored() -> None:
    payload = documented_webhook("incident.annotated")
    payload["event"]["data"] = {
        "incident": {
            "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "id": "PGR0VU2",
            "self": "https://api.pagerduty.com/incidents/PGR0VU2",
            "summary": "A little bump in the road",
            "type": "incident_reference",
        },
        "id": "P2LA89X",
        "content": "I sure am glad we are using PagerDuty!",
        "trimmed": False,
        "type": "incident_note",
    }
    acks: list[AckEvent] = []
    handler = CallbackHandler(_config(), clock=ManualClock(T0), submit_ack=acks.append)
    body = encode(payload)
    assert _post(handler, body, sign(body, SECRET)) == (200, "ignored: event type")
    assert acks == []


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "v1=" + "0" * 64,
        "v0=" + hmac.new(SECRET.encode(), b"x", hashlib.sha256).hexdigest(),  # wrong version
        "v1=zz",
        "v1=é" + "0" * 63,  # non-ASCII must be refused, not crash compare_digest
    ],
)
def test_forged_or_unsigned_webhooks_are_refused(signature: str | None) -> None:
    acks: list[AckEvent] = []
    handler = CallbackHandler(_config(), clock=ManualClock(T0), submit_ack=acks.append)
    status, _ = _post(handler, encode(documented_webhook()), signature)
    assert status == 401 and acks == []


def test_tampered_body_and_other_secret_are_refused() -> None:
    body = encode(documented_webhook())
    tampered = body.replace(b"incident.acknowledged", b"incident.resolved")
    with pytest.raises(CallbackError):
        verify_pagerduty([Secret(SECRET)], {"x-pagerduty-signature": sign(body, SECRET)}, tampered)
    with pytest.raises(CallbackError):
        verify_pagerduty([Secret(SECRET)], {"x-pagerduty-signature": sign(body, OLD_SECRET)}, body)
    verify_pagerduty(
        [Secret(SECRET)], {"x-pagerduty-signature": sign(body, SECRET).upper().replace("V1=", "v1=")}, body
    )


def test_replayed_old_webhook_is_refused() -> None:
    """The seen-ids cache does not survive a restart: an event older than an hour is a replay."""
    acks: list[AckEvent] = []
    handler = CallbackHandler(_config(), clock=ManualClock(T0), submit_ack=acks.append)
    body = encode(documented_webhook(occurred_at_s=T0 - 2 * 3600))
    assert _post(handler, body, sign(body, SECRET))[0] == 409
    assert acks == []


def test_a_failed_hand_off_is_not_remembered_so_the_retry_acts() -> None:
    acks: list[AckEvent] = []
    failures = [RuntimeError("ack topic unavailable")]

    def submit(ack: AckEvent) -> None:
        if failures:
            raise failures.pop()
        acks.append(ack)

    handler = CallbackHandler(_config(), clock=ManualClock(T0), submit_ack=submit)
    body = encode(documented_webhook())
    with pytest.raises(RuntimeError):  # the web server answers 500: PagerDuty retries
        _post(handler, body, sign(body, SECRET))
    assert _post(handler, body, sign(body, SECRET)) == (200, "ok")
    assert len(acks) == 1


@pytest.mark.integration
def test_documented_webhook_over_real_http() -> None:
    """Raw bytes through aiohttp: the signature is checked on the body exactly as sent."""
    acks: list[AckEvent] = []

    async def run() -> list[tuple[int, str]]:
        handler = CallbackHandler(_config(), clock=ManualClock(T0), submit_ack=acks.append)
        runner, port = await serve_callbacks(handler)
        body = encode(documented_webhook())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-Webhook-Id": "a2b7ea5f-ed59-4d2b-a5b6-fa5d1d0a4a1d",
            "X-Webhook-Subscription": "PY1OYTE",
            "X-PagerDuty-Signature": sign(body, SECRET),
        }
        out = []
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.post(
                    f"http://127.0.0.1:{port}/alerts/pagerduty", data=body, headers=headers
                ) as response:
                    out.append((response.status, await response.text()))
        await runner.cleanup()
        return out

    assert asyncio.run(run()) == [(200, "ok"), (200, "duplicate")]
    assert acks == [AckEvent(INCIDENT, "acknowledge", "alice", T0, "pagerduty")]


# ------------------------------------------------------------------------------ Events API v2 (out)
EVENT_KEYS = {
    "routing_key",
    "event_action",
    "dedup_key",
    "payload",
    "images",
    "links",
    "client",
    "client_url",
}
PAYLOAD_KEYS = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}


def check_events_v2(body: dict[str, Any]) -> None:
    """PagerDuty's "Send an Alert Event" parameter table as assertions."""
    assert set(body) <= EVENT_KEYS, set(body) - EVENT_KEYS
    assert isinstance(body["routing_key"], str) and body["routing_key"]
    assert body["event_action"] in ("trigger", "acknowledge", "resolve")
    assert isinstance(body["dedup_key"], str) and 0 < len(body["dedup_key"]) <= 255
    if body["event_action"] != "trigger":
        assert "payload" not in body
        return
    payload = body["payload"]
    assert set(payload) <= PAYLOAD_KEYS, set(payload) - PAYLOAD_KEYS
    assert isinstance(payload["summary"], str) and 0 < len(payload["summary"]) <= 1024
    assert isinstance(payload["source"], str) and payload["source"]
    assert payload["severity"] in ("critical", "error", "warning", "info")
    assert "\n" not in payload["summary"]
    if "timestamp" in payload:
        assert payload["timestamp"].endswith("Z") and "T" in payload["timestamp"]  # ISO 8601
    for key in ("component", "group", "class"):
        assert isinstance(payload.get(key, ""), str)
    assert isinstance(payload.get("custom_details", {}), dict)
    for link in body.get("links", []):
        assert set(link) <= {"href", "text"} and link["href"].startswith(("https://", "http://"))
    for image in body.get("images", []):
        assert image["src"].startswith("https://")


def _notifications(root_id: str, **overrides: Any) -> list[Notification]:
    """page -> acknowledged update -> resolved, through the real tracker and dispatcher."""
    tracker = IncidentTracker()
    events: list[IncidentEvent] = tracker.observe(assessment("critical", 0, root_id=root_id, **overrides))
    incident_id = events[0].incident_id
    events += tracker.apply_ack(AckEvent(incident_id, "acknowledge", "alice", T0 + 60, "slack"))
    events += tracker.apply_ack(AckEvent(incident_id, "resolve", "alice", T0 + 120, "slack"))
    config = AlertingConfig.from_mapping(
        {"receivers": [{"name": "pd", "console": {}}], "route": {"receiver": "pd"}}
    )
    simulator = RouteSimulator(build_runtime(config))
    return [n for event in events for n in simulator.feed(event)]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("root_id", "overrides"),
    [
        ("r1", {}),
        # hostile and oversized post content, and an incident id longer than PagerDuty's dedup_key limit
        (
            "r" * 400,
            {
                "root_text": "<b>\r\n" + "爆炸 " * 3000,
                "root_url": "javascript:alert(1)",
                "category": "x" * 900,
            },
        ),
    ],
)
def test_events_v2_bodies_follow_the_documentation(tmp_path, root_id: str, overrides: dict) -> None:
    async def run() -> list[Recorded]:
        pagerduty = await FakeHttp(
            lambda s, r: web.json_response(
                {"status": "success", "message": "Event processed", "dedup_key": r.json()["dedup_key"]},
                status=202,
            )
        ).start()
        clock = ManualClock(T0)
        config = AlertingConfig.from_mapping(
            {
                "receivers": [
                    {"name": "pd", "pagerduty": {"routing_key": "R" * 32, "api_base_url": pagerduty.base_url}}
                ],
                "route": {"receiver": "pd"},
                "callback": {"public_base_url": "https://cw.example.com", "signing_key": "k"},
            }
        )
        notifier = make_notifier(config, clock, tmp_path)
        for notification in _notifications(root_id, **overrides):
            notifier.submit(notification)
            for _ in range(5):
                await notifier.deliver_due()
                clock.advance(1)
        await notifier.aclose()
        await pagerduty.stop()
        return pagerduty.requests

    requests = asyncio.run(run())
    assert [(r.method, r.path) for r in requests] == [("POST", "/v2/enqueue")] * 3
    assert all(r.headers["content-type"].startswith("application/json") for r in requests)
    bodies = [r.json() for r in requests]
    for body in bodies:
        check_events_v2(body)
    assert [b["event_action"] for b in bodies] == ["trigger", "acknowledge", "resolve"]
    assert len({b["dedup_key"] for b in bodies}) == 1  # one PagerDuty alert for the whole incident
    trigger = bodies[0]
    assert trigger["payload"]["severity"] == "critical" and trigger["client"] == "crisiswatch"
    assert trigger["payload"]["custom_details"]["incident_id"].startswith("acme/forward_surge/")
    if root_id == "r1":
        assert trigger["dedup_key"] == "acme/forward_surge/r1:1"
        assert [link["text"] for link in trigger["links"]] == ["Complaint", "Acknowledge in crisiswatch"]
    else:
        assert len(trigger["dedup_key"]) == 255
        assert [link["text"] for link in trigger["links"]] == [
            "Acknowledge in crisiswatch"
        ]  # javascript: dropped


def test_dedup_key_is_stable_and_bounded() -> None:
    short = "acme/forward_surge/r1:1"
    assert pagerduty_dedup_key(short) == short
    long_a, long_b = "acme/x/" + "a" * 300 + ":1", "acme/x/" + "a" * 300 + ":2"
    assert len(pagerduty_dedup_key(long_a)) == 255 == len(pagerduty_dedup_key(long_b))
    assert pagerduty_dedup_key(long_a) == pagerduty_dedup_key(copy.copy(long_a))
    assert pagerduty_dedup_key(long_a) != pagerduty_dedup_key(long_b)  # episodes stay distinct
