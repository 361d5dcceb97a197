"""The progress watchdog on an injected clock: stalls are input waiting with no progress, nothing else."""

from __future__ import annotations

from crisiswatch.streams.watchdog import ProgressWatchdog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(ends: dict[int, int] | None, stall_s: float = 10.0) -> tuple[ProgressWatchdog, Clock, dict]:
    clock = Clock()
    box = {"ends": ends}
    return ProgressWatchdog(stall_s, lambda: box["ends"], monotonic=clock), clock, box


def test_no_input_waiting_is_not_a_stall() -> None:
    watchdog, clock, _ = make({0: 100})
    watchdog.processed(0, 99)
    clock.now = 1000
    assert watchdog.stalled_partitions({0}) == []


def test_input_waiting_without_progress_is_a_stall() -> None:
    watchdog, clock, box = make({0: 100})
    watchdog.processed(0, 49)
    clock.now = 5
    assert watchdog.stalled_partitions({0}) == []
    clock.now = 10
    assert watchdog.stalled_partitions({0}) == [0]
    watchdog.processed(0, 60)  # progress restarts the clock
    assert watchdog.stalled_partitions({0}) == []


def test_unreachable_broker_is_not_a_stall() -> None:
    watchdog, clock, _ = make(None)
    watchdog.processed(0, 1)
    clock.now = 10_000
    assert watchdog.stalled_partitions({0}) == []


def test_partition_never_processed_with_input_waiting_stalls_after_the_period() -> None:
    watchdog, clock, _ = make({1: 5})
    assert watchdog.stalled_partitions({1}) == []
    clock.now = 11
    assert watchdog.stalled_partitions({1}) == [1]


def test_pause_restarts_the_clocks() -> None:
    watchdog, clock, _ = make({0: 100})
    watchdog.processed(0, 10)
    clock.now = 9
    watchdog.pause()
    clock.now = 15
    assert watchdog.stalled_partitions({0}) == []
    clock.now = 19
    assert watchdog.stalled_partitions({0}) == [0]
