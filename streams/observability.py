"""What ops see in Prometheus and Grafana, beyond the per-batch counters the agents record themselves.

- `WorkerObservability(worker)`: Faust's own sensors (prefix `crisiswatch_faust_`), version info metrics,
  consumer lag per assigned input partition (a periodic task), per-brand volume / negative share /
  detector scores (hooks on each partition's `Pipeline`), open incidents by severity, and one structured
  log line per incident event. Everything lands in the worker's one registry, served at /metrics.
- `start_replay_metrics(settings, port)`: the same event-time metrics for `crisiswatch replay
  --metrics-port`, served until the run is interrupted so a tuning run can be inspected.

Consumer lag is what `kafka-consumer-groups.sh --describe` reports: the partition's end offset minus the
group's committed offset (the beginning offset when the group has not committed yet). It is measured
with a short-lived kafka-python client of its own, off the event loop, so a hung Faust consumer (see
streams/watchdog.py) cannot freeze the figure that would show it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import platform
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from prometheus_client import CollectorRegistry, Gauge, disable_created_metrics

from crisiswatch.alerts.incidents import IncidentEvent, IncidentTracker
from crisiswatch.detectors.engine import DetectionEngine
from crisiswatch.detectors.events import Assessment, EnrichedPost
from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.config import ENV_PREFIX, Settings
from crisiswatch.streams.metrics import PipelineMetrics
from crisiswatch.streams.pipeline import (
    OTHER_BRAND,
    PIPELINE_CREATED_HOOKS,
    BrandResolver,
    IngestResult,
    Pipeline,
)

log = logging.getLogger("crisiswatch.observability")
incident_log = logging.getLogger("crisiswatch.incidents")

# Faust's sensors keep Faust's names under this prefix: counters end in `_total`, latencies are
# histograms in milliseconds (`_ms`, or no unit: `..._latency`), and `offset_commited` is misspelt.
FAUST_METRICS_PREFIX = "crisiswatch_faust"
# The text exposition format every Prometheus 2.x reads (prometheus-client >= 0.22 writes the same bytes but
# labels them version=1.0.0, which older scrapers do not know).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LAG_INTERVAL_S = 5.0
OPEN_INCIDENTS_INTERVAL_S = 5.0
REPLAY_TOPIC_LABEL = "replay"
# Bounds the per-(brand, detector) memory of open cascades behind `crisiswatch_detection_score`.
MAX_OPEN_CASCADES_TRACKED = 1000


# -- labels ------------------------------------------------------------------------------------------
def role_resolver(resolver: BrandResolver) -> Callable[[str], str]:
    """brand -> `own` / `competitor` from its profile; `other` for the overflow brand."""

    def role_of(brand: str) -> str:
        if brand == OTHER_BRAND:
            return OTHER_BRAND
        profile = resolver.profile(brand)
        return profile.role if profile is not None else "own"

    return role_of


def negative_counter(engine: DetectionEngine) -> Callable[[EnrichedPost, str], bool]:
    """Whether the brand's negative-share detector counts this post as negative (same thresholds)."""

    def is_negative(post: EnrichedPost, brand: str) -> bool:
        config = engine.config_for(None if brand == OTHER_BRAND else brand).negative_surge
        negative = post.negative_probability
        complaint = post.complaint_probability
        return (negative is not None and negative >= config.negative_probability) or (
            complaint is not None and complaint >= config.complaint_probability
        )

    return is_negative


# -- detections and incidents --------------------------------------------------------------------------
class DetectionRecorder:
    """Assessments -> score and negative-share gauges and the decision counter.

    Assessments are emitted on decisions (severity changes, material growth), so the gauges move at
    decision points; the counters of `record_brands` carry the continuous per-brand picture.
    """

    def __init__(self, metrics: PipelineMetrics, role_of: Callable[[str], str]) -> None:
        self.metrics = metrics
        self.role_of = role_of
        self._open: dict[tuple[str, str], dict[str, float]] = {}

    def __call__(self, assessment: Assessment) -> None:
        brand, detector = assessment.brand, assessment.detector
        role = self.role_of(brand)
        severity = assessment.severity or "none"
        self.metrics.detection_assessments.labels(brand, role, detector, severity).inc()
        score = float(assessment.score)
        if assessment.root_id is not None:
            open_scores = self._open.setdefault((brand, detector), {})
            if assessment.severity is None:
                open_scores.pop(assessment.root_id, None)
            elif assessment.root_id in open_scores or len(open_scores) < MAX_OPEN_CASCADES_TRACKED:
                open_scores[assessment.root_id] = score
            if open_scores:
                score = max(open_scores.values())
        self.metrics.detection_score.labels(brand, role, detector).set(score)
        share = assessment.metrics.get("negative_share")
        if assessment.root_id is None and isinstance(share, int | float) and not isinstance(share, bool):
            self.metrics.detection_negative_share.labels(brand, role).set(float(share))


class OpenIncidents:
    """`crisiswatch_incidents_open` from the incident trackers this process holds.

    Label sets seen once stay at 0 afterwards, so a panel shows "no open incident" instead of no data.
    """

    def __init__(self, gauge: Gauge, role_of: Callable[[str], str]) -> None:
        self.gauge = gauge
        self.role_of = role_of
        self._seen: set[tuple[str, str, str, str]] = set()

    def refresh(self, trackers: Iterable[IncidentTracker]) -> dict[tuple[str, str, str, str], int]:
        counts: dict[tuple[str, str, str, str], int] = {}
        for tracker in trackers:
            for incident_id in tracker.open_incidents():
                incident = tracker.incident(incident_id)
                if incident is None:
                    continue
                brand = str(incident["brand"])
                key = (brand, self.role_of(brand), str(incident["detector"]), str(incident["severity"]))
                counts[key] = counts.get(key, 0) + 1
        self._seen |= counts.keys()
        for key in self._seen:
            self.gauge.labels(*key).set(counts.get(key, 0))
        return counts

    def note(self, event: IncidentEvent) -> None:
        """An incident opened: its label set exists from now on, even if it resolves before the next refresh."""
        key = (event.brand, self.role_of(event.brand), event.detector, event.severity)
        if key not in self._seen:
            self._seen.add(key)
            self.gauge.labels(*key).set(0)


def pending_notifications(services: Iterable[Any]) -> int:
    """Notifications queued for delivery or a retry, over the given AlertingServices."""
    return sum(len(service.notifier.pending()) for service in list(services))


def log_incident_event(event: IncidentEvent) -> None:
    """One line per incident event; the JSON log format carries the ids as fields (no post text)."""
    incident_log.info(
        "incident %s %s [%s] %s",
        event.status,
        event.incident_id,
        event.severity,
        event.summary,
        extra={
            "incident_id": event.incident_id,
            "event_id": event.id,
            "dedup_key": event.dedup_key,
            "status": event.status,
            "severity": event.severity,
            "detector": event.detector,
            "brand": event.brand,
        },
    )


# -- consumer lag --------------------------------------------------------------------------------------
class ConsumerLag:
    """End offset minus committed offset of the consumer group, per partition (blocking calls)."""

    def __init__(
        self, client_options: Mapping[str, Any], group_id: str, topic: str, timeout_s: float = 10.0
    ) -> None:
        self.client_options = dict(client_options)
        self.group_id = group_id
        self.topic = topic
        self.timeout_s = timeout_s
        self._consumer: Any = None

    def measure(self, partitions: Iterable[int]) -> dict[int, int] | None:
        """Lag per partition, or None when the broker cannot be asked (the caller drops the series)."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        wanted = [TopicPartition(self.topic, partition) for partition in sorted(set(partitions))]
        if not wanted:
            return {}
        try:
            consumer = self._client()
            ends = consumer.end_offsets(wanted)
            beginnings: Mapping[Any, int] | None = None
            lags: dict[int, int] = {}
            for tp in wanted:
                committed = consumer.committed(tp, timeout_ms=int(self.timeout_s * 1000))
                if committed is None:
                    # No commit yet: the group starts from the beginning (auto_offset_reset=earliest).
                    beginnings = beginnings or consumer.beginning_offsets(wanted)
                    committed = beginnings[tp]
                lags[tp.partition] = max(0, int(ends[tp]) - int(committed))
            return lags
        except (KafkaError, OSError, ValueError, KeyError) as error:
            log.warning("consumer lag of %s unavailable: %s", self.topic, error)
            self.close()
            return None

    def _client(self) -> Any:
        if self._consumer is None:
            from kafka import KafkaConsumer

            timeout_ms = int(self.timeout_s * 1000)
            # kafka-python 3 bounds the first connection with bootstrap_timeout_ms, 2.x with
            # api_version_auto_timeout_ms; either way an unreachable broker costs timeout_s, not 30 s.
            bootstrap = (
                "bootstrap_timeout_ms"
                if "bootstrap_timeout_ms" in KafkaConsumer.DEFAULT_CONFIG
                else "api_version_auto_timeout_ms"
            )
            # A member of no group generation: it never joins, subscribes or commits; it only asks the
            # group coordinator for the group's committed offsets.
            self._consumer = KafkaConsumer(
                group_id=self.group_id,
                enable_auto_commit=False,
                client_id=f"{self.group_id}-lag",
                request_timeout_ms=timeout_ms + 1000,
                **{bootstrap: timeout_ms},
                **self.client_options,
            )
        return self._consumer

    def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                consumer.close()
            except Exception:  # noqa: BLE001 - closing a broken client must not mask the first error
                log.debug("closing the lag client failed", exc_info=True)


def publish_lag(
    metrics: PipelineMetrics, topic: str, lags: Mapping[int, int] | None, previous: set[int]
) -> set[int]:
    """Set the lag gauge for `lags`, drop partitions no longer measured; returns the partitions shown."""
    shown = set(lags or {})
    for partition in previous - shown:
        metrics.consumer_lag.remove(topic, str(partition))
    if lags is None:
        metrics.consumer_lag_errors.inc()
    for partition, lag in (lags or {}).items():
        metrics.consumer_lag.labels(topic, str(partition)).set(lag)
    return shown


# -- Faust sensors and versions --------------------------------------------------------------------------
def install_faust_sensors(app: Any, registry: CollectorRegistry, prefix: str = FAUST_METRICS_PREFIX) -> None:
    """Faust's Prometheus monitor on our registry, without the extra /metrics page that
    `faust.sensors.prometheus.setup_prometheus_sensors` would add (the worker serves the registry itself)."""
    from faust.sensors.prometheus import FaustMetrics

    app.monitor = _cached_monitor_class()(metrics=FaustMetrics.create(registry, prefix))


def _cached_monitor_class() -> type:
    """Faust's PrometheusMonitor with its per-event label lookups cached: same metrics and values.

    Upstream looks up three labelled children and normalises the stream name with a regex for every
    consumed event (~30 us per event on the 2-core bench machine, about as much as the agent's own
    work); the children are resolved once per partition / stream here and dropped whenever Faust
    clears the partition metrics (rebalances), so no series is updated after its removal.
    """
    import weakref

    from faust.sensors.monitor import Monitor
    from faust.sensors.prometheus import PrometheusMonitor

    class CachedPrometheusMonitor(PrometheusMonitor):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._partition_children: dict[Any, tuple[Any, Any]] = {}
            self._stream_children: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

        def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
            Monitor.on_message_in(self, tp, offset, message)
            metrics = self._metrics
            metrics.messages_received.inc()
            metrics.active_messages.inc()
            children = self._partition_children.get(tp)
            if children is None:
                children = self._partition_children[tp] = (
                    metrics.messages_received_per_topics.labels(topic=tp.topic),
                    metrics.messages_received_per_topics_partition.labels(
                        topic=tp.topic, partition=tp.partition
                    ),
                )
            children[0].inc()
            children[1].set(offset)

        def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
            state = Monitor.on_stream_event_in(self, tp, offset, stream, event)
            metrics = self._metrics
            metrics.total_events.inc()
            metrics.total_active_events.inc()
            child = self._stream_children.get(stream)
            if child is None:
                label = f"stream.{self._stream_label(stream)}.events"
                child = self._stream_children[stream] = metrics.total_events_per_stream.labels(stream=label)
            child.inc()
            return state

        def _clear_partition_related_metrics(self) -> None:
            self._partition_children.clear()
            super()._clear_partition_related_metrics()

    return CachedPrometheusMonitor


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def config_fingerprint(path: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What identifies the running config: file, SHA-256 prefix of its bytes plus the overrides' values,
    and the override names (values are hashed, never shown: they may be secrets)."""
    environ = os.environ if environ is None else environ
    digest = hashlib.sha256()
    if path is not None:
        try:
            digest.update(Path(path).read_bytes())
        except OSError:
            digest.update(b"(unreadable)")
    overrides = sorted(key for key in environ if key.startswith(ENV_PREFIX))
    for key in overrides:
        digest.update(f"\0{key}={environ[key]}".encode("utf-8", "replace"))
    return {"file": path or "(defaults)", "sha256": digest.hexdigest()[:12], "overrides": ",".join(overrides)}


def set_version_info(metrics: PipelineMetrics, analyzer: Any, config_path: str | None) -> None:
    metrics.build_info.info(
        {
            "version": _version("crisiswatch"),
            "python": platform.python_version(),
            "faust": _version("faust-streaming"),
            "prometheus_client": _version("prometheus-client"),
        }
    )
    metrics.config_info.info(config_fingerprint(config_path))
    metrics.model_info.info({"version": str(getattr(analyzer, "version", "unknown"))})


# -- the worker ----------------------------------------------------------------------------------------
class WorkerObservability:
    """Installed once per `Worker`; the worker calls `attach` for each partition pipeline it creates and
    `on_incident_event` for each event it sends to the outbox."""

    def __init__(self, worker: Any) -> None:
        from crisiswatch.alerts.receivers.base import REASONS
        from crisiswatch.streams.topics import client_security

        disable_created_metrics()  # `*_created` series would double the series count for nothing here
        self.worker = worker
        settings: Settings = worker.settings
        self.metrics: PipelineMetrics = worker.metrics
        self.topic = settings.kafka.posts_topic
        install_faust_sensors(worker.app, worker.registry)
        set_version_info(self.metrics, worker.analyzer, worker.config_path)
        self.metrics.initialise_topic(self.topic)
        for receiver in settings.alerting.receivers:
            worker.alert_metrics.sent.labels(receiver.name)
            worker.alert_metrics.retried.labels(receiver.name)
            for reason in REASONS:
                worker.alert_metrics.failed.labels(receiver.name, reason)
                worker.alert_metrics.dead_lettered.labels(receiver.name, reason)
        # The partitions' AlertingServices share one AlertMetrics and each sets `pending` to its own
        # queue length; read at scrape time, the gauge is this worker's total instead of the last writer's.
        worker.alert_metrics.pending.set_function(
            lambda: float(pending_notifications(worker.alerting.values()))
        )
        self.role_of = role_resolver(worker.resolver)
        self.detections = DetectionRecorder(self.metrics, self.role_of)
        self.open_incidents = OpenIncidents(self.metrics.incidents_open, self.role_of)
        self.lag = ConsumerLag(client_security(settings), settings.kafka.app_id, self.topic)
        self._lag_partitions: set[int] = set()

        app = worker.app

        @app.timer(interval=LAG_INTERVAL_S, name="crisiswatch.consumer_lag")
        async def consumer_lag() -> None:
            await self.update_lag()

        @app.timer(interval=OPEN_INCIDENTS_INTERVAL_S, name="crisiswatch.open_incidents")
        async def open_incidents() -> None:
            self.refresh_open_incidents()

    def attach(self, pipeline: Pipeline) -> None:
        is_negative = negative_counter(pipeline.engine)
        role_of = self.role_of

        def on_ingest(result: IngestResult) -> None:
            self.metrics.record_brands(result.posts, role_of, is_negative)

        pipeline.on_ingest = on_ingest
        pipeline.on_assessment = self.detections

    def on_incident_event(self, event: IncidentEvent) -> None:
        self.metrics.incident_events.labels(event.brand, event.detector, event.status, event.severity).inc()
        if event.status == "firing":
            self.open_incidents.note(event)
        log_incident_event(event)

    def config_reloaded(self) -> None:
        self.metrics.config_info.info(config_fingerprint(self.worker.config_path))

    def assigned_partitions(self) -> set[int] | None:
        """Input partitions this worker owns now; None while rebalancing or recovering (keep the last)."""
        if not self.worker.readiness()["ready"]:
            return None
        return {tp.partition for tp in self.worker.app.consumer.assignment() if tp.topic == self.topic}

    async def update_lag(self) -> None:
        partitions = self.assigned_partitions()
        if partitions is None:
            return
        lags = await asyncio.get_running_loop().run_in_executor(None, self.lag.measure, partitions)
        self._lag_partitions = publish_lag(self.metrics, self.topic, lags, self._lag_partitions)

    def refresh_open_incidents(self) -> None:
        states = list(self.worker.cascades.values()) + list(self.worker.brands.values())
        self.open_incidents.refresh(state.pipeline.tracker for state in states)


# -- replay ----------------------------------------------------------------------------------------------
class ReplayMetrics:
    """`crisiswatch replay --metrics-port`: event-time metrics of the run on their own registry and server.

    The pipeline a replay creates is attached through `PIPELINE_CREATED_HOOKS` while `replay_metrics()`
    is active. The server answers from a background thread during the run and keeps answering after the
    stream ends until SIGINT / SIGTERM, so Prometheus (or curl) can read the final figures.
    """

    def __init__(self, settings: Settings, port: int, host: str | None = None) -> None:
        from prometheus_client import start_http_server

        disable_created_metrics()
        self.settings = settings
        self.host = host or settings.metrics.bind_host
        self.registry = CollectorRegistry()
        self.metrics = PipelineMetrics(self.registry)
        self.finished = Gauge(
            "crisiswatch_replay_finished",
            "1 once the replayed stream has ended (the server keeps serving until interrupted).",
            registry=self.registry,
        )
        self.metrics.initialise_topic(REPLAY_TOPIC_LABEL)
        try:
            self.server, self._thread = start_http_server(port, addr=self.host, registry=self.registry)
        except OSError as error:
            raise ConfigError(
                "--metrics-port", port, f"a free port on {self.host} ({error.strerror})"
            ) from None
        self.port = int(self.server.server_port)
        self.pipelines: list[Pipeline] = []
        self._role_of: Callable[[str], str] = lambda brand: "own"
        self.open_incidents = OpenIncidents(self.metrics.incidents_open, lambda brand: self._role_of(brand))

    def attach(self, pipeline: Pipeline) -> None:
        """Called with each Pipeline the replay creates (normally one)."""
        if not self.pipelines:
            source = self.settings.source
            set_version_info(self.metrics, pipeline.analyzer, None if source == "(defaults)" else source)
            self._role_of = role_resolver(pipeline.resolver)
        self.pipelines.append(pipeline)
        role_of = role_resolver(pipeline.resolver)
        is_negative = negative_counter(pipeline.engine)

        def on_ingest(result: IngestResult) -> None:
            self.metrics.record(REPLAY_TOPIC_LABEL, result.accounting)
            self.metrics.record_brands(result.posts, role_of, is_negative)
            self.metrics.batch_size.observe(result.accounting.consumed)
            self.refresh_open_incidents()
            if pipeline.watermark.value_s is not None:
                self.metrics.watermark.labels(REPLAY_TOPIC_LABEL, "0").set(pipeline.watermark.value_s)

        def on_events(events: Sequence[IncidentEvent]) -> None:
            for event in events:
                self.metrics.incident_events.labels(
                    event.brand, event.detector, event.status, event.severity
                ).inc()

        pipeline.on_ingest = on_ingest
        pipeline.on_assessment = DetectionRecorder(self.metrics, role_of)
        pipeline.on_events = on_events

    def refresh_open_incidents(self) -> None:
        self.open_incidents.refresh(pipeline.tracker for pipeline in self.pipelines)

    def finish(self, stderr: IO[str], stop: threading.Event | None = None) -> None:
        """The stream ended: final figures, then serve until interrupted (or `stop` is set)."""
        self.refresh_open_incidents()
        self.finished.set(1)
        stop = stop or threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            stderr.write(
                f"metrics: serving http://{self.host}:{self.port}/metrics until interrupted (Ctrl-C)\n"
            )
            stderr.flush()
            while not stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def replay_metrics(
    settings: Settings, port: int | None, stderr: IO[str] | None = None
) -> Iterator[ReplayMetrics | None]:
    """The `replay --metrics-port` hook around a replay run: attach, run, then serve until interrupted."""
    if port is None:
        yield None
        return
    metrics = ReplayMetrics(settings, port)
    PIPELINE_CREATED_HOOKS.append(metrics.attach)
    try:
        yield metrics
    except BaseException:
        metrics.close()
        raise
    finally:
        PIPELINE_CREATED_HOOKS.remove(metrics.attach)
    metrics.finish(stderr or sys.stderr)
