"""What the engine keeps per brand: its detectors, the brand-level baseline of forward_surge, paging records.

- `volume.VolumeSurge`: mentions per interval against the seasonal baseline (volume_surge);
- `negative.BrandNegativeSurge`: the negative share of own-text posts (negative_surge);
- how fast the brand's ordinary cascades spread (geometric mean of their peak window counts), which is what
  "expected for that brand" means for forward_surge.

`BrandState` is the unit written to the changelog-backed table: `state()` / `from_state()` round-trip it
exactly (version 2: one sub-state per detector; version 1, the flat record written before the detectors
were split, still loads).
"""

from __future__ import annotations

import math
from typing import Any

from crisiswatch.detectors.base import check_version, first_sighting
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.negative import BrandNegativeSurge
from crisiswatch.detectors.volume import VolumeSurge

STATE_VERSION = 2
NEGATIVE_SURGE = "negative_surge"
VOLUME_SURGE = "volume_surge"


class BrandState:
    __slots__ = (
        "brand",
        "last_s",
        "volume",
        "negative",
        "cascade_log_peak",
        "cascade_peaks",
        "typical_per_min",
        "recent_ids",
        "duplicates",
        "paging",
    )

    def __init__(self, brand: str, config: DetectorsConfig, time_zone: str = "UTC") -> None:
        self.brand = brand
        self.last_s = -math.inf
        self.volume = VolumeSurge(brand, config.volume_surge, time_zone)
        self.negative = BrandNegativeSurge(brand, config.negative_surge)
        self.cascade_log_peak = 0.0
        self.cascade_peaks = 0.0
        self.typical_per_min = 0.0  # derived from the two above (not stored)
        self.recent_ids: list[int] = []
        self.duplicates = 0
        # detector -> [severity or None, size at last emission, unused, started_s]
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

    def note_cascade_peak(self, peak_window_events: float, config: DetectorsConfig) -> None:
        """Remember an expired cascade's peak (geometric mean; a slow, bounded memory)."""
        self.cascade_peaks = min(self.cascade_peaks + 1.0, 500.0)
        self.cascade_log_peak += (math.log1p(peak_window_events) - self.cascade_log_peak) / self.cascade_peaks
        self._typical(config)

    def _typical(self, config: DetectorsConfig) -> None:
        if self.cascade_peaks < 20:
            self.typical_per_min = 0.0
        else:
            self.typical_per_min = math.expm1(self.cascade_log_peak) / (config.forward_surge.window_s / 60.0)

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "brand": self.brand,
            "last": self.last_s if math.isfinite(self.last_s) else None,
            "ids": list(self.recent_ids),
            "duplicates": self.duplicates,
            "paging": {k: list(v) for k, v in self.paging.items()},
            "cascades": [self.cascade_log_peak, self.cascade_peaks],
            VOLUME_SURGE: self.volume.to_state(),
            NEGATIVE_SURGE: self.negative.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], config: DetectorsConfig, time_zone: str = "UTC") -> BrandState:
        if state.get("v") == 1:
            state = _upgrade_v1(state)
        check_version(state, "brand", STATE_VERSION)
        brand = str(state["brand"])
        self = cls(brand, config, time_zone)
        self.last_s = -math.inf if state["last"] is None else float(state["last"])
        self.recent_ids = [int(i) for i in state["ids"]]
        self.duplicates = int(state["duplicates"])
        self.paging = {k: list(v) for k, v in state["paging"].items()}
        self.cascade_log_peak, self.cascade_peaks = (float(x) for x in state["cascades"])
        self._typical(config)
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
