"""Event-time alignment of a brand partition's inputs, which come from every source partition.

The cascade agents of different source partitions run at different speeds (a backlog is caught up one
fetch-sized chunk per partition at a time), so a brand partition receives observations hours apart in
event time back to back. Applied as they come, most would be "late" for the brand's windows. Instead,
each source partition's progress (its frontier: the latest event time seen from it, moved by observations
and by watermark heartbeats the cascade agent sends after each batch) is tracked, and observations are
released only up to the slowest active frontier, in a k-way merge of per-source FIFO queues (so each
source's own order, which the idempotency offsets rely on, is kept). A source not heard from for
`idle_after_s` (a silent partition: like Flink's idleness) no longer holds the others back, however far
behind it is; one that is merely behind but still sending does. A full buffer releases its oldest
observations. Plain Python: "now" is passed in by the caller (a monotonic clock in the worker).

A source's frontier is its newest event time, but its posts are not in event-time order (a quarter of the
generated `week` stream arrives up to 10 s out of order). Released right up to the frontier, a post that
arrives out of order would be applied after newer posts of other sources, at a place that depends on how
the cascade side batched them, and one worker and two gave different brand incidents
(bench/results/perf.md, seventh session). So observations are released only up to the aligned frontier
minus `hold_back_s`: what arrives within that much of its source's frontier is merged in the same order,
whatever the timing.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")


class AlignedMerge(Generic[Item]):
    def __init__(self, idle_after_s: float, max_buffered: int, hold_back_s: float = 0.0) -> None:
        self.idle_after_s = idle_after_s
        self.max_buffered = max_buffered
        self.hold_back_s = hold_back_s
        self.frontiers: dict[int, float] = {}
        self._heard_at: dict[int, float] = {}
        self._queues: dict[int, deque[tuple[float, Item]]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def advance(self, source: int, event_time_s: float, now_s: float) -> None:
        """A heartbeat: `source` has processed everything up to `event_time_s`."""
        self._heard_at[source] = now_s
        if event_time_s > self.frontiers.get(source, float("-inf")):
            self.frontiers[source] = event_time_s

    def add(self, source: int, event_time_s: float, item: Item, now_s: float) -> None:
        self._queues.setdefault(source, deque()).append((event_time_s, item))
        self._size += 1
        self.advance(source, event_time_s, now_s)

    def aligned_s(self, now_s: float) -> float | None:
        """The event time every active source has reached, less the hold-back (None when no source is
        active)."""
        active = [
            t for source, t in self.frontiers.items() if now_s - self._heard_at[source] < self.idle_after_s
        ]
        return min(active) - self.hold_back_s if active else None

    def release(self, now_s: float) -> list[Item]:
        """Observations that are now safe to apply, oldest first, each source's order preserved."""
        aligned = self.aligned_s(now_s)
        if aligned is None:
            aligned = float("inf")  # every source went silent: nothing more is coming to wait for
        heads = [(queue[0][0], source) for source, queue in self._queues.items() if queue]
        heapq.heapify(heads)
        released: list[Item] = []
        while heads:
            event_time_s, source = heads[0]
            if event_time_s > aligned and self._size <= self.max_buffered:
                break
            queue = self._queues[source]
            released.append(queue.popleft()[1])
            self._size -= 1
            if queue:
                heapq.heapreplace(heads, (queue[0][0], source))
            else:
                heapq.heappop(heads)
        return released
