"""deploy/compose/layered.yaml and deploy/k8s/layered, checked offline against the settings, the CLI and each other.

The strict Kubernetes schema check (tests/deploy/test_k8s.py) already covers every file under deploy/k8s; this
module checks what is particular to the layered mode: each tier's resolved environment passes validation for its
role and names the tier it calls where that tier listens, and the network allows exactly
ingress -> edge -> service -> repository (no edge -> repository), in Kubernetes and in compose alike.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from py_app.config import MODE_ROLES, TARGETS, Settings
from py_app.entrypoints.drain import KILL_MARGIN
from tests.deploy.support import (
    DEPLOY,
    ROOT,
    cli_has,
    dockerfile_stages,
    image_environment,
    settings_for,
    unknown_arcana,
)
from tests.deploy.test_compose import example_env, interpolate
from tests.deploy.test_k8s import assert_unprivileged, container, documents, selects
from tests.e2e.support import STOP_SECONDS, migrate, start

LAYERED = DEPLOY / "k8s" / "layered"
COMPOSE = DEPLOY / "compose" / "layered.yaml"
TIERS = MODE_ROLES["layered"]  # edge, service, repository
CALLS = [(role, setting) for (mode, role), settings in TARGETS.items() if mode == "layered" for setting in settings]
DEPLOYMENTS = {f"arcana-{tier}": tier for tier in TIERS}
MIGRATE = "arcana-layered-migrate"
Doc = dict[str, Any]
# Who may open a connection to whom among the layered pods: the chain, nothing else.
CHAIN = {("arcana-edge", "arcana-service"), ("arcana-service", "arcana-repository")}


@functools.cache
def everything() -> list[Doc]:
    """Every layered manifest, parsed once (shared: a test that changes one works on a deep copy)."""
    return [document for path in sorted(LAYERED.rglob("*.yaml")) for document in documents(path)]


def of_kind(kind: str, docs: list[Doc] | None = None) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs or everything() if doc["kind"] == kind}


def workloads() -> dict[str, Doc]:
    owners = {**of_kind("Deployment"), **of_kind("Job")}
    return {name: owner["spec"]["template"] for name, owner in owners.items()}


def resolved_environment(template: Doc) -> dict[str, str]:
    """The image's environment, then envFrom (the ConfigMap, the example Secret), then env (values, secretKeyRefs)."""
    configs, secrets = of_kind("ConfigMap"), of_kind("Secret")
    env = {key: value for key, value in image_environment().items() if key.startswith("ARCANA_")}
    spec = container(template)
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configs[source["configMapRef"]["name"]]["data"])
        else:
            env.update(secrets[source["secretRef"]["name"]]["stringData"])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            reference = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[reference["name"]]["stringData"][reference["key"]]
    return env


def settings_of(name: str) -> Settings:
    return settings_for(resolved_environment(workloads()[name]))


def port_names(template: Doc) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container(template).get("ports", [])}


def target_address(target: str) -> tuple[str, int]:
    """``dns:///host:port`` or ``host:port`` -> (host, port)."""
    host, _, port = target.removeprefix("dns:///").rpartition(":")
    return host, int(port)


@pytest.mark.req("SRS-211")
def test_each_tier_runs_its_role_with_settings_that_validate_and_only_the_repository_holds_the_database() -> None:
    assert set(workloads()) == {*DEPLOYMENTS, MIGRATE}
    for name, template in workloads().items():
        spec = container(template)
        [command] = spec["args"]
        assert cli_has(command), f"{name}: `python -m py_app {command}` does not exist"
        env = resolved_environment(template)
        assert unknown_arcana(env) == [], name
        settings = settings_for(env)  # raises, naming the variable, as the pod would at start
        assert (settings.env, settings.mode) == ("production", "layered"), name
        holds_database = settings.database_url != ""
        assert holds_database is (settings.role == "repository"), f"{name}: only the repository reaches MySQL"
        if holds_database:
            assert settings.effective_database_url.startswith("mysql+asyncmy://"), name
        assert bool(settings.redis_url) is (settings.role == "service"), f"{name}: only the service tier uses Redis"
        if name == MIGRATE:
            assert command == "migrate"
            continue
        assert command == "serve"
        assert settings.role == DEPLOYMENTS[name], name
        assert settings.jobs is (settings.role == "service"), f"{name}: only the service tier runs the jobs"
    for document in [*of_kind("ConfigMap").values(), *of_kind("Secret").values()]:
        assert unknown_arcana(document.get("data") or document.get("stringData")) == [], document["metadata"]["name"]


@pytest.mark.req("SRS-211")
def test_each_tier_calls_the_next_through_its_headless_service_on_the_port_it_listens_on() -> None:
    services = of_kind("Service")
    for caller, setting in CALLS:
        host, port = target_address(getattr(settings_of(f"arcana-{caller}"), setting))
        callee = {"service_target": "arcana-service", "repository_target": "arcana-repository"}[setting]
        assert host == callee, f"{caller} calls {host}"
        service = services[host]
        assert service["spec"]["clusterIP"] == "None", f"{host}: headless, every ready pod's address"
        [service_port] = service["spec"]["ports"]
        assert service_port["port"] == port == settings_of(callee).grpc_port
        assert port_names(workloads()[callee])[service_port["targetPort"]] == settings_of(callee).grpc_port
        pods = {
            name for name, pod in workloads().items() if selects(service["spec"]["selector"], pod["metadata"]["labels"])
        }
        assert pods == {callee}, host
    edge = services["arcana-edge"]
    assert edge["spec"]["type"] == "ClusterIP"
    assert {port["targetPort"] for port in edge["spec"]["ports"]} == set(port_names(workloads()["arcana-edge"]))
    external = {name for name, service in services.items() if service["spec"].get("type") == "ExternalName"}
    assert external == {"mysql", "redis"}
    assert settings_of("arcana-repository").effective_database_url.split("@", 1)[1].startswith("mysql:3306/")
    assert (settings_of("arcana-service").redis_url or "").startswith("redis://redis:6379/")


@pytest.mark.req("SRS-211")
def test_tiers_are_probed_on_their_own_protocol_and_drain_within_their_grace_period() -> None:
    for name, tier in DEPLOYMENTS.items():
        template = workloads()[name]
        spec, settings = container(template), settings_of(name)
        expected = {"grpc": settings.grpc_port} | ({"http": settings.http_port} if tier == "edge" else {})
        assert port_names(template) == expected, name
        if tier == "edge":
            assert spec["readinessProbe"]["httpGet"]["path"] == "/health/ready"
            assert spec["livenessProbe"]["httpGet"]["path"] == "/health/live"
            assert spec["startupProbe"]["httpGet"]["path"] == "/health/live"
        else:  # no HTTP listener: ready on the native gRPC health the tier serves, which follows its readiness
            assert spec["readinessProbe"]["grpc"] == {"port": settings.grpc_port}, name
            for kind in ("startupProbe", "livenessProbe"):
                assert spec[kind]["tcpSocket"]["port"] == "grpc", f"{name} {kind}"
        sleep = spec["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert template["spec"]["terminationGracePeriodSeconds"] > sleep + settings.shutdown_grace + KILL_MARGIN
        assert spec["image"] == container(workloads()[MIGRATE])["image"] == image_tag()


def image_tag() -> str:
    """The image every layered container runs: this version's, the one the monolithic files run."""
    tag = str(yaml.safe_load(COMPOSE.read_text())["x-arcana"]["image"])
    assert tag == f"arcana:{tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['version']}"
    return tag


@pytest.mark.req("SRS-211")
def test_every_pod_is_unprivileged_read_only_and_every_tier_is_autoscaled_or_budgeted() -> None:
    for name, template in workloads().items():
        assert_unprivileged(name, template, resolved_environment(template)["ARCANA_DATA_DIR"])
    autoscaled = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind("HorizontalPodAutoscaler").values()}
    assert autoscaled == {"arcana-edge", "arcana-service"}
    assert all(hpa["spec"]["minReplicas"] >= 2 for hpa in of_kind("HorizontalPodAutoscaler").values())
    budgeted = set()
    for budget in of_kind("PodDisruptionBudget").values():
        labels = budget["spec"]["selector"]["matchLabels"]
        budgeted |= {name for name, pod in workloads().items() if selects(labels, pod["metadata"]["labels"])}
    assert budgeted == set(DEPLOYMENTS)
    assert all(deployment["spec"]["replicas"] >= 2 for deployment in of_kind("Deployment").values())


def _ports_match(rule_ports: list[Doc] | None, ports: dict[str, int]) -> bool:
    """Whether a rule's ports (None: all) admit one of a pod's declared ports (by name or number)."""
    if rule_ports is None:
        return bool(ports)
    return any(item["port"] in ports or item["port"] in ports.values() for item in rule_ports)


def _peers_select(peers: list[Doc] | None, labels: dict[str, str]) -> bool:
    """Whether a rule's peers (None: everyone) include a pod of ours with ``labels`` (same namespace)."""
    if peers is None:
        return True
    for peer in peers:
        namespaces = peer.get("namespaceSelector")
        if "podSelector" in peer and namespaces in (None, {}) and selects(peer["podSelector"]["matchLabels"], labels):
            return True
    return False


def connections(docs: list[Doc]) -> set[tuple[str, str]]:
    """Every (source, destination) pair of our pods that the NetworkPolicies let connect: the source's egress
    allows it and the destination's ingress admits it, on a port the destination declares."""
    owners = {**of_kind("Deployment", docs), **of_kind("Job", docs)}
    pods = {name: owner["spec"]["template"] for name, owner in owners.items()}
    policies = list(of_kind("NetworkPolicy", docs).values())

    def rules(pod: Doc, direction: str) -> list[Doc]:
        mine = [
            p["spec"] for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], pod["metadata"]["labels"])
        ]
        assert mine, "a pod under no policy"
        assert all(spec["policyTypes"] == ["Ingress", "Egress"] for spec in mine)
        return [rule for spec in mine for rule in spec.get(direction, [])]

    allowed = set()
    for source, out in pods.items():
        for destination, into in pods.items():
            ports = port_names(into)
            egress = any(
                _peers_select(rule.get("to"), into["metadata"]["labels"]) and _ports_match(rule.get("ports"), ports)
                for rule in rules(out, "egress")
            )
            ingress = any(
                _peers_select(rule.get("from"), out["metadata"]["labels"]) and _ports_match(rule.get("ports"), ports)
                for rule in rules(into, "ingress")
            )
            if egress and ingress:
                allowed.add((source, destination))
    return allowed


@pytest.mark.req("SRS-212")
def test_the_network_policies_allow_exactly_edge_to_service_to_repository() -> None:
    assert connections(everything()) == CHAIN


@pytest.mark.req("SRS-212")
def test_the_policy_check_sees_an_edge_that_could_reach_the_repository() -> None:
    docs = copy.deepcopy(everything())
    policies = of_kind("NetworkPolicy", docs)
    peer = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "arcana-layered"}}}  # every layered pod
    policies["arcana-edge"]["spec"]["egress"].append({"to": [peer], "ports": [{"port": "grpc", "protocol": "TCP"}]})
    assert connections(docs) == CHAIN  # the repository's ingress still refuses it
    policies["arcana-repository"]["spec"]["ingress"][0]["from"].append(peer)
    assert ("arcana-edge", "arcana-repository") in connections(docs)


@pytest.mark.req("SRS-212")
def test_from_outside_only_the_edge_is_admitted_and_each_tier_leaves_only_for_what_it_uses() -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind("NetworkPolicy").values()}
    for name, spec in policies.items():
        peers = [peer for rule in spec.get("ingress", []) for peer in rule["from"]]
        outside = [peer for peer in peers if "namespaceSelector" in peer]
        assert bool(outside) is (name == "arcana-edge"), f"{name}: only the edge is reachable from outside its tier"
    # Egress to anything but our own pods (no `to`, or another namespace): the ports each tier needs beyond DNS.
    beyond = {
        name: {
            item["port"]
            for rule in spec["egress"]
            if not rule.get("to") or any("namespaceSelector" in peer for peer in rule["to"])
            for item in rule["ports"]
        }
        for name, spec in policies.items()
    }
    assert beyond == {
        "arcana-edge": {53},
        "arcana-service": {53, 6379, 587, 465},
        "arcana-repository": {53, 3306},
        "arcana-migrate": {53, 3306},
    }


# --- compose -------------------------------------------------------------------------------------------------

ARCANA_SERVICES = {"migrate": "repository", "repository": "repository", "service": "service", "edge": "edge"}


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return interpolate(document, example_env())  # type: ignore[no-any-return]


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    image = {key: value for key, value in image_environment().items() if key.startswith("ARCANA_")}
    return {**image, **{key: str(value) for key, value in service.get("environment", {}).items()}}


@pytest.mark.req("SRS-210")
def test_compose_starts_each_tier_after_the_one_it_calls_with_settings_valid_for_its_role() -> None:
    services = compose()["services"]
    assert set(services) == {"mariadb", "redis", *ARCANA_SERVICES}
    assert services["migrate"]["depends_on"] == {"mariadb": {"condition": "service_healthy"}}
    assert services["repository"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["service"]["depends_on"]["repository"] == {"condition": "service_healthy"}
    assert services["edge"]["depends_on"] == {"service": {"condition": "service_healthy"}}
    for name, role in ARCANA_SERVICES.items():
        service = services[name]
        [command] = service["command"]
        assert cli_has(command), name
        env = compose_environment(service)
        assert unknown_arcana(env) == [], name
        settings = settings_for(env)
        assert (settings.env, settings.mode, settings.role) == ("production", "layered", role), name
        assert (settings.database_url != "") is (role == "repository"), name
        assert settings.jobs is (name == "service"), name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["image"] == image_tag(), name
        if name != "migrate":
            assert command == "serve", name
            assert int(service["stop_grace_period"].rstrip("s")) > settings.shutdown_grace + KILL_MARGIN, name
    for caller, setting in CALLS:
        host, port = target_address(getattr(settings_for(compose_environment(services[caller])), setting))
        assert host in services, caller
        assert port == settings_for(compose_environment(services[host])).grpc_port, caller
        assert services[host]["healthcheck"]["test"][:3] == ["CMD", "python", "-c"], f"{host}: gRPC health"


@pytest.mark.req("SRS-210")
def test_compose_publishes_only_the_edge_and_its_networks_chain_the_tiers() -> None:
    services = compose()["services"]
    edge = services["edge"]
    assert edge["deploy"]["replicas"] >= 2
    settings = settings_for(compose_environment(edge))
    assert [int(mapping.rsplit(":", 1)[1]) for mapping in edge["ports"]] == [settings.http_port, settings.grpc_port]
    for mapping in edge["ports"]:  # one host port per replica, or the second replica cannot start
        first, _, last = mapping.rsplit(":", 1)[0].partition("-")
        assert last, f"{mapping}: one host port for every replica"
        assert int(last) - int(first) + 1 >= edge["deploy"]["replicas"], mapping
    assert [name for name, service in services.items() if "ports" in service] == ["edge"]
    networks = {name: set(service.get("networks", ["default"])) for name, service in services.items()}
    reach = {(a, b) for a in networks for b in networks if a < b and networks[a] & networks[b]}
    assert reach == {
        ("edge", "service"),
        ("repository", "service"),
        ("mariadb", "migrate"),
        ("mariadb", "repository"),
        ("migrate", "repository"),  # the one-shot listens on nothing: the repository cannot call it
        ("redis", "service"),
    }
    declared = compose()["networks"]
    assert all(declared[name].get("internal") is True for name in ("repository", "data", "cache"))


@pytest.mark.req("SRS-210")
def test_compose_builds_the_repository_dockerfile_and_runs_every_tier_unprivileged_and_read_only() -> None:
    services = compose()["services"]
    [user] = dockerfile_stages()[-1].all("USER")
    for name in ARCANA_SERVICES:
        service = services[name]
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == ROOT, name
        assert (ROOT / service["build"]["dockerfile"]).is_file(), name
        assert service["user"] == user, name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert service["tmpfs"] == [image_environment()["TMPDIR"]], name
        assert [volume.split(":", 1)[1] for volume in service["volumes"]] == [image_environment()["ARCANA_DATA_DIR"]]


@pytest.mark.req("SRS-210")
def test_the_layered_compose_file_commits_no_secret() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    for name, service in raw["services"].items():
        for variable, value in dict(service.get("environment", {})).items():
            if re.search(r"SECRET|PASSWORD", variable) or variable == "ARCANA_DATABASE_URL":
                assert "${" in str(value), f"{name}: {variable} is written into the compose file"


def _grpc_health(argv: list[str], port: int) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value for key, value in os.environ.items() if not key.startswith(("ARCANA_", "COV_CORE", "COVERAGE_"))
    }
    return subprocess.run(
        [sys.executable, *argv[2:]],
        env={**environ, "ARCANA_GRPC_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.req("SRS-210")
@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_the_compose_grpc_health_check_follows_real_tiers_and_a_dns_target_reaches_its_tier(tmp_path: Path) -> None:
    """The internal tiers' compose health check, run as compose would, against a repository tier on SQLite:
    it fails while the schema is not migrated (the tier answers NOT_SERVING), passes once `migrate` has run;
    then against a service tier that reaches the repository by a `dns:///host:port` target, as manifests do."""
    services = compose()["services"]
    [argv] = {tuple(services[name]["healthcheck"]["test"]) for name in ("repository", "service")}
    assert argv[:2] == ("CMD", "python")
    env = {"ARCANA_MODE": "layered", "ARCANA_ROLE": "repository", "ARCANA_DATA_DIR": str(tmp_path / "var")}
    tier = start([sys.executable, "-m", "py_app", "serve"], tmp_path / "repository", **env)
    port = int(tier.grpc.rsplit(":", 1)[1])
    try:
        deadline = time.monotonic() + 90
        while "tier serving" not in tier.output():
            assert tier.process.poll() is None, tier.output()[-3000:]
            assert time.monotonic() < deadline, tier.output()[-3000:]
            time.sleep(0.2)
        refused = _grpc_health(list(argv), port)
        # Answered NOT_SERVING (exit 1, nothing on stderr), not a failure to ask.
        assert (refused.returncode, refused.stderr) == (1, ""), refused.stderr
        migrate(tmp_path, **env)
        while (passed := _grpc_health(list(argv), port)).returncode != 0:
            assert time.monotonic() < deadline, passed.stderr + tier.output()[-3000:]
            time.sleep(0.5)
        # A service tier calling it by a `dns:///` target, as the manifests name the headless Services.
        service = start(
            [sys.executable, "-m", "py_app", "serve"],
            tmp_path / "service",
            **{**env, "ARCANA_ROLE": "service", "ARCANA_REPOSITORY_TARGET": f"dns:///localhost:{port}"},
        )
        try:
            service_port = int(service.grpc.rsplit(":", 1)[1])
            while (passed := _grpc_health(list(argv), service_port)).returncode != 0:
                assert service.process.poll() is None, service.output()[-3000:]
                assert time.monotonic() < deadline, passed.stderr + service.output()[-3000:]
                time.sleep(0.5)
            service.process.send_signal(signal.SIGTERM)
            assert service.process.wait(STOP_SECONDS) == 0, service.output()[-3000:]
        finally:
            service.stop()
        tier.process.send_signal(signal.SIGTERM)
        assert tier.process.wait(STOP_SECONDS) == 0, tier.output()[-3000:]
    finally:
        tier.stop()
