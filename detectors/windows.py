"""Sliding event-time windows as rings of fixed buckets: O(1) per event, fixed-size serialisable state.

A ring of n buckets of `bucket_s` covers the window [(head - n + 1) * bucket_s, (head + 1) * bucket_s).
Events older than the ring are late: they are refused (the caller counts them) rather than folded into the
wrong bucket. Several channels (e.g. events and reach) share one ring of buckets.
"""

from __future__ import annotations

from typing import Any


class Ring:
    __slots__ = ("bucket_s", "n", "head", "sums", "totals")

    def __init__(self, bucket_s: float, n_buckets: int, channels: int = 1) -> None:
        self.bucket_s = bucket_s
        self.n = n_buckets
        self.head = -(2**62)  # bucket index of the newest bucket; none yet
        self.sums: list[list[float]] = [[0.0] * n_buckets for _ in range(channels)]
        self.totals: list[float] = [0.0] * channels

    def index(self, time_s: float) -> int:
        return int(time_s // self.bucket_s)

    def roll(self, index: int) -> None:
        """Move the newest bucket forward to `index`, clearing the buckets that fall out."""
        gap = index - self.head
        if gap <= 0:
            return
        n = len(self.sums[0])
        for channel, sums in enumerate(self.sums):
            if gap >= n:
                for j in range(n):
                    sums[j] = 0.0
            else:
                for j in range(self.head + 1, index + 1):
                    sums[j % n] = 0.0
            # Recomputed, not decremented: no floating drift however long the key lives.
            self.totals[channel] = sum(sums)
        self.head = index

    def add(self, time_s: float, values: tuple[float, ...]) -> bool:
        """Add one event's values; False when it is older than the window (late)."""
        index = int(time_s // self.bucket_s)
        if index > self.head:
            self.roll(index)
        elif index <= self.head - len(self.sums[0]):
            return False
        slot = index % len(self.sums[0])
        for channel, value in enumerate(values):
            self.sums[channel][slot] += value
            self.totals[channel] += value
        return True

    def recent(self, buckets: int) -> list[float]:
        """Per channel, the sum of the newest `buckets` buckets (the newest one as far as it has filled)."""
        n = self.n
        slots = [j % n for j in range(self.head - min(buckets, n) + 1, self.head + 1)]
        return [sum(sums[j] for j in slots) for sums in self.sums]

    def window_start_s(self) -> float:
        return (self.head - len(self.sums[0]) + 1) * self.bucket_s

    def state(self) -> list[Any]:
        return [self.head, [_compact(s) for s in self.sums], _compact(self.totals)]

    def load(self, state: list[Any]) -> None:
        self.head = int(state[0])
        self.sums = [[float(x) for x in s] for s in state[1]]
        self.totals = [float(x) for x in state[2]]

    def sparse_state(self) -> list[Any]:
        """`[head, [[slot, value per channel], ...]]` for the non-zero buckets only, plus the totals when they
        are not the buckets' sums (float rounding between rolls): most rings of a short-lived key are
        nearly empty, and this restores the same floats as `state()`."""
        sums = self.sums
        channels = range(len(sums))
        buckets = [[j, *(whole(sums[c][j]) for c in channels)] for j in range(self.n) if _any_at(sums, j)]
        out: list[Any] = [self.head, buckets]
        if self.totals != [sum(s) for s in sums]:
            out.append(_compact(self.totals))
        return out

    def load_sparse(self, state: list[Any]) -> None:
        self.head = int(state[0])
        sums: list[list[float]] = [[0.0] * self.n for _ in self.sums]
        for bucket in state[1]:
            slot = int(bucket[0])
            for channel, value in enumerate(bucket[1:]):
                sums[channel][slot] = float(value)
        self.sums = sums
        self.totals = [float(x) for x in state[2]] if len(state) > 2 else [sum(s) for s in sums]


def _any_at(sums: list[list[float]], slot: int) -> bool:
    return any(s[slot] for s in sums)


def whole(value: float) -> float | int:
    """A whole float as an int (JSON `3` instead of `3.0`), restored to the same float."""
    if isinstance(value, int):
        return value
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _compact(values: list[float]) -> list[float | int]:
    """Whole numbers as ints: a smaller JSON state, restored to the same floats."""
    return [whole(v) for v in values]
