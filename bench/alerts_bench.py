"""Alerting throughput on one core: incident tracking, dispatch, rendering, HTTP delivery to 127.0.0.1.

Run: /tmp/cw/venv/bin/python bench/alerts_bench.py [--repeats 5] [--kafka HOST:PORT]
Prints the median of the repeats per stage. With --kafka (e.g. a broker from
`python3 deploy/kafka/kafka-local start --dir /tmp/k5 --json`) it also measures the silence topic:
how long a `silence add` takes to reach a following worker, loading 1000 silences at start, and
`silenced_by` over a Kafka store holding 1000 silences.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from aiohttp import web
from prometheus_client import CollectorRegistry

from crisiswatch.alerts.clock import ManualClock
from crisiswatch.alerts.config import AlertingConfig, DeliveryConfig
from crisiswatch.alerts.delivery import DeadLetterLog, Notifier
from crisiswatch.alerts.dispatch import Dispatcher
from crisiswatch.alerts.incidents import IncidentTracker
from crisiswatch.alerts.metrics import AlertMetrics
from crisiswatch.alerts.receivers.base import Notification
from crisiswatch.alerts.receivers.email import build_message
from crisiswatch.alerts.receivers.slack import render_blocks
from crisiswatch.alerts.render import RenderOptions, render_text
from crisiswatch.alerts.routing import build_runtime
from crisiswatch.alerts.service import build_integrations
from crisiswatch.detectors.events import Assessment

T0 = 1_795_000_000.0
METRICS = {
    "forwards_per_minute": 120.0,
    "forwards_total": 3400,
    "reach_followers": 1_250_000,
    "projected_reach": 400_000,
    "negative_share": 0.78,
    "top_amplifiers": [{"author_id": "a", "followers": 10_000, "verified": True}],
    "sample_comments": ["bad", "worse"],
    "root_text": "My phone exploded",
    "root_url": "https://x.example/1",
    "category": "product_safety",
}


def assessments(n: int) -> list[Assessment]:
    out = []
    for i in range(n):
        severity = "warning" if (i // 50) % 4 != 3 else None
        out.append(
            Assessment(
                "forward_surge",
                "acme",
                f"r{i % 200}",
                severity,
                3.0,
                T0 + i,
                "x",
                dict(METRICS),
                {"lang": "en"},
            )
        )
    return out


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kafka", help="bootstrap servers: also measure the silence topic")
    args = parser.parse_args()
    if args.kafka:
        _silences_bench(args.kafka, args.repeats)
    items = assessments(20_000)
    tracker = IncidentTracker()
    events = [e for a in items for e in tracker.observe(a)] + tracker.advance(T0 + 50_000)
    runtime = build_runtime(AlertingConfig.from_mapping({}))
    page = Notification("", "console", "page", "g", events[0].incident_id, events[0]).with_id()
    options = RenderOptions()
    email_config = (
        AlertingConfig.from_mapping(
            {"receivers": [{"name": "m", "email": {"to": ["a@b.c"]}}], "route": {"receiver": "m"}}
        )
        .receivers[0]
        .email
    )
    results: dict[str, list[float]] = {
        k: [] for k in ("observe", "dispatch", "text", "slack", "email", "http")
    }
    for _ in range(args.repeats):
        results["observe"].append(len(items) / timed(lambda: _observe_all(items)))
        results["dispatch"].append(len(events) / timed(lambda: _dispatch_all(runtime, events)))
        results["text"].append(2000 / timed(lambda: [render_text(page.event, options) for _ in range(2000)]))
        results["slack"].append(2000 / timed(lambda: [render_blocks(page, options) for _ in range(2000)]))
        results["email"].append(
            500 / timed(lambda: [build_message(page, options, email_config, ["a@b.c"]) for _ in range(500)])
        )  # type: ignore[arg-type]
        results["http"].append(asyncio.run(_http(events[:300])))
    print(f"incident events from 20k assessments: {len(events)}")
    for name, values in results.items():
        print(
            f"{name:9s} median {statistics.median(values):>10.0f} /s  (min {min(values):.0f}, max {max(values):.0f})"
        )


def _observe_all(items: list[Assessment]) -> None:
    tracker = IncidentTracker()
    for a in items:
        tracker.observe(a)


def _dispatch_all(runtime, events) -> None:
    dispatcher = Dispatcher(runtime)
    for event in events:
        dispatcher.submit(event, event.detected_at_s)
    dispatcher.tick(T0 + 100_000)


async def _http(events) -> float:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/h", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = AlertingConfig.from_mapping(
        {
            "receivers": [
                {"name": "h", "webhook": {"url": f"http://127.0.0.1:{port}/h", "signing_key": "k"}}
            ],
            "route": {"receiver": "h"},
        }
    )
    clock = ManualClock(T0)
    notifier = Notifier(
        build_integrations(config, clock),
        clock=clock,
        config=DeliveryConfig(dead_letter_path="/tmp/cw-bench-dead.jsonl"),
        metrics=AlertMetrics(CollectorRegistry()),
        dead_letters=DeadLetterLog("/tmp/cw-bench-dead.jsonl"),
    )
    notifications = [
        Notification("", "h", "page", f"g{i}", f"t{i}", e).with_id() for i, e in enumerate(events)
    ]
    start = time.perf_counter()
    for n in notifications:
        notifier.submit(n)
    while notifier.pending():
        await notifier.deliver_due()
    elapsed = time.perf_counter() - start
    await notifier.aclose()
    await runner.cleanup()
    return len(notifications) / elapsed


def _silences_bench(bootstrap: str, repeats: int) -> None:
    import uuid

    from crisiswatch.alerts.silences import new_silence, silenced_by
    from crisiswatch.streams.silences import KafkaSilenceStore

    topic = f"bench-silences-{uuid.uuid4().hex[:8]}"
    options = {"bootstrap_servers": bootstrap.split(",")}
    writer = KafkaSilenceStore(options, topic).start(follow=False)
    follower = KafkaSilenceStore(options, topic).start(follow=True)
    latencies = []
    for i in range(repeats * 4):
        silence = new_silence([f'brand="b{i}"'], T0, T0 + 3600, "bench")
        start = time.perf_counter()
        writer.add(silence)
        while not any(s.id == silence.id for s in follower.all()):
            time.sleep(0.001)
        latencies.append(time.perf_counter() - start)
    follower.close()
    for i in range(1000 - len(latencies)):
        writer.add(new_silence([f'brand="c{i}"', 'detector="volume_surge"'], T0, T0 + 3600, "bench"))
    writer.close()
    loads = []
    for _ in range(repeats):
        start = time.perf_counter()
        store = KafkaSilenceStore(options, topic).start(follow=False)
        loads.append(time.perf_counter() - start)
    count = len(store.all())
    labels = {"brand": "acme", "detector": "volume_surge", "severity": "warning"}
    lookups = [
        2000 / timed(lambda: [silenced_by(store, labels, T0 + 1) for _ in range(2000)])
        for _ in range(repeats)
    ]
    store.close()
    print(
        f"silence add -> visible to a following worker: median {statistics.median(latencies) * 1000:.0f} ms"
        f" (min {min(latencies) * 1000:.0f}, max {max(latencies) * 1000:.0f}; {len(latencies)} adds)"
    )
    print(f"start with {count} silences on the topic: median {statistics.median(loads) * 1000:.0f} ms")
    print(f"silenced_by over {count} silences: median {statistics.median(lookups):.0f} /s")


if __name__ == "__main__":
    main()
