"""Dispatch runs per `crisis.alerts` partition: what the outbox key does to groups and inhibition.

Messages go through a real broker (4 partitions, Kafka's default murmur2 partitioner, as the worker's
producer uses) and each partition is dispatched by its own `Dispatcher`, as the worker does. Keyed by
`dedup_key` (before), a route grouping by brand split into one group per partition and the default
"critical negative surge inhibits volume alerts of the same brand" rule missed when the two landed on
different partitions; keyed by `outbox_key` (the brand) both behave as with one partition. A group
that spans brands is still per partition: the documented limit, reported by `partition_limits`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from alerts_helpers import T0, assessment
from kafka_broker import create_topic, unique_topic

from crisiswatch.alerts.config import AlertingConfig
from crisiswatch.alerts.dispatch import Dispatcher, outbox_key, partition_limits
from crisiswatch.alerts.incidents import IncidentEvent, IncidentTracker
from crisiswatch.alerts.receivers.base import Notification
from crisiswatch.alerts.routing import build_runtime

pytestmark = pytest.mark.integration
PARTITIONS = 4
Key = Callable[[IncidentEvent], str]


def by_dedup_key(event: IncidentEvent) -> str:
    return event.dedup_key


def _config(group_by: Sequence[str]) -> AlertingConfig:
    return AlertingConfig.from_mapping(
        {
            "receivers": [{"name": "pr", "console": {}}],
            "route": {"receiver": "pr", "group_by": list(group_by), "group_wait_s": "30s"},
        }
    )


def _through_kafka(bootstrap: str, events: list[IncidentEvent], key: Key) -> dict[int, list[IncidentEvent]]:
    """Produce keyed like the worker, read back: the incident events of each partition, in order."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = create_topic(bootstrap, unique_topic("alerts-outbox"), PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for event in events:
        producer.send(topic, key=key(event).encode(), value=json.dumps(event.to_dict()).encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    out: dict[int, list[IncidentEvent]] = {}
    deadline = time.monotonic() + 30
    while sum(len(v) for v in out.values()) < len(events) and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            out.setdefault(tp.partition, []).extend(
                IncidentEvent.from_dict(json.loads(r.value)) for r in records
            )
    consumer.close()
    assert sum(len(v) for v in out.values()) == len(events)
    return out


def _dispatch(config: AlertingConfig, partitions: dict[int, list[IncidentEvent]]) -> list[Notification]:
    """One Dispatcher per partition, as the worker keeps one AlertingService per partition."""
    out: list[Notification] = []
    for events in partitions.values():
        dispatcher = Dispatcher(build_runtime(config))
        for event in events:
            out += dispatcher.submit(event, event.detected_at_s)
        out += dispatcher.tick(T0 + 3600)
    return out


def _events(*specs: dict[str, Any]) -> list[IncidentEvent]:
    out: list[IncidentEvent] = []
    for spec in specs:
        out += IncidentTracker().observe(assessment(**spec))
    return out


def test_brand_group_is_split_by_dedup_keys_and_whole_with_the_outbox_key(kafka_bootstrap: str) -> None:
    events = _events(*({"severity": "warning", "t": i, "root_id": f"r{i}"} for i in range(1, 7)))
    config = _config(["brand"])
    assert partition_limits(build_runtime(config)) == []

    before = _dispatch(config, _through_kafka(kafka_bootstrap, events, by_dedup_key))
    after = _dispatch(config, _through_kafka(kafka_bootstrap, events, outbox_key))

    assert len(before) > 1  # one "page" per partition for what is one group
    assert [n.kind for n in after] == ["page"]
    assert {after[0].event.incident_id, *(e.incident_id for e in after[0].others)} == {
        e.incident_id for e in events
    }


def test_default_inhibition_holds_across_partitions_with_the_outbox_key(kafka_bootstrap: str) -> None:
    from kafka.partitioner.default import murmur2

    def partition(key: str) -> int:
        return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS

    # A brand whose two brand-wide incidents hash apart under dedup_key keying.
    brand = next(
        b
        for b in ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
        if partition(f"{b}/negative_surge/*") != partition(f"{b}/volume_surge/*")
    )
    events = _events(
        {"severity": "critical", "detector": "negative_surge", "brand": brand, "root_id": None},
        {"severity": "warning", "t": 1, "detector": "volume_surge", "brand": brand, "root_id": None},
    )
    config = AlertingConfig.from_mapping(
        {"receivers": [{"name": "pr", "console": {}}], "route": {"receiver": "pr"}}
    )
    assert partition_limits(build_runtime(config)) == []  # default group_by and inhibit rule

    before = _dispatch(config, _through_kafka(kafka_bootstrap, events, by_dedup_key))
    after = _dispatch(config, _through_kafka(kafka_bootstrap, events, outbox_key))

    assert sorted(n.event.detector for n in before) == ["negative_surge", "volume_surge"]  # missed
    assert [n.event.detector for n in after] == ["negative_surge"]  # volume alert inhibited


def test_groups_spanning_brands_stay_per_partition_documented_limit(kafka_bootstrap: str) -> None:
    brands = ["acme", "globex", "initech", "hooli"]  # partitions 0, 3, 2, 1 of 4
    events = _events(*({"severity": "warning", "t": i, "brand": b} for i, b in enumerate(brands)))
    config = _config(["detector"])
    limits = partition_limits(build_runtime(config))
    assert len(limits) == 1 and limits[0].startswith("route: group_by ['detector'] spans brands")

    after = _dispatch(config, _through_kafka(kafka_bootstrap, events, outbox_key))
    # With one partition this would be one page for the four brands; here it is one per partition.
    assert len(after) == len({outbox_key(e) for e in events}) == 4
    assert all(n.kind == "page" for n in after)


def test_partition_limits_names_rules_and_routes() -> None:
    config = AlertingConfig.from_mapping(
        {
            "receivers": [{"name": "pr", "console": {}}],
            "route": {
                "receiver": "pr",
                "routes": [
                    {"matchers": ['severity="critical"'], "group_by": ["brand", "detector"]},
                    {"matchers": ['role="competitor"'], "group_by": []},
                    {"matchers": ['role="own"'], "group_by": ["..."]},
                ],
            },
            "inhibit_rules": [
                {
                    "source_matchers": ['severity="critical"'],
                    "target_matchers": ['severity="warning"'],
                    "equal": ["brand"],
                },
                {"source_matchers": ['detector="x"'], "target_matchers": ['detector="y"'], "equal": ["lang"]},
            ],
        }
    )
    limits = partition_limits(build_runtime(config))
    assert [line.split(":")[0] for line in limits] == ["route.routes[1]", "inhibit_rules[1]"]
