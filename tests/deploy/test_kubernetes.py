"""deploy/kubernetes: every manifest is valid against the bundled Kubernetes schemas (offline, strict), and
the pieces fit together: the StatefulSet's service, selectors, probes, ports, mounts and the mounted config
(which must load with crisiswatch's own loader, secrets included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"
LABELS = {"app.kubernetes.io/name": "crisiswatch", "app.kubernetes.io/component": "worker"}


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return docs


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_schema_valid_offline_and_strict(doc: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_statefulset_workers_share_one_group_with_persistent_volumes() -> None:
    sts = one("StatefulSet")
    spec = sts["spec"]
    pod = spec["template"]
    assert spec["selector"]["matchLabels"] == LABELS
    assert LABELS.items() <= pod["metadata"]["labels"].items()
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["replicas"] >= 1
    claims = {claim["metadata"]["name"]: claim for claim in spec["volumeClaimTemplates"]}
    assert "data" in claims and claims["data"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    headless = one("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    settings = load_mounted_settings()
    assert spec["replicas"] <= settings.kafka.partitions, "a worker beyond the partition count gets nothing"


def container() -> dict[str, Any]:
    containers = one("StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_probes_hit_the_worker_endpoints_on_the_metrics_port() -> None:
    worker = container()
    ports = {port["name"]: port["containerPort"] for port in worker["ports"]}
    assert ports == {"http": load_mounted_settings().metrics.port}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert worker["startupProbe"]["httpGet"]["path"] == "/health"
    # Table recovery may take minutes: the startup probe must allow it before liveness starts counting.
    startup = worker["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180


def test_services_expose_metrics_health_and_acknowledge_endpoint() -> None:
    for service in (d for d in documents() if d["kind"] == "Service"):
        assert service["spec"]["selector"] == LABELS
        assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [("http", "http")]
    annotations = one("Service", "crisiswatch")["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(load_mounted_settings().metrics.port)
    settings = load_mounted_settings()
    assert settings.alerting.callback.public_base_url, "the acknowledge links need the public URL"


def test_runs_unprivileged_with_pinned_image_and_resources() -> None:
    pod = one("StatefulSet")["spec"]["template"]["spec"]
    worker = container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert worker["securityContext"]["allowPrivilegeEscalation"] is False
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    image = worker["image"]
    assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
    assert {"cpu", "memory"} <= worker["resources"]["requests"].keys()
    assert "memory" in worker["resources"]["limits"]
    # The drain (commit + producer flush) must fit in the grace period.
    assert pod["terminationGracePeriodSeconds"] >= 30


def test_writable_paths_are_on_volumes() -> None:
    """readOnlyRootFilesystem: everything the worker writes must live on a mounted volume."""
    settings = load_mounted_settings()
    mounts = [m for m in container()["volumeMounts"] if not m.get("readOnly")]
    writable = [m["mountPath"] for m in mounts]
    paths = [
        settings.kafka.data_dir,
        settings.alerting.labelled_incidents_path,
        settings.alerting.delivery.dead_letter_path,
    ]
    if settings.alerting.silences_store == "file":
        paths.append(settings.alerting.silences_path)
    for path in paths:
        assert any(path.startswith(prefix.rstrip("/") + "/") for prefix in writable), path


def test_config_and_secret_mounts_match_what_the_config_refers_to() -> None:
    worker = container()
    mounts = {m["name"]: m for m in worker["volumeMounts"]}
    volumes = {v["name"]: v for v in one("StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    config_dir = mounts["config"]["mountPath"]
    args = worker["args"]
    assert args[:1] == ["worker"] and args[args.index("--config") + 1] == f"{config_dir}/config.yaml"
    assert volumes["config"]["configMap"]["name"] == one("ConfigMap")["metadata"]["name"]
    secret = one("Secret")
    assert volumes["secrets"]["secret"]["secretName"] == secret["metadata"]["name"]
    secret_dir = mounts["secrets"]["mountPath"]
    referenced = secret_file_references(config_text())
    assert referenced, "secrets come from files"
    for path in referenced:
        assert path.startswith(secret_dir + "/"), path
        assert path.rsplit("/", 1)[1] in secret["stringData"], f"{path} is not a key of the Secret"
    assert not any(
        m["mountPath"].startswith(config_dir + "/")
        for m in worker["volumeMounts"]
        if m is not mounts["config"]
    )


def test_mounted_config_binds_all_interfaces_inside_the_pod() -> None:
    settings = load_mounted_settings()
    assert settings.metrics.bind_host == "0.0.0.0"
    assert settings.metrics.enabled


def config_text() -> str:
    return str(one("ConfigMap")["data"]["config.yaml"])


def secret_file_references(text: str) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and key.endswith("_file") and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(text))
    return found


_SETTINGS: list[Any] = []


def load_mounted_settings() -> Any:
    """The ConfigMap's config.yaml through crisiswatch's loader, with the Secret's files on disk."""
    if _SETTINGS:
        return _SETTINGS[0]
    import tempfile

    from crisiswatch.streams.config import load_settings

    secret_dir = "/etc/crisiswatch/secrets"
    with tempfile.TemporaryDirectory() as tmp:
        for key, value in one("Secret")["stringData"].items():
            Path(tmp, key).write_text(value, encoding="utf-8")
        path = Path(tmp, "config.yaml")
        path.write_text(config_text().replace(secret_dir, tmp), encoding="utf-8")
        _SETTINGS.append(load_settings(str(path), environ={}))
    return _SETTINGS[0]
