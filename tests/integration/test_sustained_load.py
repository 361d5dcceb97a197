"""Sustained load with a planted crisis, short variant (issue 9; the long one is bench/sustained_load.py).

One `crisiswatch worker` on the real broker takes a steady stream of posts (event time = wall time) for
LOAD_S seconds, with the planted surge (tests/planted.py, compressed into SURGE_SPAN_S) sent in the middle,
and pages a real webhook receiver on 127.0.0.1. Asserted, with margins for a loaded 2-core machine:

- the surge fires once (one firing event id) and its page reaches the receiver within FIRE_BOUND_S of the
  decisive post (the one whose event time is the firing event's detected_at) being acknowledged by Kafka;
- memory: RSS at the end of the load is at most MEMORY_GROWTH_MB above RSS in the middle;
- lag: after the load stops, the group commits the end of every partition it reads within LAG_RECOVERY_S;
- accounting: /stats consumed = processed + dead_lettered + duplicate + late = every post produced.

State horizons are scaled so that expiry happens inside the run (as it would after hours in production):
dedup ids and idle cascades are forgotten after HORIZON_S of event time, not 24 h / 6 h. Without that the
state grows with every post for the whole run by design, and "flat" could not be told from "leaking".
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import planted
import pytest
from kafka_broker import create_topic
from worker_process import (
    LagProbe,
    PacedLoad,
    WebhookReceiver,
    WorkerConfig,
    WorkerProcess,
    proc_rss_mb,
    read_topic,
    scaled_horizons,
    surge_schedule,
    webhook_alerting,
    worker_topics,
)

pytestmark = pytest.mark.integration

RATE_PER_S = 300.0
LOAD_S = 40.0
SURGE_AT_S = 12.0  # the surge's root is sent this long after the load starts
SURGE_SPAN_S = 10.0
HORIZON_S = 15.0
FIRE_BOUND_S = 20.0  # at 300 posts/s the worker keeps up: typically well under 1 s
MEMORY_GROWTH_MB = 40.0  # expected: a few MB (state is bounded by HORIZON_S); a leak per post would exceed it
LAG_RECOVERY_S = 45.0


def test_sustained_load_pages_once_memory_flat_lag_recovers(kafka_bootstrap: str, tmp_path: Path) -> None:
    receiver = WebhookReceiver().listen()
    config = WorkerConfig(
        bootstrap=kafka_bootstrap,
        directory=tmp_path,
        brands=planted.BRAND_CONFIG,
        extra={
            **scaled_horizons(HORIZON_S),
            "alerting": webhook_alerting(receiver.url, tmp_path),
        },
    )
    create_topic(kafka_bootstrap, config.posts_topic, partitions=config.partitions)
    worker = WorkerProcess(config).start()
    probe = LagProbe(kafka_bootstrap)
    load = PacedLoad(
        kafka_bootstrap,
        config.posts_topic,
        RATE_PER_S,
        LOAD_S,
        planted=[(SURGE_AT_S + offset, post) for offset, post in surge_schedule(SURGE_SPAN_S)],
        prefix=f"bg-{config.suffix}",
    )
    samples: list[dict[str, Any]] = []
    try:
        worker.wait_ready()
        assert worker.process is not None
        pid = worker.process.pid
        load.start()
        started = time.monotonic()
        while load.running():
            samples.append({"t_s": time.monotonic() - started, "rss_mb": proc_rss_mb(pid)})
            time.sleep(1.0)
        load.join()
        stopped = time.monotonic()
        rss_end = proc_rss_mb(pid)

        # Lag: the group commits the end of posts, brand observations and the outbox.
        lags: dict[str, int] = {}
        while time.monotonic() - stopped < LAG_RECOVERY_S:
            lags = probe.lag(config.app_id, worker_topics(config))
            if not any(lags.values()):
                break
            assert worker.alive(), worker.log_tail()
            time.sleep(0.5)
        recovery_s = time.monotonic() - stopped
        assert not any(lags.values()), f"lag {lags} {LAG_RECOVERY_S} s after the load stopped"

        # Accounting over every post produced.
        stats = worker.stats()
        assert stats["consumed"] == load.sent, (stats, load.sent)
        assert (
            stats["consumed"]
            == stats["processed"] + stats["dead_lettered"] + stats["duplicate"] + stats["late"]
        ), stats

        # The surge fired once, and its page reached the receiver in time.
        events = [json.loads(m.value) for m in read_topic(kafka_bootstrap, config.alerts_topic)]
        surge = [e for e in events if e["root_id"] == planted.SURGE_ROOT and e["detector"] == "forward_surge"]
        firing = [e for e in surge if e["status"] == "firing"]
        assert len({e["id"] for e in firing}) == 1 and len(firing) == 1, surge
        deadline = time.monotonic() + 10
        while not (pages := [r for r in receiver.answered() if r[3]["incident"]["id"] == firing[0]["id"]]):
            assert time.monotonic() < deadline, f"no page for {firing[0]['id']}: {receiver.requests}"
            time.sleep(0.2)
        assert pages[0][3]["kind"] == "page", pages
        assert len(pages) == 1, pages
        decisive = decisive_post(firing[0], load.planted_times, [p for _, p in surge_schedule(1.0)])
        acked_at = load.planted_times[decisive][1]
        fire_latency_s = pages[0][0] - acked_at
        assert 0 <= fire_latency_s <= FIRE_BOUND_S, (decisive, fire_latency_s)

        # Memory: flat between the middle and the end of the load.
        middle = samples[len(samples) // 2]["rss_mb"]
        assert rss_end - middle <= MEMORY_GROWTH_MB, samples
        print(
            f"\nsent {load.sent} posts in {LOAD_S:.0f} s; page {fire_latency_s:.2f} s after post {decisive}; "
            f"RSS start {samples[0]['rss_mb']:.0f} / middle {middle:.0f} / end {rss_end:.0f} MB; "
            f"lag 0 {recovery_s:.1f} s after the load stopped"
        )
    finally:
        load.close()
        probe.close()
        exit_code = worker.terminate()
        receiver.close()
    assert exit_code == 0, worker.log_tail()


def decisive_post(firing: dict[str, Any], sent: dict[str, list[float]], surge: list[dict[str, Any]]) -> str:
    """The surge post that made the incident fire: its event time (the wall time it was sent, in
    milliseconds) is the firing event's detected_at."""
    from crisiswatch.alerts.clock import parse_time

    detected_ms = round(parse_time(firing["detected_at"]) * 1000)
    candidates = [p["id"] for p in surge if p["id"] in sent and round(sent[p["id"]][0] * 1000) <= detected_ms]
    assert candidates, (firing, sent)
    return max(candidates, key=lambda post_id: sent[post_id][0])
