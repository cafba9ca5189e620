"""deploy/k8s, checked offline: strict Kubernetes schemas, then against the settings, the CLI and each other."""

from __future__ import annotations

import copy
import functools
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from py_app.config import Settings
from py_app.entrypoints.drain import KILL_MARGIN
from tests.deploy.support import (
    DEPLOY,
    PLACEHOLDER,
    ROOT,
    SECRET_WORDS,
    cli_has,
    image_environment,
    settings_for,
    unknown_arcana,
)

MONOLITHIC = DEPLOY / "k8s" / "monolithic"
OLDEST = "1.30"  # preStop.sleep (PodLifecycleSleepAction) is on by default from 1.30
ROLES = {"arcana": "edge", "arcana-grpc": "grpc", "arcana-worker": "worker"}  # Deployment -> role
SERVING = {"arcana", "arcana-grpc"}
Doc = dict[str, Any]


def manifest_files() -> list[Path]:
    return sorted((DEPLOY / "k8s").rglob("*.yaml"))


@functools.cache
def _parsed(path: Path) -> tuple[Doc, ...]:
    """Each manifest parsed once per run: re-parsing every file for every lookup was most of this module's time."""
    return tuple(document for document in yaml.safe_load_all(path.read_text()) if document)


def documents(path: Path) -> list[Doc]:
    """The manifest's documents, a fresh copy for each caller (a test may change what it gets)."""
    return copy.deepcopy(list(_parsed(path)))


def everything() -> list[Doc]:
    return [document for path in sorted(MONOLITHIC.rglob("*.yaml")) for document in documents(path)]


def of_kind(kind: str) -> dict[str, Doc]:
    return {document["metadata"]["name"]: document for document in everything() if document["kind"] == kind}


def workloads() -> dict[str, Doc]:
    """Every pod template by its owner's name: Deployments and the Job."""
    owners = {**of_kind("Deployment"), **of_kind("Job")}
    return {name: owner["spec"]["template"] for name, owner in owners.items()}


def container(template: Doc) -> Doc:
    [only] = template["spec"]["containers"]
    return only  # type: ignore[no-any-return]


def resolved_environment(template: Doc) -> dict[str, str]:
    """The container's environment: the image's, then envFrom (ConfigMap, the example Secret), then env."""
    configs, secrets = of_kind("ConfigMap"), of_kind("Secret")
    env = {key: value for key, value in image_environment().items() if key.startswith("ARCANA_")}
    for source in container(template).get("envFrom", []):
        if "configMapRef" in source:
            env.update(configs[source["configMapRef"]["name"]]["data"])
        else:
            env.update(secrets[source["secretRef"]["name"]]["stringData"])
    env.update({item["name"]: item["value"] for item in container(template).get("env", [])})
    return env


def assert_unprivileged(name: str, template: Doc, data_dir: str) -> None:
    """A pod of ours: non-root (uid 10001), no service-account token, a read-only root filesystem, no privilege
    escalation, no capabilities, bounded resources, and writable only at TMPDIR and the data directory."""
    pod, spec = template["spec"], container(template)
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert pod["securityContext"]["runAsUser"] == 10001, name
    assert pod["automountServiceAccountToken"] is False, name
    context = spec["securityContext"]
    assert context["readOnlyRootFilesystem"] is True, name
    assert context["allowPrivilegeEscalation"] is False, name
    assert context["capabilities"]["drop"] == ["ALL"], name
    assert set(spec["resources"]) == {"requests", "limits"}, name
    mounts = {mount["mountPath"] for mount in spec["volumeMounts"]}
    assert mounts == {image_environment()["TMPDIR"], data_dir}, name


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def selected(selector: dict[str, str]) -> dict[str, Doc]:
    found = {name: pod for name, pod in workloads().items() if selects(selector, pod["metadata"]["labels"])}
    assert found, f"{selector} selects no pod"
    return found


def port_names(template: Doc) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container(template).get("ports", [])}


def settings_of(name: str) -> Settings:
    return settings_for(resolved_environment(workloads()[name]))


@pytest.mark.req("SRS-204")
@pytest.mark.parametrize("version", [OLDEST, latest_version()])
@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: str(path.relative_to(DEPLOY)))
def test_every_manifest_is_valid_for_kubernetes_in_strict_mode(path: Path, version: str) -> None:
    for document in documents(path):
        # Raises on an unknown field (strict), a wrong type, or a kind/apiVersion it has no schema for.
        kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.req("SRS-204")
def test_the_strict_validation_refuses_a_misspelt_field() -> None:
    deployment = of_kind("Deployment")["arcana"]
    container(deployment["spec"]["template"])["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(deployment, OLDEST, strict=True)


@pytest.mark.req("SRS-205")
def test_each_container_runs_a_cli_command_with_settings_that_validate_for_its_role() -> None:
    assert set(workloads()) == {*ROLES, "arcana-migrate"}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, template in workloads().items():
        spec = container(template)
        assert "command" not in spec, f"{name}: the image's entrypoint (python -m py_app) runs the CLI"
        [command] = spec["args"]
        assert cli_has(command), f"{name}: `python -m py_app {command}` does not exist"
        assert spec["image"] == f"arcana:{version}", name
        env = resolved_environment(template)
        assert unknown_arcana(env) == [], name
        settings = settings_for(env)  # raises, naming the variable, as the pod would at start
        assert settings.env == "production", name
        assert settings.effective_database_url.startswith("mysql+asyncmy://"), f"{name}: replicas share MySQL"
        assert settings.redis_url, f"{name}: replicas share Redis"
        if name in ROLES:
            assert command == "serve"
            assert settings.role == ROLES[name], name
            assert settings.jobs is (name == "arcana-worker"), f"{name}: only the worker runs the jobs"
        else:
            assert command == "migrate"
    for document in [*of_kind("ConfigMap").values(), *of_kind("Secret").values()]:
        keys = document.get("data") or document.get("stringData")
        assert unknown_arcana(keys) == [], document["metadata"]["name"]


@pytest.mark.req("SRS-205")
def test_container_and_probe_ports_are_the_ports_the_settings_listen_on() -> None:
    for name in SERVING:
        template = workloads()[name]
        settings = settings_of(name)
        ports = port_names(template)
        expected = {"grpc": settings.grpc_port} | ({"http": settings.http_port} if settings.role == "edge" else {})
        assert ports == expected, name
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container(template)[kind]
            if "grpc" in probe:
                assert probe["grpc"]["port"] == settings.grpc_port, f"{name} {kind}"
            else:
                handler = probe.get("httpGet") or probe["tcpSocket"]
                assert handler["port"] in ports, f"{name} {kind} names no declared port"
    assert "ports" not in container(workloads()["arcana-worker"])


@pytest.mark.req("SRS-205")
def test_services_autoscalers_budgets_and_policies_select_pods_that_exist_on_ports_they_declare() -> None:
    for name, service in of_kind("Service").items():
        if service["spec"].get("type") == "ExternalName":
            continue
        for pod_name, pod in selected(service["spec"]["selector"]).items():
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in port_names(pod), f"service {name} -> {pod_name}: {port['targetPort']}"
    deployments = of_kind("Deployment")
    for name, autoscaler in of_kind("HorizontalPodAutoscaler").items():
        target = autoscaler["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment", name
        assert target["name"] in deployments, name
        assert autoscaler["spec"]["minReplicas"] >= 2, f"{name}: one pod may drain while another serves"
    for name, budget in of_kind("PodDisruptionBudget").items():
        assert set(selected(budget["spec"]["selector"]["matchLabels"])) <= SERVING, name
    for name, policy in of_kind("NetworkPolicy").items():
        # A named port resolves per pod: each must be some selected pod's, and every pod's ports admitted.
        pods = selected(policy["spec"]["podSelector"]["matchLabels"])
        admitted = {port["port"] for rule in policy["spec"].get("ingress", []) for port in rule["ports"]}
        declared = {port for pod in pods.values() for port in port_names(pod)}
        assert admitted == declared, f"policy {name}: admits {admitted}, the pods serve {declared}"
    for template in workloads().values():
        for source in container(template).get("envFrom", []):
            kind, reference = ("ConfigMap", "configMapRef") if "configMapRef" in source else ("Secret", "secretRef")
            assert source[reference]["name"] in of_kind(kind), f"{kind} {source[reference]['name']} is missing"


@pytest.mark.req("SRS-206")
def test_every_pod_is_unprivileged_read_only_bounded_and_writes_only_tmpdir_and_the_data_directory() -> None:
    for name, template in workloads().items():
        assert_unprivileged(name, template, resolved_environment(template)["ARCANA_DATA_DIR"])
        assert all("emptyDir" in volume for volume in template["spec"]["volumes"]), name


@pytest.mark.req("SRS-206")
def test_serving_pods_are_probed_and_drain_within_their_grace_period() -> None:
    for name in SERVING:
        template = workloads()[name]
        spec = container(template)
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(spec), name
        readiness = spec["readinessProbe"]
        if settings_of(name).role == "edge":
            assert readiness["httpGet"]["path"] == "/health/ready"
            assert spec["livenessProbe"]["httpGet"]["path"] == "/health/live"
            assert spec["startupProbe"]["httpGet"]["path"] == "/health/live"
        else:  # no HTTP listener: native gRPC health, which follows the same readiness
            assert "grpc" in readiness
        sleep = spec["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = template["spec"]["terminationGracePeriodSeconds"]
        assert grace > sleep + settings_of(name).shutdown_grace + KILL_MARGIN, name
    worker = workloads()["arcana-worker"]
    assert worker["spec"]["terminationGracePeriodSeconds"] > settings_of("arcana-worker").shutdown_grace


@pytest.mark.req("SRS-206")
def test_grpc_has_a_headless_service_and_databases_are_external_services() -> None:
    services = of_kind("Service")
    assert services["arcana-grpc"]["spec"]["clusterIP"] == "None"
    assert set(selected(services["arcana-grpc"]["spec"]["selector"])) == SERVING
    external = {name for name, service in services.items() if service["spec"].get("type") == "ExternalName"}
    assert external == {"mysql", "redis"}
    settings = settings_of("arcana")
    assert settings.effective_database_url.split("@", 1)[1].startswith("mysql:3306/")
    assert (settings.redis_url or "").startswith("redis://redis:6379/")


@pytest.mark.req("SRS-206")
def test_network_policies_admit_only_the_ingress_and_clients_and_allow_only_dns_mysql_and_redis_out() -> None:
    policies = of_kind("NetworkPolicy")
    covered = set()
    for name, policy in policies.items():
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"], name
        pods = set(selected(spec["podSelector"]["matchLabels"]))
        covered |= pods
        if pods - SERVING:
            assert "ingress" not in spec, f"{name}: the worker and the migration accept nothing"
        else:
            [rule] = spec["ingress"]
            sources = [(peer.get("namespaceSelector"), peer.get("podSelector")) for peer in rule["from"]]
            assert sources == [
                ({"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}, None),
                ({}, {"matchLabels": {"arcana.dev/client": "true"}}),
            ]
        out = {port["port"] for rule in spec["egress"] for port in rule["ports"]}
        allowed = {53, 3306, 6379} | ({587, 465} if pods == {"arcana-worker"} else set())
        assert out <= allowed, name
        assert {53, 3306} <= out, name
    assert covered == set(workloads()), "every pod is under a policy"


@pytest.mark.req("SRS-206")
def test_no_secret_value_is_committed_outside_the_examples() -> None:
    for path in manifest_files():
        for document in documents(path):
            if document["kind"] == "Secret":
                assert path.parent.name == "examples", f"{path}: a Secret outside examples/"
                assert all(PLACEHOLDER in value for value in document["stringData"].values())
            if document["kind"] == "ConfigMap":
                leaked = [key for key in document["data"] if SECRET_WORDS.search(key) or key == "ARCANA_DATABASE_URL"]
                assert leaked == [], f"{path}: secrets belong in the Secret"


@pytest.mark.req("SRS-203", "SRS-205")
def test_every_arcana_name_anywhere_in_deploy_is_a_setting() -> None:
    """Comments and docs included: a name that no setting reads is a typo or a promise, in any file."""
    for path in sorted(item for item in DEPLOY.rglob("*") if item.is_file()):
        names = set(re.findall(r"ARCANA_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
        assert unknown_arcana(names) == [], path.relative_to(ROOT)
