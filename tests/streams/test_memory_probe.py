"""The SIGUSR2 memory report: off by default (no tracemalloc), names what grew when asked."""

from __future__ import annotations

import tracemalloc

from crisiswatch.streams.memory_probe import FRAMES_ENV, MemoryProbe, container_sizes


def test_without_the_variable_tracemalloc_stays_off_and_containers_are_reported() -> None:
    held: list[object] = []
    probe = MemoryProbe(lambda: container_sizes({"held": held, "count": 7, "none": None}), environ={})
    assert not tracemalloc.is_tracing()
    held.extend(object() for _ in range(10))
    report = probe.report()
    assert "held=10 (+10)" in report and "count=7 (+0)" in report and "none" not in report
    assert "allocation sites" not in report


def test_with_the_variable_the_report_names_allocation_sites() -> None:
    was_tracing = tracemalloc.is_tracing()
    try:
        probe = MemoryProbe(dict, environ={FRAMES_ENV: "2"})
        assert tracemalloc.is_tracing()
        kept = [bytearray(1000) for _ in range(200)]
        report = probe.report()
        assert "allocation sites by growth" in report and "test_memory_probe.py" in report
        del kept
    finally:
        if not was_tracing:
            tracemalloc.stop()
