"""Mentions per interval against a baseline that knows the daily and weekly cycle (volume_surge's core).

Works on counts per interval, so it serves both the brand stream (posts folded into intervals) and plain
count series (the NAB benchmark). The model is additive in log(count + 1): a level that follows slow
changes, an hour-of-day profile and a day-of-week profile in the brand's time zone, and a robust spread
(mean absolute deviation). The score is a z: how many spreads the interval sits above its expectation.
Surging intervals barely teach the baseline (`protect_baseline`), so a long incident does not become normal.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from crisiswatch.detectors.config import VolumeSurgeConfig

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
            self.quantile = _short(self.quantile + step)
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
        ]

    def load(self, state: list[Any]) -> None:
        self.model.load(state[0])
        self.surging, self.calm = bool(state[1]), int(state[2])
        self.quantile, self.onset, self.last_z = float(state[3]), bool(state[4]), float(state[5])
        # states written before the alarm score existed (6 items) start with no recent maximum
        self.alarm_score = float(state[6]) if len(state) > 6 else 0.0
        self.recent_max = float(state[7]) if len(state) > 7 else 0.0
