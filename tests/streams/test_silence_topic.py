"""Silences on a compacted Kafka topic (streams/silences.py) against a real broker.

`crisiswatch silence add|list|expire` writes the topic; every worker follows it and its
AlertingService holds pages back while a matching silence is active.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka_broker import create_topic, unique_topic

from crisiswatch.alerts.clock import ManualClock
from crisiswatch.alerts.incidents import IncidentTracker
from crisiswatch.alerts.service import AlertingService
from crisiswatch.alerts.silences import new_silence
from crisiswatch.detectors.events import Assessment
from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.config import Settings, settings_from_mapping
from crisiswatch.streams.silences import (
    KafkaSilenceStore,
    close_silence_store,
    encode_silence,
    open_silence_store,
    silence_main,
)

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def _settings(bootstrap: str, topic: str, tmp_path: Any) -> Settings:
    return settings_from_mapping(
        {
            "kafka": {"bootstrap_servers": bootstrap, "silences_topic": topic},
            "alerting": {
                "silences_store": "kafka",
                "receivers": [{"name": "pr", "jsonl": {"path": str(tmp_path / "pages.jsonl")}}],
                "route": {"receiver": "pr"},
                "delivery": {"dead_letter_path": str(tmp_path / "dead.jsonl")},
            },
        },
        environ={},
    )


def _cli(settings: Settings, *argv: str, at: float = T0) -> tuple[int, str]:
    out = io.StringIO()
    status = silence_main(list(argv), settings, clock=ManualClock(at), out=out)
    return status, out.getvalue()


def _eventually(check: Callable[[], bool], timeout_s: float = 15.0) -> float:
    """Seconds until `check()` held (fails after `timeout_s`)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)
    return time.monotonic() - start


def _critical(brand: str = "acme", root_id: str = "r1") -> Any:
    assessment = Assessment(
        detector="forward_surge",
        brand=brand,
        root_id=root_id,
        severity="critical",
        score=3.0,
        event_time_s=T0,
        explanation="test",
        metrics={"forwards_per_minute": 120.0},
        labels={"lang": "en", "platform": "weibo", "role": "own"},
    )
    return IncidentTracker().observe(assessment)[0]


@pytest.fixture
def topic_settings(kafka_bootstrap: str, tmp_path: Any) -> Iterator[Settings]:
    yield _settings(kafka_bootstrap, unique_topic("silences"), tmp_path)


def _records(bootstrap: str, topic: str) -> list[Any]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    out: list[Any] = []
    while consumer.position(tp) < end:
        for records in consumer.poll(timeout_ms=500).values():
            out.extend(records)
    consumer.close()
    return out


@pytest.mark.integration
def test_cli_add_list_expire_on_a_compacted_topic(topic_settings: Settings, kafka_bootstrap: str) -> None:
    status, out = _cli(
        topic_settings,
        "add",
        'brand="acme"',
        "detector=~volume.*",
        "--duration",
        "2h",
        "--author",
        "alice",
        "--comment",
        "campaign launch",
    )
    assert status == 0, out
    silence_id = out.strip()
    status, listing = _cli(topic_settings, "list")
    assert status == 0 and listing.startswith(f"{silence_id} active ") and "campaign launch" in listing
    status, listing = _cli(topic_settings, "list", "--json")
    [entry] = json.loads(listing)
    assert entry["matchers"] == ['brand="acme"', 'detector=~"volume.*"'] and entry["ends_at_s"] == T0 + 7200

    status, out = _cli(topic_settings, "expire", silence_id[:6], at=T0 + 600)  # a unique prefix
    assert status == 0 and out.strip() == f"{silence_id} expired at 2026-11-18T11:16:40Z"
    assert _cli(topic_settings, "list", at=T0 + 601) == (0, "")
    status, listing = _cli(topic_settings, "list", "--all", at=T0 + 601)
    assert f"{silence_id} expired " in listing

    # The topic: compacted, one partition, one record per write keyed by the silence id.
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, topic_settings.kafka.silences_topic, ["cleanup.policy"]
                )
            ],
            config_filter="all",
        )
        topic = topic_settings.kafka.silences_topic
        assert described["topic"][topic]["cleanup.policy"]["value"] == "compact"
        assert len(admin.describe_topics([topic])[0]["partitions"]) == 1
    finally:
        admin.close()
    records = _records(kafka_bootstrap, topic_settings.kafka.silences_topic)
    assert [r.key.decode() for r in records] == [silence_id, silence_id]
    assert json.loads(records[-1].value)["ends_at_s"] == T0 + 600


@pytest.mark.integration
def test_every_worker_follows_and_holds_back_pages(topic_settings: Settings, tmp_path: Any) -> None:
    """Two workers follow the topic; a page for a silenced brand waits until the silence is expired."""
    workers = [open_silence_store(topic_settings) for _ in range(2)]
    try:
        clock = ManualClock(T0)
        service = AlertingService(
            topic_settings.alerting,
            clock=clock,
            silences=workers[0],
            registry=None,
        )
        status, out = _cli(topic_settings, "add", 'brand="acme"', "--duration", "1h", "--author", "alice")
        assert status == 0
        silence_id = out.strip()
        for worker in workers:
            _eventually(lambda w=worker: any(s.id == silence_id for s in w.all()))

        assert service.on_event(_critical("acme")) == []  # held back by the silence
        assert [n.event.brand for n in service.on_event(_critical("globex", "r2"))] == ["globex"]
        assert service.dispatcher.suppressions[-1].reason == f"silenced:{silence_id}"

        assert _cli(topic_settings, "expire", silence_id, at=T0 + 30)[0] == 0
        _eventually(lambda: all(s.ends_at_s == T0 + 30 for s in workers[1].all()))
        _eventually(lambda: all(s.ends_at_s == T0 + 30 for s in workers[0].all()))
        clock.set(T0 + 60)  # the held page is re-checked every SUPPRESSED_RECHECK_S (60 s)
        pages = [n for n in service.dispatcher.tick(clock.now())]
        assert [(n.kind, n.event.brand) for n in pages] == [("page", "acme")]
        assert all(w.following and w.last_error is None for w in workers)
    finally:
        for worker in workers:
            close_silence_store(worker)


@pytest.mark.integration
def test_restart_loads_current_set_and_pruned_silences_are_tombstoned(
    topic_settings: Settings, kafka_bootstrap: str
) -> None:
    old = _cli(topic_settings, "add", 'brand="acme"', "--duration", "1h", "--author", "a")[1].strip()
    _cli(topic_settings, "expire", old, at=T0 + 60)
    eight_days = T0 + 8 * 86400
    new = _cli(topic_settings, "add", 'brand="globex"', "--duration", "1h", "--author", "b", at=eight_days)[
        1
    ].strip()

    records = _records(kafka_bootstrap, topic_settings.kafka.silences_topic)
    assert [(r.key.decode(), r.value is None) for r in records][-2:] == [(new, False), (old, True)]
    restarted = open_silence_store(topic_settings)  # a worker starting now
    try:
        assert [s.id for s in restarted.all()] == [new]
    finally:
        close_silence_store(restarted)


@pytest.mark.integration
def test_hostile_or_broken_records_are_skipped(topic_settings: Settings, kafka_bootstrap: str) -> None:
    from kafka import KafkaProducer

    topic = topic_settings.kafka.silences_topic
    good = new_silence(['brand="acme"'], T0, T0 + 3600, "alice")
    store = KafkaSilenceStore({"bootstrap_servers": [kafka_bootstrap]}, topic).start(follow=True)
    try:
        everything = json.loads(encode_silence(good))
        everything.update(id="everything", matchers=['brand=~".*"'])
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        for key, value in [
            (b"garbage", b"{not json"),
            (b"everything", json.dumps(everything).encode()),  # would silence every alert
            (b"future", json.dumps({**everything, "id": "future", "v": 2}).encode()),
            (b"mismatch", encode_silence(good)),  # key is not the id
            (good.id.encode(), encode_silence(good)),
        ]:
            producer.send(topic, key=key, value=value)
        producer.flush()
        producer.close()
        _eventually(lambda: store.skipped_records == 4)
        _eventually(lambda: [s.id for s in store.all()] == [good.id])
    finally:
        store.close()


@pytest.mark.integration
def test_a_topic_that_deletes_by_age_is_refused(kafka_bootstrap: str, tmp_path: Any) -> None:
    topic = create_topic(kafka_bootstrap, unique_topic("silences-delete"), 1)
    settings = _settings(kafka_bootstrap, topic, tmp_path)
    with pytest.raises(ConfigError) as caught:
        open_silence_store(settings)
    assert caught.value.key == "kafka.silences_topic" and "cleanup.policy=compact" in str(caught.value)
    status, out = _cli(settings, "list")
    assert status == 2 and "cleanup.policy=compact" in out


def test_unreachable_broker_is_a_clear_cli_error(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crisiswatch.streams.silences.CLI_TIMEOUT_S", 2.0)
    settings = _settings("127.0.0.1:1", "crisis.silences", tmp_path)
    status, out = _cli(settings, "list")
    assert status == 2 and out.startswith("error: silences topic crisis.silences at 127.0.0.1:1")


def test_a_kafka_store_must_be_passed_in(tmp_path: Any) -> None:
    settings = _settings("127.0.0.1:1", "crisis.silences", tmp_path)
    with pytest.raises(ConfigError) as caught:
        AlertingService(settings.alerting, clock=ManualClock(T0))
    assert caught.value.key == "silences_store"


@pytest.mark.integration
def test_routes_test_shows_a_silence_from_the_topic(topic_settings: Settings) -> None:
    from crisiswatch.streams.silences import routes_main

    silence_id = _cli(topic_settings, "add", 'brand="acme"', "--duration", "1h", "--author", "a")[1].strip()
    out = io.StringIO()
    argv = ["test", "--labels", "brand=acme,severity=critical", "--at", str(T0 + 60), "--json"]
    assert routes_main(argv, topic_settings, clock=ManualClock(T0), out=out) == 0
    assert json.loads(out.getvalue())["silenced_by"]["id"] == silence_id


def test_file_store_still_works_through_the_same_verbs(tmp_path: Any) -> None:
    settings = settings_from_mapping(
        {"alerting": {"silences_path": str(tmp_path / "silences.json")}}, environ={}
    )
    status, out = _cli(settings, "add", 'brand="acme"', "--author", "alice")
    assert status == 0 and (tmp_path / "silences.json").exists()
    assert _cli(settings, "list")[1].startswith(out.strip())


@pytest.mark.integration
def test_follower_keeps_its_silences_through_a_broker_restart(own_kafka_broker: Any, tmp_path: Any) -> None:
    settings = _settings(own_kafka_broker.bootstrap, "crisis.silences", tmp_path)
    first = _cli(settings, "add", 'brand="acme"', "--duration", "1h", "--author", "a")[1].strip()
    worker = open_silence_store(settings)
    try:
        own_kafka_broker.stop()
        time.sleep(1.0)
        assert [s.id for s in worker.all()] == [first]  # the last known set stays in force
        own_kafka_broker.start()
        second = _cli(settings, "add", 'brand="globex"', "--duration", "1h", "--author", "b")[1].strip()
        assert second and second != first
        _eventually(lambda: {s.id for s in worker.all()} == {first, second}, timeout_s=60.0)
        assert worker.following
    finally:
        close_silence_store(worker)
