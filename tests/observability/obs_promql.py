"""Helpers for the observability tests: the repository's PromQL (dashboard and rules), metric names in
an expression, what a /metrics page exposes, and a real Prometheus process.

Prometheus and promtool are Debian's `prometheus` package (`./dev test` installs it where it can). When
they are missing the tests skip, or FAIL with CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_FILE = PROMETHEUS_DIR / "crisiswatch.rules.yml"
RULES_TEST_FILE = PROMETHEUS_DIR / "crisiswatch.rules.test.yml"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "dashboards" / "crisiswatch.json"
DATASOURCE_FILE = GRAFANA_DIR / "provisioning" / "datasources" / "crisiswatch.yml"

# Grafana's variables, replaced the way Grafana would for a query (brand: "All").
TEMPLATE_VALUES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$job": "crisiswatch",
    "$brand": ".*",
}
# Series Prometheus makes itself, not the worker.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found (Debian package `prometheus`; `./dev test` installs it where it can)"
        if in_ci():
            pytest.fail(f"{message} and CI=true", pytrace=False)
        pytest.skip(message)
    return path


# -- the repository's expressions --------------------------------------------------------------------------
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))


def substitute(expr: str) -> str:
    for name in sorted(TEMPLATE_VALUES, key=len, reverse=True):
        expr = expr.replace(name, TEMPLATE_VALUES[name])
    return expr


def dashboard_expressions(board: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target, annotation and template variable, variables substituted."""
    board = board or dashboard()
    found: list[tuple[str, str]] = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            found.append(
                (f"panel {panel['id']} {panel['title']!r} {target['refId']}", substitute(target["expr"]))
            )
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            found.append((f"annotation {annotation['name']!r}", substitute(annotation["expr"])))
    for variable in board["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert match, f"variable {variable['name']}: {query}"
        found.append((f"variable {variable['name']}", substitute(match.group(1))))
    return found


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def rule_expressions() -> list[tuple[str, str]]:
    return [(f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]) for rule in rules()]


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (bare names only; {__name__=...} matchers are not used here)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        if name.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(name)
    return names


# -- shortened rules for live tests ----------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def shortened(duration: str, floor_s: int) -> str:
    """A minute becomes a second (10m -> 10s), never below `floor_s`."""
    seconds = sum(int(n) * _UNIT_S[u] for n, u in _DURATION.findall(duration))
    return f"{max(floor_s, seconds // 60)}s"


def shortened_rules() -> dict[str, Any]:
    """The real rules with every range and `for:` shortened 60x: test-only, generated, never checked in."""
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            # A range needs two 1 s scrapes inside it.
            rule["expr"] = re.sub(r"\[(\w+)\]", lambda m: f"[{shortened(m.group(1), 4)}]", rule["expr"])
            if "for" in rule:
                rule["for"] = shortened(rule["for"], 1)
    return document


# -- what a worker exposes -------------------------------------------------------------------------------------
def exposed_names(exposition: str) -> set[str]:
    """Sample names a /metrics page can produce, including families without samples yet."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "summary":
                names |= {f"{name}_sum", f"{name}_count"}
            elif kind == "counter":
                names.add(name if name.endswith("_total") else f"{name}_total")
            elif kind == "info":
                names.add(f"{name}_info")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


# -- a real Prometheus -----------------------------------------------------------------------------------------
class PrometheusProcess:
    """Prometheus on a free 127.0.0.1 port with its own config, rules and storage in `directory`."""

    def __init__(
        self, directory: Path, port: int, config: dict[str, Any], rules: dict[str, Any] | None = None
    ) -> None:
        self.directory = directory
        self.port = port
        directory.mkdir(parents=True, exist_ok=True)
        if rules is not None:
            (directory / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
            config = {**config, "rule_files": ["rules.yml"]}
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.log_path = directory / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> PrometheusProcess:
        binary = require_binary("prometheus")
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--query.lookback-delta=30s",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after {timeout_s} s:\n{self.log_tail()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET /api/v1/<path>; returns the JSON body also for 4xx answers (parse errors are 400)."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:  # noqa: S310
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            return dict(json.loads(error.read()))

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.api("query", query=expr)
        assert body["status"] == "success", f"{expr}: {body}"
        return list(body["data"]["result"])

    def firing(self) -> set[str]:
        body = self.api("alerts")
        return {
            alert["labels"]["alertname"] for alert in body["data"]["alerts"] if alert["state"] == "firing"
        }

    def wait_for(self, check: Any, timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.5)
        raise AssertionError(
            f"prometheus: timed out after {timeout_s} s waiting for {what} (last: {last!r})\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def running_prometheus(
    directory: Path, port: int, config: dict[str, Any], rules: dict[str, Any] | None = None
) -> Iterator[PrometheusProcess]:
    prometheus = PrometheusProcess(directory, port, config, rules).start()
    try:
        yield prometheus
    finally:
        prometheus.stop()
