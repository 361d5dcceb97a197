"""Per brand state: mention volume per interval (seasonal baseline) and the negative share of own-text posts.

The negative share's baseline is a pair of exponentially decayed counts (negatives, posts) learnt from
closed buckets only, and frozen while the brand has an open negative surge (`protect_baseline`), so an
incident never becomes the new normal. The brand also remembers how fast its ordinary cascades spread
(geometric mean of their peak window counts), which is what "expected for that brand" means for
forward_surge.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.events import EnrichedPost
from crisiswatch.detectors.stats import beta_binomial_z, wilson_bounds
from crisiswatch.detectors.volume import CountSurge
from crisiswatch.detectors.windows import Ring

STATE_VERSION = 1
# Idle intervals replayed as zero counts when a brand wakes up; longer gaps are skipped, not taught.
MAX_GAP_INTERVALS = 2016


class BrandState:
    __slots__ = (
        "brand",
        "last_s",
        "volume",
        "interval",
        "interval_count",
        "next_count",
        "interval_threshold",
        "early",
        "closed",
        "talk",
        "base_posts",
        "base_negative",
        "base_buckets",
        "cascade_log_peak",
        "cascade_peaks",
        "late",
        "duplicates",
        "recent_ids",
        "paging",
        "neg_eval",
    )

    def __init__(self, brand: str, config: DetectorsConfig, time_zone: str = "UTC") -> None:
        ns = config.negative_surge
        self.brand = brand
        self.last_s = -math.inf
        self.volume = CountSurge(config.volume_surge, time_zone)
        self.interval = -(2**62)  # index of the open interval
        self.interval_count = 0
        # posts already in the next interval while the open one still takes late posts (grace_s)
        self.next_count = 0
        self.interval_threshold = math.inf
        self.early = False  # the open interval already crossed the surge count
        # closed intervals waiting to be reported: [start_s, count, z, surging]
        self.closed: list[list[Any]] = []
        self.talk = Ring(ns.bucket_s, round(ns.window_s / ns.bucket_s), 2)
        self.base_posts = 0.0
        self.base_negative = 0.0
        self.base_buckets = 0.0
        self.cascade_log_peak = 0.0
        self.cascade_peaks = 0.0
        self.late = 0
        self.duplicates = 0
        self.recent_ids: list[int] = []
        # detector -> [severity or None, size at last emission, started_s]
        self.paging: dict[str, list[Any]] = {}
        # [negatives in window at which the next evaluation is due, talk bucket of the last one]
        self.neg_eval: list[int] = [0, -1]

    def negative_due(self, config: DetectorsConfig) -> bool:
        """Evaluate the negative share only when negatives grew 5% or a new bucket began (cheap gate)."""
        k = self.talk.totals[1]
        open_ = self.paging.get("negative_surge", [None])[0] is not None
        if k < config.negative_surge.min_negative and not open_:
            return False
        if k < self.neg_eval[0] and self.talk.head == self.neg_eval[1]:
            return False
        self.neg_eval = [int(k * 1.05) + 1, self.talk.head]
        return True

    # ------------------------------------------------------------------ volume
    def _open(self, index: int, config: DetectorsConfig) -> None:
        vs = config.volume_surge
        self.interval = index
        self.interval_count = 0
        self.next_count = 0
        self.early = False
        self.interval_threshold = max(
            self.volume.model.threshold_count(
                index * vs.bucket_s, vs.surge_score * max(self.volume.quantile, vs.min_quantile_z)
            ),
            float(vs.min_count),
        )

    def close_until(self, index: int, config: DetectorsConfig) -> None:
        """Close every interval before `index` (scoring, then learning), and open `index`.

        Posts already counted for the interval after the open one (within its grace) stay with it."""
        if index <= self.interval:
            return
        bucket_s = config.volume_surge.bucket_s
        carried = 0
        if self.interval > -(2**62):
            start = self.interval * bucket_s
            z = self.volume.update(start, self.interval_count)
            self.closed.append([start, self.interval_count, z, self.volume.surging])
            if index == self.interval + 1:
                carried = self.next_count
            else:
                gap = index - self.interval - 1
                if gap > MAX_GAP_INTERVALS:
                    gap = 0
                for j in range(self.interval + 1, self.interval + 1 + gap):
                    count = self.next_count if j == self.interval + 1 else 0
                    z = self.volume.update(j * bucket_s, count)
                    if self.volume.surging or count or j == self.interval + gap:
                        self.closed.append([j * bucket_s, count, z, self.volume.surging])
            del self.closed[:-4]
        self._open(index, config)
        if carried:
            self.interval_count = carried
            self.early = carried >= self.interval_threshold

    def closable(self, time_s: float, config: DetectorsConfig) -> int:
        """The interval index that event time `time_s` opens: an interval closes `grace_s` after its end,
        so slightly late posts still count in it (the pipeline drops posts later than its allowed lateness)."""
        vs = config.volume_surge
        return int((time_s - vs.grace_s) // vs.bucket_s)

    # ------------------------------------------------------------------ folding
    def observe(self, item: EnrichedPost, config: DetectorsConfig) -> bool:
        post = item.post
        if config.dedup_ids:
            h = zlib.crc32(post.id.encode())
            if h in self.recent_ids:
                self.duplicates += 1
                return False
            self.recent_ids.append(h)
            if len(self.recent_ids) > config.dedup_ids:
                del self.recent_ids[0]
        t = post.created_at_s
        index = int(t // config.volume_surge.bucket_s)
        if index > self.interval + 1 or (self.interval == -(2**62)):
            self.close_until(index, config)
        elif index == self.interval + 1:
            closing = self.closable(t, config)
            if closing > self.interval:
                self.close_until(closing, config)
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
        if t > self.last_s:
            self.last_s = t
        if item.negative_probability is not None:
            ns = config.negative_surge
            negative = item.negative_probability >= ns.negative_probability or (
                item.complaint_probability is not None
                and item.complaint_probability >= ns.complaint_probability
            )
            self.roll_talk(t, config)
            if not self.talk.add(t, (1.0, 1.0 if negative else 0.0)):
                self.late += 1
        return True

    def roll_talk(self, time_s: float, config: DetectorsConfig) -> None:
        """Move the negative-share window to `time_s`; buckets leaving the window teach the baseline.

        Learning only what leaves the window (an hour late by default) gives the detector that long to
        notice an incident before any of it can enter the baseline; during an open negative surge nothing
        is learnt (`protect_baseline`).
        """
        index = self.talk.index(time_s)
        head = self.talk.head
        if index <= head:
            return
        ns = config.negative_surge
        n = len(self.talk.sums[0])
        protected = ns.protect_baseline and self.paging.get("negative_surge", [None])[0] is not None
        if head > -(2**62):
            decay_one = 0.5 ** (ns.bucket_s / ns.baseline_half_life_s)
            for j in range(max(head - n + 1, index - n - 10 * n), index - n + 1):
                self.base_posts *= decay_one
                self.base_negative *= decay_one
                self.base_buckets *= decay_one
                if j > head - n and not protected:
                    slot = j % n
                    self.base_posts += self.talk.sums[0][slot]
                    self.base_negative += self.talk.sums[1][slot]
                    self.base_buckets += 1.0
        self.talk.roll(index)

    def baseline_share(self, config: DetectorsConfig) -> float:
        ns = config.negative_surge
        return (self.base_negative + ns.prior_share * ns.prior_posts) / (self.base_posts + ns.prior_posts)

    def expected_window_negatives(self, config: DetectorsConfig) -> float:
        n = len(self.talk.sums[0])
        if self.base_buckets < n:
            return 0.0
        return self.base_negative / self.base_buckets * n

    def note_cascade_peak(self, peak_window_events: float) -> None:
        """Remember an expired cascade's peak (geometric mean; a slow, bounded memory)."""
        self.cascade_peaks = min(self.cascade_peaks + 1.0, 500.0)
        self.cascade_log_peak += (math.log1p(peak_window_events) - self.cascade_log_peak) / self.cascade_peaks

    def typical_cascade_per_min(self, config: DetectorsConfig) -> float:
        if self.cascade_peaks < 20:
            return 0.0
        return math.expm1(self.cascade_log_peak) / (config.forward_surge.window_s / 60.0)

    def negative_metrics(self, now_s: float, config: DetectorsConfig) -> dict[str, Any]:
        ns = config.negative_surge
        self.roll_talk(now_s, config)
        n, k = self.talk.totals
        share0 = self.baseline_share(config)
        lower, upper = wilson_bounds(k, n, ns.wilson_z)
        return {
            "window_text_posts": int(n),
            "window_negative_posts": int(k),
            "negative_share": round(k / n, 4) if n else None,
            "negative_share_lower": round(lower, 4),
            "negative_share_upper": round(upper, 4),
            "baseline_negative_share": round(share0, 4),
            "expected_window_negatives": round(self.expected_window_negatives(config), 2),
            "negative_z": round(beta_binomial_z(k, n, share0, ns.overdispersion), 3),
        }

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "brand": self.brand,
            "last": self.last_s if math.isfinite(self.last_s) else None,
            "volume": self.volume.state(),
            "interval": [
                self.interval,
                self.interval_count,
                _inf_out(self.interval_threshold),
                self.early,
                self.next_count,
            ],
            "closed": [list(c) for c in self.closed],
            "talk": self.talk.state(),
            "base": [self.base_posts, self.base_negative, self.base_buckets],
            "cascades": [self.cascade_log_peak, self.cascade_peaks],
            "counts": [self.late, self.duplicates],
            "ids": list(self.recent_ids),
            "paging": {k: list(v) for k, v in self.paging.items()},
            "neg_eval": list(self.neg_eval),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], config: DetectorsConfig, time_zone: str = "UTC") -> BrandState:
        version = state.get("v")
        if version != STATE_VERSION:
            raise ValueError(f"brand state version {version!r} is not supported (expected {STATE_VERSION})")
        self = cls(str(state["brand"]), config, time_zone)
        self.last_s = -math.inf if state["last"] is None else float(state["last"])
        self.volume.load(state["volume"])
        interval, self.interval_count, threshold, self.early = state["interval"][:4]
        self.next_count = int(state["interval"][4]) if len(state["interval"]) > 4 else 0
        self.interval = int(interval)
        self.interval_threshold = math.inf if threshold is None else float(threshold)
        self.closed = [list(c) for c in state["closed"]]
        self.talk.load(state["talk"])
        self.base_posts, self.base_negative, self.base_buckets = (float(x) for x in state["base"])
        self.cascade_log_peak, self.cascade_peaks = (float(x) for x in state["cascades"])
        self.late, self.duplicates = state["counts"]
        self.recent_ids = [int(i) for i in state["ids"]]
        self.paging = {k: list(v) for k, v in state["paging"].items()}
        self.neg_eval = [int(x) for x in state["neg_eval"]]
        return self


def _inf_out(value: float) -> float | None:
    return value if math.isfinite(value) else None
