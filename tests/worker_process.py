"""Run `crisiswatch worker` as a real process for integration tests, and read what it wrote to Kafka.

Every process started here is stopped at teardown (and by atexit as a backstop).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The short test profile: failover and recovery take seconds, not the production defaults' minutes.
FAST_KAFKA = {
    "session_timeout_s": 6.0,
    "heartbeat_interval_s": 1.0,
    "commit_interval_s": 0.5,
    "batch_max_wait_s": 0.02,
}

_live: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_live):
        if process.poll() is None:
            process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerConfig:
    bootstrap: str
    directory: Path
    partitions: int = 4
    brands: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def app_id(self) -> str:
        return f"cw-test-{self.suffix}"

    @property
    def posts_topic(self) -> str:
        return f"posts-{self.suffix}"

    @property
    def alerts_topic(self) -> str:
        return f"alerts-{self.suffix}"

    @property
    def dead_letter_topic(self) -> str:
        return f"dlq-{self.suffix}"

    def write(self, port: int, name: str = "config.yaml") -> Path:
        document: dict[str, Any] = {
            "kafka": {
                "bootstrap_servers": self.bootstrap,
                "app_id": self.app_id,
                "posts_topic": self.posts_topic,
                "alerts_topic": self.alerts_topic,
                "dead_letter_topic": self.dead_letter_topic,
                "partitions": self.partitions,
                "data_dir": str(self.directory / f"data-{port}"),
                **FAST_KAFKA,
            },
            "metrics": {"port": port},
            "brands": self.brands,
        }
        for section, values in self.extra.items():
            document.setdefault(section, {}).update(values)
        path = self.directory / name
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        return path


class WorkerProcess:
    def __init__(self, config: WorkerConfig, name: str = "worker") -> None:
        self.config = config
        self.name = name
        self.port = free_port()
        self.config_path = config.write(self.port, f"{name}.yaml")
        self.alerts_jsonl = config.directory / f"{name}-alerts.jsonl"
        self.log_path = config.directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115
        command = [
            sys.executable,
            "-m",
            "crisiswatch.streams.cli",
            "worker",
            "--config",
            str(self.config_path),
            "--alerts-jsonl",
            str(self.alerts_jsonl),
        ]
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        _live.add(self.process)
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get_json(self, path: str, timeout_s: float = 2.0) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout_s) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def get_text(self, path: str, timeout_s: float = 2.0) -> tuple[int, str]:
        with urllib.request.urlopen(self.url(path), timeout=timeout_s) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8")

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        self._wait(lambda: self._ready(), timeout_s, "ready")

    def _ready(self) -> bool:
        try:
            status, body = self.get_json("/ready")
        except OSError:
            return False
        return status == 200 and bool(body.get("ready"))

    def stats(self) -> dict[str, Any]:
        return dict(self.get_json("/stats")[1])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 120.0, what: str = "condition"
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def check() -> bool:
            nonlocal result
            try:
                result = self.stats()
            except OSError:
                return False
            return predicate(result)

        self._wait(check, timeout_s, what)
        return result

    def _wait(self, check: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode} while waiting for {what}:\n{self.log_tail()}"
                )
            if check():
                return
            time.sleep(0.25)
        raise AssertionError(
            f"{self.name}: timed out after {timeout_s} s waiting for {what}:\n{self.log_tail()}"
        )

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM: the worker drains, commits and exits."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        _live.discard(self.process)
        return int(self.process.returncode)

    def kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        _live.discard(self.process)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def delivered_events(self) -> list[dict[str, Any]]:
        if not self.alerts_jsonl.exists():
            return []
        return [
            json.loads(line)
            for line in self.alerts_jsonl.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]


def read_topic(bootstrap: str, topic: str, *, idle_timeout_s: float = 5.0) -> list[Any]:
    """Every message currently in `topic` (kafka-python ConsumerRecords), read from the beginning."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(idle_timeout_s * 1000),
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def produce(bootstrap: str, topic: str, values: Iterable[bytes]) -> int:
    from crisiswatch.streams.produce import send_messages

    return send_messages(bootstrap, topic, values)
