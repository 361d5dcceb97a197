"""The worker's tables serialise keys as raw bytes and values as JSON: what recovery decodes must match."""

from __future__ import annotations

from crisiswatch.streams.app import Worker
from crisiswatch.streams.config import settings_from_mapping


def test_state_tables_use_raw_keys_and_json_values() -> None:
    worker = Worker(settings_from_mapping({}, environ={}))
    for table in (worker.cascade_table, worker.brand_table, worker.alerting_table):
        topic = table.changelog_topic
        assert (table.key_serializer, table.value_serializer) == ("raw", "json")
        assert (topic.key_serializer, topic.value_serializer) == ("raw", "json")
        key = "根-1/x".encode()
        encoded = worker.app.serializers.dumps_key(topic.key_type, key, serializer=topic.key_serializer)
        assert encoded == key
        assert (
            worker.app.serializers.loads_key(topic.key_type, encoded, serializer=topic.key_serializer) == key
        )
