"""PagerDuty Events API v2: trigger / acknowledge / resolve keyed by the incident id as `dedup_key`.

PagerDuty deduplicates by `dedup_key`, so retries and crash repeats are safe. When PagerDuty owns
escalation (the receiver's `escalation_owner: pagerduty`) crisiswatch sends no reminders or
escalations to it: PagerDuty's own policy pages people, once.
"""

from __future__ import annotations

import json
from typing import Any

from crisiswatch.alerts import escaping as esc
from crisiswatch.alerts.config import PagerDutyConfig
from crisiswatch.alerts.receivers.base import DeliveryError, Notification, SendContext
from crisiswatch.alerts.receivers.http import HttpClient, json_or_empty
from crisiswatch.alerts.render import PAGERDUTY_SUMMARY_LIMIT, RenderOptions, page_content

DEDUP_KEY_LIMIT = 255


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
        "dedup_key": event.incident_id[:DEDUP_KEY_LIMIT],
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
        "severity": event.severity if event.severity in ("critical", "warning", "info") else "error",
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
