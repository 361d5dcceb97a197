"""End to end on the real broker: kafka-python produces, `crisiswatch worker` runs as a real process.

Planted forward surge inside normal traffic, malformed and duplicate messages; asserts the incident on
the alerts topic, every malformed message on the DLQ with its reason code, and the accounting identity.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import planted
import pytest
from kafka_broker import create_topic
from worker_process import WorkerConfig, WorkerProcess, produce, read_topic

pytestmark = pytest.mark.integration


def test_worker_end_to_end(kafka_bootstrap: str, tmp_path: Path) -> None:
    config = WorkerConfig(bootstrap=kafka_bootstrap, directory=tmp_path, brands=planted.BRAND_CONFIG)
    create_topic(kafka_bootstrap, config.posts_topic, partitions=4)
    worker = WorkerProcess(config).start()
    try:
        worker.wait_ready()
        posts = planted.stream()
        good = planted.encode(posts)
        duplicates = good[100:120]  # redelivered messages (same id, same bytes)
        malformed = [raw for raw, _ in planted.MALFORMED]
        produced = produce(kafka_bootstrap, config.posts_topic, good + malformed + duplicates)
        stats = worker.wait_for(
            lambda s: s.get("consumed", 0) >= produced, timeout_s=120, what=f"{produced} posts consumed"
        )

        # Accounting: consumed = processed + dead-lettered + duplicate + late.
        assert stats["consumed"] == produced
        assert (
            stats["consumed"]
            == stats["processed"] + stats["dead_lettered"] + stats["duplicate"] + stats["late"]
        )
        assert stats["dead_lettered"] == len(malformed)
        assert stats["duplicate"] == len(duplicates)
        assert stats["processed"] == len(good)

        # Every malformed message is on the DLQ with its original bytes and reason code.
        dead = read_topic(kafka_bootstrap, config.dead_letter_topic)
        by_value = {message.value: dict(message.headers) for message in dead}
        for raw, reason in planted.MALFORMED:
            assert raw in by_value, f"missing on the DLQ: {raw[:40]!r}"
            assert by_value[raw]["reason"].decode() == reason
            assert by_value[raw]["source"].decode().startswith(config.posts_topic)

        # The planted surge is an incident on the alerts topic, at warning or above, paged once.
        alerts = [json.loads(message.value) for message in read_topic(kafka_bootstrap, config.alerts_topic)]
        surge = [
            event
            for event in alerts
            if event["root_id"] == planted.SURGE_ROOT and event["detector"] == "forward_surge"
        ]
        assert surge, (
            f"no forward_surge incident for the planted root; got {[(e['detector'], e['root_id']) for e in alerts]}"
        )
        firing = [event for event in surge if event["status"] == "firing"]
        assert len(firing) == 1, "the surge must fire exactly once"
        assert max(("info", "warning", "critical").index(event["severity"]) for event in surge) >= 1
        assert all(event["brand"] == planted.BRAND for event in surge)
        assert len({event["id"] for event in alerts}) == len(alerts), "event ids are unique"
        # Normal traffic alone does not page.
        others = [
            event
            for event in alerts
            if event["root_id"] not in (planted.SURGE_ROOT, None) and event["severity"] != "info"
        ]
        assert not others, others

        # The notify agent delivered what is on the outbox to the JSONL sink.
        delivered = worker.wait_for(lambda s: s["delivered_incident_events"] >= len(alerts), what="delivery")
        assert delivered["delivered_incident_events"] == len(alerts)
        assert Counter(e["id"] for e in worker.delivered_events()) == Counter(e["id"] for e in alerts)
    finally:
        exit_code = worker.terminate()
    assert exit_code == 0, worker.log_tail()
