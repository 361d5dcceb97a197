"""Create the worker's topics before Faust starts, so its first partition assignment includes all of them.

Faust declares its own changelog topics, but assigns partitions before topics it only writes to exist,
and an agent whose source topic appears later waits for the next metadata refresh (minutes).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from crisiswatch.streams.config import Settings

log = logging.getLogger("crisiswatch.topics")


def client_security(settings: Settings) -> dict[str, Any]:
    """kafka-python connection settings for the configured TLS/SASL (shared by admin, produce and tests)."""
    kafka = settings.kafka
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=kafka.sasl_mechanism or "PLAIN",
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=kafka.sasl_password,
        )
    if kafka.security_protocol.endswith("SSL"):
        options.update(
            ssl_cafile=kafka.ssl_cafile, ssl_certfile=kafka.ssl_certfile, ssl_keyfile=kafka.ssl_keyfile
        )
    return options


def worker_topics(settings: Settings) -> list[str]:
    kafka = settings.kafka
    return [
        kafka.posts_topic,
        kafka.alerts_topic,
        kafka.dead_letter_topic,
        kafka.acks_topic,
        f"{kafka.app_id}-brand-observations",
    ]


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics with `kafka.partitions` partitions; returns the names created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        client_id=f"{settings.kafka.app_id}-admin",
        request_timeout_ms=int(timeout_s * 1000),
        **client_security(settings),
    )
    try:
        existing = set(admin.list_topics())
        missing = [name for name in worker_topics(settings) if name not in existing]
        if missing:
            topics = [
                NewTopic(name, settings.kafka.partitions, settings.kafka.replication_factor)
                for name in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker of the group was first
                admin.create_topics(topics, timeout_ms=int(timeout_s * 1000))
            log.info("created topics %s with %d partitions", missing, settings.kafka.partitions)
        return missing
    finally:
        admin.close()
