"""Mute / active time intervals (Alertmanager `time_intervals`): quiet hours, weekends, campaign launches.

A period matches when every field it sets matches, in its `location` (IANA zone, default UTC).
Unlike Alertmanager, a `times` range may cross midnight ("22:00"-"07:00") — what people mean by
quiet hours. Absolute `ranges` cover one-off windows such as a campaign launch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crisiswatch.detectors.settings import ConfigError, require

if TYPE_CHECKING:
    from crisiswatch.alerts.config import TimeIntervalConfig

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def _minutes(text: object, where: str) -> int:
    if not isinstance(text, str) or len(text.split(":")) != 2:
        raise ConfigError(where, text, "a time 'HH:MM'")
    hours, minutes = text.split(":")
    if not (hours.isdigit() and minutes.isdigit()) or int(hours) > 24 or int(minutes) > 59:
        raise ConfigError(where, text, "a time 'HH:MM' (00:00-24:00)")
    value = int(hours) * 60 + int(minutes)
    require(value <= 24 * 60, where, text, "a time <= 24:00")
    return value


def _ranges(
    items: object, names: Sequence[str] | None, low: int, high: int, where: str
) -> tuple[tuple[int, int], ...]:
    if isinstance(items, str | int):
        items = [items]
    require(isinstance(items, Sequence), where, items, "a list of values or 'a:b' ranges")
    assert isinstance(items, Sequence)
    out: list[tuple[int, int]] = []

    def one(token: str) -> int:
        token = token.strip().lower()
        if names is not None and token in names:
            return names.index(token) + low
        try:
            return int(token)
        except ValueError:
            raise ConfigError(
                where, token, f"a value in {low}..{high}" + (f" or one of {list(names)}" if names else "")
            ) from None

    for item in items:
        text = str(item)
        first, _, last = text.partition(":") if not text.lstrip("-").isdigit() else (text, "", "")
        start = one(first)
        end = one(last) if last else start
        out.append((start, end))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CompiledPeriod:
    zone: Any
    times: tuple[tuple[int, int], ...]
    weekdays: tuple[tuple[int, int], ...]
    days_of_month: tuple[tuple[int, int], ...]
    months: tuple[tuple[int, int], ...]
    years: tuple[tuple[int, int], ...]

    def contains(self, epoch_s: float) -> bool:
        local = datetime.fromtimestamp(epoch_s, tz=self.zone)
        if self.times:
            minute = local.hour * 60 + local.minute
            if not any((s <= minute < e) if s <= e else (minute >= s or minute < e) for s, e in self.times):
                return False
        if self.weekdays and not any(s <= local.weekday() <= e for s, e in self.weekdays):
            return False
        if self.days_of_month:
            import calendar

            days = calendar.monthrange(local.year, local.month)[1]

            def norm(d: int) -> int:
                return d if d > 0 else days + 1 + d

            if not any(norm(s) <= local.day <= norm(e) for s, e in self.days_of_month):
                return False
        if self.months and not any(s <= local.month <= e for s, e in self.months):
            return False
        return not (self.years and not any(s <= local.year <= e for s, e in self.years))


@dataclass(frozen=True, slots=True)
class CompiledInterval:
    name: str
    periods: tuple[CompiledPeriod, ...]
    ranges: tuple[tuple[float, float], ...]

    def contains(self, epoch_s: float) -> bool:
        if any(start <= epoch_s < end for start, end in self.ranges):
            return True
        return any(period.contains(epoch_s) for period in self.periods)


def compile_period(raw: Mapping[str, Any], where: str) -> CompiledPeriod:
    allowed = {"times", "weekdays", "days_of_month", "months", "years", "location"}
    require(isinstance(raw, Mapping), where, raw, "a mapping")
    for key in raw:
        require(key in allowed, f"{where}.{key}", "(unknown key)", f"one of {sorted(allowed)}")
    location = str(raw.get("location", "UTC"))
    try:
        zone = ZoneInfo(location)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}.location", location, "an IANA time zone like Asia/Shanghai") from None
    times = []
    for i, item in enumerate(raw.get("times", []) or []):
        at = f"{where}.times[{i}]"
        require(
            isinstance(item, Mapping) and "start_time" in item and "end_time" in item,
            at,
            item,
            "{start_time, end_time}",
        )
        start, end = (
            _minutes(item["start_time"], f"{at}.start_time"),
            _minutes(item["end_time"], f"{at}.end_time"),
        )
        require(start != end, at, item, "different start and end times")
        times.append((start, end))
    weekdays = _ranges(raw.get("weekdays", []), WEEKDAYS, 0, 6, f"{where}.weekdays")
    days = _ranges(raw.get("days_of_month", []), None, -31, 31, f"{where}.days_of_month")
    months = _ranges(raw.get("months", []), MONTHS, 1, 12, f"{where}.months")
    years = _ranges(raw.get("years", []), None, 1970, 9999, f"{where}.years")
    for s, e in weekdays:
        require(
            0 <= s <= e <= 6, f"{where}.weekdays", raw.get("weekdays"), "weekday ranges like monday:friday"
        )
    for s, e in months:
        require(
            1 <= s <= e <= 12, f"{where}.months", raw.get("months"), "month ranges like 1:3 or january:march"
        )
    for s, e in days:
        require(
            s != 0 and e != 0 and -31 <= s <= 31 and -31 <= e <= 31,
            f"{where}.days_of_month",
            raw.get("days_of_month"),
            "days 1..31 or -31..-1",
        )
    return CompiledPeriod(zone, tuple(times), weekdays, days, months, years)


def compile_interval(config: TimeIntervalConfig, where: str = "time_intervals") -> CompiledInterval:
    periods = tuple(compile_period(p, f"{where}.time_intervals[{i}]") for i, p in enumerate(config.periods))
    return CompiledInterval(config.name, periods, tuple(config.ranges))
