"""Scoring a replay against labelled incidents: pure functions, no I/O except `read_labelled_incidents`.

Rules (the documented contract of `replay --incidents` and `crisiswatch tune`):

- Only `warning` / `critical` events count (`firing` or `updated`; a `resolved` event detects nothing).
- Events of one (brand, detector, root_id) less than 30 minutes apart form one alert episode.
- An incident is detected by such an event of its brand; when it is one cascade (`root_id` set), the event
  must be about that root_id; when it is brand-wide, `detected_at` must lie in [start, end + 30 min].
- An episode is a true alert when one of its events detects a crisis (`is_crisis`); every other
  warning-or-critical episode is a false alert (unlabelled, or matching only non-crises).
- precision = true episodes / all episodes; recall = detected crises / crises;
  delay = first detecting `detected_at` - start;
  early = share of detected-or-not cascade crises detected before the cascade had 10% of its final
  forwards (needs the forward times); false alerts per brand per day = false episodes / brands / days.

Labelled rows: `{"brand", "root_id" (optional), "start", "end", "is_crisis"}` plus anything else (`kind`,
`detector`, `incident_id`, `labelled_by` of false-alarm rows written by the alerting service); times are
ISO-8601 or epoch seconds.
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crisiswatch.detectors.settings import ConfigError

EPISODE_GAP_S = 30 * 60.0
BRAND_WIDE_GRACE_S = 30 * 60.0
EARLY_FRACTION = 0.10
PAGE_SEVERITIES = frozenset({"warning", "critical"})
DETECTING_STATUSES = frozenset({"firing", "updated"})
SECONDS_PER_DAY = 86_400.0

# The goals: (key, label, comparison, target).
GOALS: tuple[tuple[str, str, str, float], ...] = (
    ("recall", "recall", ">=", 0.95),
    ("precision", "precision", ">=", 0.90),
    ("median_delay_min", "median delay (min)", "<=", 15.0),
    ("early_share", "cascade crises caught early", ">=", 0.80),
    ("false_alerts_per_brand_day", "false alerts / brand / day", "<=", 0.20),
)


def _time(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(key, value, "ISO-8601 or epoch seconds")
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(key, value, "ISO-8601 with an offset or epoch seconds") from None
        if parsed.tzinfo is None:
            raise ConfigError(key, value, "a time with an offset or Z")
        return parsed.timestamp()
    raise ConfigError(key, value, "ISO-8601 or epoch seconds")


@dataclass(frozen=True)
class LabelledIncident:
    brand: str
    root_id: str | None
    start_s: float
    end_s: float
    is_crisis: bool
    kind: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "incident") -> LabelledIncident:
        if not isinstance(data, Mapping):
            raise ConfigError(where, data, "a JSON object")
        for key in ("brand", "start", "end", "is_crisis"):
            if key not in data:
                raise ConfigError(f"{where}.{key}", "(missing)", "brand, start, end and is_crisis")
        if not isinstance(data["is_crisis"], bool):
            raise ConfigError(f"{where}.is_crisis", data["is_crisis"], "true or false")
        root = data.get("root_id")
        start = _time(data["start"], f"{where}.start")
        end = _time(data["end"], f"{where}.end")
        if end < start:
            raise ConfigError(f"{where}.end", data["end"], "a time not before start")
        return cls(
            brand=str(data["brand"]),
            root_id=None if root in (None, "", "*") else str(root),
            start_s=start,
            end_s=end,
            is_crisis=data["is_crisis"],
            kind=str(
                data.get("kind")
                or ("false_alarm" if data.get("labelled_by") is not None and not data["is_crisis"] else "")
            ),
        )


def read_labelled_incidents(path: str | Path) -> list[LabelledIncident]:
    """A JSONL file of labelled incidents (generator ground truth or false-alarm records)."""
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError("--incidents", str(path), f"a readable JSONL file ({error.strerror})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise ConfigError(f"{path}:{number}", line[:60], "one JSON object per line") from None
        out.append(LabelledIncident.from_dict(data, f"{path}:{number}"))
    return out


@dataclass(frozen=True)
class AlertEvent:
    """What scoring needs of an incident event."""

    brand: str
    detector: str
    root_id: str | None
    severity: str
    status: str
    detected_at_s: float
    incident_id: str = ""

    @classmethod
    def of(cls, event: Any) -> AlertEvent:
        """From an IncidentEvent or its `to_dict()` form."""
        if isinstance(event, AlertEvent):
            return event
        if isinstance(event, Mapping):
            return cls(
                brand=str(event["brand"]),
                detector=str(event["detector"]),
                root_id=event.get("root_id"),
                severity=str(event["severity"]),
                status=str(event["status"]),
                detected_at_s=_time(event["detected_at"], "detected_at"),
                incident_id=str(event.get("incident_id", "")),
            )
        return cls(
            brand=event.brand,
            detector=event.detector,
            root_id=event.root_id,
            severity=event.severity,
            status=event.status,
            detected_at_s=event.detected_at_s,
            incident_id=event.incident_id,
        )


@dataclass
class Episode:
    brand: str
    detector: str
    root_id: str | None
    first_s: float
    last_s: float
    severity: str
    events: list[AlertEvent] = field(default_factory=list)
    matched_crisis: bool = False
    matched_kinds: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "detector": self.detector,
            "root_id": self.root_id,
            "first_s": self.first_s,
            "last_s": self.last_s,
            "severity": self.severity,
            "events": len(self.events),
            "true": self.matched_crisis,
            "kinds": sorted(self.matched_kinds),
        }


def paging_events(events: Iterable[Any]) -> list[AlertEvent]:
    return [
        alert
        for alert in (AlertEvent.of(event) for event in events)
        if alert.severity in PAGE_SEVERITIES and alert.status in DETECTING_STATUSES
    ]


def episodes_of(events: Iterable[Any]) -> list[Episode]:
    """Warning-or-critical events grouped into episodes: same (brand, detector, root_id), gaps < 30 min."""
    alerts = sorted(
        paging_events(events), key=lambda a: (a.brand, a.detector, a.root_id or "", a.detected_at_s)
    )
    episodes: list[Episode] = []
    current: Episode | None = None
    for alert in alerts:
        key = (alert.brand, alert.detector, alert.root_id)
        if (
            current is not None
            and (current.brand, current.detector, current.root_id) == key
            and alert.detected_at_s - current.last_s < EPISODE_GAP_S
        ):
            current.last_s = alert.detected_at_s
            current.events.append(alert)
            if alert.severity == "critical":
                current.severity = "critical"
            continue
        current = Episode(
            alert.brand,
            alert.detector,
            alert.root_id,
            alert.detected_at_s,
            alert.detected_at_s,
            alert.severity,
            [alert],
        )
        episodes.append(current)
    episodes.sort(key=lambda e: (e.first_s, e.brand, e.detector, e.root_id or ""))
    return episodes


def detects(incident: LabelledIncident, alert: AlertEvent) -> bool:
    """Whether one warning-or-critical event detects the incident (the matching rule)."""
    if alert.brand != incident.brand:
        return False
    if incident.root_id is not None:
        return alert.root_id == incident.root_id
    return incident.start_s <= alert.detected_at_s <= incident.end_s + BRAND_WIDE_GRACE_S


def first_detection(incident: LabelledIncident, events: Iterable[Any]) -> AlertEvent | None:
    """The earliest warning-or-critical event that detects the incident."""
    found = [alert for alert in paging_events(events) if detects(incident, alert)]
    return min(found, key=lambda a: a.detected_at_s) if found else None


@dataclass
class IncidentOutcome:
    incident: LabelledIncident
    detected_at_s: float | None
    delay_s: float | None
    final_forwards: int | None = None
    forwards_at_detection: int | None = None
    early: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "brand": self.incident.brand,
            "root_id": self.incident.root_id,
            "kind": self.incident.kind,
            "is_crisis": self.incident.is_crisis,
            "start_s": self.incident.start_s,
            "detected_at_s": self.detected_at_s,
            "delay_s": self.delay_s,
            "final_forwards": self.final_forwards,
            "forwards_at_detection": self.forwards_at_detection,
            "early": self.early,
        }


@dataclass
class Score:
    crises: int
    detected: int
    episodes: int
    true_episodes: int
    false_episodes: int
    brands: int
    days: float
    delays_s: list[float]
    early_known: int
    early: int
    outcomes: list[IncidentOutcome] = field(default_factory=list)
    false_alerts: list[Episode] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.detected / self.crises if self.crises else 1.0

    @property
    def precision(self) -> float:
        return self.true_episodes / self.episodes if self.episodes else 1.0

    @property
    def median_delay_min(self) -> float | None:
        return statistics.median(self.delays_s) / 60.0 if self.delays_s else None

    @property
    def early_share(self) -> float | None:
        return self.early / self.early_known if self.early_known else None

    @property
    def false_alerts_per_brand_day(self) -> float:
        exposure = self.brands * self.days
        return self.false_episodes / exposure if exposure > 0 else float(self.false_episodes)

    def metrics(self) -> dict[str, float | None]:
        return {
            "recall": self.recall,
            "precision": self.precision,
            "median_delay_min": self.median_delay_min,
            "early_share": self.early_share,
            "false_alerts_per_brand_day": self.false_alerts_per_brand_day,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **{
                key: (round(value, 4) if isinstance(value, float) else value)
                for key, value in self.metrics().items()
            },
            "crises": self.crises,
            "detected": self.detected,
            "episodes": self.episodes,
            "true_episodes": self.true_episodes,
            "false_episodes": self.false_episodes,
            "brands": self.brands,
            "days": round(self.days, 4),
            "early_known": self.early_known,
            "early": self.early,
            "outcomes": [outcome.to_dict() for outcome in self.outcomes],
            "false_alerts": [episode.to_dict() for episode in self.false_alerts],
        }


def evaluate(
    incidents: Sequence[LabelledIncident],
    events: Iterable[Any],
    *,
    forward_times: Mapping[str, Sequence[float]] | None = None,
    brands: int,
    duration_s: float,
) -> Score:
    """Score incident events against labelled incidents (see the module docstring for the rules)."""
    episodes = episodes_of(events)
    crises = [incident for incident in incidents if incident.is_crisis]
    by_brand: dict[str, list[LabelledIncident]] = {}
    for incident in incidents:
        by_brand.setdefault(incident.brand, []).append(incident)
    first: dict[int, float] = {}
    for episode in episodes:
        for alert in episode.events:
            for incident in by_brand.get(alert.brand, ()):
                if not detects(incident, alert):
                    continue
                episode.matched_kinds.add(incident.kind or ("crisis" if incident.is_crisis else "not_crisis"))
                if incident.is_crisis:
                    episode.matched_crisis = True
                    key = id(incident)
                    if key not in first or alert.detected_at_s < first[key]:
                        first[key] = alert.detected_at_s
    outcomes: list[IncidentOutcome] = []
    delays: list[float] = []
    early_known = early = 0
    for incident in crises:
        detected_at = first.get(id(incident))
        delay = None if detected_at is None else max(0.0, detected_at - incident.start_s)
        outcome = IncidentOutcome(incident, detected_at, delay)
        if delay is not None:
            delays.append(delay)
        times = (
            forward_times.get(incident.root_id) if (forward_times is not None and incident.root_id) else None
        )
        if times is not None and len(times) > 0:
            ordered = sorted(times)
            outcome.final_forwards = len(ordered)
            if detected_at is not None:
                outcome.forwards_at_detection = bisect.bisect_right(ordered, detected_at)
                outcome.early = outcome.forwards_at_detection < EARLY_FRACTION * len(ordered)
            else:
                outcome.early = False
            early_known += 1
            early += bool(outcome.early)
        outcomes.append(outcome)
    true_episodes = sum(1 for episode in episodes if episode.matched_crisis)
    return Score(
        crises=len(crises),
        detected=sum(1 for outcome in outcomes if outcome.detected_at_s is not None),
        episodes=len(episodes),
        true_episodes=true_episodes,
        false_episodes=len(episodes) - true_episodes,
        brands=brands,
        days=duration_s / SECONDS_PER_DAY,
        delays_s=delays,
        early_known=early_known,
        early=early,
        outcomes=outcomes,
        false_alerts=[episode for episode in episodes if not episode.matched_crisis],
    )


def pool(scores: Sequence[Score]) -> Score:
    """Scores of several streams as one (brand-days add up)."""
    if not scores:
        return Score(0, 0, 0, 0, 0, 0, 0.0, [], 0, 0)
    brand_days = sum(score.brands * score.days for score in scores)
    return Score(
        crises=sum(s.crises for s in scores),
        detected=sum(s.detected for s in scores),
        episodes=sum(s.episodes for s in scores),
        true_episodes=sum(s.true_episodes for s in scores),
        false_episodes=sum(s.false_episodes for s in scores),
        brands=1,
        days=brand_days,
        delays_s=[delay for s in scores for delay in s.delays_s],
        early_known=sum(s.early_known for s in scores),
        early=sum(s.early for s in scores),
        outcomes=[outcome for s in scores for outcome in s.outcomes],
        false_alerts=[episode for s in scores for episode in s.false_alerts],
    )


def goal_rows(score: Score) -> list[tuple[str, str, str, bool | None]]:
    """(label, value, goal, met) per goal; `met` None when the value is unknown (no crisis to time)."""
    values = score.metrics()
    rows: list[tuple[str, str, str, bool | None]] = []
    for key, label, op, target in GOALS:
        value = values[key]
        if value is None:
            rows.append((label, "n/a", f"{op} {target:g}", None))
            continue
        met = value >= target if op == ">=" else value <= target
        shown = f"{value:.3f}" if key != "median_delay_min" else f"{value:.1f}"
        rows.append((label, shown, f"{op} {target:g}", met))
    return rows


def format_score(score: Score) -> str:
    """The goal table plus the counts behind it, as plain text."""
    lines = [
        f"score: {score.detected}/{score.crises} crises detected; {score.true_episodes}/{score.episodes} alert episodes true; "
        f"{score.false_episodes} false over {score.brands * score.days:.1f} brand-days",
        f"  {'metric':<30} {'value':>8}  {'goal':<8} met",
    ]
    for label, value, goal, met in goal_rows(score):
        mark = "n/a" if met is None else ("yes" if met else "NO")
        lines.append(f"  {label:<30} {value:>8}  {goal:<8} {mark}")
    missed = [outcome for outcome in score.outcomes if outcome.detected_at_s is None]
    for outcome in missed[:10]:
        incident = outcome.incident
        lines.append(
            f"  missed: {incident.kind or 'crisis'} on {incident.brand} (root {incident.root_id or '*'}) at {_iso(incident.start_s)}"
        )
    if len(missed) > 10:
        lines.append(f"  ... and {len(missed) - 10} more missed crises")
    for episode in score.false_alerts[:10]:
        kinds = ",".join(sorted(episode.matched_kinds)) or "unlabelled"
        lines.append(
            f"  false alert: {episode.severity} {episode.detector} on {episode.brand} (root {episode.root_id or '*'}) at {_iso(episode.first_s)} [{kinds}]"
        )
    if len(score.false_alerts) > 10:
        lines.append(f"  ... and {len(score.false_alerts) - 10} more false alerts")
    return "\n".join(lines)


def _iso(t_s: float) -> str:
    if not math.isfinite(t_s):
        return str(t_s)
    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
