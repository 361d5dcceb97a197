"""How the worker runs CPython's cycle collector: a pause costs what the last few seconds added, not what
the worker holds.

The cycle collector stops the process while it walks every object of the generations it collects. A worker
holds each active cascade's and brand's state for hours, and CPython runs a full pass whenever the
long-lived objects have grown by a quarter: with ~60k active cascades that pass walked 1.4–2.5 million
objects and held the event loop, and the page in flight, for 1.6–2.6 s (bench/results/perf.md). The passes
found almost nothing (46–134 objects): the state is freed by reference counting when it expires.

So the worker, every `kafka.gc_freeze_every_s`, runs one full pass over what is not yet frozen (what the
last interval left alive) and then `gc.freeze()`s the survivors into the permanent generation, which later
passes skip. What this gives up: a reference cycle made only of objects older than one interval that
becomes garbage later is never collected. `crisiswatch_gc_frozen_objects` shows the frozen count, and
`bench/perf_run.py` measures what a final full pass finds among them (bench/results/perf.md).

Pause times go to `crisiswatch_gc_pause_seconds` by generation. The gc callback only appends to a deque; the
histogram is fed at each tick (the worker's `collect_cycles` task), so no metric lock is ever taken inside a
collection.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram

log = logging.getLogger(__name__)

PAUSE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# With freezing off, the recorded pauses still reach the histogram this often.
GC_PAUSES_RECORDED_EVERY_S = 10.0


class CycleCollectorPolicy:
    def __init__(self, freeze_every_s: float, registry: CollectorRegistry | None = None) -> None:
        self.freeze_every_s = freeze_every_s
        self._pauses: deque[tuple[int, float]] = deque(maxlen=100_000)
        self._pass_started_s = 0.0
        self.running = False
        self.pause_seconds = Histogram(
            "crisiswatch_gc_pause_seconds",
            "Pauses of the cycle collector, by the oldest generation collected (2: a full pass).",
            ["generation"],
            buckets=PAUSE_BUCKETS_S,
            registry=registry,
        )
        for generation in ("0", "1", "2"):
            self.pause_seconds.labels(generation)
        # Set at each tick, not read at scrape time: counting walks every frozen object (3 ms per 400k).
        self.frozen_objects = Gauge(
            "crisiswatch_gc_frozen_objects",
            "Objects frozen out of the cycle collector's passes (kafka.gc_freeze_every_s), at the last freeze.",
            registry=registry,
        )

    @property
    def freezes(self) -> bool:
        return self.freeze_every_s > 0

    def start(self) -> None:
        """Record pauses from now on, and freeze what start-up left alive. `crisiswatch worker` calls this
        and `stop` around the Faust worker's run: a Worker built in a test leaves the collector alone."""
        if not self.running:
            self.running = True
            gc.callbacks.append(self._on_gc)
        self.tick()

    def stop(self) -> int:
        """At shutdown, once the Faust worker has stopped (its partitions already handed over): frozen
        objects become collectable again, and one full pass counts the cyclic garbage that freezing had
        kept (logged, and returned). The pass walks the whole heap: 1.5–2.5 s for ~60k cascades."""
        if not self.running:
            return 0
        self.running = False
        gc.callbacks.remove(self._on_gc)
        gc.collect()  # garbage that is not frozen (since the last tick) is not what freezing kept
        frozen = gc.get_freeze_count()
        gc.unfreeze()
        found = gc.collect()
        log.info(
            "cycle collector at shutdown: %d objects were frozen, a full pass found %d unreachable among them",
            frozen,
            found,
        )
        return found

    def tick(self) -> None:
        """One full pass over the unfrozen objects, then freeze the survivors (when freezing is on)."""
        if not self.running:
            return
        if self.freezes:
            gc.collect()
            gc.freeze()
            self.frozen_objects.set(gc.get_freeze_count())
        self.record_pauses()

    def record_pauses(self) -> None:
        while self._pauses:
            generation, seconds = self._pauses.popleft()
            self.pause_seconds.labels(str(generation)).observe(seconds)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # Runs inside the collection: no locks, no logging; a deque append is atomic.
        if phase == "start":
            self._pass_started_s = time.perf_counter()
        else:
            self._pauses.append((int(info["generation"]), time.perf_counter() - self._pass_started_s))
