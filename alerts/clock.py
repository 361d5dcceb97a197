"""Time for alerting: an injected clock (never the wall clock here) and one ISO-8601 codec.

`alerts/` is driven by event time in replay and by the worker's clock in production; both come in
through `Clock`, so schedules, escalation and retries are testable on a `ManualClock`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...


class ManualClock:
    """A clock that moves only when told: tests, replay and the routing simulator."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = float(start_s)

    def now(self) -> float:
        return self._now_s

    def set(self, now_s: float) -> None:
        self._now_s = max(self._now_s, float(now_s))

    def advance(self, delta_s: float) -> float:
        self._now_s += max(0.0, float(delta_s))
        return self._now_s


def iso_z(epoch_s: float) -> str:
    """Epoch seconds as ISO-8601 UTC with a 'Z'; milliseconds only when the time has a fraction."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    spec = "seconds" if float(epoch_s).is_integer() else "milliseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str | float | int) -> float:
    """Epoch seconds from epoch seconds or ISO-8601 (naive means UTC). Raises ValueError."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    value = str(text).strip()
    try:
        return float(value)
    except ValueError:
        pass
    if not _ISO_RE.match(value):
        raise ValueError(f"not an ISO-8601 time or epoch seconds: {value!r}")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration_s(value: object) -> float:
    """Seconds from a number (seconds) or a Prometheus-style string ("30s", "5m", "1h"). Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    if isinstance(value, str):
        total = 0.0
        parts = re.findall(r"\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)?", value)
        if parts and "".join(parts).replace(" ", "") == value.replace(" ", ""):
            for part in parts:
                match = _DURATION_RE.match(part)
                if match is None:
                    raise ValueError(f"not a duration: {value!r}")
                total += float(match.group(1)) * _DURATION_UNIT_S[match.group(2)]
            return total
    raise ValueError(f"not a duration: {value!r}")
