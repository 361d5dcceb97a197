"""Pipeline metrics (prometheus-client). One `PipelineMetrics` per registry so tests use a fresh one.

Names: `crisiswatch_<subsystem>_<name>_<unit>`; labels are bounded (brand from config or `other`,
reason codes, statuses, severities, topics, partitions) and never carry post or user ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from crisiswatch.streams.pipeline import Accounting

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.posts_consumed = Counter(
            "crisiswatch_posts_consumed_total", "Posts read from the input topic or file.", ["topic"], registry=registry
        )
        self.posts_processed = Counter(
            "crisiswatch_posts_processed_total", "Posts that passed validation, dedup and lateness.", ["topic"], registry=registry
        )
        self.posts_dead_lettered = Counter(
            "crisiswatch_posts_dead_lettered_total", "Posts sent to the dead-letter topic, by reason code.", ["reason"], registry=registry
        )
        self.posts_duplicate = Counter(
            "crisiswatch_posts_duplicate_total", "Redelivered posts dropped by the dedup stage.", ["topic"], registry=registry
        )
        self.posts_late = Counter(
            "crisiswatch_posts_late_total", "Posts older than the watermark minus the allowed lateness.", ["topic"], registry=registry
        )
        self.processing_latency = Histogram(
            "crisiswatch_processing_latency_seconds",
            "Event time of a post to the moment it was processed (wall clock).",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.incident_events = Counter(
            "crisiswatch_incident_events_total", "Incident events emitted.", ["detector", "status", "severity"], registry=registry
        )
        self.watermark = Gauge(
            "crisiswatch_event_time_watermark_seconds", "Event-time watermark per partition (epoch seconds).", ["topic", "partition"], registry=registry
        )
        self.batch_size = Histogram(
            "crisiswatch_batch_posts", "Posts per processed batch.", buckets=(1, 10, 100, 500, 1000, 2000, 5000), registry=registry
        )
        self.build_info = Info("crisiswatch_build", "Versions of crisiswatch, its config and its text models.", registry=registry)

    def record(self, topic: str, accounting: Accounting) -> None:
        self.posts_consumed.labels(topic).inc(accounting.consumed)
        self.posts_processed.labels(topic).inc(accounting.processed)
        self.posts_duplicate.labels(topic).inc(accounting.duplicate)
        self.posts_late.labels(topic).inc(accounting.late)
        for reason, count in accounting.dead_lettered.items():
            self.posts_dead_lettered.labels(reason).inc(count)
