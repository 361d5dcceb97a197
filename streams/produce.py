"""Send recorded or generated posts to a Kafka topic with kafka-python, keyed by root_id.

Lines of recorded files are sent as they are, malformed ones included (the worker dead-letters them),
so a staging run exercises exactly what production would see.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from crisiswatch.streams.replay import dump_line, read_records


def message_key(value: bytes) -> bytes | None:
    """The partitioning key of a raw message: root_id, else parent_id, else id; None when unreadable."""
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    for field in ("root_id", "parent_id", "id"):
        candidate = data.get(field)
        if isinstance(candidate, str) and candidate:
            if field == "id" and data.get("kind", "post") not in ("post", None):
                continue
            return candidate.encode("utf-8")
    return None


def generated_messages(preset: str, seed: int) -> Iterator[bytes]:
    from crisiswatch.streams.scenarios import generate
    from crisiswatch.streams.scenarios import preset as scenario_preset

    for post in generate(scenario_preset(preset, seed=seed)).posts:
        yield dump_line(post).encode("utf-8")


def send_messages(bootstrap: str, topic: str, values: Iterable[bytes], *, producer: Any = None) -> int:
    from kafka import KafkaProducer

    own_producer = producer is None
    producer = producer or KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024
    )
    count = 0
    try:
        for value in values:
            producer.send(topic, key=message_key(value), value=value)
            count += 1
        producer.flush()
    finally:
        if own_producer:
            producer.close()
    return count


def produce_posts(*, bootstrap: str, topic: str, files: Sequence[str], preset: str | None, seed: int) -> int:
    if preset:
        return send_messages(bootstrap, topic, generated_messages(preset, seed))
    return send_messages(bootstrap, topic, (record.value for record in read_records(files)))
