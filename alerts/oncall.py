"""People, on-call schedules and escalation policies, evaluated at an injected time.

A schedule rotates its participants every local day or week, handing off at the local time of its
`start` (so a 09:00 handoff stays 09:00 across daylight-saving changes); overrides win, the latest
declared first. An escalation policy pages step 0 at once and each next step when the previous
step's `wait_s` passed without an acknowledgement; `repeat` runs the policy again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crisiswatch.detectors.settings import ConfigError

if TYPE_CHECKING:
    from crisiswatch.alerts.config import EscalationPolicyConfig, PersonConfig, ScheduleConfig


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(where, name, "an IANA time zone like Europe/Berlin") from None


def _local_start(schedule: ScheduleConfig, where: str) -> datetime:
    zone = _zone(schedule.time_zone, f"{where}.time_zone")
    try:
        start = datetime.fromisoformat(schedule.start)
    except ValueError:
        raise ConfigError(
            f"{where}.start", schedule.start, "a local date-time like 2026-11-02T09:00"
        ) from None
    if start.tzinfo is not None:
        start = start.astimezone(zone).replace(tzinfo=None)
    return start.replace(tzinfo=zone)


def validate_schedule(schedule: ScheduleConfig, where: str) -> None:
    _local_start(schedule, where)


def on_call(schedule: ScheduleConfig, at_s: float) -> str:
    """The person id on call for `schedule` at `at_s` (epoch seconds)."""
    for override in reversed(schedule.overrides):
        if override.start_s <= at_s < override.end_s:
            return override.person
    start = _local_start(schedule, "schedule")
    zone = start.tzinfo
    local = datetime.fromtimestamp(at_s, tz=zone)
    days = (local.date() - start.date()).days
    if local.time().replace(tzinfo=None) < start.time():
        days -= 1
    shift_days = 1 if schedule.rotation == "daily" else 7
    index = (days // shift_days) % len(schedule.participants)
    return schedule.participants[index]


def next_handoff_s(schedule: ScheduleConfig, at_s: float) -> float:
    """When the current shift ends (ignoring overrides)."""
    start = _local_start(schedule, "schedule")
    zone = start.tzinfo
    local = datetime.fromtimestamp(at_s, tz=zone)
    days = (local.date() - start.date()).days
    if local.time().replace(tzinfo=None) < start.time():
        days -= 1
    shift_days = 1 if schedule.rotation == "daily" else 7
    shift_index = days // shift_days
    naive_start = start.replace(tzinfo=None)
    next_local = (naive_start + timedelta(days=(shift_index + 1) * shift_days)).replace(tzinfo=zone)
    return next_local.timestamp()


@dataclass(frozen=True, slots=True)
class Page:
    """One escalation step due: whom to page (person ids resolved at `at_s`)."""

    at_s: float
    step: int
    round: int
    people: tuple[str, ...]


class Directory:
    """People and schedules by name: resolves escalation targets to people at a time."""

    def __init__(self, people: Sequence[PersonConfig], schedules: Sequence[ScheduleConfig]) -> None:
        self.people: dict[str, PersonConfig] = {p.id: p for p in people}
        self.schedules: dict[str, ScheduleConfig] = {s.name: s for s in schedules}

    def resolve(self, targets: Sequence[str], at_s: float) -> tuple[str, ...]:
        resolved: list[str] = []
        for target in targets:
            kind, _, name = target.rpartition(":")
            person = on_call(self.schedules[name], at_s) if kind == "schedule" else name
            if person not in resolved:
                resolved.append(person)
        return tuple(resolved)

    def person(self, person_id: str) -> PersonConfig | None:
        return self.people.get(person_id)


def escalation_pages(
    policy: EscalationPolicyConfig,
    directory: Directory,
    fired_at_s: float,
    until_s: float,
    acknowledged_at_s: float | None = None,
) -> list[Page]:
    """Every page the policy sends from `fired_at_s` up to `until_s` (inclusive), stopping at the ack."""
    pages: list[Page] = []
    at_s = fired_at_s
    for round_index in range(policy.repeat + 1):
        for step_index, step in enumerate(policy.steps):
            if at_s > until_s or (acknowledged_at_s is not None and acknowledged_at_s <= at_s):
                return pages
            pages.append(Page(at_s, step_index, round_index, directory.resolve(step.targets, at_s)))
            at_s += step.wait_s
    return pages


def policy_by_name(policies: Sequence[EscalationPolicyConfig]) -> Mapping[str, EscalationPolicyConfig]:
    return {p.name: p for p in policies}
