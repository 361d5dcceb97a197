"""Metric names, labels and the observability glue, on fresh registries (no broker, no Prometheus).

Plus `crisiswatch replay --metrics-port` as a real process: it serves the run's event-time metrics and
keeps serving after the stream ends until interrupted.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import obs_promql as pq
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from crisiswatch.alerts.incidents import IncidentTracker
from crisiswatch.alerts.metrics import AlertMetrics
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DetectionEngine
from crisiswatch.detectors.events import Assessment, Author, BrandProfile, EnrichedPost, Post
from crisiswatch.streams.gc_policy import CycleCollectorPolicy
from crisiswatch.streams.logs import JsonFormatter, RedactingFilter, faust_logging_options
from crisiswatch.streams.metrics import PipelineMetrics
from crisiswatch.streams.observability import (
    FAUST_METRICS_PREFIX,
    DetectionRecorder,
    OpenIncidents,
    config_fingerprint,
    install_faust_sensors,
    log_incident_event,
    negative_counter,
    publish_lag,
    role_resolver,
)
from crisiswatch.streams.pipeline import BrandResolver

FORBIDDEN_LABELS = {
    "id",
    "post_id",
    "root_id",
    "user",
    "user_id",
    "author",
    "author_id",
    "incident_id",
    "dedup_key",
    "url",
    "text",
}
UNIT_SUFFIXES = (
    "_total",
    "_seconds",
    "_messages",
    "_ratio",
    "_posts",
    "_info",
    "_open",
    "_score",
    "_finished",
    "_objects",
)


def families(registry: CollectorRegistry) -> dict[str, object]:
    return {family.name: family for family in registry.collect()}


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def enriched(
    post_id: str, brands: tuple[str, ...], negative: float | None, complaint: float | None = None
) -> EnrichedPost:
    post = Post(
        id=post_id,
        created_at_s=1000.0,
        text="t",
        kind="post",
        parent_id=None,
        root_id=post_id,
        author=Author("a", 1, False),
    )
    return EnrichedPost(
        post=post,
        lang="en",
        brands=brands,
        own_text="t",
        negative_probability=negative,
        complaint_probability=complaint,
    )


def assessment(
    detector: str, brand: str, root_id: str | None, severity: Any, score: float, t: float, **metrics: float
) -> Assessment:
    return Assessment(
        detector=detector,
        brand=brand,
        root_id=root_id,
        severity=severity,
        score=score,
        event_time_s=t,
        explanation="",
        metrics=dict(metrics),
    )


# ------------------------------------------------------------------------------------------ names and labels


def test_names_follow_the_convention_and_labels_are_bounded():
    registry = CollectorRegistry()
    PipelineMetrics(registry)
    AlertMetrics(registry)
    CycleCollectorPolicy(10.0, registry)
    names = set()
    for family in registry.collect():
        name = (
            family.name
            + ("_total" if family.type == "counter" else "")
            + ("_info" if family.type == "info" else "")
        )
        names.add(name)
        assert name.startswith("crisiswatch_"), name
        assert name.endswith(UNIT_SUFFIXES) or name in (
            "crisiswatch_notifications_pending",
            "crisiswatch_batch_posts",
        ), name
        if family.type == "histogram":
            assert name.endswith(("_seconds", "_posts")), name
    text = generate_latest(registry).decode()
    for line in text.splitlines():
        assert not any(f'{label}="' in line for label in FORBIDDEN_LABELS), line
    assert {
        "crisiswatch_posts_consumed_total",
        "crisiswatch_posts_dead_lettered_total",
        "crisiswatch_posts_late_total",
        "crisiswatch_posts_duplicate_total",
        "crisiswatch_processing_latency_seconds",
        "crisiswatch_alert_latency_seconds",
        "crisiswatch_detection_score",
        "crisiswatch_detection_negative_share_ratio",
        "crisiswatch_incidents_open",
        "crisiswatch_notifications_sent_total",
        "crisiswatch_notifications_failed_total",
        "crisiswatch_notifications_retried_total",
        "crisiswatch_consumer_lag_messages",
        "crisiswatch_build_info",
        "crisiswatch_config_info",
        "crisiswatch_text_model_info",
        "crisiswatch_gc_pause_seconds",
        "crisiswatch_gc_frozen_objects",
    } <= names


def test_every_rule_and_panel_names_a_metric_crisiswatch_defines():
    """Offline half of the live check: names in the dashboard and rules exist in the code's registries."""
    from faust.sensors.prometheus import FaustMetrics

    registry = CollectorRegistry()
    PipelineMetrics(registry)
    AlertMetrics(registry)
    CycleCollectorPolicy(10.0, registry)
    FaustMetrics.create(registry, FAUST_METRICS_PREFIX)
    exposed = pq.exposed_names(generate_latest(registry).decode())
    for where, expr in pq.dashboard_expressions() + pq.rule_expressions():
        names = pq.metric_names(expr)
        assert names, f"{where}: no metric in {expr}"
        missing = names - exposed - pq.PROMETHEUS_OWN
        assert not missing, f"{where}: {sorted(missing)} not defined ({expr})"


# ------------------------------------------------------------------------------------------ per brand


def test_brand_counts_follow_the_detectors_thresholds():
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    brands = (BrandProfile("Acme"), BrandProfile("Rival", role="competitor"))
    resolver = BrandResolver(brands, max_auto_brands=0)
    engine = DetectionEngine(DetectorsConfig.from_mapping({}), {b.name: b for b in brands})
    posts = [
        enriched("1", ("Acme",), 0.9),
        enriched("2", ("Acme", "Rival"), 0.2),
        enriched("3", ("Acme",), 0.1, complaint=0.8),  # a complaint counts as negative, as in the detector
        enriched("4", ("Rival",), None),  # no own text: not scored
        enriched("5", ("other",), 0.7),
    ]
    metrics.record_brands(posts, role_resolver(resolver), negative_counter(engine))
    values = samples(registry)

    def value(name: str, brand: str, role: str) -> float:
        return values[(name, (("brand", brand), ("role", role)))]

    assert value("crisiswatch_brand_posts_total", "Acme", "own") == 3
    assert value("crisiswatch_brand_scored_posts_total", "Acme", "own") == 3
    assert value("crisiswatch_brand_negative_posts_total", "Acme", "own") == 2
    assert value("crisiswatch_brand_posts_total", "Rival", "competitor") == 2
    assert value("crisiswatch_brand_scored_posts_total", "Rival", "competitor") == 1
    assert value("crisiswatch_brand_negative_posts_total", "Rival", "competitor") == 0
    assert value("crisiswatch_brand_posts_total", "other", "other") == 1


def test_detection_scores_show_the_hottest_open_cascade():
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    record = DetectionRecorder(metrics, lambda brand: "own")
    score = metrics.detection_score.labels("Acme", "own", "forward_surge")
    record(assessment("forward_surge", "Acme", "r1", "warning", 5.0, 1))
    record(assessment("forward_surge", "Acme", "r2", "critical", 9.0, 2))
    record(assessment("forward_surge", "Acme", "r1", "warning", 6.0, 3))
    assert score._value.get() == 9.0
    record(assessment("forward_surge", "Acme", "r2", None, 1.0, 4))  # r2 back to normal
    assert score._value.get() == 6.0
    record(assessment("forward_surge", "Acme", "r1", None, 0.5, 5))
    assert score._value.get() == 0.5  # nothing open: the latest assessment
    record(assessment("negative_surge", "Acme", None, "warning", 4.2, 6, negative_share=0.41))
    values = samples(registry)
    assert (
        values[("crisiswatch_detection_negative_share_ratio", (("brand", "Acme"), ("role", "own")))] == 0.41
    )
    assert (
        values[
            (
                "crisiswatch_detection_score",
                (("brand", "Acme"), ("detector", "negative_surge"), ("role", "own")),
            )
        ]
        == 4.2
    )
    decisions = {k: v for k, v in values.items() if k[0] == "crisiswatch_detection_assessments_total"}
    assert sum(decisions.values()) == 6
    assert (
        decisions[
            (
                "crisiswatch_detection_assessments_total",
                (("brand", "Acme"), ("detector", "forward_surge"), ("role", "own"), ("severity", "none")),
            )
        ]
        == 2
    )


def test_open_incidents_by_severity_drop_to_zero_when_resolved():
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    open_incidents = OpenIncidents(metrics.incidents_open, lambda brand: "own")
    tracker = IncidentTracker()
    tracker.observe(assessment("forward_surge", "Acme", "r1", "critical", 9.0, 1000.0))
    tracker.observe(assessment("negative_surge", "Acme", None, "warning", 4.0, 1000.0))
    assert open_incidents.refresh([tracker]) == {
        ("Acme", "own", "forward_surge", "critical"): 1,
        ("Acme", "own", "negative_surge", "warning"): 1,
    }
    tracker.advance(1000.0 + 7200.0)  # quiet for two hours: both resolve
    assert open_incidents.refresh([tracker]) == {}
    values = samples(registry)
    assert (
        values[
            (
                "crisiswatch_incidents_open",
                (("brand", "Acme"), ("detector", "forward_surge"), ("role", "own"), ("severity", "critical")),
            )
        ]
        == 0
    )


def test_lag_series_follow_the_assignment():
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    shown = publish_lag(metrics, "posts", {0: 5, 1: 0}, set())
    assert shown == {0, 1}
    shown = publish_lag(metrics, "posts", {1: 3}, shown)  # partition 0 moved to another worker
    values = samples(registry)
    assert ("crisiswatch_consumer_lag_messages", (("partition", "0"), ("topic", "posts"))) not in values
    assert values[("crisiswatch_consumer_lag_messages", (("partition", "1"), ("topic", "posts")))] == 3
    shown = publish_lag(metrics, "posts", None, shown)  # broker unreachable: no stale figures
    values = samples(registry)
    assert not [k for k in values if k[0] == "crisiswatch_consumer_lag_messages"]
    assert values[("crisiswatch_consumer_lag_errors_total", ())] == 1
    assert shown == set()


# ------------------------------------------------------------------------------------------ Faust sensors, versions


def test_faust_sensors_land_in_the_registry_under_the_prefix():
    import faust

    registry = CollectorRegistry()
    app = faust.App("obs-test-app", broker="kafka://127.0.0.1:1", web_enabled=False)
    install_faust_sensors(app, registry)
    names = {family.name for family in registry.collect()}
    assert {
        f"{FAUST_METRICS_PREFIX}_messages_received",
        f"{FAUST_METRICS_PREFIX}_events_runtime_ms",
        f"{FAUST_METRICS_PREFIX}_topic_partition_offset_commited",
    } <= names
    assert all(name.startswith(FAUST_METRICS_PREFIX + "_") for name in names)
    from faust.sensors.prometheus import PrometheusMonitor

    assert isinstance(app.monitor, PrometheusMonitor)


def test_config_fingerprint_hashes_override_values_without_showing_them(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("kafka: {}\n", encoding="utf-8")
    env = {"CRISISWATCH_ALERTING__SLACK_TOKEN": "xoxb-very-secret", "HOME": "/root"}
    first = config_fingerprint(str(path), env)
    assert first["file"] == str(path) and first["overrides"] == "CRISISWATCH_ALERTING__SLACK_TOKEN"
    assert "secret" not in json.dumps(first)
    changed = config_fingerprint(str(path), {**env, "CRISISWATCH_ALERTING__SLACK_TOKEN": "xoxb-other"})
    assert changed["sha256"] != first["sha256"] and len(first["sha256"]) == 12
    path.write_text("kafka: {partitions: 8}\n", encoding="utf-8")
    assert config_fingerprint(str(path), env)["sha256"] != first["sha256"]


# ------------------------------------------------------------------------------------------ structured logs


def json_logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("crisiswatch.incidents")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def test_incident_events_log_one_json_line_with_their_ids():
    from crisiswatch.alerts.incidents import IncidentTracker

    stream = io.StringIO()
    logger = json_logger(stream)
    try:
        tracker = IncidentTracker()
        (event,) = tracker.observe(
            assessment("forward_surge", "Acme", "r1", "critical", 9.0, 1000.0, forwards_per_minute=40.0)
        )
        log_incident_event(event)
    finally:
        logger.handlers.clear()
        logger.propagate = True
    entry = json.loads(stream.getvalue())
    assert entry["incident_id"] == event.incident_id == "Acme/forward_surge/r1:1"
    assert entry["event_id"] == event.id and entry["status"] == "firing" and entry["severity"] == "critical"
    assert entry["brand"] == "Acme" and entry["detector"] == "forward_surge"


def test_secrets_never_reach_a_json_log_line_even_in_tracebacks():
    stream = io.StringIO()
    logger = json_logger(stream)
    try:
        try:
            raise ConnectionError("POST https://hooks.slack.com/services/T00/B00/SECRETSECRET failed")
        except ConnectionError:
            logger.exception("delivery failed with password=hunter2", extra={"incident_id": "a/b/c:1"})
    finally:
        logger.handlers.clear()
        logger.propagate = True
    entry = json.loads(stream.getvalue())
    assert "SECRETSECRET" not in stream.getvalue() and "hunter2" not in stream.getvalue()
    assert "hooks.slack.com/services/***" in entry["error"] and entry["incident_id"] == "a/b/c:1"


def test_faust_keeps_our_log_handler():
    """faust.Worker resets the root logger at start; our options hand the JSON/redacting handler back."""
    from mode.utils.logging import setup_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    ours = logging.StreamHandler(io.StringIO())
    ours.setFormatter(JsonFormatter())
    root.handlers[:] = [ours]
    root.setLevel(logging.INFO)
    try:
        options = faust_logging_options()
        setup_logging(
            loglevel="info", logging_config=options["logging_config"], loghandlers=options["loghandlers"]
        )
        assert root.handlers == [ours]
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


# ------------------------------------------------------------------------------------------ replay --metrics-port


@pytest.fixture
def planted_file(tmp_path: Path) -> Path:
    import planted

    path = tmp_path / "planted.jsonl"
    lines = planted.encode(planted.stream()) + [raw for raw, _ in planted.MALFORMED]
    path.write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "config.yaml").write_text(json.dumps({"brands": planted.BRAND_CONFIG}), encoding="utf-8")
    return path


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_replay_serves_its_metrics_after_the_stream_ends(planted_file: Path, tmp_path: Path):
    import planted
    from worker_process import free_port

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "crisiswatch.streams.cli",
        "replay",
        str(planted_file),
        "--alerts-out",
        str(tmp_path / "alerts.jsonl"),
        "--config",
        str(tmp_path / "config.yaml"),
        "--metrics-port",
        str(port),
        "--quiet",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 60
        values: dict = {}
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                values = scrape(url)
            except OSError:
                values = {}
            if values.get(("crisiswatch_replay_finished", ())) == 1:
                break
            time.sleep(0.2)
        assert values.get(("crisiswatch_replay_finished", ())) == 1, "the stream never finished"
        time.sleep(1.0)
        assert process.poll() is None, "replay keeps serving after the stream ended"
        values = scrape(url)
        consumed = values[("crisiswatch_posts_consumed_total", (("topic", "replay"),))]
        assert consumed == len(planted.stream()) + len(planted.MALFORMED)
        dead = sum(v for k, v in values.items() if k[0] == "crisiswatch_posts_dead_lettered_total")
        assert dead == len(planted.MALFORMED)
        acme = (("brand", planted.BRAND), ("role", "own"))
        assert values[("crisiswatch_brand_posts_total", acme)] > 300
        assert values[("crisiswatch_brand_negative_posts_total", acme)] > 50
        firing = {
            k: v
            for k, v in values.items()
            if k[0] == "crisiswatch_incident_events_total" and ("status", "firing") in k[1]
        }
        assert firing and all(("brand", planted.BRAND) in k[1] for k in firing)
        assert any(
            k[0] == "crisiswatch_detection_score" and ("detector", "forward_surge") in k[1] for k in values
        )
        watermark = values[
            ("crisiswatch_event_time_watermark_seconds", (("partition", "0"), ("topic", "replay")))
        ]
        assert planted.START_S + 7000 < watermark < planted.START_S + 7300, "event time, not wall clock"
        assert any(k[0] == "crisiswatch_text_model_info" for k in values)
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    err = process.stderr.read().decode() if process.stderr else ""
    assert f"serving http://127.0.0.1:{port}/metrics" in err


def test_cached_faust_monitor_reports_what_upstream_reports():
    """The per-event label caching changes the cost, not the figures (also across a rebalance)."""
    from types import SimpleNamespace

    import faust
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
    from faust.types import TP

    from crisiswatch.streams.observability import _cached_monitor_class

    app = faust.App("obs-test-monitor", broker="kafka://127.0.0.1:1", web_enabled=False)
    stream = app.stream(app.topic("posts"))

    class Owner:
        pass

    owner = Owner()
    stream.task_owner = owner

    def feed(monitor) -> None:
        for round_ in range(2):
            for offset in range(5):
                tp = TP("posts", offset % 2)
                message = SimpleNamespace(time_in=None, time_out=None, time_total=None)
                monitor.on_message_in(tp, offset, message)
                state = monitor.on_stream_event_in(tp, offset, stream, None)
                monitor.on_stream_event_out(tp, offset, stream, None, state)
                monitor.on_message_out(tp, offset, message)
            if round_ == 0:
                monitor._clear_partition_related_metrics()  # what a rebalance does

    def figures(registry: CollectorRegistry) -> dict:
        return {
            key: value
            for key, value in samples(registry).items()
            if not key[0].endswith(("_bucket", "_sum", "_created")) and "runtime" not in key[0]
        }

    upstream, cached = CollectorRegistry(), CollectorRegistry()
    feed(PrometheusMonitor(metrics=FaustMetrics.create(upstream, "f")))
    feed(_cached_monitor_class()(metrics=FaustMetrics.create(cached, "f")))
    assert figures(cached) == figures(upstream)
    # Cleared at the "rebalance", then counted again: a stale cached child would leave it absent.
    assert figures(cached)[("f_messages_received_per_topic_total", (("topic", "posts"),))] == 5


def test_pending_notifications_are_the_sum_over_partition_services():
    """Each partition's AlertingService sets the shared gauge to its own queue; the worker reports the sum."""
    from types import SimpleNamespace

    from crisiswatch.streams.observability import pending_notifications

    def service(jobs: int) -> SimpleNamespace:
        return SimpleNamespace(notifier=SimpleNamespace(pending=lambda: [object()] * jobs))

    services = {0: service(2), 3: service(5)}
    registry = CollectorRegistry()
    metrics = AlertMetrics(registry)
    metrics.pending.set_function(lambda: float(pending_notifications(services.values())))
    metrics.pending.set(1)  # what one partition's delivery queue does
    assert samples(registry)[("crisiswatch_notifications_pending", ())] == 7
    services.pop(3)  # partition revoked
    assert samples(registry)[("crisiswatch_notifications_pending", ())] == 2
