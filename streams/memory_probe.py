"""Opt-in memory diagnostics for a worker whose RSS grows: what grew since the previous look, and where.

tracemalloc is off unless `CRISISWATCH_TRACEMALLOC_FRAMES` is set at worker start: it is expensive (with 8
frames a worker that kept up with 600 posts/s fell to ~100/s, and one snapshot took 28 s), so use 1-3 frames
and a low rate. Set to N (1-25), tracemalloc records N frames per allocation. Each SIGUSR2 logs, against the
previous SIGUSR2 (or the start):

- RSS, the bytes tracemalloc traces (RSS far above it with traces flat = allocator fragmentation, not
  references), and the top allocation sites by growth, grouped by traceback;
- the object types whose live count grew most (`gc.get_objects()`, containers only);
- the sizes of the worker's own long-lived containers (`Worker.container_sizes()`);
- how many unreachable objects a full collection then frees (cyclic garbage, not a leak).

Without the variable SIGUSR2 still logs all but the allocation sites: two walks of the gc heap and a full
collection, about a second on a 350k-object heap; nothing runs until the signal comes.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import reprlib
import tracemalloc
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("crisiswatch.memory")

FRAMES_ENV = "CRISISWATCH_TRACEMALLOC_FRAMES"
TOP_SITES = 20
TOP_TYPES = 15
SAMPLES = 4


def rss_mb() -> float:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            resident_pages = int(handle.read().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class MemoryProbe:
    """Each `report()` compares with the previous one; `sizes` gives named container sizes to log."""

    def __init__(
        self, sizes: Callable[[], Mapping[str, int]], environ: Mapping[str, str] | None = None
    ) -> None:
        environ = os.environ if environ is None else environ
        self.sizes = sizes
        self.frames = 0
        value = environ.get(FRAMES_ENV, "").strip()
        if value:
            self.frames = max(1, min(25, int(value)))
            if not tracemalloc.is_tracing():
                tracemalloc.start(self.frames)
        self._snapshot: tracemalloc.Snapshot | None = self._take()
        self._types: Counter[str] = self._type_counts()
        self._sizes: dict[str, int] = dict(sizes())

    def _take(self) -> tracemalloc.Snapshot | None:
        if not tracemalloc.is_tracing():
            return None
        return tracemalloc.take_snapshot().filter_traces(
            [
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            ]
        )

    @staticmethod
    def _type_counts() -> Counter[str]:
        return Counter(type(obj).__qualname__ for obj in gc.get_objects())

    def report(self) -> str:
        lines = [f"memory: RSS {rss_mb():.1f} MB"]
        snapshot = self._take()
        if snapshot is not None:
            traced, peak = tracemalloc.get_traced_memory()
            lines[0] += f", traced {traced / 1e6:.1f} MB (peak {peak / 1e6:.1f} MB)"
            if self._snapshot is not None:
                stats = snapshot.compare_to(self._snapshot, "traceback")
                stats.sort(key=lambda stat: stat.size_diff, reverse=True)
                lines.append(f"top {TOP_SITES} allocation sites by growth since the last report:")
                for stat in stats[:TOP_SITES]:
                    frames = " <- ".join(
                        f"{f.filename.rsplit('/', 2)[-2:]!s}:{f.lineno}" for f in stat.traceback
                    )
                    lines.append(
                        f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks"
                        f" (now {stat.size / 1024:.1f} KiB {stat.count} blocks) {frames}"
                    )
            self._snapshot = snapshot
        types = self._type_counts()
        growth = types.copy()
        growth.subtract(self._types)
        lines.append(f"object types (gc-tracked) by growth, {sum(types.values())} objects:")
        for name, diff in growth.most_common(TOP_TYPES):
            if diff > 0:
                lines.append(f"  {diff:+9d} {name} (now {types[name]})")
        self._types = types
        grown = [name for name, diff in growth.most_common(1) if diff > 0]
        if grown:
            lines.append(f"a few {grown[0]} objects, with the types of what refers to them:")
            lines += [f"  {line}" for line in _samples(grown[0], SAMPLES)]
        sizes = dict(self.sizes())
        lines.append(
            "containers: "
            + ", ".join(
                f"{key}={value} ({value - self._sizes.get(key, 0):+d})" for key, value in sizes.items()
            )
        )
        self._sizes = sizes
        # Last, as it changes what it measures: cyclic garbage awaiting a full collection is not a leak.
        unreachable = gc.collect()
        lines.append(f"full collection: {unreachable} unreachable objects freed, RSS after {rss_mb():.1f} MB")
        text = "\n".join(lines)
        log.warning("%s", text)
        return text


def container_sizes(objects: Mapping[str, Any]) -> dict[str, int]:
    """`len()` of each named object that has one (an int is taken as it is; the rest are skipped)."""
    sizes: dict[str, int] = {}
    for name, obj in objects.items():
        if type(obj) is int:
            sizes[name] = obj
            continue
        try:
            sizes[name] = len(obj)
        except TypeError:
            continue
    return sizes


def _samples(type_name: str, count: int) -> list[str]:
    """`count` objects of the type picked at random (most are the grown ones when a type grew a lot), each
    with its referrers' types."""
    found = [obj for obj in gc.get_objects() if type(obj).__qualname__ == type_name]
    found = random.Random(0).sample(found, min(count, len(found)))
    lines = []
    for obj in found:
        referrers = [type(ref).__qualname__ for ref in gc.get_referrers(obj) if ref is not found]
        lines.append(f"{reprlib.repr(obj)[:200]} <- {', '.join(referrers[:5])}")
    del found
    return lines
