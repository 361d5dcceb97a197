"""docker-compose.yml, deploy/Dockerfile and .dockerignore: valid and consistent, checked without Docker.

The compose file is validated against the Compose Specification's JSON Schema (vendored, hash-checked) and
against what crisiswatch itself accepts: every CRISISWATCH_* variable is a real config key, the mounted
config loads with those overrides, images are pinned, mounts exist, and every depends_on waits on a
healthcheck or a one-shot job.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SCHEMA_FILE = REPO / "deploy" / "compose" / "compose-spec.schema.json"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CONFIG_IN_CONTAINER = "/etc/crisiswatch/config.yaml"
KAFKA_IMAGE = "apache/kafka:3.9.1"

try:
    from crisiswatch.streams.config import known_env_keys
except ImportError:  # pragma: no cover - TODO(lead): remove once streams/config.py exposes known_env_keys()

    def known_env_keys() -> list[str]:
        return [
            "CRISISWATCH_KAFKA__BOOTSTRAP_SERVERS",
            "CRISISWATCH_KAFKA__APP_ID",
            "CRISISWATCH_METRICS__BIND_HOST",
            "CRISISWATCH_METRICS__PORT",
        ]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, from either compose syntax."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


# ------------------------------------------------------------------------------------- schema


def test_vendored_schema_is_the_upstream_file():
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    first, comment_line, rest = text.split("\n", 2)
    assert comment_line.lstrip().startswith('"$comment"'), "the provenance note is the second line"
    recorded = re.search(r"sha256 of that file \(without this line\): ([0-9a-f]{64})", comment_line)
    assert recorded, "the provenance note records the upstream hash"
    upstream = f"{first}\n{rest}".encode()
    assert hashlib.sha256(upstream).hexdigest() == recorded.group(1)


def test_compose_file_follows_the_compose_specification(compose):
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_file(compose):
    """The validation above has teeth: a misspelt key and a bad depends_on condition are caught."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["helthcheck"] = broken["services"]["worker"].pop("healthcheck")
    broken["services"]["producer"]["depends_on"]["worker"]["condition"] = "service_ready"
    messages = [error.message for error in validator.iter_errors(broken)]
    assert messages


# ------------------------------------------------------------------------------------- images


def test_images_are_pinned(services):
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: every service names its image (built ones get an explicit tag)"
        repository, _, tag = image.rpartition(":")
        assert repository and tag and "/" not in tag, f"{name}: {image} has no explicit tag"
        # Prometheus tags its releases with a leading v (prom/prometheus:v2.53.3).
        assert tag != "latest" and re.match(r"^v?\d+\.\d+\.\d+", tag), (
            f"{name}: {image} is not pinned to a release"
        )
        if "build" in service:
            assert image == f"crisiswatch:{version}", (
                f"{name}: built image is tagged with the project version"
            )
    assert services["kafka"]["image"] == KAFKA_IMAGE


def test_dockerfile_base_images_are_pinned():
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert bases
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base


def test_dockerfile_installs_the_project_and_runs_the_worker():
    text = DOCKERFILE.read_text(encoding="utf-8")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    copied = set(re.findall(r"^COPY\s+(?!--from)(.+)$", text, flags=re.MULTILINE))
    sources = {part.rstrip("/") for line in copied for part in line.split()[:-1]}
    for directory in set(pyproject["tool"]["setuptools"]["package-dir"].values()):
        assert directory in sources, f"the image needs {directory}/"
    assert {"pyproject.toml", "README.md"} <= sources
    assert 'ENTRYPOINT ["crisiswatch"]' in text
    assert f'CMD ["worker", "--config", "{CONFIG_IN_CONTAINER}"]' in text
    assert re.search(r"^USER\s+(?!root)\S+", text, flags=re.MULTILINE), "the worker does not run as root"


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    excluded = False
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch(prefix, pattern) or fnmatch(prefix, pattern.replace("**/", "")) for prefix in prefixes
        ):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_the_sources_and_drops_the_rest():
    for needed in (
        "pyproject.toml",
        "README.md",
        "streams/scenarios.py",
        "detectors/events.py",
        "alerts/__init__.py",
    ):
        assert not dockerignore_excludes(needed), needed
    for dropped in (
        ".git/HEAD",
        ".venv/bin/python",
        "tests/conftest.py",
        "streams/__pycache__/x.pyc",
        "bench/x.py",
    ):
        assert dockerignore_excludes(dropped), dropped


# ------------------------------------------------------------------------------------- configuration


def test_every_crisiswatch_variable_is_a_real_config_key(services):
    known = set(known_env_keys())
    for name, service in services.items():
        for key in environment(service):
            if key.startswith("CRISISWATCH_"):
                assert key in known, f"{name}: {key} is not a config key (known: {sorted(known)})"


def test_mounted_config_loads_with_the_worker_overrides(services):
    from crisiswatch.streams.config import load_settings

    path = REPO / "examples" / "config.yaml"
    if not path.exists():
        pytest.fail(
            "examples/config.yaml is mounted by docker-compose.yml but does not exist (the lead writes it)"
        )
    env = environment(services["worker"])
    settings = load_settings(path, environ=env)
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.metrics.port == int(env["CRISISWATCH_METRICS__PORT"])
    assert settings.metrics.bind_host == "0.0.0.0"
    # The producer's scenario names its brands by the aliases the generator writes: the config must know them.
    from crisiswatch.streams.scenarios import preset

    configured = settings.brands_by_name
    for brand in preset(producer_preset(services)).brands:
        assert brand.name in configured, f"examples/config.yaml does not monitor {brand.name}"
        missing = set(brand.aliases) - set(configured[brand.name].aliases)
        assert not missing, f"examples/config.yaml: {brand.name} lacks aliases {sorted(missing)}"


def test_worker_runs_with_the_mounted_config(services):
    worker = services["worker"]
    assert command(worker) == ["worker", "--config", CONFIG_IN_CONTAINER]
    targets = [str(volume).split(":")[1] for volume in worker["volumes"]]
    assert CONFIG_IN_CONTAINER in targets


def test_bind_mounts_exist_and_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith((".", "/")):
                host = (REPO / source).resolve()
                assert host.is_relative_to(REPO), f"{name}: {source} is outside the repository"
                assert host.exists(), f"{name}: mounts {source}, which does not exist in the repository"
            else:
                assert source in declared, f"{name}: named volume {source} is not declared"


def test_every_service_uses_the_same_bootstrap_and_partitions(services):
    kafka_env = environment(services["kafka"])
    advertised = dict(
        reversed(listener.split("://")) for listener in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    internal = next(address for address, name in advertised.items() if name == "PLAINTEXT")
    worker_env = environment(services["worker"])
    assert worker_env["CRISISWATCH_KAFKA__BOOTSTRAP_SERVERS"] == internal
    producer = command(services["producer"])
    assert producer[producer.index("--bootstrap") + 1] == internal
    init_script = "\n".join(command(services["kafka-init"]))
    assert f"--partitions {worker_env['CRISISWATCH_KAFKA__PARTITIONS']}" in init_script
    assert f"--bootstrap-server {internal}" in init_script
    assert kafka_env["KAFKA_NUM_PARTITIONS"] == worker_env["CRISISWATCH_KAFKA__PARTITIONS"]


def producer_preset(services) -> str:
    producer = command(services["producer"])
    return producer[producer.index("--preset") + 1]


def test_producer_feeds_a_scenario_that_exists(services):
    from crisiswatch.streams.scenarios import PRESETS

    assert command(services["producer"])[0] == "produce"
    assert producer_preset(services) in PRESETS


# ------------------------------------------------------------------------------------- health and order


def test_long_running_services_have_healthchecks(services):
    for name in ("kafka", "worker", "prometheus", "grafana"):
        check = services[name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_worker_healthcheck_probes_its_own_port(services):
    worker = services["worker"]
    port = environment(worker)["CRISISWATCH_METRICS__PORT"]
    probe = " ".join(worker["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/ready" in probe
    assert any(str(mapping).endswith(f":{port}:{port}") for mapping in worker["ports"])


def test_depends_on_waits_for_health_or_completion(services):
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on uses the long form with conditions"
        for dependency, rule in depends_on.items():
            assert dependency in services, f"{name}: depends on unknown {dependency}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name}: {dependency} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[dependency].get("restart", "no") == "no", f"{dependency} is a one-shot job"
            else:
                pytest.fail(f"{name}: {dependency} is only waited on to start ({condition})")
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["producer"]["depends_on"]["worker"]["condition"] == "service_healthy"


def test_published_ports_stay_on_loopback(services):
    for name, service in services.items():
        for mapping in service.get("ports") or []:
            assert str(mapping).startswith("127.0.0.1:"), f"{name}: {mapping} is published beyond loopback"


# ------------------------------------------------------------------------------------- Prometheus and Grafana


def _mount_source(service: dict[str, Any], target: str) -> Path:
    for volume in service.get("volumes") or []:
        source, mounted = str(volume).split(":")[:2]
        if mounted == target:
            return REPO / source
    raise AssertionError(f"nothing is mounted at {target}")


def test_prometheus_scrapes_the_worker_with_the_repository_config(services):
    prometheus = services["prometheus"]
    directory = _mount_source(prometheus, "/etc/prometheus")
    assert directory == REPO / "deploy" / "prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in command(prometheus)
    config = yaml.safe_load((directory / "prometheus.yml").read_text(encoding="utf-8"))
    port = environment(services["worker"])["CRISISWATCH_METRICS__PORT"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # The rules select up{job="crisiswatch"}.
    targets = [t for sc in jobs["crisiswatch"]["static_configs"] for t in sc["targets"]]
    assert targets == [f"worker:{port}"]
    for rule_file in config["rule_files"]:
        assert (directory / rule_file).exists(), rule_file


def test_grafana_provisions_the_dashboard_on_the_compose_prometheus(services):
    grafana = services["grafana"]
    provisioning = _mount_source(grafana, "/etc/grafana/provisioning")
    dashboards = _mount_source(grafana, "/var/lib/grafana/dashboards")
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    datasources = yaml.safe_load(
        (provisioning / "datasources" / "crisiswatch.yml").read_text(encoding="utf-8")
    )
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "crisiswatch.yml").read_text(encoding="utf-8"))
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    files = sorted(dashboards.glob("*.json"))
    assert files, "no dashboard to provision"
    for file in files:
        dashboard = json.loads(file.read_text(encoding="utf-8"))
        uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
        assert uids == {source["uid"]}, f"{file.name}: panels use {uids}"
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).name).exists()
