"""What the engine keeps per brand: its detectors, the brand-level baseline of forward_surge, paging records.

- `volume.VolumeSurge`: mentions per interval against the seasonal baseline (volume_surge);
- `negative.BrandNegativeSurge`: the negative share of the brand's original posts (negative_surge);
- how fast the brand's ordinary cascades spread (`CascadePeaks`: a decaying histogram of their peak window
  counts), which is what "expected for that brand" means for forward_surge: its geometric mean is the
  expected rate of the rate z, and its tail is the learnt volume floor of a rate surge.

`BrandState` is the unit written to the changelog-backed table: `state()` / `from_state()` round-trip it
exactly (version 3: the peak histogram; version 2, one number for the peaks, and version 1, the flat record
written before the detectors were split, still load).
"""

from __future__ import annotations

import math
from typing import Any

from crisiswatch.detectors.base import check_version, first_sighting
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.negative import BrandNegativeSurge
from crisiswatch.detectors.volume import VolumeSurge

STATE_VERSION = 3
NEGATIVE_SURGE = "negative_surge"
VOLUME_SURGE = "volume_surge"


class CascadePeaks:
    """The peak window counts (forwards+comments in `forward_surge.window_s`) of a brand's expired cascades,
    as a histogram on a log scale (`BUCKETS_PER_OCTAVE` buckets per doubling of count+1) whose counts decay
    with `peak_half_life_s` of event time. Bounded: `BUCKETS` floats whatever the number of cascades.

    - `typical_per_min`: the geometric mean of the peaks per minute (the expected rate of a cascade);
    - `surge_floor`: the smallest window count that ordinary cascades reached at most
      `ordinary_surges_per_day` times per day (their tail), once `peak_history_min_s` of history is seen.
    Both are derived from the histogram when first read after a peak is noted (cascades expire in
    event-time order, often several at one watermark) and cached until the next note.
    """

    BUCKETS_PER_OCTAVE = 4
    BUCKETS = 64  # up to 2**16 events in a window
    MIN_CASCADES_FOR_TYPICAL = 20.0

    __slots__ = ("counts", "since_s", "last_s", "_typical_per_min", "_surge_floor", "_underived")

    def __init__(self) -> None:
        self.counts = [0.0] * self.BUCKETS
        self.since_s: float | None = None  # first peak noted
        self.last_s: float | None = None  # last peak noted (the counts are decayed to this time)
        self._typical_per_min = 0.0
        self._surge_floor = 0.0
        self._underived: DetectorsConfig | None = None  # the config of notes not yet derived

    @property
    def typical_per_min(self) -> float:
        if self._underived is not None:
            self.derive(self._underived)
        return self._typical_per_min

    @property
    def surge_floor(self) -> float:
        if self._underived is not None:
            self.derive(self._underived)
        return self._surge_floor

    @classmethod
    def bucket(cls, peak_window_events: float) -> int:
        b = int(math.log2(1.0 + max(peak_window_events, 0.0)) * cls.BUCKETS_PER_OCTAVE)
        return min(b, cls.BUCKETS - 1)

    @classmethod
    def lower_edge(cls, bucket: int) -> float:
        """The smallest window count in `bucket` (counts are whole numbers)."""
        return float(math.ceil(2.0 ** (bucket / cls.BUCKETS_PER_OCTAVE) - 1.0 - 1e-9))

    def note(self, peak_window_events: float, time_s: float, config: DetectorsConfig) -> None:
        fs = config.forward_surge
        if self.last_s is None or self.since_s is None:
            self.since_s = self.last_s = time_s
        elif time_s > self.last_s:
            decay = 2.0 ** (-(time_s - self.last_s) / fs.peak_half_life_s)
            self.counts = [c * decay for c in self.counts]
            self.last_s = time_s
        self.counts[self.bucket(peak_window_events)] += 1.0
        self._underived = config

    def history_s(self, half_life_s: float) -> float:
        """Event time observed, weighted by the same decay as the counts (so counts / history is a rate)."""
        if self.since_s is None or self.last_s is None:
            return 0.0
        span = self.last_s - self.since_s
        return (1.0 - 2.0 ** (-span / half_life_s)) * half_life_s / math.log(2.0)

    def derive(self, config: DetectorsConfig) -> None:
        self._underived = None
        fs = config.forward_surge
        total = sum(self.counts)
        if total < self.MIN_CASCADES_FOR_TYPICAL:
            self._typical_per_min = 0.0
        else:
            per_octave = self.BUCKETS_PER_OCTAVE
            mean_log2 = sum(c * (b + 0.5) / per_octave for b, c in enumerate(self.counts) if c and b) / total
            self._typical_per_min = (2.0**mean_log2 - 1.0) / (fs.window_s / 60.0)
        self._surge_floor = 0.0
        if fs.ordinary_surges_per_day <= 0 or self.last_s is None or self.since_s is None:
            return
        if self.last_s - self.since_s < fs.peak_history_min_s:
            return
        allowed = fs.ordinary_surges_per_day * self.history_s(fs.peak_half_life_s) / 86400.0
        tail = 0.0
        floor_bucket = self.BUCKETS
        for b in range(self.BUCKETS - 1, -1, -1):
            tail += self.counts[b]
            if tail > allowed:
                break
            floor_bucket = b
        self._surge_floor = (
            self.lower_edge(floor_bucket) if floor_bucket < self.BUCKETS else 2.0 ** (self.BUCKETS / 4)
        )

    def to_state(self) -> dict[str, Any]:
        nonzero = {str(b): round(c, 6) for b, c in enumerate(self.counts) if c >= 1e-6}
        return {"since": self.since_s, "last": self.last_s, "counts": nonzero}

    @classmethod
    def from_state(cls, state: dict[str, Any], config: DetectorsConfig) -> CascadePeaks:
        self = cls()
        self.since_s = None if state["since"] is None else float(state["since"])
        self.last_s = None if state["last"] is None else float(state["last"])
        for b, c in state["counts"].items():
            self.counts[int(b)] = float(c)
        self.derive(config)
        return self


class BrandState:
    __slots__ = (
        "brand",
        "last_s",
        "volume",
        "negative",
        "cascade_peaks",
        "recent_ids",
        "duplicates",
        "paging",
    )

    def __init__(self, brand: str, config: DetectorsConfig, time_zone: str = "UTC") -> None:
        self.brand = brand
        self.last_s = -math.inf
        self.volume = VolumeSurge(brand, config.volume_surge, time_zone)
        self.negative = BrandNegativeSurge(brand, config.negative_surge)
        self.cascade_peaks = CascadePeaks()
        self.recent_ids: list[int] = []
        self.duplicates = 0
        # detector -> [severity or None, size at last emission, highest severity rank reached, started_s]
        self.paging: dict[str, list[Any]] = {}

    def admit(self, post_hash: int, time_s: float, keep: int) -> bool:
        """False for a redelivered duplicate (one of the last `keep` post ids seen on this brand)."""
        if keep and not first_sighting(self.recent_ids, post_hash, keep):
            self.duplicates += 1
            return False
        if time_s > self.last_s:
            self.last_s = time_s
        return True

    def sync_incidents(self) -> None:
        """Tell the negative detector whether paging holds an open brand negative surge (its baseline then
        stops learning)."""
        record = self.paging.get(NEGATIVE_SURGE)
        self.negative.in_incident = record is not None and record[0] is not None

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "brand": self.brand,
            "last": self.last_s if math.isfinite(self.last_s) else None,
            "ids": list(self.recent_ids),
            "duplicates": self.duplicates,
            "paging": {k: list(v) for k, v in self.paging.items()},
            "cascades": self.cascade_peaks.to_state(),
            VOLUME_SURGE: self.volume.to_state(),
            NEGATIVE_SURGE: self.negative.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], config: DetectorsConfig, time_zone: str = "UTC") -> BrandState:
        if state.get("v") == 1:
            state = _upgrade_v1(state)
        if state.get("v") == 2:
            state = _upgrade_v2(state)
        check_version(state, "brand", STATE_VERSION)
        brand = str(state["brand"])
        self = cls(brand, config, time_zone)
        self.last_s = -math.inf if state["last"] is None else float(state["last"])
        self.recent_ids = [int(i) for i in state["ids"]]
        self.duplicates = int(state["duplicates"])
        self.paging = {k: list(v) for k, v in state["paging"].items()}
        self.cascade_peaks = CascadePeaks.from_state(state["cascades"], config)
        self.volume = VolumeSurge.from_state(brand, state[VOLUME_SURGE], config.volume_surge, time_zone)
        self.negative = BrandNegativeSurge.from_state(brand, state[NEGATIVE_SURGE], config.negative_surge)
        self.sync_incidents()
        return self


def _upgrade_v1(old: dict[str, Any]) -> dict[str, Any]:
    """A version-1 brand record (one flat record) as version 2 (one sub-state per detector)."""
    late, duplicates = old["counts"]
    interval = list(old["interval"]) + [0] * (5 - len(old["interval"]))
    record = old["paging"].get(NEGATIVE_SURGE)
    negative_open = record is not None and record[0] is not None
    return {
        "v": 2,
        "brand": old["brand"],
        "last": old["last"],
        "ids": old["ids"],
        "duplicates": duplicates,
        "paging": old["paging"],
        "cascades": old["cascades"],
        VOLUME_SURGE: {"v": 1, "count": old["volume"], "interval": interval, "late": late},
        NEGATIVE_SURGE: {
            "v": 1,
            "talk": old["talk"],
            "base": old["base"],
            "late": 0,
            "eval": [old["neg_eval"][0], old["neg_eval"][1], negative_open],
        },
    }


def _upgrade_v2(old: dict[str, Any]) -> dict[str, Any]:
    """A version-2 brand record (the peaks' geometric mean and count) as version 3 (a peak histogram): the
    count goes to the mean's bucket, so the typical rate carries over; the tail starts learning afresh
    (no history yet)."""
    log_peak, peaks = (float(x) for x in old["cascades"])
    counts = {str(CascadePeaks.bucket(math.expm1(log_peak))): peaks} if peaks else {}
    return {**old, "v": 3, "cascades": {"since": old["last"], "last": old["last"], "counts": counts}}
