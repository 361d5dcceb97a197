"""The progress watchdog on an injected clock: stalls are input waiting with no progress, or a rebalance or
table recovery with no progress; nothing else."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.structs import TopicPartition

from crisiswatch.streams.app import _fetch_state
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


def test_commit_gap_repair_seeks_only_after_the_gap_persisted() -> None:
    from crisiswatch.streams.watchdog import CommitGapRepair

    repair = CommitGapRepair(after_s=15.0)
    tp = ("posts", 0)
    # No gap: the acknowledged offsets continue the committed one (Faust tolerates one missing offset).
    assert not repair.due(tp, 143, [143, 144], 0.0)
    assert not repair.due(tp, 143, [144, 150], 100.0)
    # A gap at the head: noticed, then due only once it has lasted after_s with the same committed offset.
    assert not repair.due(tp, 143, [179, 180], 200.0)
    assert not repair.due(tp, 143, [179, 180, 181], 214.0)
    assert repair.due(tp, 143, [179, 181], 215.0)
    assert not repair.due(tp, 143, [179, 181], 216.0)  # the clock restarted with the seek
    # The committed offset moved: a new gap starts a new clock.
    assert not repair.due(tp, 180, [190], 240.0)
    assert not repair.due(tp, 180, [190], 250.0)
    assert repair.due(tp, 180, [190], 255.0)
    # Nothing acknowledged or nothing committed yet: nothing to repair.
    assert not repair.due(tp, None, [5], 1000.0)
    assert not repair.due(tp, 180, [], 1000.0)
    repair.due(tp, 10, [20], 0.0)
    repair.reset()
    assert not repair.due(tp, 10, [20], 100.0)


def test_a_recovery_without_progress_is_a_stall_and_progress_restarts_its_clock() -> None:
    watchdog, clock, _ = make({0: 100})
    assert not watchdog.recovery_stalled((3, 40))
    clock.now = 9
    assert not watchdog.recovery_stalled((3, 40))
    clock.now = 10
    assert watchdog.recovery_stalled((3, 40))
    assert not watchdog.recovery_stalled((3, 41))  # read further: the clock starts again
    clock.now = 19
    assert not watchdog.recovery_stalled((3, 41))
    assert not watchdog.recovery_stalled((4, 41))  # a new rebalance: the clock starts again
    clock.now = 29
    assert watchdog.recovery_stalled((4, 41))


def test_not_recovering_or_an_unreachable_broker_is_not_a_recovery_stall() -> None:
    watchdog, clock, box = make({0: 100})
    assert not watchdog.recovery_stalled(None)
    clock.now = 100
    assert not watchdog.recovery_stalled(None)
    assert not watchdog.recovery_stalled((1, 5))
    clock.now = 200
    box["ends"] = None
    assert not watchdog.recovery_stalled((1, 5))  # the broker is away: its clock starts again
    box["ends"] = {0: 100}
    clock.now = 209
    assert not watchdog.recovery_stalled((1, 5))  # not a full period since the broker came back
    clock.now = 210
    assert watchdog.recovery_stalled((1, 5))


def test_ready_in_between_forgets_the_last_recovery() -> None:
    """The next rebalance can start from the same generation and offsets as the last one ended with (the
    assignment is kept until the new one comes): it gets a clock of its own, not the old one."""
    watchdog, clock, _ = make({0: 100})
    assert not watchdog.recovery_stalled((2, ("changelog-0", 7)))
    clock.now = 5
    assert not watchdog.recovery_stalled(None)  # ready again
    clock.now = 1000
    assert not watchdog.recovery_stalled((2, ("changelog-0", 7)))
    clock.now = 1009
    assert not watchdog.recovery_stalled((2, ("changelog-0", 7)))
    clock.now = 1010
    assert watchdog.recovery_stalled((2, ("changelog-0", 7)))


def test_recovery_progress_with_offsets_not_built_yet() -> None:
    """Faust sets a newly assigned changelog partition's offset to None until recovery builds it: the
    probe must give a comparable value, not raise (an exception would crash the watchdog task)."""
    from collections import Counter

    from crisiswatch.streams.app import Worker
    from crisiswatch.streams.config import settings_from_mapping

    worker = Worker(settings_from_mapping({"kafka": {"watchdog_stall_s": 0}}, environ={}))
    recovery = SimpleNamespace(
        active_offsets=Counter({"cascade-changelog-0": None, "brand-changelog-0": 12}),
        standby_offsets=Counter(),
    )
    worker.readiness = lambda: {"ready": False, "assigned_partitions": 3, "recovered": False}  # type: ignore[method-assign]
    worker.app.tables = SimpleNamespace(recovery=recovery)  # type: ignore[assignment]
    worker.app.consumer_generation_id = 4
    first = worker.recovery_progress()
    assert first == (4, ("brand-changelog-0", 12), ("cascade-changelog-0", None))
    recovery.active_offsets["cascade-changelog-0"] = 30
    assert worker.recovery_progress() != first
    worker.readiness = lambda: {"ready": True, "assigned_partitions": 3, "recovered": True}  # type: ignore[method-assign]
    assert worker.recovery_progress() is None


def test_the_exit_line_reads_aiokafkas_partition_state_beside_fausts_read_offset() -> None:
    """`app._fetch_state` reads aiokafka's real subscription objects (their private names are what a stall
    diagnosis needs, so a version that renames them must show here, not in a silent `{}` at the exit)."""
    from types import SimpleNamespace

    async def main() -> dict:
        subscription = SubscriptionState()
        first, second = TopicPartition("posts", 0), TopicPartition("posts", 1)
        subscription.assign_from_user({first, second})
        state = subscription.subscription.assignment.state_value(first)
        state.seek(120)
        state.highwater = 400
        subscription.pause(second)
        client = SimpleNamespace(
            _subscription=subscription, _fetcher=SimpleNamespace(_records={first: object()})
        )
        consumer = SimpleNamespace(_thread=SimpleNamespace(_consumer=client), _read_offset={first: 99})
        return _fetch_state(consumer)

    found = asyncio.run(main())
    assert found == {
        "posts/0": {
            "position": 120,
            "highwater": 400,
            "paused": False,
            "awaiting_reset": False,
            "buffered": True,
            "faust_read_offset": 99,
        },
        "posts/1": {
            "position": None,
            "highwater": None,
            "paused": True,
            "awaiting_reset": False,
            "buffered": False,
            "faust_read_offset": None,
        },
    }
    assert _fetch_state(SimpleNamespace()) == {}  # no consumer thread yet
    broken = SimpleNamespace(
        _thread=SimpleNamespace(
            _consumer=SimpleNamespace(
                _subscription=SimpleNamespace(subscription=SimpleNamespace(assignment=1))
            )
        )
    )
    assert "error" in _fetch_state(broken)
