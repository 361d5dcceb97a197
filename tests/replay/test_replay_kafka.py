"""Kafka as a replay source (a topic range by offsets or timestamps) and as a paced sink (`--to-kafka`)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
from kafka_broker import create_topic, unique_topic
from replay_helpers import run_cli
from worker_process import read_topic

from crisiswatch.streams.pipeline import RawRecord
from crisiswatch.streams.sources import KafkaRange, KafkaRangeSource, send_paced

T0 = 1_795_525_200.0


def _post(index: int, t_s: float, root: str | None = None) -> bytes:
    post = {
        "id": f"p{index:05d}",
        "created_at": t_s,
        "text": f"hello {index}",
        "kind": "post" if root is None else "forward",
        "author": {"id": f"u{index}", "followers": 10, "verified": False},
        "brands": ["acme"],
    }
    if root is not None:
        post["parent_id"] = post["root_id"] = root
    return json.dumps(post).encode()


# -- pacing, with a fake clock ------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sent_at: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


@pytest.mark.parametrize("speed", [1.0, 60.0, 600.0])
def test_pacing_keeps_the_spacing_divided_by_speed(speed: float) -> None:
    offsets = [0.0, 1.0, 1.5, 30.0, 30.0, 90.0, 600.0]
    records = [RawRecord(_post(i, T0 + offset)) for i, offset in enumerate(offsets)]
    clock = FakeClock()
    result = send_paced(
        records,
        lambda value: clock.sent_at.append(clock.now),
        speed=speed,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    assert result.sent == len(offsets)
    assert [at - clock.sent_at[0] for at in clock.sent_at] == pytest.approx(
        [offset / speed for offset in offsets]
    )
    assert result.last_event_s == T0 + 600.0


def test_pacing_never_waits_backwards_and_sends_unreadable_lines_at_once() -> None:
    records = [
        RawRecord(_post(0, T0 + 60)),
        RawRecord(b"{broken"),
        RawRecord(_post(1, T0 + 10)),
        RawRecord(_post(2, T0 + 120)),
    ]
    clock = FakeClock()
    send_paced(
        records,
        lambda value: clock.sent_at.append(clock.now),
        speed=1.0,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    assert [at - 100.0 for at in clock.sent_at] == [0.0, 0.0, 0.0, 60.0]


def test_speed_zero_is_as_fast_as_possible() -> None:
    clock = FakeClock()
    records = [RawRecord(_post(i, T0 + 3600 * i)) for i in range(5)]
    send_paced(
        records,
        lambda value: clock.sent_at.append(clock.now),
        speed=0.0,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    assert clock.sent_at == [100.0] * 5


# -- a real broker ----------------------------------------------------------------------------------------


def _produce(bootstrap: str, topic: str, values: list[bytes], partitions: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for index, value in enumerate(values):
            producer.send(topic, value=value, partition=index % partitions)
        producer.flush()
    finally:
        producer.close()


@pytest.mark.integration
def test_topic_range_by_offsets_and_by_timestamps(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = create_topic(kafka_bootstrap, unique_topic("replay-range"), partitions=3)
    first = [_post(i, T0 + i) for i in range(60)]
    _produce(kafka_bootstrap, topic, first, 3)
    time.sleep(0.05)
    boundary_ms = int(time.time() * 1000)
    time.sleep(0.05)
    second = [_post(100 + i, T0 + 100 + i) for i in range(30)]
    _produce(kafka_bootstrap, topic, second, 3)
    options = {"bootstrap_servers": kafka_bootstrap}

    everything = list(KafkaRangeSource(options, KafkaRange(topic)))
    assert sorted(record.value for record in everything) == sorted(first + second)
    assert len({record.source for record in everything}) == 90

    by_offset = list(KafkaRangeSource(options, KafkaRange(topic, from_offset=5, to_offset=10)))
    assert len(by_offset) == 15 and all(5 <= record.offset < 10 for record in by_offset)

    by_time = list(KafkaRangeSource(options, KafkaRange(topic, from_time_s=boundary_ms / 1000)))
    assert sorted(record.value for record in by_time) == sorted(second)
    until = list(KafkaRangeSource(options, KafkaRange(topic, to_time_s=boundary_ms / 1000)))
    assert sorted(record.value for record in until) == sorted(first)

    # The same range through the CLI: every record consumed and processed.
    out = tmp_path / "alerts.jsonl"
    run = run_cli(
        "replay",
        "--kafka-topic",
        topic,
        "--bootstrap",
        kafka_bootstrap,
        "--from-offset",
        "5",
        "--to-offset",
        "10",
        "--alerts-out",
        str(out),
        "--quiet",
    )
    assert run.status == 0, run.err
    assert "replayed 15 posts: 15 processed" in run.err


@pytest.mark.integration
def test_to_kafka_keeps_the_original_spacing_at_speed(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = create_topic(kafka_bootstrap, unique_topic("replay-paced"), partitions=1)
    offsets = [0, 30, 60, 90, 150, 210, 300, 420, 480, 600]  # seconds of event time: 10 min
    source = tmp_path / "short.jsonl"
    source.write_bytes(
        b"\n".join(_post(i, T0 + offset, root="p00000" if i else None) for i, offset in enumerate(offsets))
        + b"\n"
    )
    started = time.monotonic()
    run = run_cli(
        "replay",
        str(source),
        "--to-kafka",
        topic,
        "--bootstrap",
        kafka_bootstrap,
        "--speed",
        "600",
        "--quiet",
    )
    wall = time.monotonic() - started
    assert run.status == 0, run.err
    assert "sent 10 messages" in run.err
    assert 0.9 <= wall < 10, wall  # 600 s of event time at 600x: about one second
    messages = sorted(read_topic(kafka_bootstrap, topic), key=lambda m: m.offset)
    assert [json.loads(m.value)["id"] for m in messages] == [f"p{i:05d}" for i in range(10)]
    assert messages[1].key == b"p00000", "keyed by root_id like `crisiswatch produce`"
    arrivals = [(m.timestamp - messages[0].timestamp) / 1000 for m in messages]
    expected = [offset / 600 for offset in offsets]
    assert max(abs(a - e) for a, e in zip(arrivals, expected, strict=True)) < 0.08, (arrivals, expected)
    # Inter-arrival ratios follow the original spacing.
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    wanted = [b - a for a, b in zip(expected, expected[1:], strict=False)]
    assert statistics.fmean(gaps) == pytest.approx(statistics.fmean(wanted), rel=0.1)
