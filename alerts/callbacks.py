"""Acknowledgements coming back: Slack buttons, signed email links, PagerDuty webhooks.

Everything that arrives is untrusted. Slack requests carry `X-Slack-Signature` (v0, HMAC-SHA256 of
`v0:{timestamp}:{body}` with the app's signing secret) and a timestamp that must be within 5 minutes;
a signature seen before is refused (replay). Email links carry a token signed with
`callback.signing_key` that names the incident, the action and an expiry; opening the link (GET)
only shows a confirmation form — mail scanners prefetch links — and the POST performs the action
once. PagerDuty v3 webhooks carry `X-PagerDuty-Signature`: one or more comma-separated
`v1=<hex HMAC-SHA256 of the raw body>` (several while a secret is rotated); any one matching a
configured `webhook_signing_secret` is enough. Their `event.data.incident_key` is the `dedup_key`
crisiswatch sent (our incident id) for an incident PagerDuty opened from our event; a key that is not
one of ours (e.g. an incident PagerDuty's alert grouping keyed itself) is ignored, not an error.
Only `incident.acknowledged` / `incident.resolved` done by a person (`agent.type` "user_reference")
act, so the echoes of crisiswatch's own acknowledge/resolve events are ignored. An event id seen before is answered 200 (PagerDuty retries deliveries and
disables endpoints that keep answering 4xx) without acting twice; an event older than an hour is
refused (PagerDuty stops retrying after about 20 minutes: an older one is a replay).

A verified action becomes an `AckEvent` handed to `submit_ack` (the lead produces it to the acks
topic keyed by `dedup_key`, so the worker owning the incident applies it).

Mounting on an aiohttp app (Faust's web server is aiohttp)::

    handler = CallbackHandler(settings.alerting, clock=clock, submit_ack=produce_ack)
    app.router.add_route("*", settings.alerting.callback.path_prefix + "/{tail:.*}", handler.aiohttp)

`handler.handle(CallbackRequest) -> CallbackResponse` is the framework-free core used by tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from crisiswatch.alerts.clock import Clock, parse_time
from crisiswatch.alerts.config import AlertingConfig, CallbackConfig
from crisiswatch.alerts.incidents import ACK_ACTIONS, AckEvent
from crisiswatch.alerts.secrets import Secret

SLACK_ACTION_IDS: dict[str, str] = {
    "cw_ack": "acknowledge",
    "cw_resolve": "resolve",
    "cw_false_alarm": "false_alarm",
}
MAX_BODY_BYTES = 64 * 1024
_PD_ACTIONS = {"incident.acknowledged": "acknowledge", "incident.resolved": "resolve"}
# PagerDuty retries a webhook for about 20 minutes; anything older is a replay.
PAGERDUTY_EVENT_MAX_AGE_S = 3600.0
_PD_CLOCK_SKEW_S = 300.0
_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class CallbackError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


# ---- signed tokens ------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(key: Secret, payload: Mapping[str, Any]) -> str:
    body = _b64(json.dumps(dict(payload), sort_keys=True, separators=(",", ":")).encode())
    mac = hmac.new(key.reveal().encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify_token(key: Secret, token: str, now_s: float) -> dict[str, Any]:
    """The payload of a valid, unexpired token; raises CallbackError(403) otherwise."""
    body, _, mac = token.partition(".")
    try:
        expected = hmac.new(key.reveal().encode(), body.encode(), hashlib.sha256).digest()
        if not mac or not hmac.compare_digest(expected, _unb64(mac)):
            raise CallbackError(403, "invalid signature")
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError):
        raise CallbackError(403, "malformed token") from None
    if not isinstance(payload, dict) or float(payload.get("exp", 0)) < now_s:
        raise CallbackError(403, "expired link")
    if payload.get("a") not in ACK_ACTIONS or not isinstance(payload.get("i"), str):
        raise CallbackError(403, "malformed token")
    return payload


def action_url(
    config: CallbackConfig,
    incident_id: str,
    action: str,
    now_s: float,
    person: str | None = None,
    nonce: str = "",
) -> str | None:
    """A signed, expiring link for email / SMS; None when no public URL or signing key is set."""
    if config.public_base_url is None or config.signing_key is None:
        return None
    payload: dict[str, Any] = {
        "i": incident_id,
        "a": action,
        "exp": int(now_s + config.link_ttl_s),
        "n": nonce,
    }
    if person:
        payload["p"] = person
    return f"{config.public_base_url}{config.path_prefix}/action?" + urlencode(
        {"t": sign_token(config.signing_key, payload)}
    )


# ---- Slack / PagerDuty signatures ---------------------------------------------------------
def slack_signature(secret: Secret, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.reveal().encode(), base, hashlib.sha256).hexdigest()


def verify_slack(
    secrets: list[Secret], headers: Mapping[str, str], body: bytes, now_s: float, tolerance_s: float
) -> str:
    """Check Slack's v0 signature and timestamp; returns the signature (the replay-cache key)."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or not signature:
        raise CallbackError(401, "missing Slack signature")
    if abs(now_s - int(timestamp)) > tolerance_s:
        raise CallbackError(401, "stale Slack request")
    if not any(hmac.compare_digest(slack_signature(s, timestamp, body), signature) for s in secrets):
        raise CallbackError(401, "bad Slack signature")
    return signature


def pagerduty_signature(secret: Secret, body: bytes) -> str:
    return "v1=" + hmac.new(secret.reveal().encode(), body, hashlib.sha256).hexdigest()


def verify_pagerduty(secrets: list[Secret], headers: Mapping[str, str], body: bytes) -> None:
    """PagerDuty's documented check: keep the `v1=` signatures of the header, compare each with the hex
    HMAC-SHA256 of the raw body under every configured secret, in constant time; one match is enough."""
    offered = []
    for item in headers.get("x-pagerduty-signature", "").split(","):
        version, sep, value = item.strip().partition("=")
        if sep and version == "v1" and _HEX_SHA256.match(value):
            offered.append(value.lower())
    if not offered:
        raise CallbackError(401, "missing PagerDuty signature")
    for secret in secrets:
        expected = pagerduty_signature(secret, body)[3:]
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return
    raise CallbackError(401, "bad PagerDuty signature")


@dataclass(frozen=True, slots=True)
class PagerDutyWebhook:
    """The parts of a v3 webhook (`{"event": {...}}`) that matter here."""

    event_id: str
    event_type: str
    resource_type: str
    occurred_at_s: float | None
    agent_type: str | None
    agent_id: str | None
    agent_name: str | None
    data_type: str | None
    incident_key: str | None


def parse_pagerduty_webhook(body: bytes) -> PagerDutyWebhook:
    """Parse a v3 webhook body as PagerDuty documents it; CallbackError(400) when it is not one."""

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    try:
        event = json.loads(body)["event"]
        if not isinstance(event, dict):
            raise TypeError
        event_id, event_type = event["id"], event["event_type"]
        if not (isinstance(event_id, str) and event_id and isinstance(event_type, str)):
            raise TypeError
        agent: dict[str, Any] = event["agent"] if isinstance(event.get("agent"), dict) else {}
        data: dict[str, Any] = event["data"] if isinstance(event.get("data"), dict) else {}
    except (ValueError, KeyError, TypeError):
        raise CallbackError(400, "malformed PagerDuty webhook") from None
    occurred_at_s = None
    if text(event.get("occurred_at")):
        try:
            occurred_at_s = parse_time(event["occurred_at"])
        except ValueError:
            raise CallbackError(400, "malformed PagerDuty webhook") from None
    return PagerDutyWebhook(
        event_id=event_id,
        event_type=event_type,
        resource_type=text(event.get("resource_type")) or "",
        occurred_at_s=occurred_at_s,
        agent_type=text(agent.get("type")),
        agent_id=text(agent.get("id")),
        agent_name=text(agent.get("summary")),
        data_type=text(data.get("type")),
        incident_key=text(data.get("incident_key")),
    )


# ---- the handler --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallbackRequest:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    # lower-cased header names
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class CallbackResponse:
    status: int
    body: str = ""
    content_type: str = "text/plain"

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"{self.content_type}; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }


SubmitAck = Callable[[AckEvent], Awaitable[None] | None]


class _SeenCache:
    """Replay protection: keys remembered until their expiry (bounded).

    A key is added only after its action was handed on, so a request that failed half-way (the ack
    topic was down) can be retried and is not refused as a replay.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._seen: dict[str, float] = {}
        self._limit = limit

    def seen(self, key: str, now_s: float) -> bool:
        return self._seen.get(key, float("-inf")) > now_s

    def add(self, key: str, expires_s: float, now_s: float) -> None:
        if len(self._seen) > self._limit:
            self._seen = {k: v for k, v in self._seen.items() if v > now_s}
        self._seen[key] = expires_s


class CallbackHandler:
    def __init__(self, config: AlertingConfig, *, clock: Clock, submit_ack: SubmitAck) -> None:
        self.config = config
        self.clock = clock
        self.submit_ack = submit_ack
        self.prefix = config.callback.path_prefix
        self._seen = _SeenCache()
        self._slack_by_user = {p.slack_user_id: p.id for p in config.people if p.slack_user_id}
        self._pagerduty_by_user = {p.pagerduty_user_id: p.id for p in config.people if p.pagerduty_user_id}
        self._slack_secrets = [
            r.slack.signing_secret for r in config.receivers if r.slack and r.slack.signing_secret
        ]
        self._pd_secrets = [
            r.pagerduty.webhook_signing_secret
            for r in config.receivers
            if r.pagerduty and r.pagerduty.webhook_signing_secret
        ]

    async def handle(self, request: CallbackRequest) -> CallbackResponse:
        try:
            if len(request.body) > MAX_BODY_BYTES:
                raise CallbackError(413, "request too large")
            route = request.path[len(self.prefix) :] if request.path.startswith(self.prefix) else None
            if route == "/slack/actions" and request.method == "POST":
                return await self._slack(request)
            if route == "/action" and request.method in ("GET", "HEAD"):
                return self._confirm_page(request)
            if route == "/action" and request.method == "POST":
                return await self._email_action(request)
            if route == "/pagerduty" and request.method == "POST":
                return await self._pagerduty(request)
            if route == "/healthz" and request.method == "GET":
                return CallbackResponse(200, "ok")
            raise CallbackError(404, "not found")
        except CallbackError as error:
            return CallbackResponse(error.status, str(error))

    async def _emit(self, ack: AckEvent) -> None:
        result = self.submit_ack(ack)
        if inspect.isawaitable(result):
            await result

    async def _slack(self, request: CallbackRequest) -> CallbackResponse:
        if not self._slack_secrets:
            raise CallbackError(404, "Slack callbacks are not configured")
        now_s = self.clock.now()
        tolerance = self.config.callback.timestamp_tolerance_s
        signature = verify_slack(self._slack_secrets, request.headers, request.body, now_s, tolerance)
        if self._seen.seen("slack:" + signature, now_s):
            raise CallbackError(409, "replayed request")
        try:
            form = parse_qs(request.body.decode("utf-8"), strict_parsing=True)
            payload = json.loads(form["payload"][0])
            user = payload.get("user") or {}
            actions = payload.get("actions") or []
        except (ValueError, KeyError, IndexError, AttributeError):
            raise CallbackError(400, "malformed Slack payload") from None
        user_id = str(user.get("id", ""))
        by = self._slack_by_user.get(user_id) or f"slack:{user_id or 'unknown'}"
        acks = []
        for item in actions:
            action = SLACK_ACTION_IDS.get(str(item.get("action_id", "")))
            incident_id = str(item.get("value", ""))
            if action is None or not incident_id:
                continue
            try:
                acks.append(AckEvent(incident_id=incident_id, action=action, by=by, at_s=now_s, via="slack"))  # type: ignore[arg-type]
            except ValueError:
                raise CallbackError(400, "malformed incident id") from None
        if not acks:
            raise CallbackError(400, "no crisiswatch action in payload")
        for ack in acks:
            await self._emit(ack)
        self._seen.add("slack:" + signature, now_s + 2 * tolerance, now_s)
        return CallbackResponse(200, "")

    def _token(self, request: CallbackRequest, token: str | None) -> dict[str, Any]:
        key = self.config.callback.signing_key
        if key is None:
            raise CallbackError(404, "signed links are not configured")
        if not token:
            raise CallbackError(400, "missing token")
        return verify_token(key, token, self.clock.now())

    def _confirm_page(self, request: CallbackRequest) -> CallbackResponse:
        token = request.query.get("t")
        payload = self._token(request, token)
        label = {"acknowledge": "Acknowledge", "resolve": "Resolve", "false_alarm": "Mark as false alarm"}[
            payload["a"]
        ]
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>crisiswatch</title></head><body>"
            f"<p>Incident <code>{html.escape(payload['i'])}</code></p>"
            f"<form method='post' action='{html.escape(self.prefix)}/action'>"
            f"<input type='hidden' name='t' value='{html.escape(str(token))}'>"
            f"<button type='submit'>{html.escape(label)}</button></form></body></html>"
        )
        return CallbackResponse(200, page, "text/html")

    async def _email_action(self, request: CallbackRequest) -> CallbackResponse:
        try:
            form = parse_qs(request.body.decode("utf-8"))
        except ValueError:
            raise CallbackError(400, "malformed form") from None
        token = (form.get("t") or [request.query.get("t", "")])[0]
        payload = self._token(request, token)
        now_s = self.clock.now()
        if self._seen.seen("link:" + token[-43:], now_s):
            raise CallbackError(409, "this link was already used")
        by = str(payload.get("p") or "email")
        await self._emit(
            AckEvent(incident_id=payload["i"], action=payload["a"], by=by, at_s=now_s, via="email")
        )
        self._seen.add("link:" + token[-43:], float(payload["exp"]), now_s)
        return CallbackResponse(200, "<!doctype html><p>Done. Thank you.</p>", "text/html")

    async def _pagerduty(self, request: CallbackRequest) -> CallbackResponse:
        if not self._pd_secrets:
            raise CallbackError(404, "PagerDuty webhooks are not configured")
        verify_pagerduty(self._pd_secrets, request.headers, request.body)
        hook = parse_pagerduty_webhook(request.body)
        now_s = self.clock.now()
        if hook.occurred_at_s is not None and not (
            now_s - PAGERDUTY_EVENT_MAX_AGE_S <= hook.occurred_at_s <= now_s + _PD_CLOCK_SKEW_S
        ):
            raise CallbackError(409, "stale PagerDuty event")
        seen_key = "pd:" + hook.event_id
        if self._seen.seen(seen_key, now_s):
            return CallbackResponse(200, "duplicate")  # a delivery retry: acted on already
        action = _PD_ACTIONS.get(hook.event_type)
        ack: AckEvent | None = None
        reason = "ignored: event type"
        if action is not None and hook.data_type in (None, "incident"):
            reason = "ignored: not done by a person"  # e.g. our own acknowledge/resolve coming back
            if hook.agent_type == "user_reference":
                reason = "ignored: not a crisiswatch incident"
                by = self._pagerduty_by_user.get(hook.agent_id or "") or (
                    "pagerduty:" + (hook.agent_name or hook.agent_id or "unknown")[:200]
                )
                try:
                    ack = AckEvent(
                        incident_id=hook.incident_key or "",
                        action=action,  # type: ignore[arg-type]
                        by=by,
                        at_s=now_s,
                        via="pagerduty",
                    )
                except ValueError:
                    ack = None
        if ack is not None:
            await self._emit(ack)
            reason = "ok"
        self._seen.add(seen_key, now_s + 2 * PAGERDUTY_EVENT_MAX_AGE_S, now_s)
        return CallbackResponse(200, reason)

    async def aiohttp(self, request: Any) -> Any:
        """aiohttp adapter: `app.router.add_route("*", prefix + "/{tail:.*}", handler.aiohttp)`."""
        from aiohttp import web

        body = await request.content.read(MAX_BODY_BYTES + 1)
        response = await self.handle(
            CallbackRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )
        return web.Response(status=response.status, text=response.body, headers=response.headers)
