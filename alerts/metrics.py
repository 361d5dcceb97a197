"""Delivery metrics on a caller-supplied prometheus_client registry (tests pass a fresh one).

Label values are bounded: receiver names come from config, reasons from `receivers.base.REASONS`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.sent = Counter(
            "crisiswatch_notifications_sent_total",
            "Notifications delivered, per receiver.",
            ["receiver"],
            registry=self.registry,
        )
        self.failed = Counter(
            "crisiswatch_notifications_failed_total",
            "Delivery attempts that failed, per receiver and reason.",
            ["receiver", "reason"],
            registry=self.registry,
        )
        self.retried = Counter(
            "crisiswatch_notifications_retried_total",
            "Delivery attempts scheduled again after a retryable failure.",
            ["receiver"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "crisiswatch_notifications_dead_lettered_total",
            "Notifications given up on (written to the dead-letter log).",
            ["receiver", "reason"],
            registry=self.registry,
        )
        self.pending = Gauge(
            "crisiswatch_notifications_pending",
            "Notifications waiting for delivery or a retry.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "crisiswatch_alert_latency_seconds",
            "From the incident event's detection (event time) to successful delivery.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
