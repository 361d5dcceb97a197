"""Generic webhook: JSON body, `X-Crisiswatch-Event-Id` (the idempotency key: the notification id),
`X-Crisiswatch-Timestamp` and `X-Crisiswatch-Signature: v1=<hex HMAC-SHA256 of "{timestamp}.{body}">`.

Receivers should verify the signature, refuse timestamps older than 5 minutes, and drop an event id
they have seen: then retries and crash repeats never double-deliver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from crisiswatch.alerts import escaping as esc
from crisiswatch.alerts.clock import Clock
from crisiswatch.alerts.config import WebhookConfig
from crisiswatch.alerts.receivers.base import Notification, SendContext
from crisiswatch.alerts.receivers.http import HttpClient
from crisiswatch.alerts.render import RenderOptions, render_text

WEBHOOK_VERSION = 1


def webhook_body(notification: Notification, options: RenderOptions) -> dict[str, Any]:
    return {
        "version": WEBHOOK_VERSION,
        "notification_id": notification.id,
        "kind": notification.kind,
        "receiver": notification.receiver,
        "thread_key": notification.thread_key,
        "incident": notification.event.to_dict(),
        "others": [e.to_dict() for e in notification.others],
        "recipients": [r.to_dict() for r in notification.recipients],
        # Plain text: consumers must still treat it as untrusted when they render it.
        "text": render_text(notification.event, options),
        "ack_url": esc.url_or_empty(options.ack_url) or None,
    }


def webhook_signature(key: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookIntegration:
    kind = "webhook"
    idempotent = True

    def __init__(self, config: WebhookConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._http = HttpClient("webhook", config.timeout_s)

    async def close(self) -> None:
        await self._http.close()

    async def send(self, notification: Notification, context: SendContext) -> None:
        assert self.config.url is not None
        body = json.dumps(
            webhook_body(notification, context.options), ensure_ascii=False, sort_keys=True
        ).encode()
        timestamp = str(int(self.clock.now()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "crisiswatch-webhook/1",
            "X-Crisiswatch-Event-Id": notification.id,
            "X-Crisiswatch-Timestamp": timestamp,
        }
        if self.config.signing_key is not None:
            headers["X-Crisiswatch-Signature"] = webhook_signature(
                self.config.signing_key.reveal(), timestamp, body
            )
        await self._http.post(self.config.url.reveal(), body, headers)
