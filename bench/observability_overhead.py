"""What observability costs: metrics hooks per post, Faust's sensors per event, a /metrics scrape, a lag probe.

    python bench/observability_overhead.py [--repeats 5] [--bootstrap HOST:PORT]

Prints one line per figure (median of the repeats). Without --bootstrap the lag probe is skipped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def median_of(repeats: int, run) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(run() for _ in range(repeats))


def hooks_share(records, settings) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(pipeline seconds, seconds inside the metrics hooks) for one pass over `records`.

    Timed from inside: the difference of two whole runs drowns in the noise of a shared machine.
    """
    from crisiswatch.streams.metrics import PipelineMetrics
    from crisiswatch.streams.observability import DetectionRecorder, negative_counter, role_resolver
    from crisiswatch.streams.pipeline import Pipeline

    pipeline = Pipeline(settings)
    metrics = PipelineMetrics(CollectorRegistry())
    role_of = role_resolver(pipeline.resolver)
    is_negative = negative_counter(pipeline.engine)
    detections = DetectionRecorder(metrics, role_of)
    inside = [0.0]

    def on_ingest(result) -> None:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        metrics.record("replay", result.accounting)
        metrics.record_brands(result.posts, role_of, is_negative)
        inside[0] += time.perf_counter() - started

    def on_assessment(assessment) -> None:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        detections(assessment)
        inside[0] += time.perf_counter() - started

    pipeline.on_ingest = on_ingest
    pipeline.on_assessment = on_assessment
    started = time.perf_counter()
    for start in range(0, len(records), 2000):
        pipeline.process(records[start : start + 2000])
    return time.perf_counter() - started, inside[0]


def faust_sensor_us_per_event(events: int) -> tuple[float, float, float]:
    """Monitor callbacks of one consumed event (message in, stream in/out, message out): base vs Prometheus."""
    import faust
    from faust.sensors.monitor import Monitor
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
    from faust.types import TP

    app = faust.App("bench-sensors", broker="kafka://127.0.0.1:1", web_enabled=False)
    stream = app.stream(app.topic("bench"))

    class Owner:  # the agent task Faust records per event (weak-referenced)
        pass

    owner = Owner()
    stream.task_owner = owner  # type: ignore[assignment]
    tp = TP("bench", 0)

    from types import SimpleNamespace

    def run(monitor: Monitor) -> float:
        started = time.perf_counter()
        for offset in range(events):
            message = SimpleNamespace(time_in=None, time_out=None, time_total=None)
            monitor.on_message_in(tp, offset, message)  # type: ignore[arg-type]
            state = monitor.on_stream_event_in(tp, offset, stream, None)  # type: ignore[arg-type]
            monitor.on_stream_event_out(tp, offset, stream, None, state)  # type: ignore[arg-type]
            monitor.on_message_out(tp, offset, message)  # type: ignore[arg-type]
        return (time.perf_counter() - started) / events * 1e6

    from crisiswatch.streams.observability import _cached_monitor_class

    base = run(Monitor())
    upstream = run(PrometheusMonitor(metrics=FaustMetrics.create(CollectorRegistry(), "bench_faust")))
    cached = run(_cached_monitor_class()(metrics=FaustMetrics.create(CollectorRegistry(), "bench_faust")))
    return base, upstream, cached


def scrape_ms(brands: int) -> tuple[float, int]:
    """generate_latest of a worker-like registry with `brands` brands (all label sets populated)."""
    from faust.sensors.prometheus import FaustMetrics

    from crisiswatch.alerts.metrics import AlertMetrics
    from crisiswatch.streams.metrics import PipelineMetrics

    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    alerts = AlertMetrics(registry)
    FaustMetrics.create(registry, "crisiswatch_faust")
    for index in range(brands):
        brand = f"brand-{index}"
        for counter in (metrics.brand_posts, metrics.brand_scored_posts, metrics.brand_negative_posts):
            counter.labels(brand, "own").inc()
        for detector in ("forward_surge", "negative_surge", "volume_surge"):
            metrics.detection_score.labels(brand, "own", detector).set(1.0)
            for severity in ("info", "warning", "critical"):
                metrics.incidents_open.labels(brand, "own", detector, severity).set(0)
                metrics.incident_events.labels(brand, detector, "firing", severity).inc()
    for partition in range(16):
        metrics.consumer_lag.labels("social.posts", str(partition)).set(0)
    for receiver in ("slack", "email", "pagerduty"):
        alerts.sent.labels(receiver).inc()
    started = time.perf_counter()
    body = generate_latest(registry)
    return (time.perf_counter() - started) * 1000, len(body)


def lag_probe_ms(bootstrap: str, repeats: int) -> float:
    from kafka_broker import create_topic, unique_topic

    from crisiswatch.streams.observability import ConsumerLag

    topic = create_topic(bootstrap, unique_topic("bench-lag"), partitions=4)
    lag = ConsumerLag({"bootstrap_servers": bootstrap}, unique_topic("bench-group"), topic)
    try:
        lag.measure({0, 1, 2, 3})  # connect once, as the worker's long-lived client does

        def once() -> float:
            started = time.perf_counter()
            assert lag.measure({0, 1, 2, 3}) is not None
            return (time.perf_counter() - started) * 1000

        return median_of(repeats, once)
    finally:
        lag.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bootstrap")
    args = parser.parse_args()

    import planted

    from crisiswatch.streams.config import load_settings
    from crisiswatch.streams.pipeline import RawRecord

    settings = load_settings(None, environ={})
    settings = type(settings)(
        **{**settings.__dict__, "brands": tuple(load_brand_profiles(planted.BRAND_CONFIG))}
    )
    posts = planted.encode(planted.stream(seed=3)) * 1
    records = [
        RawRecord(value=raw, partition=0, offset=i, source=f"bench:{i}") for i, raw in enumerate(posts)
    ]
    runs = [hooks_share(records, settings) for _ in range(args.repeats)]
    total = statistics.median(r[0] for r in runs)
    inside = statistics.median(r[1] for r in runs)
    print(
        f"metrics hooks on the planted stream ({len(records)} posts): {inside / len(records) * 1e6:.2f} us per post, "
        f"{inside / total * 100:.1f}% of the pipeline's {total / len(records) * 1e6:.0f} us per post"
    )
    runs = [faust_sensor_us_per_event(20_000) for _ in range(args.repeats)]
    base, upstream, cached = (statistics.median(r[i] for r in runs) for i in range(3))
    print(
        f"faust sensors per consumed event: {base:.2f} us Faust's default Monitor, {upstream:.2f} us upstream "
        f"PrometheusMonitor (+{upstream - base:.2f}), {cached:.2f} us crisiswatch's cached one (+{cached - base:.2f})"
    )
    for brands in (10, 100):
        ms = statistics.median(scrape_ms(brands)[0] for _ in range(args.repeats))
        print(
            f"/metrics body with {brands} brands: {scrape_ms(brands)[1] / 1024:.0f} KiB, generated in {ms:.1f} ms"
        )
    if args.bootstrap:
        print(f"lag probe, 4 partitions, real broker: {lag_probe_ms(args.bootstrap, args.repeats):.1f} ms")
    return 0


def load_brand_profiles(config):  # type: ignore[no-untyped-def]
    from crisiswatch.detectors.events import BrandProfile

    return [BrandProfile(name=b["name"], aliases=tuple(b.get("aliases", ()))) for b in config]


if __name__ == "__main__":
    raise SystemExit(main())
