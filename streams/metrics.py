"""Pipeline metrics (prometheus-client). One `PipelineMetrics` per registry so tests use a fresh one.

Names: `crisiswatch_<subsystem>_<name>_<unit>`; labels are bounded (brand from config, auto-monitored up to
`pipeline.max_auto_brands`, or `other`; role, detector, severity, status, reason codes, topics, partitions)
and never carry post or user ids. The full list, with the Faust sensors and the delivery metrics of
`alerts/metrics.py`, is in deploy/prometheus/README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from crisiswatch.detectors.events import EnrichedPost
from crisiswatch.streams.pipeline import Accounting

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
SEVERITIES = ("info", "warning", "critical")


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.posts_consumed = Counter(
            "crisiswatch_posts_consumed_total",
            "Posts read from the input topic or file.",
            ["topic"],
            registry=registry,
        )
        self.posts_processed = Counter(
            "crisiswatch_posts_processed_total",
            "Posts that passed validation, dedup and lateness.",
            ["topic"],
            registry=registry,
        )
        self.posts_dead_lettered = Counter(
            "crisiswatch_posts_dead_lettered_total",
            "Posts sent to the dead-letter topic, by reason code.",
            ["reason"],
            registry=registry,
        )
        self.posts_duplicate = Counter(
            "crisiswatch_posts_duplicate_total",
            "Redelivered posts dropped by the dedup stage.",
            ["topic"],
            registry=registry,
        )
        self.posts_late = Counter(
            "crisiswatch_posts_late_total",
            "Posts older than the watermark minus the allowed lateness.",
            ["topic"],
            registry=registry,
        )
        self.processing_latency = Histogram(
            "crisiswatch_processing_latency_seconds",
            "Event time of a post to the moment it was processed (wall clock).",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.incident_events = Counter(
            "crisiswatch_incident_events_total",
            "Incident events emitted to the outbox.",
            ["brand", "detector", "status", "severity"],
            registry=registry,
        )
        self.watermark = Gauge(
            "crisiswatch_event_time_watermark_seconds",
            "Event-time watermark per partition (epoch seconds).",
            ["topic", "partition"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "crisiswatch_batch_posts",
            "Posts per processed batch.",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000),
            registry=registry,
        )
        # -- per brand: what PR-ops looks at -------------------------------------------------------------
        self.brand_posts = Counter(
            "crisiswatch_brand_posts_total",
            "Processed posts about a monitored brand (a post about two brands counts for each).",
            ["brand", "role"],
            registry=registry,
        )
        self.brand_scored_posts = Counter(
            "crisiswatch_brand_scored_posts_total",
            "Processed posts about a brand that carry a negative-sentiment probability.",
            ["brand", "role"],
            registry=registry,
        )
        self.brand_negative_posts = Counter(
            "crisiswatch_brand_negative_posts_total",
            "Scored posts about a brand counted as negative (the detectors' negative_probability threshold).",
            ["brand", "role"],
            registry=registry,
        )
        self.detection_score = Gauge(
            "crisiswatch_detection_score",
            "Latest detector score (a z-score, dimensionless) per brand; cascade detectors report the highest "
            "score among the brand's open cascades, else the latest assessed cascade.",
            ["brand", "role", "detector"],
            registry=registry,
        )
        self.detection_negative_share = Gauge(
            "crisiswatch_detection_negative_share_ratio",
            "Negative share of the brand's original posts (negative_surge.brand_originals_only) in the detector's "
            "window (the hour, or the fast window when only it surges), at its latest brand-wide assessment.",
            ["brand", "role"],
            registry=registry,
        )
        self.detection_assessments = Counter(
            "crisiswatch_detection_assessments_total",
            "Detector decisions (severity `none` = back to normal).",
            ["brand", "role", "detector", "severity"],
            registry=registry,
        )
        self.incidents_open = Gauge(
            "crisiswatch_incidents_open",
            "Open incidents held by this process, by severity (and brand, detector).",
            ["brand", "role", "detector", "severity"],
            registry=registry,
        )
        # -- Kafka consumer --------------------------------------------------------------------------------
        self.consumer_lag = Gauge(
            "crisiswatch_consumer_lag_messages",
            "End offset minus the consumer group's committed offset, per assigned input partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.consumer_lag_errors = Counter(
            "crisiswatch_consumer_lag_errors_total",
            "Lag measurements that failed (broker unreachable); the lag series are dropped meanwhile.",
            registry=registry,
        )
        self.processing_errors = Counter(
            "crisiswatch_processing_errors_total",
            "Inputs an agent failed on (a bug, not bad input): dead-lettered with reason processing_error and "
            "acknowledged, so the partition keeps moving.",
            ["agent"],
            registry=registry,
        )
        self.undelivered_reads = Counter(
            "crisiswatch_undelivered_records_read_total",
            "Input records the consumer skipped (around a rebalance or recovery) that the worker read from Kafka "
            "directly and processed in their place.",
            ["topic"],
            registry=registry,
        )
        self.commit_gap_repairs = Counter(
            "crisiswatch_commit_gap_repairs_total",
            "Partitions sought back to their committed offset because commits were stuck behind offsets the "
            "consumer never delivered (after a rebalance); the gap is read again, applied posts are skipped.",
            ["topic"],
            registry=registry,
        )
        # -- versions --------------------------------------------------------------------------------------
        self.build_info = Info(
            "crisiswatch_build", "Versions of crisiswatch and of the libraries it runs on.", registry=registry
        )
        self.config_info = Info(
            "crisiswatch_config",
            "The running configuration: file, SHA-256 prefix of its bytes and the CRISISWATCH_* overrides.",
            registry=registry,
        )
        self.model_info = Info(
            "crisiswatch_text_model", "The text model bundle in use (manifest version).", registry=registry
        )

    def record(self, topic: str, accounting: Accounting) -> None:
        self.posts_consumed.labels(topic).inc(accounting.consumed)
        self.posts_processed.labels(topic).inc(accounting.processed)
        self.posts_duplicate.labels(topic).inc(accounting.duplicate)
        self.posts_late.labels(topic).inc(accounting.late)
        for reason, count in accounting.dead_lettered.items():
            self.posts_dead_lettered.labels(reason).inc(count)

    def initialise_topic(self, topic: str) -> None:
        """Series at 0 before the first post: `increase()` then sees the first posts and a silent feed."""
        for counter in (self.posts_consumed, self.posts_processed, self.posts_duplicate, self.posts_late):
            counter.labels(topic)

    def record_brands(
        self,
        posts: Sequence[EnrichedPost],
        role_of: Callable[[str], str],
        is_negative: Callable[[EnrichedPost, str], bool],
    ) -> None:
        """Per-brand volume and negative-share inputs, counted as the brand's detectors count them."""
        counts: dict[str, list[int]] = {}
        for post in posts:
            scored = post.negative_probability is not None
            for brand in post.brands:
                tally = counts.setdefault(brand, [0, 0, 0])
                tally[0] += 1
                if scored:
                    tally[1] += 1
                    tally[2] += is_negative(post, brand)
        for brand, (total, scored_count, negative_count) in counts.items():
            role = role_of(brand)
            self.brand_posts.labels(brand, role).inc(total)
            self.brand_scored_posts.labels(brand, role).inc(scored_count)
            self.brand_negative_posts.labels(brand, role).inc(negative_count)
