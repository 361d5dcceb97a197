"""PagerDuty Events API v2: trigger / acknowledge / resolve keyed by the incident id as `dedup_key`.

Bodies follow PagerDuty's "Send an Alert Event" (POST /v2/enqueue): `routing_key`, `event_action`,
`dedup_key` (at most 255 characters) on every event; a trigger adds `payload` with the required
`summary` (at most 1024 characters), `source` and `severity` (critical / error / warning / info) and
the optional `timestamp`, `component`, `group`, `class`, `custom_details`, plus `links` (`href`
required, http(s) only here) and `client`; acknowledge / resolve carry no payload. PagerDuty answers
202 `{"status": "success"}`; 400 is not retried, 429 and 5xx are (with Retry-After).

PagerDuty deduplicates by `dedup_key`, so retries and crash repeats are safe. An incident id longer
than 255 characters is cut and suffixed with a hash of the whole id (the same for every event of
the incident); acknowledgements from PagerDuty's webhook for such an incident cannot be mapped back
and are ignored. When PagerDuty owns
escalation (the receiver's `escalation_owner: pagerduty`) crisiswatch sends no reminders or
escalations to it: PagerDuty's own policy pages people, once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from crisiswatch.alerts import escaping as esc
from crisiswatch.alerts.config import PagerDutyConfig
from crisiswatch.alerts.receivers.base import DeliveryError, Notification, SendContext
from crisiswatch.alerts.receivers.http import HttpClient, json_or_empty
from crisiswatch.alerts.render import PAGERDUTY_SUMMARY_LIMIT, RenderOptions, page_content

DEDUP_KEY_LIMIT = 255
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")


def pagerduty_dedup_key(incident_id: str) -> str:
    """The incident id, or for an id over PagerDuty's 255 characters a stable shortened form."""
    if len(incident_id) <= DEDUP_KEY_LIMIT:
        return incident_id
    digest = hashlib.sha256(incident_id.encode()).hexdigest()[:16]
    return incident_id[: DEDUP_KEY_LIMIT - len(digest) - 1] + "#" + digest


def event_payload(
    notification: Notification, options: RenderOptions, routing_key: str
) -> dict[str, Any] | None:
    """The Events v2 body, or None when this notification means nothing to PagerDuty."""
    event = notification.event
    if notification.kind in ("reminder", "escalation"):
        return None
    if event.status == "resolved":
        action = "resolve"
    elif event.acknowledged_by:
        action = "acknowledge"
    else:
        action = "trigger"
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": pagerduty_dedup_key(event.incident_id),
    }
    if action != "trigger":
        return body
    page = page_content(event, options)
    details: dict[str, Any] = {
        "what": esc.plain(page.summary),
        "complaint": esc.plain(page.complaint_text),
        "complaint_url": page.complaint_url,
        "spread": esc.plain(page.spread),
        "amplified_by": esc.plain(page.amplifiers_line),
        "reaction": esc.plain(page.reaction),
        "sample_comments": [esc.plain(s) for s in page.samples],
        "since": page.since,
        "playbook": esc.plain(page.playbook),
        "incident_id": event.incident_id,
        "notification_id": notification.id,
    }
    body["payload"] = {
        "summary": esc.truncate(esc.one_line(page.title + " — " + page.summary), PAGERDUTY_SUMMARY_LIMIT),
        "source": f"crisiswatch/{esc.one_line(event.brand)}"[:255],
        "severity": event.severity if event.severity in PAGERDUTY_SEVERITIES else "error",
        "timestamp": event.detected_at,
        "component": esc.one_line(event.brand)[:255],
        "group": event.detector,
        "class": esc.one_line(event.labels.get("category", ""))[:255] or event.detector,
        "custom_details": details,
    }
    body["client"] = "crisiswatch"
    links = []
    if page.complaint_url:
        links.append({"href": page.complaint_url, "text": "Complaint"})
    if page.ack_url:
        links.append({"href": page.ack_url, "text": "Acknowledge in crisiswatch"})
    if links:
        body["links"] = links
    return body


class PagerDutyIntegration:
    kind = "pagerduty"
    idempotent = True

    def __init__(self, config: PagerDutyConfig) -> None:
        self.config = config
        self._http = HttpClient("pagerduty", config.timeout_s)

    async def close(self) -> None:
        await self._http.close()

    async def send(self, notification: Notification, context: SendContext) -> None:
        assert self.config.routing_key is not None
        payload = event_payload(notification, context.options, self.config.routing_key.reveal())
        if payload is None:
            return
        body = json.dumps(payload, ensure_ascii=False).encode()
        _, _, raw = await self._http.post(
            f"{self.config.api_base_url}/v2/enqueue", body, {"Content-Type": "application/json"}
        )
        data = json_or_empty(raw)
        if isinstance(data, dict) and data.get("status") not in (None, "success"):
            raise DeliveryError("rejected", "pagerduty: event not accepted", retryable=False)
