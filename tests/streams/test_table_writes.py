"""The worker's one way to write table state: `Worker._stage_table_writes`, then `make_durable`.

No broker: a fake producer stands in for Kafka's (mocked on purpose: what is tested is how the worker
behaves when a send is refused or cancelled, which a healthy local broker does not do on demand). The
healthy path runs against the real broker in tests/integration (kill -9, failover, broker restart).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from crisiswatch.streams import app as app_module
from crisiswatch.streams.app import EXIT_STATE_WRITE_FAILED, Worker
from crisiswatch.streams.config import settings_from_mapping


class _Buffer:
    size = 0

    async def flush(self) -> None:
        return None


class FakeProducer:
    """Records what was sent; `refuse` makes `send` raise, `gate` makes it wait."""

    def __init__(self, refuse: Exception | None = None, gate: asyncio.Event | None = None) -> None:
        self.buffer = _Buffer()
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []
        self.refuse = refuse
        self.gate = gate

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int, *_: Any) -> Any:
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse is not None:
            raise self.refuse
        self.sent.append((topic, key, value, partition))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def flush(self) -> None:
        return None


def worker_with(producer: FakeProducer) -> Worker:
    worker = Worker(settings_from_mapping({"kafka": {"watchdog_stall_s": 0}}, environ={}))
    worker.app.producer = producer
    return worker


def test_staged_writes_update_the_store_and_become_faust_changelog_records() -> None:
    producer = FakeProducer()
    worker = worker_with(producer)
    table = worker.cascade_table
    worker._stage_table_writes(table, 2, [(b"root-1", {"v": 1, "applied": 7}), (b"root-2", {"v": 1})])
    worker._stage_table_writes(table, 2, [(b"root-2", None)])
    assert table.stored(b"root-1") == {"v": 1, "applied": 7} and b"root-2" not in table.data
    assert table.data[b"root-1"] == b'{"v":1,"applied":7}'  # the store keeps the changelog record's bytes
    assert table.data._key_partition == {b"root-1": 2}  # Faust drops it when partition 2 moves away
    assert producer.sent == []  # nothing leaves before make_durable
    asyncio.run(worker.make_durable())
    name = table.changelog_topic.get_topic_name()
    assert [(t, k, p) for t, k, _, p in producer.sent] == [
        (name, b"root-1", 2),
        (name, b"root-2", 2),
        (name, b"root-2", 2),
    ]
    assert json.loads(producer.sent[0][2]) == {"v": 1, "applied": 7}
    assert producer.sent[2][2] is None  # a tombstone, as Faust's own delete writes it
    assert worker._unsent_changelog == []


def test_a_refused_state_write_exits_for_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused write (for example a value over Kafka's message limit) must not let the batch be acked:
    the worker exits with status 4 instead of returning from make_durable."""
    exits: list[int] = []

    def fake_exit(status: int) -> None:
        exits.append(status)
        raise SystemExit(status)

    monkeypatch.setattr(app_module.os, "_exit", fake_exit)
    monkeypatch.setattr(app_module.logging, "shutdown", lambda: None)  # keep pytest's log handlers open
    worker = worker_with(FakeProducer(refuse=RuntimeError("MessageSizeTooLargeError")))
    worker._stage_table_writes(worker.brand_table, 0, [(b"Acme", {"v": 1})])
    with pytest.raises(SystemExit):
        asyncio.run(worker.make_durable())
    assert exits == [EXIT_STATE_WRITE_FAILED]


class FakeTopic:
    """A Faust topic whose `send` hands back the delivery future the test controls."""

    def __init__(self) -> None:
        self.delivery: asyncio.Future[Any] | None = None

    async def send(self, **_: Any) -> asyncio.Future[Any]:
        self.delivery = asyncio.get_running_loop().create_future()
        return self.delivery


def test_make_durable_waits_for_sent_messages_and_exits_when_one_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dead letters, brand observations and incident events are awaited like state writes: make_durable
    does not return before Kafka has them, and a failed delivery exits (status 4) instead of being lost."""
    exits: list[int] = []

    def fake_exit(status: int) -> None:
        exits.append(status)
        raise SystemExit(status)

    monkeypatch.setattr(app_module.os, "_exit", fake_exit)
    monkeypatch.setattr(app_module.logging, "shutdown", lambda: None)

    async def scenario() -> tuple[bool, bool]:
        worker = worker_with(FakeProducer())
        topic = FakeTopic()
        await worker._send(topic, value=b"dead letter")
        durable = asyncio.create_task(worker.make_durable())
        await asyncio.sleep(0.01)
        waited = not durable.done()  # the delivery is still open
        assert topic.delivery is not None
        topic.delivery.set_result(None)
        await durable
        await worker._send(topic, value=b"incident event")
        topic.delivery.set_exception(RuntimeError("NotLeaderForPartitionError"))
        try:
            await worker.make_durable()
        except SystemExit:
            return waited, True
        return waited, False

    waited, exited = asyncio.run(scenario())
    assert waited and exited
    assert exits == [EXIT_STATE_WRITE_FAILED]


def test_a_cancelled_make_durable_keeps_its_records_for_the_next_call() -> None:
    """Records taken by a call that is cancelled (shutdown) are sent by the next call, in order."""

    async def scenario() -> list[tuple[str, bytes, bytes | None, int]]:
        gate = asyncio.Event()
        producer = FakeProducer(gate=gate)
        worker = worker_with(producer)
        worker._stage_table_writes(worker.alerting_table, 1, [(b"a", {"n": 1}), (b"b", {"n": 2})])
        first = asyncio.create_task(worker.make_durable())
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        worker._stage_table_writes(worker.alerting_table, 1, [(b"a", {"n": 3})])
        gate.set()
        await worker.make_durable()
        return producer.sent

    sent = asyncio.run(scenario())
    assert [(k, json.loads(v or b"null")) for _, k, v, _ in sent] == [
        (b"a", {"n": 1}),
        (b"b", {"n": 2}),
        (b"a", {"n": 3}),
    ]


def test_faust_own_write_path_is_refused() -> None:
    worker = worker_with(FakeProducer())
    with pytest.raises(RuntimeError, match="_stage_table_writes"):
        worker.cascade_table[b"k"] = {"v": 1}
