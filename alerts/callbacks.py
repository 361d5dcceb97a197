"""Acknowledgements coming back: Slack buttons, signed email links, PagerDuty webhooks.

Everything that arrives is untrusted. Slack requests carry `X-Slack-Signature` (v0, HMAC-SHA256 of
`v0:{timestamp}:{body}` with the app's signing secret) and a timestamp that must be within 5 minutes;
a signature seen before is refused (replay). Email links carry a token signed with
`callback.signing_key` that names the incident, the action and an expiry; opening the link (GET)
only shows a confirmation form — mail scanners prefetch links — and the POST performs the action
once. PagerDuty v3 webhooks carry `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>`.

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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from crisiswatch.alerts.clock import Clock
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
    offered = [s.strip() for s in headers.get("x-pagerduty-signature", "").split(",") if s.strip()]
    for secret in secrets:
        expected = pagerduty_signature(secret, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return
    raise CallbackError(401, "bad PagerDuty signature")


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
    """Replay protection: keys remembered until their expiry (bounded)."""

    def __init__(self, limit: int = 50_000) -> None:
        self._seen: dict[str, float] = {}
        self._limit = limit

    def check_and_add(self, key: str, expires_s: float, now_s: float) -> bool:
        if len(self._seen) > self._limit:
            self._seen = {k: v for k, v in self._seen.items() if v > now_s}
        if key in self._seen and self._seen[key] > now_s:
            return False
        self._seen[key] = expires_s
        return True


class CallbackHandler:
    def __init__(self, config: AlertingConfig, *, clock: Clock, submit_ack: SubmitAck) -> None:
        self.config = config
        self.clock = clock
        self.submit_ack = submit_ack
        self.prefix = config.callback.path_prefix
        self._seen = _SeenCache()
        self._slack_by_user = {p.slack_user_id: p.id for p in config.people if p.slack_user_id}
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
        if not self._seen.check_and_add("slack:" + signature, now_s + 2 * tolerance, now_s):
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
        count = 0
        for item in actions:
            action = SLACK_ACTION_IDS.get(str(item.get("action_id", "")))
            incident_id = str(item.get("value", ""))
            if action is None or not incident_id:
                continue
            try:
                ack = AckEvent(incident_id=incident_id, action=action, by=by, at_s=now_s, via="slack")  # type: ignore[arg-type]
            except ValueError:
                raise CallbackError(400, "malformed incident id") from None
            await self._emit(ack)
            count += 1
        if count == 0:
            raise CallbackError(400, "no crisiswatch action in payload")
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
        if not self._seen.check_and_add("link:" + token[-43:], float(payload["exp"]), now_s):
            raise CallbackError(409, "this link was already used")
        by = str(payload.get("p") or "email")
        await self._emit(
            AckEvent(incident_id=payload["i"], action=payload["a"], by=by, at_s=now_s, via="email")
        )
        return CallbackResponse(200, "<!doctype html><p>Done. Thank you.</p>", "text/html")

    async def _pagerduty(self, request: CallbackRequest) -> CallbackResponse:
        if not self._pd_secrets:
            raise CallbackError(404, "PagerDuty webhooks are not configured")
        verify_pagerduty(self._pd_secrets, request.headers, request.body)
        try:
            data = json.loads(request.body)
            event = data["event"]
            event_type = str(event["event_type"])
            event_id = str(event.get("id", ""))
            incident = event.get("data") or {}
            agent = (event.get("agent") or {}).get("summary") or "pagerduty"
        except (ValueError, KeyError, TypeError):
            raise CallbackError(400, "malformed PagerDuty webhook") from None
        now_s = self.clock.now()
        if event_id and not self._seen.check_and_add("pd:" + event_id, now_s + 86400.0, now_s):
            raise CallbackError(409, "replayed webhook")
        action = _PD_ACTIONS.get(event_type)
        # The incident key we sent as dedup_key comes back as the alert/incident key.
        incident_id = str(incident.get("incident_key") or incident.get("dedup_key") or "")
        if action is None or not incident_id:
            return CallbackResponse(200, "ignored")
        try:
            ack = AckEvent(
                incident_id=incident_id, action=action, by=f"pagerduty:{agent}", at_s=now_s, via="pagerduty"
            )  # type: ignore[arg-type]
        except ValueError:
            return CallbackResponse(200, "ignored")
        await self._emit(ack)
        return CallbackResponse(200, "ok")

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
