"""The local Kafka broker (deploy/kafka/kafka-local) and its pytest fixtures, against kafka-python.

Needs the kafka_broker plugin (tests/conftest.py: pytest_plugins = ["kafka_broker"]).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka_broker import create_topic, kafka_local, unique_topic

pytestmark = pytest.mark.integration


def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def consume(
    bootstrap: str, topic: str, count: int, group: str | None = None, timeout_s: float = 30.0
) -> list[tuple[int, bytes, bytes]]:
    """Read ``count`` records from the group's position (earliest if new); commits when in a group."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    out: list[tuple[int, bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(out) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500, max_records=count - len(out)).values():
                out.extend((r.partition, r.key, r.value) for r in records)
        if group is not None:
            consumer.commit()
    finally:
        consumer.close(autocommit=False)
    return out


def test_produce_and_consume_keyed_messages(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique_topic("roundtrip"), partitions=3)
    sent = [(f"root-{i % 7}".encode(), f"post-{i}".encode()) for i in range(120)]
    produce(kafka_bootstrap, topic, sent)

    got = consume(kafka_bootstrap, topic, len(sent), group=unique_topic("g"))

    assert sorted((k, v) for _, k, v in got) == sorted(sent)
    partitions_of_key: dict[bytes, set[int]] = {}
    for partition, key, _ in got:
        partitions_of_key.setdefault(key, set()).add(partition)
    assert all(len(p) == 1 for p in partitions_of_key.values()), "a key was spread over partitions"
    for key in partitions_of_key:  # per-key order survives partitioning
        assert [v for _, k, v in got if k == key] == [v for k, v in sent if k == key]


def test_auto_created_topic(kafka_bootstrap: str) -> None:
    topic = unique_topic("auto")
    produce(kafka_bootstrap, topic, [(b"k", b"v")])
    assert [(k, v) for _, k, v in consume(kafka_bootstrap, topic, 1)] == [(b"k", b"v")]


def test_restart_keeps_messages_and_committed_offsets(own_kafka_broker) -> None:
    bootstrap = own_kafka_broker.bootstrap
    topic = create_topic(bootstrap, unique_topic("restart"), partitions=2)
    group = unique_topic("g")
    sent = [(f"k{i % 3}".encode(), f"before-{i}".encode()) for i in range(20)]
    produce(bootstrap, topic, sent)
    assert len(consume(bootstrap, topic, 20, group=group)) == 20  # commits offsets 20

    pid = own_kafka_broker.pid
    own_kafka_broker.stop()
    assert not kafka_local().is_ready(*_host_port(bootstrap), timeout_s=1.0)
    assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)

    own_kafka_broker.start()
    assert own_kafka_broker.bootstrap == bootstrap, "restart must keep the port"
    assert own_kafka_broker.pid != pid

    # Everything produced before the restart is still there, for a new group...
    again = consume(bootstrap, topic, 20, group=unique_topic("g"))
    assert sorted((k, v) for _, k, v in again) == sorted(sent)
    # ...and the old group resumes after its committed offsets.
    produce(bootstrap, topic, [(b"k0", b"after-0")])
    assert [(k, v) for _, k, v in consume(bootstrap, topic, 1, group=group)] == [(b"k0", b"after-0")]


def test_two_brokers_coexist(kafka_bootstrap: str, own_kafka_broker) -> None:
    other = own_kafka_broker.bootstrap
    assert other != kafka_bootstrap
    topic = create_topic(other, unique_topic("solo"))
    produce(other, topic, [(b"k", b"only-on-own-broker")])

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        assert topic not in consumer.topics(), "the brokers share state"
    finally:
        consumer.close()
    assert [v for _, _, v in consume(other, topic, 1)] == [b"only-on-own-broker"]
    produce(kafka_bootstrap, topic, [(b"k", b"shared")])
    assert [v for _, _, v in consume(kafka_bootstrap, topic, 1)] == [b"shared"]


def test_own_broker_teardown_leaves_nothing(own_kafka_broker) -> None:
    broker = own_kafka_broker
    workdir, pid = broker.dir, broker.pid
    broker.close()
    assert not workdir.exists()
    assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)
    broker.close()  # idempotent; the fixture's teardown calls it again


def test_own_broker_starts_empty(own_kafka_broker) -> None:
    """A fresh broker has no topics: tests on it never see the shared broker's or an earlier test's."""
    consumer = KafkaConsumer(bootstrap_servers=own_kafka_broker.bootstrap)
    try:
        assert {t for t in consumer.topics() if not t.startswith("__")} == set()
    finally:
        consumer.close()


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host, int(port)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
