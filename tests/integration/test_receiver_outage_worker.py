"""A webhook receiver outage through a running worker (issue 9): refused, then 500s, then 429 + Retry-After.

`crisiswatch worker` on the real broker pages a real HTTP receiver on 127.0.0.1 for the planted surge while
the receiver is down: first nothing listens on its port (connection refused), then it answers 500, then 429
with Retry-After, then it recovers. The production retry policy (alerts/config.py `DeliveryConfig`:
exponential backoff x2, jitter 0.2, a budget, Retry-After obeyed) runs with its times scaled down so the
outage lasts PHASE_S x 3 seconds instead of minutes (DELIVERY below).

Asserted: every notification the worker still owes arrives after recovery (a page for every firing event,
and the latest state of every incident), no notification id twice (the receiver's idempotency key), the
Retry-After is obeyed, nothing is dead-lettered, and /metrics told the truth meanwhile: failed attempts per
reason equal what the receiver answered, every failure was retried, the pending gauge showed the backlog.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import planted
import pytest
from kafka_broker import create_topic
from worker_process import (
    WebhookReceiver,
    WorkerConfig,
    WorkerProcess,
    metric_values,
    produce,
    read_topic,
    webhook_alerting,
)

pytestmark = pytest.mark.integration

PHASE_S = 10.0  # refused, then 500, then 429: a 30 s outage
RETRY_AFTER_S = 4  # longer than max_backoff_s, so obeying it is visible in the spacing of attempts
# The production policy's shape with times scaled ~1/20 (defaults: 1 s, 300 s, 6 h, 10 s, 1 h).
DELIVERY = {
    "initial_backoff_s": 0.25,
    "max_backoff_s": 2.0,
    "multiplier": 2.0,
    "jitter": 0.2,
    "budget_s": 1080.0,
    "timeout_s": 2.0,
    "max_retry_after_s": 180.0,
}
RECEIVER = 'receiver="hook"'


def metrics(worker: WorkerProcess) -> dict[str, dict[str, float]]:
    import urllib.request

    with urllib.request.urlopen(worker.url("/metrics"), timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    names = ("sent_total", "failed_total", "retried_total", "dead_lettered_total", "pending")
    return {name: metric_values(text, f"crisiswatch_notifications_{name}") for name in names}


def failed(snapshot: dict[str, dict[str, float]], reason: str) -> float:
    return snapshot["failed_total"].get(f'reason="{reason}",{RECEIVER}', 0.0) + snapshot["failed_total"].get(
        f'{RECEIVER},reason="{reason}"', 0.0
    )


def total(snapshot: dict[str, dict[str, float]], name: str) -> float:
    return sum(snapshot[name].values())


def wait_until(predicate: Any, timeout_s: float, what: str, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, (
            f"timed out after {timeout_s} s waiting for {what}\n{worker.log_tail()}"
        )
        time.sleep(0.25)


def test_receiver_outage_every_notification_arrives_once_and_metrics_tell_the_truth(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    receiver = WebhookReceiver()  # not listening yet: connection refused
    dead_letters = tmp_path / "dead-letters.jsonl"  # where webhook_alerting puts them
    config = WorkerConfig(
        bootstrap=kafka_bootstrap,
        directory=tmp_path,
        brands=planted.BRAND_CONFIG,
        extra={
            "alerting": webhook_alerting(
                receiver.url,
                tmp_path,
                # Later changes (here: the resolves) are queued within a second, during the outage.
                group_interval_s=1,
                delivery=DELIVERY,
            )
        },
    )
    create_topic(kafka_bootstrap, config.posts_topic, partitions=config.partitions)
    worker = WorkerProcess(config).start()
    try:
        worker.wait_ready()
        produce(kafka_bootstrap, config.posts_topic, planted.encode(planted.stream()))

        # Phase 1: connection refused.
        wait_until(lambda: failed(metrics(worker), "connection") >= 1, 60, "a refused attempt", worker)
        time.sleep(PHASE_S)
        refused = metrics(worker)
        assert failed(refused, "connection") >= 2, refused  # retried, not given up
        assert total(refused, "sent_total") == 0, refused
        assert total(refused, "pending") >= 1, refused
        assert total(refused, "retried_total") == total(refused, "failed_total"), refused
        assert total(refused, "dead_lettered_total") == 0 and not dead_letters.exists(), refused

        # Phase 2: the receiver is up but answers 500.
        receiver.answer(500)
        receiver.listen()
        time.sleep(PHASE_S)
        errors = metrics(worker)
        answered_500 = len(receiver.answered(500))
        assert answered_500 >= 2, receiver.requests
        # At most the attempts in flight (one per incident thread) not yet counted.
        assert answered_500 - 4 <= failed(errors, "http_5xx") <= answered_500, (errors, answered_500)
        assert total(errors, "sent_total") == 0 and total(errors, "pending") >= 1, errors

        # Phase 3: 429 with Retry-After, longer than the worker's own max backoff.
        receiver.answer(429, str(RETRY_AFTER_S))
        phase3 = time.time()
        time.sleep(PHASE_S)
        limited = metrics(worker)
        assert failed(limited, "rate_limited") >= 1 and total(limited, "sent_total") == 0, limited
        assert total(limited, "dead_lettered_total") == 0 and not dead_letters.exists(), limited

        # Recovery.
        receiver.answer(200)
        recovered = time.time()
        wait_until(lambda: total(metrics(worker), "pending") == 0, 60, "the backlog delivered", worker)
        final = metrics(worker)
    finally:
        exit_code = worker.terminate()
        receiver.close()
    assert exit_code == 0, worker.log_tail()

    delivered = receiver.answered()
    # Metrics equal what the receiver saw; every failure was retried; nothing given up.
    assert failed(final, "http_5xx") == len(receiver.answered(500)), final
    assert failed(final, "rate_limited") == len(receiver.answered(429)), final
    assert total(final, "sent_total") == len(delivered), final
    assert total(final, "retried_total") == total(final, "failed_total"), final
    assert total(final, "dead_lettered_total") == 0 and not dead_letters.exists(), final

    # Retry-After obeyed: a notification's next attempt after a 429 came no sooner than asked.
    attempts: dict[str, list[tuple[float, int]]] = {}
    for at, status, notification_id, _ in receiver.requests:
        attempts.setdefault(notification_id, []).append((at, status))
    for history in attempts.values():
        for (at, status), (next_at, _) in zip(history, history[1:], strict=False):
            if status == 429 and at >= phase3:
                assert next_at - at >= RETRY_AFTER_S - 0.5, history

    # Delivered after recovery, each notification id (the idempotency key) once.
    assert delivered and all(at >= recovered for at, *_ in delivered), delivered
    duplicates = [key for key, count in Counter(r[2] for r in delivered).items() if count > 1]
    assert not duplicates, duplicates

    # Every notification still owed arrived: a page for every firing event, and the latest state of every
    # incident (an undelivered update is replaced by a newer one of the same incident, by design).
    events = [json.loads(m.value) for m in read_topic(kafka_bootstrap, config.alerts_topic)]
    firing = {e["id"] for e in events if e["status"] == "firing"}
    assert any(e["root_id"] == planted.SURGE_ROOT for e in events if e["id"] in firing), events
    pages = {r[3]["incident"]["id"] for r in delivered if r[3]["kind"] == "page"}
    assert firing <= pages, (firing, pages)
    latest_event: dict[str, str] = {}
    for event in events:
        latest_event[event["incident_id"]] = event["id"]
    latest_delivered: dict[str, str] = {}
    for _, _, _, body in sorted(delivered, key=lambda r: r[0]):
        latest_delivered[body["incident"]["incident_id"]] = body["incident"]["id"]
    assert latest_delivered == latest_event, (
        [(e["incident_id"], e["id"], e["status"], e["severity"], e["detected_at"]) for e in events],
        [(r[0], r[1], r[2], r[3]["kind"], r[3]["incident"]["id"]) for r in receiver.requests],
    )
    print(
        f"\n{len(events)} incident events; attempts refused {failed(final, 'connection'):.0f}, "
        f"500 {len(receiver.answered(500))}, 429 {len(receiver.answered(429))}; "
        f"{len(delivered)} notifications delivered after recovery, "
        f"the last {max(at for at, *_ in delivered) - recovered:.1f} s after it"
    )
