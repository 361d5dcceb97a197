"""volume_surge: mentions per interval against a baseline that knows the daily and weekly cycle.

`VolumeSurge` is the detector (one per brand): it counts posts into event-time intervals, or takes plain
counts per interval (`IntervalCount`, what the NAB benchmark feeds it). Its core, `CountSurge`, scores a
count series; `VolumeModel` is the baseline: additive in log(count + 1), a level that follows slow
changes, an hour-of-day profile and a day-of-week profile in the brand's time zone, and a robust spread
(mean absolute deviation). z is how many spreads an interval sits above its expectation. Surging
intervals barely teach the baseline (`protect_baseline`), so a long incident does not become normal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

from crisiswatch.detectors.base import (
    NO_METRICS,
    PostBatch,
    Score,
    check_version,
    finite_or_none,
    new_score,
    none_to,
    not_judged,
)
from crisiswatch.detectors.config import VolumeSurgeConfig
from crisiswatch.detectors.events import EnrichedPost

NAME = "volume_surge"
NONE = -(2**62)
# Idle intervals replayed as zero counts when a brand wakes up; longer gaps are skipped, not taught.
MAX_GAP_INTERVALS = 2016

# Mean absolute deviation -> standard deviation for a normal distribution.
MAD_TO_SD = math.sqrt(math.pi / 2.0)


@lru_cache(maxsize=4096)
def _local_slots(hour_index: int, time_zone: str) -> tuple[int, int]:
    """(hour of day, day of week) of the UTC hour `hour_index` in `time_zone` (cached per hour)."""
    moment = datetime.fromtimestamp(hour_index * 3600.0, UTC)
    if time_zone != "UTC":
        moment = moment.astimezone(ZoneInfo(time_zone))
    return moment.hour, moment.weekday()


def _short(value: float) -> float:
    """Seven significant digits: the model is no more precise than that, and its JSON state stays small."""
    return float(f"{value:.7g}")


def _rate(step_s: float, half_life_s: float) -> float:
    return 1.0 - 0.5 ** (step_s / half_life_s)


class VolumeModel:
    """Seasonal baseline of one count series. `score(t, count)` judges before `learn` updates."""

    __slots__ = ("config", "time_zone", "level", "spread", "hours", "days", "seen", "_rates")

    def __init__(self, config: VolumeSurgeConfig, time_zone: str = "UTC") -> None:
        self.config = config
        self.time_zone = time_zone
        self.level: float | None = None
        self.spread = 0.0
        self.hours = [0.0] * 24
        self.days = [0.0] * 7
        self.seen = 0
        step = config.bucket_s
        per_day = 86400.0 / step
        season_days = config.season_half_life_s / 86400.0
        self._rates = (
            _rate(step, config.level_half_life_s),
            _rate(step, config.spread_half_life_s),
            # each hour slot is visited per_day/24 times a day; each weekday slot per_day times a week
            1.0 - 0.5 ** (1.0 / (per_day / 24.0 * season_days)),
            1.0 - 0.5 ** (1.0 / (per_day * season_days / 7.0)),
        )

    def expected_log(self, time_s: float) -> tuple[float, int, int]:
        hour, day = _local_slots(int(time_s // 3600.0), self.time_zone)
        level = self.level if self.level is not None else 0.0
        if not self.config.seasonal:
            return level, hour, day
        return level + self.hours[hour] + self.days[day], hour, day

    def sd(self, expected_log: float) -> float:
        # A Poisson count's log spread at this mean is the least the data can show.
        mean = math.expm1(max(expected_log, 0.0))
        poisson = math.sqrt(mean) / (mean + 1.0) if mean > 0 else 1.0
        return max(self.spread * MAD_TO_SD, self.config.min_spread, poisson)

    def score(self, time_s: float, count: float) -> float:
        """z of `count` for the interval starting at `time_s`; 0 while warming up."""
        if self.level is None or self.seen < self.config.warmup_intervals:
            return 0.0
        mu, _, _ = self.expected_log(time_s)
        return (math.log1p(max(count, 0.0)) - mu) / self.sd(mu)

    def threshold_count(self, time_s: float, z: float) -> float:
        """The count at which the interval's z reaches `z` (an early in-interval alarm is a count compare)."""
        if self.level is None or self.seen < self.config.warmup_intervals:
            return math.inf
        mu, _, _ = self.expected_log(time_s)
        return math.expm1(mu + z * self.sd(mu))

    def learn(self, time_s: float, count: float, surging: bool) -> None:
        x = math.log1p(max(count, 0.0))
        self.seen += 1
        if self.level is None:
            self.level = _short(x)
            return
        a_level, a_spread, a_hour, a_day = self._rates
        if surging and self.config.protect_baseline:
            f = self.config.surge_learning_fraction
            a_level, a_spread, a_hour, a_day = a_level * f, a_spread * f, a_hour * f, a_day * f
        mu, hour, day = self.expected_log(time_s)
        residual = x - mu
        self.spread += a_spread * (abs(residual) - self.spread)
        self.spread = _short(self.spread)
        if self.config.seasonal:
            self.level = _short(self.level + a_level * (x - self.hours[hour] - self.days[day] - self.level))
            self.hours[hour] = _short(
                self.hours[hour] + a_hour * (x - self.level - self.days[day] - self.hours[hour])
            )
            self.days[day] = _short(
                self.days[day] + a_day * (x - self.level - self.hours[hour] - self.days[day])
            )
        else:
            self.level = _short(self.level + a_level * (x - self.level))

    def state(self) -> list[Any]:
        return [self.level, self.spread, self.seen, list(self.hours), list(self.days)]

    def load(self, state: list[Any]) -> None:
        self.level, self.spread, self.seen = state[0], float(state[1]), int(state[2])
        self.hours = [float(x) for x in state[3]]
        self.days = [float(x) for x in state[4]]


class CountSurge:
    """volume_surge on a plain count series: `update(time_s, count) -> score`, fire once per episode.

    The raw z (spreads above the seasonal expectation) is divided by the series' own running `quantile` of
    z (a stochastic-approximation quantile, updated in O(1)): score 1.0 means "as unusual as this brand's
    rarest 1-in-1/(1-quantile) intervals". Brands differ in how heavy their tails are; a z of 6 is routine
    for one and unheard of for another, and this puts them on one scale.
    An episode opens at `surge_score` (with at least `min_count` mentions) and stays open until
    `resolve_intervals` consecutive intervals score below `resolve_score`; `onset` is True only on the
    interval that opened it, which is what pages (fire once).

    `alarm_score` is the fire-once view of the score that needs no threshold: the score of an interval
    outside an open episode that beats every recent score (a running maximum that halves every
    `alarm_memory_s`), else 0. Whatever threshold a user picks, a surge then alarms once, and a second
    spike soon after alarms only if it is bigger than the first (what NAB rewards, bench/nab_realtweets.py).
    """

    __slots__ = (
        "model",
        "surging",
        "calm",
        "quantile",
        "onset",
        "last_z",
        "last_score",
        "alarm_score",
        "recent_max",
        "_decay",
    )

    def __init__(self, config: VolumeSurgeConfig, time_zone: str = "UTC") -> None:
        self.model = VolumeModel(config, time_zone)
        self.surging = False
        self.calm = 0
        self.quantile = config.initial_quantile_z
        self.onset = False
        self.last_z = 0.0
        self.last_score = 0.0
        self.alarm_score = 0.0
        self.recent_max = 0.0
        self._decay = 0.5 ** (config.bucket_s / config.alarm_memory_s)

    def update(self, time_s: float, count: float) -> float:
        cfg = self.model.config
        z = self.model.score(time_s, count)
        self.last_z = z
        warm = self.model.level is not None and self.model.seen >= cfg.warmup_intervals
        score = max(z, 0.0) / max(self.quantile, cfg.min_quantile_z) if warm else 0.0
        if count < cfg.min_count:
            score = 0.0  # the volume floor: too few mentions are never a surge, whatever the z
        self.last_score = score
        hot = score >= cfg.surge_score
        self.alarm_score = score if score > self.recent_max and not self.surging else 0.0
        self.recent_max = _short(max(self.recent_max * self._decay, score))
        self.onset = hot and not self.surging
        if hot:
            self.surging = True
            self.calm = 0
        elif self.surging:
            self.calm = self.calm + 1 if score < cfg.resolve_score else 0
            if self.calm >= cfg.resolve_intervals:
                self.surging = False
                self.calm = 0
        if warm:
            step = cfg.quantile_step * (cfg.quantile - (1.0 if z < self.quantile else 0.0))
            self.quantile = _short(min(self.quantile + step, cfg.max_quantile_z))
        self.model.learn(time_s, count, self.surging or hot)
        return score

    def state(self) -> list[Any]:
        return [
            self.model.state(),
            self.surging,
            self.calm,
            self.quantile,
            self.onset,
            self.last_z,
            self.alarm_score,
            self.recent_max,
            self.last_score,
        ]

    def load(self, state: list[Any]) -> None:
        self.model.load(state[0])
        self.surging, self.calm = bool(state[1]), int(state[2])
        self.quantile, self.onset, self.last_z = float(state[3]), bool(state[4]), float(state[5])
        # states written before the alarm score existed (6 items) start with no recent maximum
        self.alarm_score = float(state[6]) if len(state) > 6 else 0.0
        self.recent_max = float(state[7]) if len(state) > 7 else 0.0
        self.last_score = float(state[8]) if len(state) > 8 else 0.0


class IntervalCount(NamedTuple):
    """A plain count of mentions in the interval starting at `start_s` (the NAB benchmark feeds these)."""

    start_s: float
    mentions: float


class VolumeSurge:
    """volume_surge for one brand: mentions per interval (`bucket_s`) against a seasonal baseline.

    `update(post)` counts posts into event-time intervals; an interval closes `grace_s` after its end (or
    when `score_at(watermark)` passes that point), is scored by `CountSurge`, then teaches the baseline.
    `update(IntervalCount(start_s, count))` scores a plain count series the same way.

    Score value: the surge score, z / (the brand's running 99.9% quantile of z), where z is the interval's
    log(count + 1) above its seasonal expectation in robust spreads: 1.0 (`surge_score`) is as unusual as
    the brand's rarest 1-in-1000 intervals; 0 while warming up or below the `min_count` floor. A judged
    score's metrics list the intervals this update closed (`intervals`), and an early alarm when the open
    interval already crossed the surge count before its end.
    """

    name: ClassVar[str] = NAME
    STATE_VERSION: ClassVar[int] = 1

    __slots__ = (
        "key",
        "config",
        "count",
        "interval",
        "interval_count",
        "next_count",
        "interval_threshold",
        "early",
        "late",
    )

    def __init__(self, key: str, config: VolumeSurgeConfig, time_zone: str = "UTC") -> None:
        self.key = key
        self.config = config
        self.count = CountSurge(config, time_zone)
        self.interval = NONE  # index of the open interval
        self.interval_count = 0
        # posts already in the next interval while the open one still takes late posts (grace_s)
        self.next_count = 0
        self.interval_threshold = math.inf
        self.early = False  # the open interval already crossed the surge count
        self.late = 0

    @property
    def surging(self) -> bool:
        return self.count.surging

    # ------------------------------------------------------------------ folding
    def update(self, event: EnrichedPost | IntervalCount) -> Score:
        if isinstance(event, IntervalCount):
            entries: list[dict[str, Any]] = []
            self._close(event.start_s, event.mentions, entries)
            return self._judged(entries, event.start_s + self.config.bucket_s)
        t = event.post.created_at_s
        if int(t // self.config.bucket_s) == self.interval and not self.early:  # the common case
            self.interval_count += 1
            if self.interval_count >= self.interval_threshold:
                self.early = True
                return self._judged([self._early_entry(t)], t)
            return self._idle_score(t)
        entries = []
        was_early = self.early
        self._fold(t, entries)
        if self.early and not was_early:
            entries.append(self._early_entry(t))
        return self._judged(entries, t) if entries else self._idle_score(t)

    def _fold(self, t: float, entries: list[dict[str, Any]]) -> None:
        bucket_s = self.config.bucket_s
        index = int(t // bucket_s)
        if index > self.interval + 1 or self.interval == NONE:
            self._close_until(index, entries)
        elif index == self.interval + 1:
            closing = int((t - self.config.grace_s) // bucket_s)
            if closing > self.interval:
                self._close_until(closing, entries)
        if index == self.interval:
            self.interval_count += 1
            if self.interval_count >= self.interval_threshold:
                self.early = True
        elif index == self.interval + 1:
            self.next_count += 1
            if self.next_count >= self.interval_threshold:
                self.early = True
        else:
            self.late += 1

    def _close(self, start_s: float, count: float, entries: list[dict[str, Any]]) -> None:
        """Score one finished interval, then let it teach the baseline."""
        expected = self.count.model.threshold_count(start_s, 0.0)
        score = self.count.update(start_s, count)
        entries.append(
            {
                "interval_start_s": start_s,
                "event_time_s": start_s + self.config.bucket_s,
                "mentions": int(count) if float(count).is_integer() else count,
                "expected_mentions": round(expected, 1) if math.isfinite(expected) else None,
                "volume_z": round(self.count.last_z, 3),
                "surge_score": round(score, 4),
                "alarm_score": self.count.alarm_score,
                "surging": self.count.surging,
                "early": False,
            }
        )

    def _close_until(self, index: int, entries: list[dict[str, Any]]) -> None:
        """Close every interval before `index`, and open `index`. Posts already counted for the interval
        after the open one (within its grace) stay with it; a long idle gap is replayed as zero counts (at
        most `MAX_GAP_INTERVALS`), of which only surging ones, the first and the last are reported."""
        if index <= self.interval:
            return
        bucket_s = self.config.bucket_s
        carried = 0
        if self.interval > NONE:
            self._close(self.interval * bucket_s, self.interval_count, entries)
            if index == self.interval + 1:
                carried = self.next_count
            else:
                gap = index - self.interval - 1
                if gap > MAX_GAP_INTERVALS:
                    gap = 0
                for j in range(self.interval + 1, self.interval + 1 + gap):
                    count = self.next_count if j == self.interval + 1 else 0
                    quiet: list[dict[str, Any]] = []
                    self._close(j * bucket_s, count, quiet)
                    if self.count.surging or count or j == self.interval + gap:
                        entries.extend(quiet)
            del entries[:-4]
        self._open(index)
        if carried:
            self.interval_count = carried
            self.early = carried >= self.interval_threshold

    def _open(self, index: int) -> None:
        vs = self.config
        self.interval = index
        self.interval_count = 0
        self.next_count = 0
        self.early = False
        self.interval_threshold = max(
            self.count.model.threshold_count(
                index * vs.bucket_s, vs.surge_score * max(self.count.quantile, vs.min_quantile_z)
            ),
            float(vs.min_count),
        )

    def _early_entry(self, t: float) -> dict[str, Any]:
        """The newest open interval, which already crossed the surge count."""
        vs = self.config
        interval, count = (
            (self.interval + 1, self.next_count) if self.next_count else (self.interval, self.interval_count)
        )
        start = interval * vs.bucket_s
        z = self.count.model.score(start, count)
        expected = self.count.model.threshold_count(start, 0.0)
        return {
            "interval_start_s": start,
            "event_time_s": t,
            "mentions": count,
            "expected_mentions": round(expected, 1) if math.isfinite(expected) else None,
            "volume_z": round(z, 3),
            "surge_score": round(max(z, 0.0) / max(self.count.quantile, vs.min_quantile_z), 4),
            "alarm_score": 0.0,
            "surging": True,
            "early": True,
        }

    def _judged(self, entries: list[dict[str, Any]], t: float) -> Score:
        newest = entries[-1]
        vs = self.config

        def explain() -> str:
            return (
                f"{newest['mentions']} mentions per {vs.bucket_s / 60:g} min against about "
                f"{newest['expected_mentions']} expected at this hour (z={newest['volume_z']:.1f})"
            )

        return Score(NAME, self.key, newest["surge_score"], t, {"intervals": entries}, explain)

    def _idle_score(self, t: float) -> Score:
        """No interval closed: the score of the last closed interval stands (no metrics)."""
        return new_score(Score, (NAME, self.key, self.count.last_score, t, NO_METRICS, not_judged))

    @classmethod
    def update_many(
        cls, detectors: Sequence[VolumeSurge], batch: PostBatch, rows: np.ndarray, owners: np.ndarray
    ) -> list[Score | None]:
        """The batch path: a brand whose rows all fall in its open interval (or the next one, within the
        grace) and cross no threshold is a count added with numpy; a brand whose interval closes or whose
        early alarm fires in this batch is folded row by row, exactly like `update`. One score per brand
        that took a row, None for the others."""
        out: list[Score | None] = [None] * len(detectors)
        if not len(rows):
            return out
        size = len(detectors)
        times = batch.times[rows]
        bucket_s = np.array([d.config.bucket_s for d in detectors])[owners]
        grace_s = np.array([d.config.grace_s for d in detectors])[owners]
        interval = np.array([d.interval for d in detectors], dtype=np.int64)[owners]
        index = np.floor(times / bucket_s).astype(np.int64)
        closing = np.floor((times - grace_s) / bucket_s).astype(np.int64)
        simple = (interval != NONE) & (
            (index <= interval) | ((index == interval + 1) & (closing <= interval))
        )
        current = np.bincount(owners, weights=index == interval, minlength=size)
        following = np.bincount(owners, weights=index == interval + 1, minlength=size)
        late = np.bincount(owners, weights=index < interval, minlength=size)
        slow = np.zeros(size, dtype=bool)
        slow[owners[~simple]] = True
        newest = np.full(size, -np.inf)
        np.maximum.at(newest, owners, times)
        for o in np.unique(owners).tolist():
            detector = detectors[o]
            t_newest = float(newest[o])
            if not slow[o] and not detector.early:
                threshold = detector.interval_threshold
                if (
                    detector.interval_count + current[o] >= threshold
                    or detector.next_count + following[o] >= threshold
                ):
                    slow[o] = True
            if slow[o]:
                entries: list[dict[str, Any]] = []
                for t in times[owners == o].tolist():
                    was_early = detector.early
                    detector._fold(t, entries)
                    if detector.early and not was_early:
                        entries.append(detector._early_entry(t))
                out[o] = detector._judged(entries, t_newest) if entries else detector._idle_score(t_newest)
                continue
            detector.interval_count += int(current[o])
            detector.next_count += int(following[o])
            detector.late += int(late[o])
            out[o] = detector._idle_score(t_newest)
        return out

    # ------------------------------------------------------------------ scoring
    def score_at(self, now_s: float) -> Score:
        """Close the intervals whose grace ended by event time `now_s`."""
        vs = self.config
        index = int((now_s - vs.grace_s) // vs.bucket_s)
        entries: list[dict[str, Any]] = []
        if index > self.interval and self.interval > NONE:
            self._close_until(index, entries)
        return self._judged(entries, now_s) if entries else self._idle_score(now_s)

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        return {
            "v": self.STATE_VERSION,
            "count": self.count.state(),
            "interval": [
                self.interval,
                self.interval_count,
                finite_or_none(self.interval_threshold),
                self.early,
                self.next_count,
            ],
            "late": self.late,
        }

    @classmethod
    def from_state(
        cls, key: str, state: dict[str, Any], config: VolumeSurgeConfig, time_zone: str = "UTC"
    ) -> VolumeSurge:
        check_version(state, "volume_surge", cls.STATE_VERSION)
        self = cls(key, config, time_zone)
        self.count.load(state["count"])
        interval, self.interval_count, threshold, self.early = state["interval"][:4]
        self.next_count = int(state["interval"][4]) if len(state["interval"]) > 4 else 0
        self.interval = int(interval)
        self.interval_threshold = none_to(threshold, math.inf)
        self.late = int(state["late"])
        return self
