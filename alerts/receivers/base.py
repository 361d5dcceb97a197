"""What every receiver integration shares: the notification it sends and the error it raises.

An integration turns one `Notification` into one delivery. It raises `DeliveryError` with a bounded
`reason` (a metric label), a `retryable` flag and, for 429/503, the server's Retry-After: as a delay
(`retry_after_s`) or, for an HTTP-date the response did not date, as an absolute time (`retry_at_s`)
that the notifier turns into a delay with its injected clock.
Integrations with an idempotency key (PagerDuty dedup_key, webhook event id, email Message-ID, Slack
message ts) make retries safe; the others may deliver one duplicate per crash (documented per class).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from crisiswatch.alerts.incidents import IncidentEvent
from crisiswatch.alerts.render import RenderOptions

NotificationKind = Literal["page", "update", "reminder", "resolved", "escalation"]
NOTIFICATION_KINDS: tuple[str, ...] = ("page", "update", "reminder", "resolved", "escalation")
# Bounded reasons (metric label values).
REASONS: tuple[str, ...] = (
    "connection",
    "timeout",
    "http_4xx",
    "http_5xx",
    "rate_limited",
    "rejected",
    "smtp",
    "config",
    "budget_exhausted",
    "io",
    "other",
)


class DeliveryError(Exception):
    """A failed delivery: `reason` is one of REASONS; the message never contains secrets."""

    def __init__(
        self,
        reason: str,
        message: str,
        retryable: bool,
        retry_after_s: float | None = None,
        retry_at_s: float | None = None,
    ) -> None:
        self.reason = reason if reason in REASONS else "other"
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.retry_at_s = retry_at_s
        super().__init__(message)

    def wait_s(self, now_s: float) -> float | None:
        """How long the server asked us to wait, seen from `now_s`; None when it did not ask."""
        if self.retry_after_s is not None:
            return self.retry_after_s
        if self.retry_at_s is not None:
            return self.retry_at_s - now_s
        return None


@dataclass(frozen=True, slots=True)
class Recipient:
    """A person paged by this notification (from the on-call schedule / escalation policy)."""

    id: str
    name: str = ""
    email: str | None = None
    slack_user_id: str | None = None
    phone: str | None = None
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "slack_user_id": self.slack_user_id,
            "phone": self.phone,
            "step": self.step,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipient:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one receiver about one group (usually one incident).

    `thread_key` ties all notifications of an incident together (Slack thread, email References,
    PagerDuty dedup_key). `supersedes` is the merge key: a newer notification with the same key
    replaces an undelivered older one, so a recovered receiver gets the latest state, not a backlog.
    """

    id: str
    receiver: str
    kind: NotificationKind
    group_key: str
    thread_key: str
    event: IncidentEvent
    others: tuple[IncidentEvent, ...] = ()
    recipients: tuple[Recipient, ...] = ()
    created_at_s: float = 0.0
    # A reminder (repeat_interval) counts how many were sent: part of the id.
    sequence: int = 0

    @property
    def supersedes(self) -> str:
        # Pages and escalations to new people are never merged away; updates/reminders/resolves are.
        if self.kind in ("page", "escalation"):
            return self.id
        return f"{self.receiver}|{self.thread_key}|state"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "receiver": self.receiver,
            "kind": self.kind,
            "group_key": self.group_key,
            "thread_key": self.thread_key,
            "event": self.event.to_dict(),
            "others": [e.to_dict() for e in self.others],
            "recipients": [r.to_dict() for r in self.recipients],
            "created_at_s": self.created_at_s,
            "sequence": self.sequence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        return cls(
            id=str(data["id"]),
            receiver=str(data["receiver"]),
            kind=data["kind"],
            group_key=str(data["group_key"]),
            thread_key=str(data["thread_key"]),
            event=IncidentEvent.from_dict(data["event"]),
            others=tuple(IncidentEvent.from_dict(e) for e in data.get("others", [])),
            recipients=tuple(Recipient.from_dict(r) for r in data.get("recipients", [])),
            created_at_s=float(data.get("created_at_s", 0.0)),
            sequence=int(data.get("sequence", 0)),
        )

    def with_id(self) -> Notification:
        return replace(self, id=notification_id(self))


def notification_id(n: Notification) -> str:
    """Deterministic: the same decision in replay and in the worker gives the same id."""
    people = ",".join(r.id for r in n.recipients)
    raw = f"{n.receiver}|{n.kind}|{n.thread_key}|{n.event.id}|{n.sequence}|{people}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(slots=True)
class SendContext:
    """Per-send inputs: render options and the receiver's durable thread state.

    `thread_state` is the JSON-able dict the notifier persists per (receiver, thread_key), e.g. the
    Slack message ts; an integration stores what it needs before returning, so a crash after send
    cannot lose it.
    """

    options: RenderOptions
    thread_state: MutableMapping[str, Any] = field(default_factory=dict)


class Integration(Protocol):
    """One channel of a receiver (console, jsonl, slack, email, pagerduty, webhook)."""

    kind: str
    # True when the remote end deduplicates by a key we send (retries cannot double-deliver).
    idempotent: bool

    async def send(self, notification: Notification, context: SendContext) -> None: ...


def dumps(data: Any) -> str:
    """The one JSON codec of alerts/: UTF-8 kept, stable key order."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))
