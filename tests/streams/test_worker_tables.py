"""The worker's tables serialise keys and values as raw bytes, the values JSON: what recovery reads must match."""

from __future__ import annotations

import json

import faust.utils.json
import pytest
from faust.serializers import codecs

from crisiswatch.streams.app import Worker, encode_table_value
from crisiswatch.streams.config import settings_from_mapping

# A cascade state value as hostile post text makes it: a lone surrogate, CJK, NUL.
HOSTILE_VALUE = {
    "applied": 7,
    "engine": {"root_text": "lost \ud800 包裹 \x00", "rate": [1.5, 2], "ids": "AAEC"},
}


def test_state_tables_use_raw_keys_and_values() -> None:
    worker = Worker(settings_from_mapping({}, environ={}))
    for table in (worker.cascade_table, worker.brand_table, worker.alerting_table):
        topic = table.changelog_topic
        assert (table.key_serializer, table.value_serializer) == ("raw", "raw")
        assert (topic.key_serializer, topic.value_serializer) == ("raw", "raw")
        key = "根-1/x".encode()
        encoded = worker.app.serializers.dumps_key(topic.key_type, key, serializer=topic.key_serializer)
        assert encoded == key
        assert (
            worker.app.serializers.loads_key(topic.key_type, encoded, serializer=topic.key_serializer) == key
        )


def test_table_values_keep_lone_surrogates_whatever_json_library_faust_picked() -> None:
    """Faust's `json` codec uses orjson when it is installed (its `fast` extra), and orjson refuses lone
    surrogates both ways; the tables' values are the standard library's JSON, ASCII with escapes."""
    encoded = encode_table_value(HOSTILE_VALUE)
    assert encoded == json.dumps(HOSTILE_VALUE, separators=(",", ":")).encode("ascii")
    worker = Worker(settings_from_mapping({}, environ={}))
    worker.cascade_table.data[b"k"] = encoded  # as recovery fills the store: the record's bytes
    assert worker.cascade_table.stored(b"k") == HOSTILE_VALUE
    assert worker.cascade_table.stored(b"absent") is None


@pytest.mark.skipif(faust.utils.json.orjson is not None, reason="Faust's json codec is orjson here")
def test_table_values_are_byte_identical_to_fausts_own_json_codec() -> None:
    """Changelogs written with Faust's `json` codec (earlier versions) load unchanged, and new values are
    the same bytes."""
    fausts = codecs.dumps("json", HOSTILE_VALUE)
    assert encode_table_value(HOSTILE_VALUE) == fausts


def test_undelivered_records_are_read_directly_and_put_back_in_offset_order(kafka_bootstrap: str) -> None:
    """A batch that skips offsets (as Faust can around a rebalance) gets the missing records from Kafka."""
    import asyncio

    from kafka_broker import create_topic, unique_topic
    from worker_process import produce

    from crisiswatch.streams.app import PartitionState, Worker, read_offsets
    from crisiswatch.streams.pipeline import RawRecord

    topic = unique_topic("gaps")
    create_topic(kafka_bootstrap, topic, partitions=1)
    values = [f'{{"n": {i}}}'.encode() for i in range(10)]
    produce(kafka_bootstrap, topic, values)
    assert read_offsets({"bootstrap_servers": [kafka_bootstrap]}, topic, 0, 3, 7) == (
        [(offset, values[offset]) for offset in range(3, 7)],
        0,
    )

    settings = settings_from_mapping(
        {"kafka": {"bootstrap_servers": kafka_bootstrap, "posts_topic": topic, "watchdog_stall_s": 0}}
    )
    worker = Worker(settings)
    state = PartitionState(_pipeline(worker))  # type: ignore[arg-type]
    state.next_offset = 2  # the previous batch ended at offset 1

    def record(offset: int) -> RawRecord:
        return RawRecord(value=values[offset], partition=0, offset=offset, source=f"{topic}/0@{offset}")

    batch = [record(4), record(5), record(8), record(9)]  # 2-3 and 6-7 never delivered
    filled = asyncio.run(worker._with_undelivered(0, state, batch))
    assert [(r.offset, r.value) for r in filled] == [(o, values[o]) for o in range(2, 10)]
    assert state.next_offset == 10
    # A redelivery of offsets already seen (after a seek back) is passed through, nothing read.
    again = asyncio.run(worker._with_undelivered(0, state, [record(3), record(4)]))
    assert [r.offset for r in again] == [3, 4]
    assert state.next_offset == 10


def _pipeline(worker: Worker) -> object:
    from crisiswatch.streams.pipeline import Pipeline

    return Pipeline(worker.settings, worker.analyzer, resolver=worker.resolver)


def test_cascade_keys_without_state_are_forgotten_after_the_write() -> None:
    """Roots the engine keeps no state for (no brand: most posts) must not stay in the partition's
    `loaded_keys` / `applied`: they grew by one entry per root ever seen (issue 9, memory over a soak)."""
    import json

    from crisiswatch.streams.app import PartitionState
    from crisiswatch.streams.pipeline import RawRecord

    settings = settings_from_mapping(
        {"kafka": {"watchdog_stall_s": 0}, "brands": [{"name": "Acme", "aliases": ["Acme"]}]}, environ={}
    )
    worker = Worker(settings)
    state = PartitionState(_pipeline(worker))  # type: ignore[arg-type]
    offset = 0

    def batch(posts: list[dict[str, object]]) -> None:
        nonlocal offset
        records = []
        for post in posts:
            records.append(RawRecord(value=json.dumps(post).encode(), partition=0, offset=offset, source="t"))
            offset += 1
        ingested = state.pipeline.ingest(
            records, already_applied=lambda post, record: worker._cascade_applied(state, post, record)
        )
        state.pipeline.detect(ingested, brands=False)
        for post, record in zip(ingested.posts, ingested.records, strict=True):
            state.applied[post.post.root_id] = max(state.applied.get(post.post.root_id, -1), record.offset)
        worker._cascade_state_writes(state)  # what the batch would write; forgets roots without state

    def post(post_id: str, text: str, t: int, **extra: object) -> dict[str, object]:
        author = {"id": "u1", "followers": 10}
        return {"id": post_id, "created_at": 1_790_000_000 + t, "text": text, "author": author, **extra}

    for round_index in range(5):
        batch(
            [post(f"plain-{round_index}-{i}", "lovely weather today", round_index) for i in range(200)]
            + [
                post(
                    f"fwd-{round_index}-{i}",
                    "",
                    round_index,
                    kind="forward",
                    parent_id=f"plain-{round_index}-{i}",
                )
                for i in range(50)
            ]
        )
        assert state.loaded_keys == set() and state.applied == {}

    # A branded cascade holds engine state: its key and applied offset stay until the state expires.
    batch([post("acme-root", "Acme lost my parcel", 10)])
    assert state.loaded_keys == {"acme-root"}
    assert state.applied == {"acme-root": offset - 1}


def test_a_changelog_record_of_fausts_own_json_codec_recovers_into_the_store_as_bytes() -> None:
    """Recovery as Faust runs it: the changelog topic decodes the record (serializer raw), the memory store
    applies the batch; a tombstone deletes. Records written by earlier versions (Faust's json codec) load."""
    from types import SimpleNamespace

    worker = Worker(settings_from_mapping({"kafka": {"watchdog_stall_s": 0}}, environ={}))
    table = worker.cascade_table
    topic = table.changelog_topic
    value = {"v": 1, "applied": 7, "engine": {"root_text": "lost 包裹", "rate": [1.5, 2]}}
    record = codecs.dumps("json", value)

    def event(key: bytes, raw: bytes | None) -> SimpleNamespace:
        decoded = (
            None
            if raw is None
            else worker.app.serializers.loads_value(topic.value_type, raw, serializer=topic.value_serializer)
        )
        return SimpleNamespace(key=key, value=decoded, message=SimpleNamespace(value=raw, partition=3))

    table.apply_changelog_batch([event(b"root-1", record), event(b"root-2", record), event(b"root-2", None)])
    assert table.data[b"root-1"] == record
    assert table.stored(b"root-1") == value
    assert b"root-2" not in table.data
    assert table.data._key_partition[b"root-1"] == 3


def test_the_workers_consumer_thread_builds_its_consumer_with_the_configured_wait() -> None:
    import asyncio

    async def fetch_wait_ms() -> int:
        settings = settings_from_mapping(
            {"kafka": {"fetch_max_wait_s": 0.25, "watchdog_stall_s": 0}}, environ={}
        )
        worker = Worker(settings)
        return int(
            worker.app.consumer._thread._create_worker_consumer(worker.app.transport)._fetch_max_wait_ms
        )

    assert asyncio.run(fetch_wait_ms()) == 250


def test_the_workers_consumer_fetches_with_the_configured_wait(kafka_bootstrap: str) -> None:
    """Faust hard-codes a 1.5 s fetch wait; the worker's consumer starts its fetcher with
    `kafka.fetch_max_wait_s` instead (aiokafka reads the value at start: checked on the started fetcher)."""
    import asyncio

    settings = settings_from_mapping(
        {"kafka": {"bootstrap_servers": kafka_bootstrap, "fetch_max_wait_s": 0.25, "watchdog_stall_s": 0}},
        environ={},
    )

    async def started_fetch_wait_ms() -> int:
        worker = Worker(settings)
        consumer = worker.app.consumer._thread._create_worker_consumer(worker.app.transport)
        await consumer.start()
        try:
            return int(consumer._fetcher._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert asyncio.run(started_fetch_wait_ms()) == 250


def test_a_manual_ack_tells_faust_s_sensors_when_the_last_holder_lets_go() -> None:
    """The brand agent acks by hand (`Worker._ack`). Faust's sensors only hear of acks made through a stream,
    so without this its `active_messages` gauge grew by one per brand message (31 after the dead-letter
    integration test's input was all committed)."""
    from types import SimpleNamespace

    from faust.types import TP

    worker = Worker(settings_from_mapping({"kafka": {"watchdog_stall_s": 0}}, environ={}))
    worker.app.sensors.add(worker.app.monitor)  # what Faust does when the app starts

    def active() -> float | None:
        return worker.registry.get_sample_value("crisiswatch_faust_active_messages")

    tp = TP("brand-observations", 0)
    message = SimpleNamespace(tp=tp, offset=7, time_in=None, time_out=None, time_total=None)
    worker.app.sensors.on_message_in(tp, 7, message)
    assert active() == 1.0
    worker._ack(SimpleNamespace(message=message, ack=lambda: False))  # another holder remains: not yet
    assert active() == 1.0
    worker._ack(SimpleNamespace(message=message, ack=lambda: True))  # the last one
    assert active() == 0.0
