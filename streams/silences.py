"""Silences on a compacted Kafka topic: written by `crisiswatch silence`, followed by every worker.

Config: `alerting.silences_store: kafka` and `kafka.silences_topic` (default `crisis.silences`).
The topic (one partition, `cleanup.policy=compact`, created on first use) holds one record per
silence: key = the silence id, value = the silence as JSON (`Silence.to_dict()` plus `"v": 1`).
`silence add` writes a record; `silence expire` writes the same silence ending now (kept, like the
file store, for `silence list --all`); silences that ended more than `retention_s` ago get a
tombstone (null value) from the next add/expire, and compaction then drops them. Compaction keeps the
newest record per key, so reading the topic from the start gives the current set.

`KafkaSilenceStore` implements `alerts.silences.SilenceStore`. `start()` reads the topic to its end
before returning (a worker never dispatches with a half-loaded set); with `follow=True` a thread
keeps reading, so `all()` is an in-memory snapshot (no Kafka round trip per alert) at most
`poll_interval_s` behind. No consumer group and no commits: every worker reads every silence. If the
broker goes away the last known set stays in force (and expiries still apply, by time).

Records are untrusted input: one that does not decode, or whose matchers all match the empty label
set (it would silence everything), is skipped with an error in the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from crisiswatch.alerts.clock import Clock
from crisiswatch.alerts.silences import (
    FileSilenceStore,
    MemorySilenceStore,
    Silence,
    SilenceStore,
    expired_silence,
    find_silence,
)
from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.config import Settings
from crisiswatch.streams.topics import client_security

log = logging.getLogger("crisiswatch.silences")
SILENCE_RECORD_VERSION = 1
# How long `crisiswatch silence` / `routes test` wait for the broker before giving up.
CLI_TIMEOUT_S = 10.0


def encode_silence(silence: Silence) -> bytes:
    return json.dumps({"v": SILENCE_RECORD_VERSION, **silence.to_dict()}, ensure_ascii=False).encode()


def decode_silence(value: bytes) -> Silence:
    """A silence record's value; ValueError when it is not one crisiswatch may apply."""
    try:
        data = json.loads(value)
        if not isinstance(data, dict) or data.get("v") != SILENCE_RECORD_VERSION:
            raise ValueError(
                f"unsupported record version {data.get('v') if isinstance(data, dict) else None!r}"
            )
        silence = Silence.from_dict(data)
    except (KeyError, TypeError, ConfigError, json.JSONDecodeError) as error:
        raise ValueError(f"{type(error).__name__}: {error}") from None
    if not silence.matchers or all(m.matches_empty() for m in silence.matchers):
        raise ValueError("no matcher that excludes the empty label set (would silence everything)")
    return silence


class KafkaSilenceStore:
    def __init__(
        self,
        client_options: Mapping[str, Any],
        topic: str,
        *,
        replication_factor: int = 1,
        retention_s: float = 7 * 86400.0,
        poll_interval_s: float = 0.5,
        request_timeout_s: float = 30.0,
        client_id: str = "crisiswatch-silences",
    ) -> None:
        self.topic = topic
        self.replication_factor = replication_factor
        self.retention_s = retention_s
        self.poll_interval_s = poll_interval_s
        self.request_timeout_s = request_timeout_s
        self._options = dict(client_options)
        self._client_id = client_id
        self._silences: dict[str, Silence] = {}
        self._snapshot: list[Silence] | None = None
        self._lock = threading.Lock()
        self._consumer: Any = None
        self._producer: Any = None
        self._partitions: list[Any] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sync_requests: list[threading.Event] = []
        self.skipped_records = 0
        self.last_error: str | None = None

    # ---- SilenceStore ------------------------------------------------------------------------
    def all(self) -> list[Silence]:
        # Dispatch asks for every incident change: sort once per change of the set, not per call.
        with self._lock:
            if self._snapshot is None:
                self._snapshot = sorted(self._silences.values(), key=lambda s: (s.starts_at_s, s.id))
            return list(self._snapshot)

    def add(self, silence: Silence) -> Silence:
        self._write(silence.id, encode_silence(silence))
        return silence

    def expire(self, silence_id: str, now_s: float) -> Silence:
        self.sync()  # expire what exists now, not what existed when this store started
        with self._lock:
            silence = find_silence(self._silences, silence_id)
        expired = expired_silence(silence, now_s)
        self._write(expired.id, encode_silence(expired))
        return expired

    def prune(self, now_s: float) -> int:
        """Tombstones for silences that ended more than `retention_s` ago; returns how many."""
        old = [s.id for s in self.all() if s.ends_at_s + self.retention_s < now_s]
        for silence_id in old:
            self._write(silence_id, None)
        return len(old)

    # ---- lifecycle ---------------------------------------------------------------------------
    @property
    def following(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, follow: bool = True, timeout_s: float = 30.0) -> KafkaSilenceStore:
        """Create the topic if needed, read it to the end, then (follow=True) keep reading in a thread."""
        from kafka import KafkaConsumer, TopicPartition

        deadline = time.monotonic() + timeout_s
        self._ensure_topic(timeout_s)
        self._consumer = KafkaConsumer(
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=int(self.request_timeout_s * 1000) + 5000,
            **self._options,
        )
        partitions = None
        while not partitions:
            partitions = self._consumer.partitions_for_topic(self.topic)
            if not partitions:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no metadata for silences topic {self.topic} after {timeout_s:g}s")
                time.sleep(0.1)
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)
        self._read_to_end(deadline)
        log.info("silences: %d loaded from topic %s", len(self._silences), self.topic)
        if follow:
            self._thread = threading.Thread(target=self._follow, name="crisiswatch-silences", daemon=True)
            self._thread.start()
        return self

    def sync(self, timeout_s: float | None = None) -> None:
        """Wait until every record written before this call has been applied (read-your-writes)."""
        timeout_s = self.request_timeout_s if timeout_s is None else timeout_s
        if self._consumer is None:
            raise RuntimeError("KafkaSilenceStore.start() was not called")
        if self._thread is None:
            self._read_to_end(time.monotonic() + timeout_s)
            return
        done = threading.Event()
        with self._lock:
            self._sync_requests.append(done)
        if not done.wait(timeout_s):
            raise TimeoutError(f"silences topic {self.topic} not read to its end within {timeout_s:g}s")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_interval_s + 5.0)
            self._thread = None
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        self._consumer = self._producer = None

    def __enter__(self) -> KafkaSilenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading -----------------------------------------------------------------------------
    def _follow(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                requests, self._sync_requests = self._sync_requests, []
            try:
                if requests:
                    self._read_to_end(time.monotonic() + self.request_timeout_s)
                    for request in requests:
                        request.set()
                else:
                    self._apply(self._consumer.poll(timeout_ms=int(self.poll_interval_s * 1000)))
                self.last_error = None
            except Exception as error:  # keep the last known silences; the client reconnects by itself
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("silences: reading %s failed (%s); retrying", self.topic, self.last_error)
                with self._lock:  # unanswered requests wait for the next round
                    self._sync_requests = requests + self._sync_requests
                self._stop.wait(min(5.0, 4 * self.poll_interval_s))

    def _read_to_end(self, deadline: float) -> None:
        end = self._consumer.end_offsets(self._partitions)
        while any(self._consumer.position(tp) < end[tp] for tp in self._partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"silences topic {self.topic} not read to its end in time")
            self._apply(self._consumer.poll(timeout_ms=200))

    def _apply(self, batch: Mapping[Any, Sequence[Any]]) -> None:
        for records in batch.values():
            for record in records:
                key = record.key.decode("utf-8", "replace") if record.key is not None else ""
                if record.value is None:
                    with self._lock:
                        self._silences.pop(key, None)
                        self._snapshot = None
                    continue
                try:
                    silence = decode_silence(record.value)
                    if silence.id != key:
                        raise ValueError(f"record key {key!r} is not the silence id {silence.id!r}")
                except ValueError as error:
                    self.skipped_records += 1
                    log.error(
                        "silences: skipped record at %s[%d]@%d: %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        error,
                    )
                    continue
                with self._lock:
                    self._silences[key] = silence
                    self._snapshot = None

    # ---- writing -----------------------------------------------------------------------------
    def _write(self, key: str, value: bytes | None) -> None:
        from kafka import KafkaProducer

        if self._producer is None:
            self._producer = KafkaProducer(
                client_id=self._client_id,
                acks="all",
                request_timeout_ms=int(self.request_timeout_s * 1000),
                **self._options,
            )
        self._producer.send(self.topic, key=key.encode("utf-8"), value=value).get(
            timeout=self.request_timeout_s
        )
        self.sync()

    def _ensure_topic(self, timeout_s: float) -> None:
        """Create the compacted topic if missing; refuse one that deletes by age (silences would vanish)."""
        from kafka.admin import KafkaAdminClient

        options = dict(self._options, request_timeout_ms=int(timeout_s * 1000))
        if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG:  # kafka-python 3: else 30 s
            options["bootstrap_timeout_ms"] = int(timeout_s * 1000)
        admin = KafkaAdminClient(client_id=self._client_id + "-admin", **options)
        try:
            if self.topic not in set(admin.list_topics()):
                _create_compacted(admin, self.topic, self.replication_factor, timeout_s)
                log.info("created compacted silences topic %s", self.topic)
                return
            policy = _cleanup_policy(admin, self.topic)
            if policy is not None and "compact" not in policy:
                raise ConfigError(
                    "kafka.silences_topic",
                    self.topic,
                    f"a compacted topic (cleanup.policy=compact, it has {policy}): with deletion by age, "
                    "long silences would disappear",
                )
        finally:
            admin.close()


def _create_compacted(admin: Any, topic: str, replication_factor: int, timeout_s: float) -> None:
    import inspect

    from kafka.errors import TopicAlreadyExistsError

    configs = {"cleanup.policy": "compact"}
    with contextlib.suppress(TopicAlreadyExistsError):  # another worker or CLI was first
        if "wait_for_metadata" in inspect.signature(admin.create_topics).parameters:  # kafka-python 3
            admin.create_topics(
                {topic: {"num_partitions": 1, "replication_factor": replication_factor, "configs": configs}},
                timeout_ms=int(timeout_s * 1000),
                wait_for_metadata=True,
            )
        else:  # kafka-python 2.x
            from kafka.admin import NewTopic

            admin.create_topics(
                [NewTopic(topic, 1, replication_factor, topic_configs=configs)],
                timeout_ms=int(timeout_s * 1000),
            )


def _cleanup_policy(admin: Any, topic: str) -> str | None:
    """The topic's cleanup.policy, or None when this kafka-python cannot say."""
    from kafka.admin import ConfigResource, ConfigResourceType

    resource = ConfigResource(ConfigResourceType.TOPIC, topic, ["cleanup.policy"])
    try:
        try:
            result = admin.describe_configs([resource], config_filter="all")  # kafka-python 3
        except TypeError:
            result = admin.describe_configs([resource])  # kafka-python 2.x
        if isinstance(result, dict):
            entry = result.get("topic", {}).get(topic, {}).get("cleanup.policy")
            return None if entry is None else str(entry.get("value"))
        for response in result:
            for resource_result in response.resources:
                for config in resource_result[4]:
                    if config[0] == "cleanup.policy":
                        return str(config[1])
    except Exception as error:  # a check we can skip, not a reason to refuse to start
        log.debug("could not describe %s: %s", topic, error)
    return None


# ---- wiring ------------------------------------------------------------------------------------
def open_silence_store(settings: Settings, *, follow: bool = True, timeout_s: float = 30.0) -> SilenceStore:
    """The configured store, ready to use: the file, or the Kafka topic read to its end (and followed)."""
    alerting = settings.alerting
    if alerting.silences_store == "file":
        return FileSilenceStore(alerting.silences_path)
    store = KafkaSilenceStore(
        client_security(settings),
        settings.kafka.silences_topic,
        replication_factor=settings.kafka.replication_factor,
    )
    try:
        return store.start(follow=follow, timeout_s=timeout_s)
    except BaseException:
        store.close()
        raise


def close_silence_store(store: SilenceStore | None) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def _kafka_failure(error: BaseException) -> bool:
    from kafka.errors import KafkaError

    return isinstance(error, KafkaError | TimeoutError | OSError)


def silence_main(
    argv: Sequence[str], settings: Settings, *, clock: Clock | None = None, out: TextIO | None = None
) -> int:
    """`crisiswatch silence add|list|expire` on the configured store (file or Kafka topic)."""
    from crisiswatch.alerts import cli as alerts_cli

    out = out or sys.stdout
    if settings.alerting.silences_store == "file" or any(a in ("-h", "--help") for a in argv) or not argv:
        store: SilenceStore | None = (
            None if settings.alerting.silences_store == "file" else MemorySilenceStore()
        )
        return alerts_cli.silence_main(argv, settings, clock=clock, out=out, store=store)
    try:
        store = open_silence_store(settings, follow=False, timeout_s=CLI_TIMEOUT_S)
    except ConfigError as error:
        print(f"error: {error}", file=out)
        return 2
    except Exception as error:
        if not _kafka_failure(error):
            raise
        print(
            f"error: silences topic {settings.kafka.silences_topic} at {settings.kafka.bootstrap_servers}: "
            f"{type(error).__name__}: {error}",
            file=out,
        )
        return 2
    try:
        return alerts_cli.silence_main(argv, settings, clock=clock, out=out, store=store)
    finally:
        close_silence_store(store)


def routes_main(
    argv: Sequence[str], settings: Settings, *, clock: Clock | None = None, out: TextIO | None = None
) -> int:
    """`crisiswatch routes test`, showing silences from the configured store (a warning if unreachable)."""
    from crisiswatch.alerts import cli as alerts_cli

    silences: SilenceStore | None = None
    if settings.alerting.silences_store != "file" and "test" in argv:
        try:
            silences = open_silence_store(settings, follow=False, timeout_s=CLI_TIMEOUT_S)
        except Exception as error:
            if not _kafka_failure(error):
                raise
            print(f"warning: silences not checked ({type(error).__name__}: {error})", file=sys.stderr)
    try:
        return alerts_cli.routes_main(argv, settings, clock=clock, out=out, silences=silences)
    finally:
        close_silence_store(silences)
