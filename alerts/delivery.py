"""Delivery: the outbox after dispatch — dedup -> retry (backoff, jitter, Retry-After) -> send.

`Notifier.submit(notification)` queues one job per integration of the receiver. `await
deliver_due()` sends what is due at `clock.now()`; `await run(stop)` loops on it; `deliver_sync()`
is the replay/demo path for console/JSONL. Per thread (incident), jobs go out in submission order;
a newer update/reminder/resolve *replaces* an undelivered older one (`Notification.supersedes`), so a
receiver that comes back gets the latest state, not a backlog. Pages and escalations are never merged.

Exactly-once where the receiver has an idempotency key: the job's notification id (PagerDuty
dedup_key + the id in the payload, webhook `X-Crisiswatch-Event-Id`, email Message-ID, Slack message
ts kept in thread state before updates). Without a key (console, JSONL, Slack webhooks, the first
Slack post) a crash between "sent" and "recorded" may repeat one notification: at most one duplicate
per crash. After the retry budget the job goes to the dead-letter log (JSONL) with its reason and
`crisiswatch notifications resend` puts it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crisiswatch.alerts.clock import Clock, iso_z
from crisiswatch.alerts.config import DeliveryConfig
from crisiswatch.alerts.metrics import AlertMetrics
from crisiswatch.alerts.receivers.base import DeliveryError, Integration, Notification, SendContext, dumps
from crisiswatch.alerts.render import RenderOptions

log = logging.getLogger("crisiswatch.alerts.delivery")
_STATE_VERSION = 1
SENT_IDS_KEPT = 20_000


@dataclass(slots=True)
class Job:
    seq: int
    receiver: str
    kind: str  # integration kind
    notification: Notification
    first_attempt_s: float
    next_attempt_s: float
    attempts: int = 0
    last_reason: str | None = None
    last_error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.notification.supersedes}"

    @property
    def thread(self) -> str:
        return f"{self.receiver}|{self.kind}|{self.notification.thread_key}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "receiver": self.receiver,
            "kind": self.kind,
            "notification": self.notification.to_dict(),
            "first_attempt_s": self.first_attempt_s,
            "next_attempt_s": self.next_attempt_s,
            "attempts": self.attempts,
            "last_reason": self.last_reason,
            "last_error": self.last_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        return cls(
            seq=int(data["seq"]),
            receiver=str(data["receiver"]),
            kind=str(data["kind"]),
            notification=Notification.from_dict(data["notification"]),
            first_attempt_s=float(data["first_attempt_s"]),
            next_attempt_s=float(data["next_attempt_s"]),
            attempts=int(data.get("attempts", 0)),
            last_reason=data.get("last_reason"),
            last_error=data.get("last_error"),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did: "sent" | "retry" | "dead" | "duplicate"."""

    job_key: str
    receiver: str
    integration: str
    notification_id: str
    result: str
    reason: str | None = None
    next_attempt_s: float | None = None


class DeadLetterLog:
    """JSONL of notifications given up on; `take()` removes entries for resend (atomic rewrite)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def append(self, record: Mapping[str, Any]) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(dumps(dict(record)) + "\n")

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()]
        except FileNotFoundError:
            return []

    def rewrite(self, records: Iterable[Mapping[str, Any]]) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".dead-letters.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(dumps(dict(record)) + "\n")
        os.replace(tmp, self.path)


OptionsFor = Callable[[Notification], RenderOptions]


class Notifier:
    def __init__(
        self,
        integrations: Mapping[str, Sequence[Integration]],
        *,
        clock: Clock,
        config: DeliveryConfig | None = None,
        metrics: AlertMetrics | None = None,
        options_for: OptionsFor | None = None,
        dead_letters: DeadLetterLog | None = None,
        seed: int = 0,
    ) -> None:
        self.integrations = {name: list(items) for name, items in integrations.items()}
        self.clock = clock
        self.config = config or DeliveryConfig()
        self.metrics = metrics or AlertMetrics()
        self.options_for: OptionsFor = options_for or (lambda _n: RenderOptions())
        self.dead_letters = dead_letters or DeadLetterLog(self.config.dead_letter_path)
        self._rng = random.Random(seed)
        self._jobs: dict[str, Job] = {}
        self._seq = 0
        self._sent: dict[str, float] = {}  # f"{kind}|{notification id}" -> sent at
        self._threads: dict[str, dict[str, Any]] = {}  # thread -> integration state (e.g. Slack ts)
        self._wake = asyncio.Event() if _loop_running() else None

    # ---- queue ---------------------------------------------------------------------------
    def submit(self, notification: Notification) -> list[str]:
        """Queue a notification for each integration of its receiver; returns the job keys."""
        now_s = self.clock.now()
        keys = []
        for integration in self.integrations.get(notification.receiver, []):
            job = Job(
                seq=self._next_seq(),
                receiver=notification.receiver,
                kind=integration.kind,
                notification=notification,
                first_attempt_s=now_s,
                next_attempt_s=now_s,
            )
            if f"{job.kind}|{notification.id}" in self._sent:
                continue
            existing = self._jobs.get(job.key)
            if existing is not None:
                # Merge: keep the older job's place, budget and backoff; send the newer content.
                existing.notification = notification
                keys.append(existing.key)
                continue
            self._jobs[job.key] = job
            keys.append(job.key)
        self.metrics.pending.set(len(self._jobs))
        if self._wake is not None:
            self._wake.set()
        return keys

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def pending(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.seq)

    def next_due_s(self) -> float | None:
        due = [j.next_attempt_s for j in self._runnable()]
        return min(due) if due else None

    def _runnable(self) -> list[Job]:
        """Per thread, only the oldest job may go (order is kept); jobs are sorted by seq."""
        seen: set[str] = set()
        out = []
        for job in self.pending():
            if job.thread in seen:
                continue
            seen.add(job.thread)
            out.append(job)
        return out

    # ---- sending -------------------------------------------------------------------------
    async def deliver_due(self) -> list[Outcome]:
        now_s = self.clock.now()
        due = [j for j in self._runnable() if j.next_attempt_s <= now_s]
        if not due:
            return []
        results = await asyncio.gather(*(self._attempt(job) for job in due))
        self.metrics.pending.set(len(self._jobs))
        return list(results)

    def deliver_sync(self) -> list[Outcome]:
        """Replay / demo: deliver due jobs of synchronous integrations (console, JSONL) in order."""
        out: list[Outcome] = []
        progress = True
        while progress:
            progress = False
            now_s = self.clock.now()
            for job in [j for j in self._runnable() if j.next_attempt_s <= now_s]:
                integration = self._integration(job)
                send_sync = getattr(integration, "send_sync", None)
                if send_sync is None:
                    raise TypeError(f"integration {job.kind} of {job.receiver} has no synchronous path")
                try:
                    send_sync(job.notification, self._context(job))
                except DeliveryError as error:
                    out.append(self._failed(job, error))
                    continue
                out.append(self._succeeded(job))
                progress = True
        self.metrics.pending.set(len(self._jobs))
        return out

    async def run(self, stop: asyncio.Event, idle_s: float = 1.0) -> None:
        """The worker's delivery loop: wakes on submit or at the next due time (real asyncio sleep)."""
        self._wake = asyncio.Event()
        while not stop.is_set():
            await self.deliver_due()
            due = self.next_due_s()
            delay = idle_s if due is None else max(0.0, min(idle_s, due - self.clock.now()))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def aclose(self) -> None:
        """Close the integrations' HTTP sessions (call on worker shutdown)."""
        for items in self.integrations.values():
            for integration in items:
                close = getattr(integration, "close", None)
                if close is not None:
                    await close()

    def _integration(self, job: Job) -> Integration:
        for integration in self.integrations.get(job.receiver, []):
            if integration.kind == job.kind:
                return integration
        raise DeliveryError(
            "config", f"receiver {job.receiver} has no {job.kind} integration", retryable=False
        )

    def _context(self, job: Job) -> SendContext:
        thread = self._threads.setdefault(job.thread, {})
        return SendContext(options=self.options_for(job.notification), thread_state=thread)

    async def _attempt(self, job: Job) -> Outcome:
        try:
            integration = self._integration(job)
            await asyncio.wait_for(
                integration.send(job.notification, self._context(job)),
                timeout=self.config.timeout_s + 5.0,
            )
        except DeliveryError as error:
            return self._failed(job, error)
        except TimeoutError:
            return self._failed(job, DeliveryError("timeout", "delivery timed out", retryable=True))
        except Exception as error:  # a bug in an integration must not kill the loop; keep it retryable
            log.exception("integration %s of %s raised", job.kind, job.receiver)
            return self._failed(job, DeliveryError("other", f"{type(error).__name__}", retryable=True))
        return self._succeeded(job)

    def _succeeded(self, job: Job) -> Outcome:
        now_s = self.clock.now()
        self._jobs.pop(job.key, None)
        self._sent[f"{job.kind}|{job.notification.id}"] = now_s
        if len(self._sent) > SENT_IDS_KEPT:
            for key in sorted(self._sent, key=self._sent.__getitem__)[: len(self._sent) - SENT_IDS_KEPT]:
                del self._sent[key]
        self.metrics.sent.labels(receiver=job.receiver).inc()
        if job.notification.kind in (
            "page",
            "update",
            "resolved",
        ):  # reminders and escalations are late on purpose
            self.metrics.latency.observe(max(0.0, now_s - job.notification.event.detected_at_s))
        if job.notification.kind == "resolved" and not any(
            j.thread == job.thread for j in self._jobs.values()
        ):
            self._threads.pop(job.thread, None)  # the thread is over; keeps memory bounded
        return Outcome(job.key, job.receiver, job.kind, job.notification.id, "sent")

    def _failed(self, job: Job, error: DeliveryError) -> Outcome:
        now_s = self.clock.now()
        job.attempts += 1
        job.last_reason = error.reason
        job.last_error = str(error)
        self.metrics.failed.labels(receiver=job.receiver, reason=error.reason).inc()
        if not error.retryable:
            return self._dead(job, error.reason)
        delay = self.backoff_s(job.attempts)
        asked_s = error.wait_s(now_s)
        # A server's Retry-After wins over our backoff; one of 0 or in the past would make a hot loop, so
        # the backoff stays then. A huge one is capped (a misbehaving server cannot park us for days).
        if asked_s is not None and asked_s > 0:
            delay = min(asked_s, self.config.max_retry_after_s)
        if now_s + delay - job.first_attempt_s > self.config.budget_s:
            return self._dead(job, "budget_exhausted")
        job.next_attempt_s = now_s + delay
        self.metrics.retried.labels(receiver=job.receiver).inc()
        log.warning(
            "delivery to %s/%s failed (%s), retry %d in %.1fs",
            job.receiver,
            job.kind,
            error.reason,
            job.attempts,
            delay,
        )
        return Outcome(
            job.key, job.receiver, job.kind, job.notification.id, "retry", error.reason, job.next_attempt_s
        )

    def backoff_s(self, attempts: int) -> float:
        config = self.config
        base = min(config.max_backoff_s, config.initial_backoff_s * config.multiplier ** max(0, attempts - 1))
        return max(0.0, base * (1.0 + self._rng.uniform(-config.jitter, config.jitter)))

    def _dead(self, job: Job, reason: str) -> Outcome:
        now_s = self.clock.now()
        self._jobs.pop(job.key, None)
        self.metrics.dead_lettered.labels(receiver=job.receiver, reason=reason).inc()
        self.dead_letters.append(
            {
                "at": iso_z(now_s),
                "at_s": now_s,
                "receiver": job.receiver,
                "integration": job.kind,
                "reason": reason,
                "last_reason": job.last_reason,
                "error": job.last_error,
                "attempts": job.attempts,
                "notification": job.notification.to_dict(),
            }
        )
        log.error("gave up on %s/%s after %d attempts: %s", job.receiver, job.kind, job.attempts, reason)
        return Outcome(job.key, job.receiver, job.kind, job.notification.id, "dead", reason)

    # ---- resend --------------------------------------------------------------------------
    def resend_dead_letters(self, select: Callable[[Mapping[str, Any]], bool]) -> list[str]:
        """Move selected dead letters back into the queue with a fresh budget; returns their ids."""
        kept: list[Mapping[str, Any]] = []
        ids: list[str] = []
        for record in self.dead_letters.read():
            if select(record):
                notification = Notification.from_dict(record["notification"])
                now_s = self.clock.now()
                job = Job(
                    self._next_seq(), record["receiver"], record["integration"], notification, now_s, now_s
                )
                self._sent.pop(f"{job.kind}|{notification.id}", None)
                self._jobs[job.key] = job
                ids.append(notification.id)
            else:
                kept.append(record)
        self.dead_letters.rewrite(kept)
        self.metrics.pending.set(len(self._jobs))
        return ids

    # ---- state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Pending jobs, recently sent ids and per-thread integration state (Slack ts): persist it."""
        return {
            "v": _STATE_VERSION,
            "seq": self._seq,
            "jobs": [j.to_dict() for j in self.pending()],
            "sent": dict(self._sent),
            "threads": json.loads(json.dumps(self._threads)),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._seq = int(state.get("seq", 0))
        self._jobs = {}
        for raw in state.get("jobs", []):
            job = Job.from_dict(raw)
            self._jobs[job.key] = job
        self._sent = {str(k): float(v) for k, v in state.get("sent", {}).items()}
        self._threads = {str(k): dict(v) for k, v in state.get("threads", {}).items()}
        self.metrics.pending.set(len(self._jobs))

    def thread_state(self, receiver: str, kind: str, thread_key: str) -> dict[str, Any]:
        return self._threads.setdefault(f"{receiver}|{kind}|{thread_key}", {})


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass
class DeliveryReport:
    """Counts for benchmarks and the demo."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, outcomes: Iterable[Outcome]) -> DeliveryReport:
        for outcome in outcomes:
            if outcome.result == "sent":
                self.sent += 1
            elif outcome.result == "retry":
                self.retried += 1
            elif outcome.result == "dead":
                self.dead += 1
            if outcome.reason:
                self.reasons[outcome.reason] = self.reasons.get(outcome.reason, 0) + 1
        return self
