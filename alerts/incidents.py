"""Incidents: a stream of detector assessments becomes firing / updated / resolved incident events.

One incident per `dedup_key` ("<brand>/<detector>/<root_id or '*'>") and episode: repeated windows of
one surge update the open incident; a re-fire after resolution opens the next episode. The tracker
adds the hysteresis detectors leave to us: fire once, update only when severity rises or the numbers
grow materially (and not more often than `min_update_interval_s`), resolve after the detector has said
"normal" for `resolve_hold_s` or the key has been quiet for `quiet_resolve_s` — all in EVENT time.

Acknowledgements, manual resolves and "false alarm" arrive as `AckEvent`s (from Slack, email links,
PagerDuty webhooks or the CLI, through a Kafka topic keyed like the incident) and are applied with
`IncidentTracker.apply_ack`. The tracker never reads a clock: observe/advance carry event time, acks
carry their own time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from crisiswatch.alerts.clock import iso_z, parse_time
from crisiswatch.detectors.events import SEVERITIES, SEVERITY_RANK, Assessment, BrandProfile
from crisiswatch.detectors.settings import ConfigError, require

SCHEMA_VERSION = 1
IncidentStatus = Literal["firing", "updated", "resolved"]
AckAction = Literal["acknowledge", "resolve", "false_alarm"]
ACK_ACTIONS: tuple[str, ...] = ("acknowledge", "resolve", "false_alarm")
# Metrics whose growth (by `growth_factor`) is worth telling the on-call person about.
GROWTH_METRICS: tuple[str, ...] = (
    "projected_reach",
    "reach_followers",
    "forwards_total",
    "projected_final_size",
    "forwards_per_minute",
)
LABEL_KEYS: tuple[str, ...] = ("role", "lang", "platform", "category")
# The metric charted in emails, by preference; sampled at most every TREND_STEP_S into metrics["trend"].
TREND_METRICS: tuple[str, ...] = ("forwards_per_minute", "window_negative_posts", "window_events", "count")
TREND_STEP_S = 60.0
TREND_POINTS = 60
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class IncidentConfig:
    """Hysteresis of the incident lifecycle (the `alerting.incidents` config section)."""

    # Assessments below this severity never open an incident.
    min_severity: str = "info"
    # The detector must say "normal" this long (event time) before the incident resolves.
    resolve_hold_s: float = 300.0
    # No assessment at all for this long (event time) resolves the incident.
    quiet_resolve_s: float = 1800.0
    # An open incident whose projected reach crosses this becomes critical (0 disables).
    critical_projected_reach: float = 1_000_000.0
    # An "updated" event needs a growth metric to reach this multiple of its last notified value...
    growth_factor: float = 1.5
    # ...and at least this much event time since the last event (severity rises are always sent).
    min_update_interval_s: float = 300.0
    # Resolved keys remember their episode counter this long, then are forgotten (bounded memory).
    forget_after_s: float = 7 * 86400.0

    def __post_init__(self) -> None:
        require(self.min_severity in SEVERITIES, "min_severity", self.min_severity, f"one of {SEVERITIES}")
        for name in (
            "resolve_hold_s",
            "quiet_resolve_s",
            "critical_projected_reach",
            "min_update_interval_s",
        ):
            value = getattr(self, name)
            require(_is_number(value) and value >= 0, name, value, "a number >= 0")
        require(
            _is_number(self.growth_factor) and self.growth_factor > 1.0,
            "growth_factor",
            self.growth_factor,
            "a number > 1",
        )
        require(
            _is_number(self.forget_after_s) and self.forget_after_s >= self.quiet_resolve_s,
            "forget_after_s",
            self.forget_after_s,
            "a number >= quiet_resolve_s",
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> IncidentConfig:
        known = set(cls.__dataclass_fields__)
        for key in data:
            require(key in known, str(key), data[key], f"one of {sorted(known)}")
        return cls(**dict(data))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One change of one incident: exactly the alert line and the `crisis.alerts` message.

    `acknowledged_by` / `acknowledged_at` / `resolution` are extensions present in `to_dict()` only
    when set (an ack, a manual resolve, a false alarm), so plain detector-driven lines keep the
    documented shape.
    """

    id: str
    incident_id: str
    dedup_key: str
    status: IncidentStatus
    severity: str
    detector: str
    brand: str
    root_id: str | None
    started_at: str
    detected_at: str
    labels: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    schema_version: int = SCHEMA_VERSION
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    # "detector" | "quiet" | "manual" | "false_alarm" on resolved events.
    resolution: str | None = None

    @property
    def started_at_s(self) -> float:
        return parse_time(self.started_at)

    @property
    def detected_at_s(self) -> float:
        return parse_time(self.detected_at)

    @property
    def episode(self) -> int:
        return int(self.incident_id.rsplit(":", 1)[1])

    def routing_labels(self) -> dict[str, str]:
        """The label set routes, silences and inhibition match on."""
        labels = {k: str(v) for k, v in self.labels.items() if v is not None}
        labels.update(
            brand=self.brand,
            detector=self.detector,
            severity=self.severity,
            status=self.status,
            dedup_key=self.dedup_key,
        )
        if self.root_id is not None:
            labels["root_id"] = self.root_id
        return labels

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "id": self.id,
            "incident_id": self.incident_id,
            "dedup_key": self.dedup_key,
            "status": self.status,
            "severity": self.severity,
            "detector": self.detector,
            "brand": self.brand,
            "root_id": self.root_id,
            "started_at": self.started_at,
            "detected_at": self.detected_at,
            "labels": dict(self.labels),
            "metrics": dict(self.metrics),
            "summary": self.summary,
        }
        for key in ("acknowledged_by", "acknowledged_at", "resolution"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IncidentEvent:
        return cls(
            id=str(data["id"]),
            incident_id=str(data["incident_id"]),
            dedup_key=str(data["dedup_key"]),
            status=data["status"],
            severity=str(data["severity"]),
            detector=str(data["detector"]),
            brand=str(data["brand"]),
            root_id=None if data.get("root_id") is None else str(data["root_id"]),
            started_at=str(data["started_at"]),
            detected_at=str(data["detected_at"]),
            labels={str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
            metrics=dict(data.get("metrics") or {}),
            summary=str(data.get("summary", "")),
            schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
            acknowledged_by=data.get("acknowledged_by"),
            acknowledged_at=data.get("acknowledged_at"),
            resolution=data.get("resolution"),
        )

    @classmethod
    def from_json(cls, text: str) -> IncidentEvent:
        return cls.from_dict(json.loads(text))


def dedup_key_for(brand: str, detector: str, root_id: str | None) -> str:
    return f"{brand}/{detector}/{root_id if root_id is not None else '*'}"


def event_id_for(incident_id: str, sequence: int) -> str:
    """Deterministic, unique per event, safe in headers and Message-IDs (hex)."""
    return hashlib.sha256(f"{incident_id}|{sequence}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class AckEvent:
    """A human decision about an incident: travels on the ack topic keyed by `dedup_key`.

    `at_s` is when the person acted (their clock); `via` is "slack" | "email" | "pagerduty" | "cli".
    """

    incident_id: str
    action: AckAction
    by: str
    at_s: float
    via: str = "cli"

    def __post_init__(self) -> None:
        require(self.action in ACK_ACTIONS, "action", self.action, f"one of {ACK_ACTIONS}")
        require(
            # The worker splits the key into brand / detector / root: anything else must not reach it.
            re.match(r"^[^/]+/[^/]+/.+:\d+$", self.incident_id) is not None,
            "incident_id",
            self.incident_id,
            "'<brand>/<detector>/<root>:<episode>'",
        )

    @property
    def dedup_key(self) -> str:
        """The Kafka key: the same partition as the incident's assessments."""
        return self.incident_id.rsplit(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "action": self.action,
            "by": self.by,
            "at_s": self.at_s,
            "via": self.via,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AckEvent:
        return cls(
            incident_id=str(data["incident_id"]),
            action=data["action"],
            by=str(data.get("by", "unknown")),
            at_s=float(data["at_s"]),
            via=str(data.get("via", "cli")),
        )


@dataclass(slots=True)
class _KeyState:
    """Per dedup_key bookkeeping; `open` False keeps only the episode counter (and a re-fire guard)."""

    dedup_key: str
    episode: int = 0
    open: bool = False
    sequence: int = 0
    severity: str = "info"
    detector: str = ""
    brand: str = ""
    root_id: str | None = None
    started_at_s: float = 0.0
    last_seen_s: float = 0.0
    last_event_s: float = 0.0
    normal_since_s: float | None = None
    notified_metrics: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    acknowledged_by: str | None = None
    acknowledged_at_s: float | None = None
    # After a manual resolve / false alarm: do not re-open until the detector says normal again.
    hold_until_normal: bool = False
    closed_at_s: float = 0.0
    # [[offset_s from start, value], ...] of the first TREND_METRICS entry present
    trend: list[list[float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dedup_key": self.dedup_key,
            "episode": self.episode,
            "open": self.open,
            "sequence": self.sequence,
            "severity": self.severity,
            "detector": self.detector,
            "brand": self.brand,
            "root_id": self.root_id,
            "started_at_s": self.started_at_s,
            "last_seen_s": self.last_seen_s,
            "last_event_s": self.last_event_s,
            "normal_since_s": self.normal_since_s,
            "notified_metrics": dict(self.notified_metrics),
            "labels": dict(self.labels),
            "metrics": json.loads(json.dumps(self.metrics, default=str)),
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at_s": self.acknowledged_at_s,
            "hold_until_normal": self.hold_until_normal,
            "closed_at_s": self.closed_at_s,
            "trend": [list(p) for p in self.trend],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _KeyState:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class IncidentTracker:
    """Assessments in, incident events out; state is a JSON-able dict (per key or whole)."""

    def __init__(
        self,
        config: IncidentConfig | None = None,
        brands: Mapping[str, BrandProfile] | None = None,
    ) -> None:
        self.config = config or IncidentConfig()
        self._brands = dict(brands or {})
        self._keys: dict[str, _KeyState] = {}
        self._dirty: set[str] = set()

    # ---- detector side -------------------------------------------------------------------
    def observe(self, assessment: Assessment) -> list[IncidentEvent]:
        key = dedup_key_for(assessment.brand, assessment.detector, assessment.root_id)
        now_s = assessment.event_time_s
        state = self._keys.get(key)
        events = self._resolve_due(state, now_s) if state is not None else []
        severity = self._effective_severity(assessment)
        if severity is None or SEVERITY_RANK[severity] < SEVERITY_RANK[self.config.min_severity]:
            if state is not None:
                state.last_seen_s = max(state.last_seen_s, now_s)
                state.hold_until_normal = False
                if state.open and state.normal_since_s is None:
                    state.normal_since_s = now_s
                self._dirty.add(key)
                events.extend(self._resolve_due(state, now_s))
            return events

        if state is None:
            state = self._keys[key] = _KeyState(dedup_key=key)
        self._dirty.add(key)
        if not state.open:
            if state.hold_until_normal and SEVERITY_RANK[severity] <= SEVERITY_RANK[state.severity]:
                state.last_seen_s = max(state.last_seen_s, now_s)
                return events
            events.append(self._open(state, assessment, severity, now_s))
            return events

        state.last_seen_s = max(state.last_seen_s, now_s)
        state.normal_since_s = None
        state.metrics = _json_safe(assessment.metrics)
        _note_trend(state, assessment.metrics, now_s)
        state.labels.update(self._labels(assessment))
        rose = SEVERITY_RANK[severity] > SEVERITY_RANK[state.severity]
        grew = self._grew(state, assessment.metrics)
        if rose:
            state.severity = severity
        if rose or (grew and now_s - state.last_event_s >= self.config.min_update_interval_s):
            events.append(self._emit(state, "updated", now_s))
        return events

    def advance(self, watermark_s: float) -> list[IncidentEvent]:
        """Event time moved: resolve incidents that held normal or went quiet; forget old closed keys."""
        events: list[IncidentEvent] = []
        for key in sorted(self._keys):
            state = self._keys[key]
            events.extend(self._resolve_due(state, watermark_s))
            if not state.open and watermark_s - state.closed_at_s >= self.config.forget_after_s:
                del self._keys[key]
                self._dirty.add(key)
        return events

    # ---- human side ----------------------------------------------------------------------
    def apply_ack(self, ack: AckEvent) -> list[IncidentEvent]:
        """Apply an acknowledgement / manual resolve / false alarm; stale or repeated acks are no-ops."""
        state = self._keys.get(ack.dedup_key)
        if state is None or not state.open or f"{state.dedup_key}:{state.episode}" != ack.incident_id:
            return []
        self._dirty.add(state.dedup_key)
        if ack.action == "acknowledge":
            if state.acknowledged_by is not None:
                return []
            state.acknowledged_by = ack.by
            state.acknowledged_at_s = ack.at_s
            return [self._emit(state, "updated", max(ack.at_s, state.last_event_s))]
        if state.acknowledged_by is None:
            state.acknowledged_by = ack.by
            state.acknowledged_at_s = ack.at_s
        resolution = "false_alarm" if ack.action == "false_alarm" else "manual"
        state.hold_until_normal = True
        return [self._close(state, max(ack.at_s, state.last_event_s), resolution)]

    # ---- state ---------------------------------------------------------------------------
    def open_incidents(self) -> list[str]:
        return sorted(f"{s.dedup_key}:{s.episode}" for s in self._keys.values() if s.open)

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        """The current view of an incident (open or last closed episode), for acks and the CLI."""
        key, _, episode = incident_id.rpartition(":")
        state = self._keys.get(key)
        if state is None or str(state.episode) != episode:
            return None
        return state.to_dict()

    def key_state(self, dedup_key: str) -> dict[str, Any] | None:
        state = self._keys.get(dedup_key)
        return None if state is None else {"v": _STATE_VERSION, **state.to_dict()}

    def load_key_state(self, dedup_key: str, state: Mapping[str, Any] | None) -> None:
        if state is None:
            self._keys.pop(dedup_key, None)
            return
        _check_version(state)
        self._keys[dedup_key] = _KeyState.from_dict(state)

    def state(self) -> dict[str, Any]:
        return {"v": _STATE_VERSION, "keys": {k: s.to_dict() for k, s in sorted(self._keys.items())}}

    def load_state(self, state: Mapping[str, Any]) -> None:
        _check_version(state)
        self._keys = {k: _KeyState.from_dict(v) for k, v in dict(state.get("keys", {})).items()}

    def drain_dirty(self) -> set[str]:
        """dedup_keys whose state changed (or was forgotten) since the last call."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    # ---- internals -----------------------------------------------------------------------
    def _effective_severity(self, assessment: Assessment) -> str | None:
        severity = assessment.severity
        if severity is None:
            return None
        # Reach escalates a warning (negativity already established) to critical; spread alone (info)
        # never becomes a page, however far it reaches: a positive campaign going viral is not a crisis.
        threshold = self.config.critical_projected_reach
        reach = _number(assessment.metrics.get("projected_reach"))
        if severity == "warning" and threshold > 0 and reach is not None and reach >= threshold:
            return "critical"
        return severity

    def _labels(self, assessment: Assessment) -> dict[str, str]:
        labels = {k: str(v) for k, v in assessment.labels.items() if v is not None}
        profile = self._brands.get(assessment.brand)
        if profile is not None:
            labels.setdefault("role", profile.role)
            labels.setdefault("lang", profile.lang)
        category = assessment.metrics.get("category")
        if category and "category" not in labels:
            labels["category"] = str(category)
        return labels

    def _grew(self, state: _KeyState, metrics: Mapping[str, Any]) -> bool:
        for name in GROWTH_METRICS:
            value = _number(metrics.get(name))
            if value is None:
                continue
            before = state.notified_metrics.get(name)
            if before is None:
                if value > 0:
                    return True
                continue
            if before <= 0 and value > 0 or before > 0 and value >= before * self.config.growth_factor:
                return True
        return False

    def _open(self, state: _KeyState, assessment: Assessment, severity: str, now_s: float) -> IncidentEvent:
        state.episode += 1
        state.open = True
        state.sequence = 0
        state.severity = severity
        state.detector = assessment.detector
        state.brand = assessment.brand
        state.root_id = assessment.root_id
        started = _number(assessment.metrics.get("started_at_s"))
        state.started_at_s = min(started, now_s) if started is not None else now_s
        state.last_seen_s = now_s
        state.normal_since_s = None
        state.hold_until_normal = False
        state.acknowledged_by = None
        state.acknowledged_at_s = None
        state.labels = self._labels(assessment)
        state.metrics = _json_safe(assessment.metrics)
        state.notified_metrics = {}
        state.trend = []
        _note_trend(state, assessment.metrics, now_s)
        return self._emit(state, "firing", now_s)

    def _resolve_due(self, state: _KeyState, now_s: float) -> list[IncidentEvent]:
        if not state.open:
            return []
        if state.normal_since_s is not None and now_s - state.normal_since_s >= self.config.resolve_hold_s:
            self._dirty.add(state.dedup_key)
            return [self._close(state, max(now_s, state.last_event_s), "detector")]
        if now_s - state.last_seen_s >= self.config.quiet_resolve_s:
            self._dirty.add(state.dedup_key)
            return [self._close(state, max(now_s, state.last_event_s), "quiet")]
        return []

    def _close(self, state: _KeyState, now_s: float, resolution: str) -> IncidentEvent:
        state.open = False
        state.closed_at_s = now_s
        state.normal_since_s = None
        return self._emit(state, "resolved", now_s, resolution=resolution)

    def _emit(
        self, state: _KeyState, status: IncidentStatus, now_s: float, resolution: str | None = None
    ) -> IncidentEvent:
        state.sequence += 1
        state.last_event_s = now_s
        for name in GROWTH_METRICS:
            value = _number(state.metrics.get(name))
            if value is not None:
                state.notified_metrics[name] = value
        incident_id = f"{state.dedup_key}:{state.episode}"
        from crisiswatch.alerts.render import summary_sentence

        event = IncidentEvent(
            id=event_id_for(incident_id, state.sequence),
            incident_id=incident_id,
            dedup_key=state.dedup_key,
            status=status,
            severity=state.severity,
            detector=state.detector,
            brand=state.brand,
            root_id=state.root_id,
            started_at=iso_z(state.started_at_s),
            detected_at=iso_z(now_s),
            labels=dict(state.labels),
            metrics={**state.metrics, "trend": [list(p) for p in state.trend]}
            if state.trend
            else dict(state.metrics),
            summary="",
            acknowledged_by=state.acknowledged_by,
            acknowledged_at=None if state.acknowledged_at_s is None else iso_z(state.acknowledged_at_s),
            resolution=resolution,
        )
        lang = self._page_lang(state)
        return _with_summary(event, summary_sentence(event, lang))

    def _page_lang(self, state: _KeyState) -> str:
        profile = self._brands.get(state.brand)
        if profile is not None:
            return profile.lang
        return "zh" if state.labels.get("lang") == "zh" else "en"


def _with_summary(event: IncidentEvent, summary: str) -> IncidentEvent:
    from dataclasses import replace

    return replace(event, summary=summary)


def _note_trend(state: _KeyState, metrics: Mapping[str, Any], now_s: float) -> None:
    for name in TREND_METRICS:
        value = _number(metrics.get(name))
        if value is None:
            continue
        offset = round(now_s - state.started_at_s, 3)
        if state.trend and offset - state.trend[-1][0] < TREND_STEP_S:
            state.trend[-1][1] = value  # keep the latest value of this step
        else:
            state.trend.append([offset, value])
            del state.trend[:-TREND_POINTS]
        return


def _number(value: object) -> float | None:
    if _is_number(value):
        return float(value)  # type: ignore[arg-type]
    return None


def _json_safe(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(dict(metrics), default=str)))


def _check_version(state: Mapping[str, Any]) -> None:
    if state.get("v", _STATE_VERSION) != _STATE_VERSION:
        raise ConfigError("v", state.get("v"), f"incident state version {_STATE_VERSION}")


def labelled_incident_row(event: IncidentEvent) -> dict[str, Any]:
    """The labelled-incidents JSONL row a false alarm becomes (read by replay/tuning tools)."""
    return {
        "brand": event.brand,
        "root_id": event.root_id,
        "detector": event.detector,
        "incident_id": event.incident_id,
        "start": event.started_at,
        "end": event.detected_at,
        "is_crisis": event.resolution != "false_alarm",
        "labelled_by": event.acknowledged_by,
    }


def append_labelled_incident(path: str, event: IncidentEvent) -> dict[str, Any]:
    """Append the false alarm (or other label) row; returns the row written."""
    row = labelled_incident_row(event)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    return row
