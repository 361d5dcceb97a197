"""From incident events to notifications: route -> group -> inhibit / silence / mute -> escalate.

`Dispatcher` is the pure, clock-free core (every method takes `now_s`): the worker calls `submit`
for each `crisis.alerts` message and `tick` on a timer (`next_wakeup_s()` says when), then hands the
returned `Notification`s to `delivery.Notifier`. `RouteSimulator` drives the same core in event time
for `crisiswatch replay --route`. State is JSON-able (`state` / `load_state`).

Semantics, after Alertmanager: a group's first notification waits `group_wait_s` (0 for critical),
later changes wait `group_interval_s` (a severity rise or an acknowledgement goes out at once), and
an open, unacknowledged group is reminded every `repeat_interval_s` in the same thread. Incidents
resolved before anyone was told are never sent. Suppressed changes (silenced, inhibited, muted) stay
pending and go out when the suppression ends, unless the incident resolved meanwhile.

Partitions: the worker keeps one `Dispatcher` per `crisis.alerts` partition, so groups, inhibition
sources and escalations only see the incident events of their partition. The outbox is keyed by
`outbox_key(event)` (the brand): every event of a brand lands on one partition, so groups whose
`group_by` holds `brand` (or `incident_id`, `dedup_key`, `...`: the default is `incident_id`) and
inhibit rules with `equal: [brand]` (the default rule) behave exactly as with one partition. A group
that spans brands (e.g. `group_by: [detector]`) or an inhibit rule without `brand` in `equal` works
per partition: brands on different partitions get separate notifications / do not inhibit each
other. `partition_limits(runtime)` lists such routes and rules (`crisiswatch routes test` shows them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crisiswatch.alerts.incidents import IncidentEvent
from crisiswatch.alerts.oncall import escalation_pages
from crisiswatch.alerts.receivers.base import Notification, NotificationKind, Recipient
from crisiswatch.alerts.routing import Runtime, RuntimeRoute
from crisiswatch.alerts.silences import MemorySilenceStore, SilenceStore, silenced_by
from crisiswatch.detectors.events import SEVERITY_RANK

SUPPRESSED_RECHECK_S = 60.0
# A group_by holding one of these keeps each group inside one brand, and so inside one outbox partition.
BRAND_PINNING_LABELS = frozenset({"brand", "dedup_key", "incident_id", "..."})
_STATE_VERSION = 1


@dataclass(slots=True)
class _Group:
    key: str
    route_path: str
    receiver: str
    events: dict[str, IncidentEvent] = field(default_factory=dict)
    # incident_id -> id of the last event the receiver was told about
    notified: dict[str, str] = field(default_factory=dict)
    notified_severity: dict[str, str] = field(default_factory=dict)
    paged: set[str] = field(default_factory=set)
    next_flush_s: float | None = None
    last_notify_s: float | None = None
    reminders: int = 0

    def open_incidents(self) -> list[IncidentEvent]:
        return [e for e in self.events.values() if e.status != "resolved"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "route_path": self.route_path,
            "receiver": self.receiver,
            "events": {k: e.to_dict() for k, e in self.events.items()},
            "notified": dict(self.notified),
            "notified_severity": dict(self.notified_severity),
            "paged": sorted(self.paged),
            "next_flush_s": self.next_flush_s,
            "last_notify_s": self.last_notify_s,
            "reminders": self.reminders,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _Group:
        return cls(
            key=data["key"],
            route_path=data["route_path"],
            receiver=data["receiver"],
            events={k: IncidentEvent.from_dict(e) for k, e in data.get("events", {}).items()},
            notified=dict(data.get("notified", {})),
            notified_severity=dict(data.get("notified_severity", {})),
            paged=set(data.get("paged", [])),
            next_flush_s=data.get("next_flush_s"),
            last_notify_s=data.get("last_notify_s"),
            reminders=int(data.get("reminders", 0)),
        )


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why an incident change was not sent (for `replay --route` reports and logs)."""

    at_s: float
    receiver: str
    incident_id: str
    event_id: str
    reason: str  # "silenced:<id>" | "inhibited" | "muted:<interval>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "at_s": self.at_s,
            "receiver": self.receiver,
            "incident_id": self.incident_id,
            "event_id": self.event_id,
            "reason": self.reason,
        }


def outbox_key(event: IncidentEvent) -> str:
    """The `crisis.alerts` message key: the brand, so one brand's incidents share a partition (above)."""
    return event.brand


def partition_limits(runtime: Runtime) -> list[str]:
    """Routes and inhibit rules that span brands, so are evaluated per outbox partition; [] if none."""
    out: list[str] = []

    def walk(route: RuntimeRoute) -> None:
        if not BRAND_PINNING_LABELS.intersection(route.group_by):
            out.append(
                f"{route.path}: group_by {list(route.group_by)} spans brands; with several "
                "crisis.alerts partitions each partition keeps its own group (one notification per "
                "partition). Add 'brand' to group_by to avoid it."
            )
        for child in route.routes:
            walk(child)

    walk(runtime.root)
    for index, rule in enumerate(runtime.inhibit_rules):
        if not BRAND_PINNING_LABELS.intersection(rule.equal):
            out.append(
                f"inhibit_rules[{index}]: equal {list(rule.equal)} spans brands; a source only "
                "inhibits targets on its own crisis.alerts partition. Add 'brand' to equal to avoid it."
            )
    return out


def thread_key_for(group_key: str, events: Iterable[IncidentEvent]) -> str:
    """One incident per group (the default group_by) threads by incident id; bigger groups by group."""
    ids = {e.incident_id for e in events}
    if len(ids) == 1 and group_key.endswith("{incident_id=" + repr(next(iter(ids))) + "}"):
        return next(iter(ids))
    return "group:" + hashlib.sha256(group_key.encode()).hexdigest()[:24]


class Dispatcher:
    def __init__(self, runtime: Runtime, silences: SilenceStore | None = None) -> None:
        self.runtime = runtime
        self.silences: SilenceStore = silences if silences is not None else MemorySilenceStore()
        self._groups: dict[str, _Group] = {}
        # incident_id -> latest event, open incidents only (inhibition sources)
        self._active: dict[str, IncidentEvent] = {}
        # f"{receiver}|{incident_id}" -> {"fired_at_s", "policy", "sent", "group"}
        self._escalations: dict[str, dict[str, Any]] = {}
        self.suppressions: list[Suppression] = []
        self.max_suppressions_kept = 1000

    # ---- configuration -------------------------------------------------------------------
    def set_runtime(self, runtime: Runtime) -> None:
        """Swap in a reloaded config; groups of vanished routes are re-homed under the root."""
        self.runtime = runtime

    def _route(self, path: str) -> RuntimeRoute:
        def find(node: RuntimeRoute) -> RuntimeRoute | None:
            if node.path == path:
                return node
            for child in node.routes:
                hit = find(child)
                if hit is not None:
                    return hit
            return None

        return find(self.runtime.root) or self.runtime.root

    # ---- input ---------------------------------------------------------------------------
    def submit(self, event: IncidentEvent, now_s: float) -> list[Notification]:
        """Take one incident event; returns notifications already due (group_wait 0)."""
        if event.status == "resolved":
            self._active.pop(event.incident_id, None)
        else:
            self._active[event.incident_id] = event
        labels = _labels(event)
        for route in self.runtime.routes_for(labels):
            key = route.group_key(labels)
            group = self._groups.get(key)
            if group is None:
                if event.status == "resolved":
                    continue  # never told about it: nothing to resolve
                group = self._groups[key] = _Group(key=key, route_path=route.path, receiver=route.receiver)
            previous = group.events.get(event.incident_id)
            if previous is not None and _newer(previous, event) is previous:
                continue  # an out-of-order older event
            group.events[event.incident_id] = event
            if group.last_notify_s is None:
                wait = min(route.group_wait_for(e.severity) for e in group.events.values())
                candidate = (
                    now_s + wait if group.next_flush_s is None else min(group.next_flush_s, now_s + wait)
                )
                group.next_flush_s = candidate
            elif self._urgent(group, event):
                group.next_flush_s = now_s
            elif (
                group.next_flush_s is None
                or group.next_flush_s > group.last_notify_s + route.group_interval_s
            ):
                group.next_flush_s = max(now_s, group.last_notify_s + route.group_interval_s)
        return self.tick(now_s)

    def _urgent(self, group: _Group, event: IncidentEvent) -> bool:
        """Severity rises, acknowledgements and first appearances in an already-notified group go now."""
        told = group.notified_severity.get(event.incident_id)
        if told is None:
            return event.status != "resolved" and event.severity == "critical"
        if SEVERITY_RANK.get(event.severity, 0) > SEVERITY_RANK.get(told, 0):
            return True
        if event.acknowledged_by is not None and event.status != "resolved":
            return True
        return event.resolution in ("manual", "false_alarm")

    # ---- time ----------------------------------------------------------------------------
    def next_wakeup_s(self) -> float | None:
        times: list[float] = [g.next_flush_s for g in self._groups.values() if g.next_flush_s is not None]
        for group in self._groups.values():
            reminder = self._reminder_due_s(group)
            if reminder is not None:
                times.append(reminder)
        for esc in self._escalations.values():
            nxt = esc.get("next_s")
            if nxt is not None:
                times.append(float(nxt))
        return min(times) if times else None

    def tick(self, now_s: float) -> list[Notification]:
        out: list[Notification] = []
        for key in sorted(self._groups):
            group = self._groups[key]
            if group.next_flush_s is not None and group.next_flush_s <= now_s:
                out.extend(self._flush(group, now_s))
            else:
                due = self._reminder_due_s(group)
                if due is not None and due <= now_s:
                    out.extend(self._remind(group, now_s))
            if (
                not group.open_incidents()
                and all(group.notified.get(i) == e.id for i, e in group.events.items())
                or not group.open_incidents()
                and group.next_flush_s is None
            ):
                del self._groups[key]
        out.extend(self._escalate(now_s))
        return out

    def _reminder_due_s(self, group: _Group) -> float | None:
        if group.last_notify_s is None or group.next_flush_s is not None:
            return None
        pending = [e for e in group.open_incidents() if e.acknowledged_by is None]
        if not pending:
            return None
        route = self._route(group.route_path)
        return group.last_notify_s + route.repeat_interval_s

    # ---- suppression ---------------------------------------------------------------------
    def _suppressed(
        self, group: _Group, event: IncidentEvent, route: RuntimeRoute, now_s: float
    ) -> str | None:
        muted = self.runtime.muted_by(route, now_s)
        if muted is not None:
            return f"muted:{muted}"
        labels = _labels(event)
        silence = silenced_by(self.silences, labels, now_s)
        if silence is not None:
            return f"silenced:{silence.id}"
        sources = [_labels(e) for i, e in self._active.items() if i != event.incident_id]
        if self.runtime.inhibited(labels, sources):
            return "inhibited"
        return None

    def _note(self, now_s: float, group: _Group, event: IncidentEvent, reason: str) -> None:
        if (
            self.suppressions
            and self.suppressions[-1].event_id == event.id
            and self.suppressions[-1].reason == reason
        ):
            return
        self.suppressions.append(Suppression(now_s, group.receiver, event.incident_id, event.id, reason))
        del self.suppressions[: -self.max_suppressions_kept]

    # ---- sending -------------------------------------------------------------------------
    def _flush(self, group: _Group, now_s: float) -> list[Notification]:
        route = self._route(group.route_path)
        group.next_flush_s = None
        changed: list[IncidentEvent] = []
        held = False
        for incident_id, event in sorted(group.events.items()):
            if group.notified.get(incident_id) == event.id:
                continue
            if event.status == "resolved" and incident_id not in group.paged:
                group.notified[incident_id] = event.id  # resolved before anyone was told
                continue
            reason = self._suppressed(group, event, route, now_s)
            # A resolve of a paged incident is still sent when inhibited (the page was real).
            if reason is not None and not (event.status == "resolved" and reason == "inhibited"):
                self._note(now_s, group, event, reason)
                held = True
                continue
            changed.append(event)
        if held:
            group.next_flush_s = now_s + min(
                SUPPRESSED_RECHECK_S, route.group_interval_s or SUPPRESSED_RECHECK_S
            )
        if not changed:
            return []
        receiver = self.runtime.receivers[group.receiver]
        new_pages = [e for e in changed if e.status != "resolved" and e.incident_id not in group.paged]
        kind: NotificationKind
        if new_pages:
            kind = "page"
        elif all(e.status == "resolved" for e in changed):
            kind = "resolved"
        else:
            kind = "update"
        for event in changed:
            group.notified[event.incident_id] = event.id
            group.notified_severity[event.incident_id] = event.severity
        group.last_notify_s = now_s
        group.reminders = 0
        if kind == "resolved" and not receiver.send_resolved:
            return []
        primary = _primary(new_pages or changed)
        recipients: tuple[Recipient, ...] = ()
        if kind == "page":
            group.paged.update(e.incident_id for e in new_pages)
            recipients = self._start_escalations(group, new_pages, now_s)
        others = tuple(
            e for e in sorted(group.events.values(), key=_sort_key) if e.incident_id != primary.incident_id
        )
        return [self._notification(group, kind, primary, others, recipients, now_s, 0)]

    def _remind(self, group: _Group, now_s: float) -> list[Notification]:
        route = self._route(group.route_path)
        pending = [e for e in group.open_incidents() if e.acknowledged_by is None]
        group.last_notify_s = now_s
        if not pending:
            return []
        reason = self._suppressed(group, _primary(pending), route, now_s)
        if reason is not None:
            self._note(now_s, group, _primary(pending), reason)
            return []
        group.reminders += 1
        primary = _primary(pending)
        others = tuple(
            e for e in sorted(group.events.values(), key=_sort_key) if e.incident_id != primary.incident_id
        )
        return [self._notification(group, "reminder", primary, others, (), now_s, group.reminders)]

    def _notification(
        self,
        group: _Group,
        kind: NotificationKind,
        primary: IncidentEvent,
        others: tuple[IncidentEvent, ...],
        recipients: tuple[Recipient, ...],
        now_s: float,
        sequence: int,
    ) -> Notification:
        return Notification(
            id="",
            receiver=group.receiver,
            kind=kind,
            group_key=group.key,
            thread_key=thread_key_for(group.key, group.events.values()),
            event=primary,
            others=others,
            recipients=recipients,
            created_at_s=now_s,
            sequence=sequence,
        ).with_id()

    # ---- escalation ----------------------------------------------------------------------
    def _recipients(self, people: Iterable[str], step: int) -> tuple[Recipient, ...]:
        out = []
        for person_id in people:
            person = self.runtime.directory.person(person_id)
            if person is None:
                out.append(Recipient(id=person_id, name=person_id, step=step))
            else:
                out.append(
                    Recipient(
                        id=person.id,
                        name=person.name,
                        email=person.email,
                        slack_user_id=person.slack_user_id,
                        phone=person.phone,
                        step=step,
                    )
                )
        return tuple(out)

    def _start_escalations(
        self, group: _Group, events: list[IncidentEvent], now_s: float
    ) -> tuple[Recipient, ...]:
        receiver = self.runtime.receivers[group.receiver]
        if receiver.escalation_owner != "crisiswatch" or receiver.escalation_policy is None:
            return ()
        policy = self.runtime.policies[receiver.escalation_policy]
        first = escalation_pages(policy, self.runtime.directory, now_s, now_s)
        for event in events:
            self._escalations[f"{group.receiver}|{event.incident_id}"] = {
                "fired_at_s": now_s,
                "policy": policy.name,
                "sent": 1,
                "group": group.key,
                "next_s": now_s + policy.steps[0].wait_s,
            }
        return self._recipients(first[0].people, 0) if first else ()

    def _escalate(self, now_s: float) -> list[Notification]:
        out: list[Notification] = []
        for key in sorted(self._escalations):
            esc = self._escalations[key]
            group = self._groups.get(esc["group"])
            incident_id = key.split("|", 1)[1]
            event = group.events.get(incident_id) if group is not None else None
            if (
                group is None
                or event is None
                or event.status == "resolved"
                or event.acknowledged_by is not None
            ):
                del self._escalations[key]
                continue
            policy = self.runtime.policies.get(esc["policy"])
            if policy is None:
                del self._escalations[key]
                continue
            pages = escalation_pages(policy, self.runtime.directory, float(esc["fired_at_s"]), now_s)
            route = self._route(group.route_path)
            for page in pages[int(esc["sent"]) :]:
                esc["sent"] = int(esc["sent"]) + 1
                reason = self._suppressed(group, event, route, page.at_s)
                if reason is not None:
                    self._note(now_s, group, event, reason)
                    continue
                recipients = self._recipients(page.people, page.step)
                others = tuple(e for e in group.events.values() if e.incident_id != incident_id)
                out.append(
                    self._notification(
                        group, "escalation", event, others, recipients, now_s, int(esc["sent"])
                    )
                )
            future = escalation_pages(policy, self.runtime.directory, float(esc["fired_at_s"]), float("inf"))
            if int(esc["sent"]) >= len(future):
                del self._escalations[key]
            else:
                esc["next_s"] = future[int(esc["sent"])].at_s
        return out

    # ---- state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "v": _STATE_VERSION,
            "groups": {k: g.to_dict() for k, g in sorted(self._groups.items())},
            "active": {k: e.to_dict() for k, e in sorted(self._active.items())},
            "escalations": {k: dict(v) for k, v in sorted(self._escalations.items())},
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._groups = {k: _Group.from_dict(g) for k, g in state.get("groups", {}).items()}
        self._active = {k: IncidentEvent.from_dict(e) for k, e in state.get("active", {}).items()}
        self._escalations = {k: dict(v) for k, v in state.get("escalations", {}).items()}

    def open_groups(self) -> list[str]:
        return sorted(self._groups)


def _labels(event: IncidentEvent) -> dict[str, str]:
    labels = event.routing_labels()
    labels["incident_id"] = event.incident_id
    return labels


def _sort_key(event: IncidentEvent) -> tuple[int, str, str]:
    return (-SEVERITY_RANK.get(event.severity, 0), event.detected_at, event.incident_id)


def _primary(events: list[IncidentEvent]) -> IncidentEvent:
    """The event to headline: most severe, then the newest."""
    return sorted(
        events, key=lambda e: (-SEVERITY_RANK.get(e.severity, 0), _neg_time(e.detected_at_s), e.incident_id)
    )[0]


def _neg_time(t: float) -> float:
    return -t


def _newer(a: IncidentEvent, b: IncidentEvent) -> IncidentEvent:
    """Incident events of one incident are ordered by detected time; a resolve wins ties."""
    if a.incident_id != b.incident_id:
        return b
    if b.detected_at_s > a.detected_at_s:
        return b
    if b.detected_at_s < a.detected_at_s:
        return a
    if a.status == "resolved" and b.status != "resolved":
        return a
    return b


class RouteSimulator:
    """`replay --route`: routing, grouping, silences, inhibition and escalation in EVENT time.

    Feed incident events in event-time order; every notification that would have gone out is
    returned with `created_at_s` = the event time it would have been sent.
    """

    def __init__(self, runtime: Runtime, silences: SilenceStore | None = None) -> None:
        self.dispatcher = Dispatcher(runtime, silences)
        self.now_s: float | None = None

    def _run_until(self, now_s: float) -> list[Notification]:
        out: list[Notification] = []
        while True:
            due = self.dispatcher.next_wakeup_s()
            if due is None or due > now_s:
                return out
            due = max(due, self.now_s or due)
            out.extend(self.dispatcher.tick(due))
            self.now_s = due
            after = self.dispatcher.next_wakeup_s()
            if after is not None and after <= due:
                return out  # no progress possible at this instant (e.g. zero intervals)

    def feed(self, event: IncidentEvent) -> list[Notification]:
        now_s = event.detected_at_s if self.now_s is None else max(self.now_s, event.detected_at_s)
        out = self._run_until(now_s)
        self.now_s = now_s
        out.extend(self.dispatcher.submit(event, now_s))
        return out

    def advance(self, now_s: float) -> list[Notification]:
        """Event time moved without an event (the replay's watermark or the end of input)."""
        out = self._run_until(now_s)
        self.now_s = max(self.now_s or now_s, now_s)
        out.extend(self.dispatcher.tick(self.now_s))
        return out
