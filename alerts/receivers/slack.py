"""Slack: Block Kit pages via an incoming webhook, or a bot token with one thread per incident.

Bot mode: the first notification of a thread is `chat.postMessage`; its `ts` is stored in the thread
state at once, and every later notification first `chat.update`s that message to the latest state
(idempotent) and then posts a short reply in the thread (reminders, escalations, updates, resolve) —
repeats are reminders in the thread, not new pages. Reply ids are recorded in the thread state, so a
retry does not repeat a reply that Slack accepted. The first post has no idempotency key: a crash
between Slack's answer and storing `ts` may post it twice (at most one duplicate per crash).

Webhook mode cannot update or thread: every notification is a new message (same at-most-one-
duplicate-per-crash rule).
"""

from __future__ import annotations

import json
from typing import Any

from crisiswatch.alerts import escaping as esc
from crisiswatch.alerts.config import SlackConfig
from crisiswatch.alerts.receivers.base import DeliveryError, Notification, SendContext
from crisiswatch.alerts.receivers.http import HttpClient, json_or_empty
from crisiswatch.alerts.render import (
    SLACK_BUTTON_VALUE_LIMIT,
    SLACK_FALLBACK_LIMIT,
    SLACK_HEADER_LIMIT,
    SLACK_SECTION_LIMIT,
    RenderOptions,
    page_content,
)

MAX_BLOCKS = 50
FIELD_LIMIT = 2000
CONTEXT_LIMIT = 2000
_RETRYABLE_SLACK_ERRORS = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}
_KIND_WORDS = {
    "en": {
        "reminder": "Reminder: still open and not acknowledged",
        "escalation": "Escalating: not acknowledged yet",
        "update": "Update",
        "resolved": "Resolved",
        "page": "New incident",
    },
    "zh": {
        "reminder": "提醒：事件仍未确认",
        "escalation": "升级：尚无人确认",
        "update": "更新",
        "resolved": "已恢复",
        "page": "新事件",
    },
}


def _mentions(notification: Notification) -> str:
    # Slack user ids come from our config (validated alphanumeric), never from post text.
    return " ".join(f"<@{r.slack_user_id}>" for r in notification.recipients if r.slack_user_id)


def render_blocks(notification: Notification, options: RenderOptions) -> dict[str, Any]:
    """`{"text": fallback, "blocks": [...]}` within Block Kit limits; all post text escaped."""
    event = notification.event
    page = page_content(event, options)
    lang = page.lang
    labels = {
        "en": (
            "Complaint",
            "Spread",
            "Reaction",
            "Severity",
            "Since",
            "Amplified by",
            "Playbook",
            "Acknowledge",
            "Resolve",
            "False alarm",
        ),
        "zh": (
            "投诉原文",
            "传播",
            "舆论",
            "级别",
            "开始于",
            "主要转发者",
            "应对预案",
            "确认",
            "关闭",
            "误报",
        ),
    }[lang]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": esc.slack_plain(page.title, SLACK_HEADER_LIMIT),
                "emoji": False,
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": esc.slack_mrkdwn(page.summary, SLACK_SECTION_LIMIT),
                "verbatim": True,
            },
        },
    ]
    mentions = _mentions(notification)
    if mentions and event.status != "resolved":
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mentions[:SLACK_SECTION_LIMIT]}})
    if page.complaint_text or page.complaint_url:
        quote = esc.slack_mrkdwn(page.complaint_text, SLACK_SECTION_LIMIT - 400)
        link = esc.slack_link(page.complaint_url, page.complaint_url) if page.complaint_url else ""
        text = f"*{labels[0]}*\n>{quote.replace(chr(10), chr(10) + '>')}" + (f"\n{link}" if link else "")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}})
    fields = []
    for title, value in (
        (labels[1], page.spread),
        (labels[2], page.reaction),
        (labels[3], f"{page.severity_word} · {page.status}"),
        (labels[4], page.since),
    ):
        if value:
            fields.append(
                {
                    "type": "mrkdwn",
                    "text": f"*{title}*\n" + esc.slack_mrkdwn(value, FIELD_LIMIT - 50),
                    "verbatim": True,
                }
            )
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})
    if page.amplifiers_line:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"*{labels[5]}:* "
                        + esc.slack_mrkdwn(page.amplifiers_line, CONTEXT_LIMIT - 50),
                        "verbatim": True,
                    }
                ],
            }
        )
    if page.samples:
        quoted = "\n".join(">" + esc.slack_mrkdwn(s, 600) for s in page.samples)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": quoted[:SLACK_SECTION_LIMIT], "verbatim": True},
            }
        )
    if page.playbook:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{labels[6]}*\n" + esc.slack_mrkdwn(page.playbook, SLACK_SECTION_LIMIT - 100),
                    "verbatim": True,
                },
            }
        )
    if page.acknowledged:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": esc.slack_mrkdwn(page.acknowledged, CONTEXT_LIMIT),
                        "verbatim": True,
                    }
                ],
            }
        )
    for other in notification.others[:20]:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "+ " + esc.slack_mrkdwn(other.summary, 500), "verbatim": True}
                ],
            }
        )
    if event.status != "resolved":
        value = event.incident_id[:SLACK_BUTTON_VALUE_LIMIT]
        buttons: list[dict[str, Any]] = []
        if not event.acknowledged_by:
            buttons.append(
                {
                    "type": "button",
                    "action_id": "cw_ack",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": labels[7]},
                    "value": value,
                }
            )
        buttons.append(
            {
                "type": "button",
                "action_id": "cw_resolve",
                "text": {"type": "plain_text", "text": labels[8]},
                "value": value,
            }
        )
        buttons.append(
            {
                "type": "button",
                "action_id": "cw_false_alarm",
                "style": "danger",
                "text": {"type": "plain_text", "text": labels[9]},
                "value": value,
            }
        )
        blocks.append({"type": "actions", "block_id": "cw_actions", "elements": buttons})
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "plain_text", "text": esc.slack_plain(event.incident_id, 200)}],
        }
    )
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 2] + blocks[-2:]
    fallback = esc.slack_mrkdwn(page.title + " — " + page.summary, SLACK_FALLBACK_LIMIT)
    return {"text": fallback, "blocks": blocks}


def render_reply(notification: Notification, options: RenderOptions) -> str:
    """The short threaded reply for updates, reminders, escalations and resolves (mrkdwn)."""
    page = page_content(notification.event, options)
    word = _KIND_WORDS[page.lang].get(notification.kind, notification.kind)
    mentions = _mentions(notification)
    text = f"*{esc.slack_mrkdwn(word)}* — " + esc.slack_mrkdwn(page.summary, SLACK_SECTION_LIMIT - 300)
    if page.acknowledged and notification.kind == "update":
        text += "\n" + esc.slack_mrkdwn(page.acknowledged, 300)
    return f"{mentions} {text}".strip() if mentions and notification.kind != "resolved" else text


class SlackIntegration:
    kind = "slack"

    def __init__(self, config: SlackConfig) -> None:
        self.config = config
        self.idempotent = config.bot_token is not None
        self._http = HttpClient("slack", config.timeout_s)

    async def close(self) -> None:
        await self._http.close()

    async def send(self, notification: Notification, context: SendContext) -> None:
        if self.config.webhook_url is not None:
            await self._webhook(notification, context)
        else:
            await self._bot(notification, context)

    async def _webhook(self, notification: Notification, context: SendContext) -> None:
        assert self.config.webhook_url is not None
        message = render_blocks(notification, context.options)
        body = json.dumps(message, ensure_ascii=False).encode()
        await self._http.post(
            self.config.webhook_url.reveal(), body, {"Content-Type": "application/json; charset=utf-8"}
        )

    async def _api(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.config.bot_token is not None
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": "Bearer " + self.config.bot_token.reveal(),
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        _, _, raw = await self._http.post(f"{self.config.api_base_url}/{method}", body, headers)
        data = json_or_empty(raw)
        if not isinstance(data, dict) or not data.get("ok"):
            error = str(data.get("error", "unknown")) if isinstance(data, dict) else "unknown"
            error = error if error.replace("_", "").isalnum() else "unknown"
            raise DeliveryError(
                "rate_limited" if error == "ratelimited" else "rejected",
                f"slack {method}: {error}",
                retryable=error in _RETRYABLE_SLACK_ERRORS,
            )
        return data

    async def _bot(self, notification: Notification, context: SendContext) -> None:
        state = context.thread_state
        message = render_blocks(notification, context.options)
        if not state.get("ts"):
            data = await self._api(
                "chat.postMessage", {"channel": self.config.channel, **message, "unfurl_links": False}
            )
            # Stored before anything else: later notifications update this message.
            state["ts"] = str(data.get("ts", ""))
            state["channel"] = str(data.get("channel") or self.config.channel)
            state.setdefault("replies", [])
            if notification.kind == "page":
                return
        await self._api("chat.update", {"channel": state["channel"], "ts": state["ts"], **message})
        replies: list[str] = state.setdefault("replies", [])
        if notification.id in replies:
            return
        await self._api(
            "chat.postMessage",
            {
                "channel": state["channel"],
                "thread_ts": state["ts"],
                "text": render_reply(notification, context.options),
                "unfurl_links": False,
            },
        )
        replies.append(notification.id)
        del replies[:-200]
