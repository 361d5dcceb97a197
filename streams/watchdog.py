"""Exit when the worker stops making progress while input is waiting, so its supervisor restarts it.

Faust and aiokafka have open reports of consumers that hang after a broker restart: connected, no
errors, no fetches. The watchdog asks the broker for the input's end offsets with its own kafka-python
client (the hung one cannot be trusted; its own is replaced after any error) and compares them with what
the agents last processed. When a partition has had input waiting for `stall_s` with no progress, it exits
with status 3. The same goes for a table recovery (or a rebalance) that shows no progress for `stall_s`:
in some failover tests, Faust's recovery after a rebalance received nothing from changelog partitions it
had records to read, and the worker never became ready. That is no stall of its input (a worker that is not
ready has no partitions to stall on), so it waited forever.
A broker that cannot be reached is not a hang of ours: the watchdog waits for it instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

log = logging.getLogger("crisiswatch.watchdog")

EXIT_STALLED = 3


class ProgressWatchdog:
    def __init__(
        self,
        stall_s: float,
        end_offsets: Callable[[], Mapping[int, int] | None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_s = stall_s
        self._end_offsets = end_offsets
        self._monotonic = monotonic
        # partition -> next offset to process (last processed + 1), and when it last moved
        self.positions: dict[int, int] = {}
        self._moved_at: dict[int, float] = {}
        self._recovery_progress: Hashable | None = None
        self._recovery_moved_at_s = 0.0

    def processed(self, partition: int, offset: int) -> None:
        if offset + 1 > self.positions.get(partition, -1):
            self.positions[partition] = offset + 1
            self._moved_at[partition] = self._monotonic()

    def pause(self) -> None:
        """Rebalancing or recovering is not a stall: restart every partition's clock."""
        now = self._monotonic()
        self._moved_at = dict.fromkeys(self._moved_at, now)

    def recovery_stalled(self, progress: Hashable | None) -> bool:
        """Whether a rebalance or table recovery has shown the same `progress` (how far it has read) for
        `stall_s`. Called at every check: None (ready, or nothing assigned) forgets the last value, so the
        next rebalance starts its own clock. A broker that cannot be reached is not a stall: it restarts
        the clock."""
        now = self._monotonic()
        if progress is None or progress != self._recovery_progress:
            self._recovery_progress = progress
            self._recovery_moved_at_s = now
            return False
        if now - self._recovery_moved_at_s < self.stall_s:
            return False
        if self._end_offsets() is None:
            self._recovery_moved_at_s = now
            return False
        return True

    def stalled_partitions(self, assigned: set[int]) -> list[int]:
        """Assigned partitions with input waiting and no progress for `stall_s`; [] when unknowable."""
        ends = self._end_offsets()
        if ends is None:
            return []
        now = self._monotonic()
        stalled = []
        for partition in sorted(assigned):
            end = ends.get(partition)
            position = self.positions.get(partition)
            if end is None or position is None or end <= position:
                if end is not None and position is None:
                    # Never processed anything here: start the clock at the first check.
                    self._moved_at.setdefault(partition, now)
                    if end > 0 and now - self._moved_at[partition] >= self.stall_s:
                        stalled.append(partition)
                continue
            if now - self._moved_at.get(partition, now) >= self.stall_s:
                stalled.append(partition)
        return stalled


def kafka_end_offsets(
    client_options: Mapping[str, Any], topic: str
) -> Callable[[], Mapping[int, int] | None]:
    """A function returning the topic's end offsets per partition, or None when the broker is unreachable.

    One kafka-python client serves every call and is replaced after any error. A new client per call (every
    30 s by default) left ~66 KB of reference cycles each that only a full GC pass frees, and the worker
    went 15 minutes without one: it was most of the RSS growth left in the 600 posts/s soak.
    """
    clients: list[Any] = []  # the client, once one is connected

    def fetch() -> Mapping[int, int] | None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            if not clients:
                clients.append(
                    KafkaConsumer(request_timeout_ms=10_000, bootstrap_timeout_ms=5_000, **client_options)
                )
            consumer = clients[0]
            partitions = consumer.partitions_for_topic(topic) or set()
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
            return {tp.partition: int(offset) for tp, offset in ends.items()}
        except (KafkaError, OSError, ValueError):
            while clients:
                with contextlib.suppress(Exception):  # a broken client: its close must not mask the error
                    clients.pop().close()
            return None

    return fetch


async def run_watchdog(
    watchdog: ProgressWatchdog,
    assigned: Callable[[], set[int]],
    recovery_progress: Callable[[], Hashable | None],
    check_every_s: float,
    before_exit: Callable[[], None] | None = None,
) -> None:
    """`assigned`: the input partitions being processed (empty while not ready); `recovery_progress`: how
    far a rebalance or table recovery has got, None when none is waited for. `before_exit` runs just
    before the exit (the worker logs its consumer's flow control and every task's stack: where it hung).

    Faust starts the app's tasks after the first recovery, so a worker's initial recovery is not watched:
    only those after a rebalance are."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(check_every_s)
        partitions = assigned()
        progress = None if partitions else _progress_or_none(recovery_progress)
        if await loop.run_in_executor(None, watchdog.recovery_stalled, progress):
            _exit_stalled(f"table recovery shows no progress for {watchdog.stall_s:.0f} s", before_exit)
        if not partitions:
            watchdog.pause()
            continue
        stalled = await loop.run_in_executor(None, watchdog.stalled_partitions, partitions)
        if stalled:
            _exit_stalled(
                f"no progress for {watchdog.stall_s:.0f} s on partitions {stalled} with input waiting",
                before_exit,
            )


def _progress_or_none(recovery_progress: Callable[[], Hashable | None]) -> Hashable | None:
    """The probe reads Faust's internals, which change shape mid-rebalance: an error counts as unknown."""
    try:
        return recovery_progress()
    except Exception:  # noqa: BLE001 - the watchdog must outlive any one check
        log.debug("reading the table recovery's progress failed", exc_info=True)
        return None


def _exit_stalled(reason: str, before_exit: Callable[[], None] | None) -> None:
    log.error("%s: exiting for a restart", reason)
    if before_exit is not None:
        with contextlib.suppress(Exception):
            before_exit()
    logging.shutdown()
    os._exit(EXIT_STALLED)


class CommitGapRepair:
    """Notices a partition whose commits are stuck behind a gap in the acknowledged offsets.

    Faust commits up to the first offset not acknowledged. After a rebalance, records fetched for the
    previous assignment can move Faust's read position past records it then never delivers (seen in the
    failover test: offsets 143-178 of a taken-over partition never reached the agent; 179 onwards were
    processed and acknowledged), so the partition never commits again. When the committed offset has not
    moved for `after_s` while later offsets are acknowledged, the worker seeks the partition back to the
    committed offset: the gap is read again and already-applied posts are skipped by the idempotent state.
    On the brand topic, whose messages wait unacknowledged in the aligned merge by design, the worker asks
    only when the committed offset is not one of those. Plain Python: "now" is passed in.
    """

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._stuck_since: dict[Any, tuple[int, float]] = {}

    def due(self, tp: Any, committed: int | None, acked: list[int] | None, now_s: float) -> bool:
        """True when `tp` should be sought back to `committed` (and the clock restarts)."""
        if committed is None or not acked or min(acked) - committed <= 1:
            self._stuck_since.pop(tp, None)
            return False
        since = self._stuck_since.get(tp)
        if since is None or since[0] != committed:
            self._stuck_since[tp] = (committed, now_s)
            return False
        if now_s - since[1] < self.after_s:
            return False
        self._stuck_since[tp] = (committed, now_s)
        return True

    def reset(self) -> None:
        """A rebalance: every clock starts again."""
        self._stuck_since.clear()
