"""Pytest plugin: real single-node Kafka brokers (deploy/kafka/kafka-local) for integration tests.

Register it once, in tests/conftest.py::

    pytest_plugins = ["kafka_broker"]

(pytest's default "prepend" import puts tests/ on sys.path, as tests/ has no __init__.py; the module
also answers to ``tests.kafka_broker``). For a one-off run without that line::

    PYTHONPATH=tests python -m pytest -p kafka_broker tests/integration/test_kafka_local.py

Fixtures:
    kafka_bootstrap (session) -> "host:port": $KAFKA_BOOTSTRAP_SERVERS if set, else one broker started
        for the whole session (jars fetched with Maven on first use) and stopped at session end.
    own_kafka_broker (function) -> KafkaBroker: a fresh broker for this test only, with .bootstrap,
        .stop() and .start() (same port and data: broker-restart tests); stopped at teardown.
When a broker cannot start the test is skipped with the reason, or FAILS when CI=true.
Helpers: unique_topic(prefix), create_topic(bootstrap, name, partitions).
"""

from __future__ import annotations

import atexit
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# One module object whichever name imported it first (plugin name vs. `from kafka_broker import ...`).
for _alias in ("kafka_broker", "tests.kafka_broker"):
    sys.modules.setdefault(_alias, sys.modules[__name__])

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "kafka-local"
START_TIMEOUT_S = float(os.environ.get("KAFKA_LOCAL_START_TIMEOUT_S", "120"))

_kafka_local: ModuleType | None = None
_live: set[KafkaBroker] = set()


def kafka_local() -> ModuleType:
    """The kafka-local script loaded as a module (it has no .py suffix, hence the explicit loader)."""
    global _kafka_local
    if _kafka_local is None:
        name = "crisiswatch_kafka_local"
        loader = importlib.machinery.SourceFileLoader(name, str(SCRIPT))
        spec = importlib.util.spec_from_loader(name, loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
        _kafka_local = module
    return _kafka_local


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _unavailable(reason: str) -> None:
    """No broker: a failure in CI (must not pass silently), a skip on a developer machine."""
    if _in_ci():
        pytest.fail(f"Kafka broker unavailable (CI=true): {reason}", pytrace=False)
    pytest.skip(f"Kafka broker unavailable: {reason}")


class KafkaBroker:
    """One broker process in its own temp dir. start() after stop() reuses the port and the data."""

    def __init__(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.dir: Path | None = None
        self.bootstrap: str | None = None
        self.pid: int | None = None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> str:
        if self.running:
            return self._bootstrap()
        state: dict[str, Any] = kafka_local().start(self.dir, timeout_s=self.timeout_s, die_with_parent=True)
        if self.bootstrap is not None and state["bootstrap"] != self.bootstrap:
            raise AssertionError(f"restart moved the broker: {self.bootstrap} -> {state['bootstrap']}")
        self.dir, self.bootstrap, self.pid = Path(state["dir"]), state["bootstrap"], state["pid"]
        _live.add(self)
        return self._bootstrap()

    def stop(self) -> None:
        """Stop the process (SIGTERM, SIGKILL after 30 s), keeping the data dir for start()."""
        if self.dir is not None and self.running:
            kafka_local().stop(self.dir, keep=True)
        self.pid = None

    def close(self) -> None:
        """Stop and delete the data dir."""
        if self.dir is not None and self.dir.exists():
            kafka_local().stop(self.dir, keep=False)
        self.pid = None
        _live.discard(self)

    def _bootstrap(self) -> str:
        assert self.bootstrap is not None
        return self.bootstrap

    def __repr__(self) -> str:
        return f"KafkaBroker(bootstrap={self.bootstrap!r}, pid={self.pid}, dir={str(self.dir)!r})"


@atexit.register
def _stop_all() -> None:
    """Backstop: no broker outlives the test process, even when teardown did not run."""
    for broker in list(_live):
        try:
            broker.close()
        except Exception as exc:  # noqa: BLE001 - best effort at exit
            print(f"kafka_broker: could not stop {broker}: {exc}", file=sys.stderr)


def _start_broker() -> KafkaBroker:
    broker = KafkaBroker()
    try:
        broker.start()
    except Exception as exc:  # KafkaLocalError, no java/mvn, Maven offline...
        broker.close()
        _unavailable(f"{type(exc).__name__}: {exc}")
    return broker


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the session's broker ($KAFKA_BOOTSTRAP_SERVERS or one started here)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        host, _, port = external.split(",")[0].strip().rpartition(":")
        if not (port.isdigit() and kafka_local().probe(host or "127.0.0.1", int(port), timeout_s=5.0)):
            _unavailable(f"KAFKA_BOOTSTRAP_SERVERS={external} does not answer Kafka metadata requests")
        yield external
        return
    broker = _start_broker()
    try:
        yield broker._bootstrap()
    finally:
        broker.close()


@pytest.fixture
def own_kafka_broker() -> Iterator[KafkaBroker]:
    """A broker of this test alone (never the shared one): stop()/start() it at will."""
    broker = _start_broker()
    try:
        yield broker
    finally:
        broker.close()


def unique_topic(prefix: str = "test") -> str:
    """A topic name no other test (or earlier run on an external broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    *,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> str:
    """Create a topic and wait until every partition has a leader; returns the name."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crisiswatch-tests")
    try:
        params = inspect.signature(admin.create_topics).parameters
        if "wait_for_metadata" in params:  # kafka-python >= 3: dict form, waits for leaders
            spec: dict[str, Any] = {"num_partitions": partitions, "replication_factor": replication_factor}
            if config:
                spec["configs"] = config
            admin.create_topics({name: spec}, timeout_ms=int(timeout_s * 1000), wait_for_metadata=True)
        else:  # kafka-python 2.x
            topic = NewTopic(name, partitions, replication_factor, topic_configs=config or {})
            admin.create_topics([topic], timeout_ms=int(timeout_s * 1000))
            _wait_for_leaders(admin, name, partitions, timeout_s)
    finally:
        admin.close()
    return name


def _wait_for_leaders(admin: Any, name: str, partitions: int, timeout_s: float) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics([name])
        parts = described[0].get("partitions", []) if described else []
        if len(parts) == partitions and all(p.get("leader", -1) >= 0 for p in parts):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name}: partitions without leader after {timeout_s} s: {parts}")
        time.sleep(0.1)
