"""Deployment files: Kubernetes manifests validated offline against the schemas kubernetes-validate ships, and
the Dockerfile's promises (slim base, non-root user, gRPC health check). No container engine runs here, so the
image itself is not built by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bridge.ops.settings import OpsSettings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def by_kind(kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in documents() if doc["kind"] == kind]
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_are_valid_kubernetes_resources(version: str) -> None:
    kinds = set()
    for document in documents():
        kubernetes_validate.validate(document, version, strict=True)
        kinds.add(document["kind"])
    expected = {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "Secret",
    }
    assert kinds == expected


def test_an_invalid_manifest_is_caught_offline() -> None:
    broken = {**by_kind("Service"), "spec": {"ports": [{"port": "not-a-number"}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_probes_are_native_grpc_on_the_listening_port() -> None:
    container = by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]
    listen_port = int(by_kind("ConfigMap")["data"]["BRIDGE_LISTEN"].rpartition(":")[2])
    grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    assert grpc_port == listen_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == listen_port
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    pod = by_kind("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_settings_come_from_the_configmap_and_secret_with_placeholders_only() -> None:
    deployment = by_kind("Deployment")["spec"]["template"]["spec"]
    assert {"configMapRef": {"name": "xpander-bridge"}} in deployment["containers"][0]["envFrom"]
    secret = by_kind("Secret")["stringData"]
    assert secret["XPANDER_API_KEY"].startswith("REPLACE-WITH-")
    assert all("REPLACE-WITH-" in line for line in secret["tokens"].splitlines() if not line.startswith("#"))


def test_configmap_names_only_known_settings() -> None:
    config = pytest.importorskip("bridge.config")
    known = {str(field.validation_alias) for field in OpsSettings.model_fields.values()}
    known |= {str(field.validation_alias) for field in config.Settings.model_fields.values()}
    unknown = set(by_kind("ConfigMap")["data"]) - known
    assert not unknown, f"ConfigMap sets unknown settings: {unknown}"


def test_dockerfile_runs_unprivileged_with_a_grpc_health_check() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert [line.split()[1] for line in lines if line.startswith("FROM ")] == ["python:3.11-slim"] * 2
    (user,) = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user.split(":")[0] not in ("0", "root")
    text = "\n".join(lines)
    assert "HEALTHCHECK" in text
    assert '"python", "-m", "bridge.ops.healthcheck"' in text
    assert 'ENTRYPOINT ["xpander-bridge", "serve"]' in text
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignored[1] == "**"  # everything is excluded but what the image needs
