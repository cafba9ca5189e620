"""deploy/ for the modes whose roles call each other over internal gRPC (layered, microservices), checked offline.

One set of checks over both modes, each test parametrised by mode and driven by the code: `config.MODE_ROLES`
says which roles a mode's files must start, `config.TARGETS` who calls whom, and so which headless Service each
caller must name on which port, which NetworkPolicy paths must exist (exactly those) and which compose
services wait for which. `LAYOUTS` holds the little each mode decides beyond that (who holds a database, Redis,
the jobs). The strict Kubernetes schema check (tests/deploy/test_k8s.py) already covers every file under
deploy/k8s, and its repository-wide checks (every `ARCANA_` name a setting, no committed Secret value) cover these.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from py_app.config import MODE_ROLES, TARGETS, Settings
from py_app.entrypoints.drain import KILL_MARGIN
from py_app.infra.migrations import head_revision
from tests.conftest import MARIADB_ADMIN_URL, mariadb_admin, unavailable
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
from tests.e2e.support import STOP_SECONDS, command, migrate, start

Doc = dict[str, Any]
COMPONENT = "app.kubernetes.io/component"
NAME = "app.kubernetes.io/name"
SMTP = {587, 465}  # STARTTLS and implicit TLS (ARCANA_SMTP_URL)
DNS = 53


@dataclass(frozen=True)
class Layout:
    """What a mode's files decide beyond MODE_ROLES and TARGETS."""

    databases: frozenset[str]  # the roles that open a database: each its own
    redis: frozenset[str]  # the roles given Redis
    jobs: frozenset[str]  # the roles that run the background jobs
    mail: frozenset[str]  # the roles whose jobs send mail
    autoscaled: frozenset[str]  # the roles with a HorizontalPodAutoscaler
    # The compose services that share a network (pairs in name order): who can reach whom on one machine.
    compose_reach: frozenset[tuple[str, str]]
    requirements: dict[str, str]  # the SPEC ids of its compose file, its manifests and its network policies


LAYOUTS = {
    "layered": Layout(
        databases=frozenset({"repository"}),
        redis=frozenset({"service"}),
        jobs=frozenset({"service"}),
        mail=frozenset({"service"}),
        autoscaled=frozenset({"edge", "service"}),
        compose_reach=frozenset(
            {
                ("edge", "service"),
                ("repository", "service"),
                ("mariadb", "migrate"),
                ("mariadb", "repository"),
                ("migrate", "repository"),  # the one-shot listens on nothing: the repository cannot call it
                ("redis", "service"),
            }
        ),
        requirements={"compose": "SRS-210", "k8s": "SRS-211", "network": "SRS-212"},
    ),
    "microservices": Layout(
        databases=frozenset({"auth", "users"}),
        redis=frozenset({"auth", "users"}),
        jobs=frozenset({"auth", "users"}),
        mail=frozenset({"auth"}),  # reset and verification mail; the users outbox holds account changes for auth
        autoscaled=frozenset({"edge", "auth", "users"}),
        compose_reach=frozenset(
            {
                ("auth", "edge"),
                ("edge", "users"),
                ("auth", "users"),
                # One MariaDB holds both databases: the one-shots (listening on nothing) meet it and the services.
                ("auth", "mariadb"),
                ("mariadb", "users"),
                ("mariadb", "migrate-auth"),
                ("mariadb", "migrate-users"),
                ("migrate-auth", "migrate-users"),
                ("auth", "migrate-auth"),
                ("auth", "migrate-users"),
                ("migrate-auth", "users"),
                ("migrate-users", "users"),
                ("auth", "redis"),
                ("redis", "users"),
            }
        ),
        requirements={"compose": "SRS-235", "k8s": "SRS-236", "network": "SRS-237"},
    ),
}


def modes(kind: str) -> list[Any]:
    """Every mode with internal calls, each carrying the requirement its files of ``kind`` prove."""
    return [
        pytest.param(mode, marks=pytest.mark.req(layout.requirements[kind]), id=mode)
        for mode, layout in LAYOUTS.items()
    ]


def calls(mode: str) -> set[tuple[str, str]]:
    """(caller role, callee role) for every target setting TARGETS gives a role of ``mode``."""
    return {
        (role, setting.removesuffix("_target"))
        for (of, role), settings in TARGETS.items()
        if of == mode
        for setting in settings
    }


def target_address(target: str) -> tuple[str, int]:
    """``dns:///host:port`` or ``host:port`` -> (host, port)."""
    host, _, port = target.removeprefix("dns:///").rpartition(":")
    return host, int(port)


@pytest.mark.req("SRS-211", "SRS-236")
def test_every_mode_with_internal_calls_has_its_files_and_a_layout() -> None:
    assert set(LAYOUTS) == {mode for mode, _ in TARGETS}
    for mode, layout in LAYOUTS.items():
        assert (DEPLOY / "k8s" / mode).is_dir(), mode
        assert (DEPLOY / "compose" / f"{mode}.yaml").is_file(), mode
        roles = set(MODE_ROLES[mode])
        assert layout.databases | layout.redis | layout.jobs | layout.mail | layout.autoscaled <= roles, mode
        assert {role for pair in calls(mode) for role in pair} == roles, f"{mode}: a role nobody calls or that calls"


# --- Kubernetes ----------------------------------------------------------------------------------------------


@functools.cache
def everything(mode: str) -> list[Doc]:
    """Every manifest of ``mode``, parsed once (shared: a test that changes one works on a deep copy)."""
    return [document for path in sorted((DEPLOY / "k8s" / mode).rglob("*.yaml")) for document in documents(path)]


def of_kind(kind: str, docs: list[Doc]) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def workloads(docs: list[Doc]) -> dict[str, Doc]:
    """Every pod template by its owner's name: the Deployments and the migration Jobs."""
    owners = {**of_kind("Deployment", docs), **of_kind("Job", docs)}
    return {name: owner["spec"]["template"] for name, owner in owners.items()}


def deployment_of(mode: str) -> dict[str, str]:
    """role -> the name of the one Deployment whose pods are labelled with that role."""
    found = [
        (doc["spec"]["template"]["metadata"]["labels"][COMPONENT], name) for name, doc in deployments(mode).items()
    ]
    assert len({role for role, _ in found}) == len(found), f"{mode}: two Deployments of one role"
    return dict(found)


def deployments(mode: str) -> dict[str, Doc]:
    return of_kind("Deployment", everything(mode))


def jobs(mode: str) -> dict[str, Doc]:
    return {name: job["spec"]["template"] for name, job in of_kind("Job", everything(mode)).items()}


def resolved_environment(mode: str, template: Doc) -> dict[str, str]:
    """The image's environment, then envFrom (the ConfigMap, the example Secrets), then env (values, secretKeyRefs)."""
    configs, secrets = of_kind("ConfigMap", everything(mode)), of_kind("Secret", everything(mode))
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


def settings_of(mode: str, name: str) -> Settings:
    return settings_for(resolved_environment(mode, workloads(everything(mode))[name]))


def port_names(template: Doc) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container(template).get("ports", [])}


def image_tag() -> str:
    """The image every container runs: this version's, the one the monolithic files run."""
    return f"arcana:{tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['version']}"


@pytest.mark.parametrize("mode", modes("k8s"))
def test_each_role_runs_in_its_deployment_with_settings_that_validate_and_only_its_own_state(mode: str) -> None:
    layout, roles = LAYOUTS[mode], deployment_of(mode)
    assert set(roles) == set(MODE_ROLES[mode]), f"{mode}: a Deployment per role"
    for name, template in workloads(everything(mode)).items():
        spec = container(template)
        [command] = spec["args"]
        assert cli_has(command), f"{name}: `python -m py_app {command}` does not exist"
        assert spec["image"] == image_tag(), name
        env = resolved_environment(mode, template)
        assert unknown_arcana(env) == [], name
        settings = settings_for(env)  # raises, naming the variable, as the pod would at start
        assert (settings.env, settings.mode) == ("production", mode), name
        assert (settings.database_url != "") is (settings.role in layout.databases), f"{name}: database"
        if settings.database_url:
            assert settings.effective_database_url.startswith("mysql+asyncmy://"), name
            assert urlsplit(settings.database_url).hostname == "mysql", f"{name}: the ExternalName Service"
        if name in jobs(mode):
            assert command == "migrate", name
            assert settings.redis_url is None, f"{name}: a migration reaches only MySQL"
            continue
        assert command == "serve", name
        assert settings.role == template["metadata"]["labels"][COMPONENT], name
        assert bool(settings.redis_url) is (settings.role in layout.redis), f"{name}: Redis"
        assert settings.redis_url is None or urlsplit(settings.redis_url).hostname == "redis", name
        assert settings.jobs is (settings.role in layout.jobs), f"{name}: the background jobs"
    for document in [*of_kind("ConfigMap", everything(mode)).values(), *of_kind("Secret", everything(mode)).values()]:
        assert unknown_arcana(document.get("data") or document.get("stringData")) == [], document["metadata"]["name"]


@pytest.mark.parametrize("mode", modes("k8s"))
def test_each_database_has_one_owner_and_one_migration_job_of_that_owners_role(mode: str) -> None:
    owned = {role: settings_of(mode, name).database_url for role, name in deployment_of(mode).items()}
    owned = {role: url for role, url in owned.items() if url}
    assert len(set(owned.values())) == len(owned), f"{mode}: two roles share a database"
    migrated = {name: settings_of(mode, name) for name in jobs(mode)}
    assert sorted(settings.database_url for settings in migrated.values()) == sorted(owned.values())
    for name, settings in migrated.items():
        assert owned[settings.role] == settings.database_url, f"{name} migrates another role's database"


@pytest.mark.parametrize("mode", modes("k8s"))
def test_each_caller_reaches_its_callee_through_its_headless_service_on_the_port_it_listens_on(mode: str) -> None:
    services, roles = of_kind("Service", everything(mode)), deployment_of(mode)
    pods = workloads(everything(mode))
    for caller, callee in calls(mode):
        target = getattr(settings_of(mode, roles[caller]), f"{callee}_target")
        assert target.startswith("dns:///"), f"{caller} -> {callee}: every pod's address, re-resolved"
        host, port = target_address(target)
        service = services[host]
        assert service["spec"]["clusterIP"] == "None", f"{host}: headless, every ready pod's address"
        selected = {
            name for name, pod in pods.items() if selects(service["spec"]["selector"], pod["metadata"]["labels"])
        }
        assert selected == {roles[callee]}, f"{caller} calls {host}, which is not {callee}"
        [service_port] = service["spec"]["ports"]
        grpc_port = settings_of(mode, roles[callee]).grpc_port
        assert service_port["port"] == port == grpc_port, f"{caller} -> {callee}"
        assert port_names(pods[roles[callee]])[service_port["targetPort"]] == grpc_port
    edge = services[roles["edge"]]
    assert edge["spec"]["type"] == "ClusterIP"
    assert {port["targetPort"] for port in edge["spec"]["ports"]} == set(port_names(pods[roles["edge"]]))
    external = {name for name, service in services.items() if service["spec"].get("type") == "ExternalName"}
    assert external == {"mysql", "redis"}


@pytest.mark.parametrize("mode", modes("k8s"))
def test_each_role_is_probed_on_its_own_protocol_and_drains_within_its_grace_period(mode: str) -> None:
    for role, name in deployment_of(mode).items():
        template = workloads(everything(mode))[name]
        spec, settings = container(template), settings_of(mode, name)
        expected = {"grpc": settings.grpc_port} | ({"http": settings.http_port} if role == "edge" else {})
        assert port_names(template) == expected, name
        if role == "edge":
            assert spec["readinessProbe"]["httpGet"]["path"] == "/health/ready"
            assert spec["livenessProbe"]["httpGet"]["path"] == "/health/live"
            assert spec["startupProbe"]["httpGet"]["path"] == "/health/live"
        else:  # no HTTP listener: ready on the native gRPC health the role serves, which follows its readiness
            assert spec["readinessProbe"]["grpc"] == {"port": settings.grpc_port}, name
            for kind in ("startupProbe", "livenessProbe"):
                assert spec[kind]["tcpSocket"]["port"] == "grpc", f"{name} {kind}"
        sleep = spec["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert template["spec"]["terminationGracePeriodSeconds"] > sleep + settings.shutdown_grace + KILL_MARGIN


@pytest.mark.parametrize("mode", modes("k8s"))
def test_every_pod_is_unprivileged_read_only_and_every_role_is_budgeted_and_scaled_as_its_layout_says(
    mode: str,
) -> None:
    for name, template in workloads(everything(mode)).items():
        assert_unprivileged(name, template, resolved_environment(mode, template)["ARCANA_DATA_DIR"])
    roles = deployment_of(mode)
    autoscalers = of_kind("HorizontalPodAutoscaler", everything(mode)).values()
    assert {hpa["spec"]["scaleTargetRef"]["name"] for hpa in autoscalers} == {
        roles[role] for role in LAYOUTS[mode].autoscaled
    }
    assert all(hpa["spec"]["minReplicas"] >= 2 for hpa in autoscalers)
    budgeted = set()
    for budget in of_kind("PodDisruptionBudget", everything(mode)).values():
        labels = budget["spec"]["selector"]["matchLabels"]
        budgeted |= {
            name for name, pod in workloads(everything(mode)).items() if selects(labels, pod["metadata"]["labels"])
        }
    assert budgeted == set(roles.values())
    assert all(deployment["spec"]["replicas"] >= 2 for deployment in deployments(mode).values())


# --- NetworkPolicies -----------------------------------------------------------------------------------------


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


def _rules(policies: list[Doc], pod: Doc, direction: str) -> list[Doc]:
    mine = [p["spec"] for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], pod["metadata"]["labels"])]
    assert mine, "a pod under no policy"
    assert all(spec["policyTypes"] == ["Ingress", "Egress"] for spec in mine)
    return [rule for spec in mine for rule in spec.get(direction, [])]


def connections(docs: list[Doc]) -> set[tuple[str, str]]:
    """Every (source, destination) pair of our pods that the NetworkPolicies let connect: the source's egress
    allows it and the destination's ingress admits it, on a port the destination declares."""
    pods, policies = workloads(docs), list(of_kind("NetworkPolicy", docs).values())
    allowed = set()
    for source, out in pods.items():
        for destination, into in pods.items():
            ports = port_names(into)
            egress = any(
                _peers_select(rule.get("to"), into["metadata"]["labels"]) and _ports_match(rule.get("ports"), ports)
                for rule in _rules(policies, out, "egress")
            )
            ingress = any(
                _peers_select(rule.get("from"), out["metadata"]["labels"]) and _ports_match(rule.get("ports"), ports)
                for rule in _rules(policies, into, "ingress")
            )
            if egress and ingress:
                allowed.add((source, destination))
    return allowed


def expected_connections(mode: str) -> set[tuple[str, str]]:
    roles = deployment_of(mode)
    return {(roles[caller], roles[callee]) for caller, callee in calls(mode)}


@pytest.mark.parametrize("mode", modes("network"))
def test_the_network_policies_allow_exactly_the_calls_the_targets_name(mode: str) -> None:
    assert connections(everything(mode)) == expected_connections(mode)


@pytest.mark.parametrize("mode", modes("network"))
def test_the_policy_check_sees_a_path_the_targets_do_not_name(mode: str) -> None:
    """Open one pair the targets do not name (layered: edge -> repository; microservices: auth -> edge) on
    one side, then on both: only the second is a connection."""
    docs = copy.deepcopy(everything(mode))
    pods, policies = workloads(docs), list(of_kind("NetworkPolicy", docs).values())
    pairs = sorted((a, b) for a in deployment_of(mode).values() for b in deployment_of(mode).values() if a != b)
    source, destination = next(pair for pair in pairs if pair not in expected_connections(mode))
    everyone = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": pods[source]["metadata"]["labels"][NAME]}}}
    rule = {"peers": [everyone], "ports": [{"port": "grpc", "protocol": "TCP"}]}

    def policy_of(pod: Doc) -> Doc:
        return next(
            p["spec"] for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], pod["metadata"]["labels"])
        )

    policy_of(pods[source])["egress"].append({"to": rule["peers"], "ports": rule["ports"]})
    assert connections(docs) == expected_connections(mode)  # the destination's ingress still refuses it
    policy_of(pods[destination])["ingress"].append({"from": rule["peers"], "ports": rule["ports"]})
    assert connections(docs) == expected_connections(mode) | {(source, destination)}


def outside_ports(settings: Settings, layout: Layout) -> set[int]:
    """The ports a pod must reach beyond our pods, from what its own settings use: DNS, its database, Redis, SMTP."""
    ports = {DNS}
    if settings.database_url:
        ports.add(urlsplit(settings.database_url).port or 3306)
    if settings.redis_url:
        ports.add(urlsplit(settings.redis_url).port or 6379)
    if settings.jobs and settings.role in layout.mail:
        ports |= SMTP
    return ports


@pytest.mark.parametrize("mode", modes("network"))
def test_from_outside_only_the_edge_is_admitted_and_each_pod_leaves_only_for_what_its_settings_use(mode: str) -> None:
    policies = list(of_kind("NetworkPolicy", everything(mode)).values())
    edge = deployment_of(mode)["edge"]
    for name, pod in workloads(everything(mode)).items():
        peers = [peer for rule in _rules(policies, pod, "ingress") for peer in rule["from"]]
        outside = [peer for peer in peers if "namespaceSelector" in peer]
        assert bool(outside) is (name == edge), f"{name}: only the edge is reachable from outside the mode's pods"
        # Egress to anything but our own pods (no `to`, or another namespace).
        beyond = {
            item["port"]
            for rule in _rules(policies, pod, "egress")
            if not rule.get("to") or any("namespaceSelector" in peer for peer in rule["to"])
            for item in rule["ports"]
        }
        assert beyond == outside_ports(settings_of(mode, name), LAYOUTS[mode]), name


# --- compose -------------------------------------------------------------------------------------------------


def compose(mode: str) -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose" / f"{mode}.yaml").read_text())
    assert isinstance(document, dict)
    return interpolate(document, example_env())  # type: ignore[no-any-return]


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    image = {key: value for key, value in image_environment().items() if key.startswith("ARCANA_")}
    return {**image, **{key: str(value) for key, value in service.get("environment", {}).items()}}


def arcana_services(mode: str) -> dict[str, Settings]:
    """Every compose service that runs the image, with the settings it would start with."""
    services = compose(mode)["services"]
    return {
        name: settings_for(compose_environment(service)) for name, service in services.items() if "build" in service
    }


def migrations(mode: str) -> dict[str, Settings]:
    services = compose(mode)["services"]
    return {
        name: settings for name, settings in arcana_services(mode).items() if services[name]["command"] == ["migrate"]
    }


@pytest.mark.parametrize("mode", modes("compose"))
def test_compose_starts_each_process_once_what_it_needs_is_ready(mode: str) -> None:
    """Its migration, Redis, and each service it calls, unless that one calls it too (compose refuses a cycle)."""
    services, layout = compose(mode)["services"], LAYOUTS[mode]
    servers = set(arcana_services(mode)) - set(migrations(mode))
    assert servers == set(MODE_ROLES[mode]), f"{mode}: a service per role, named after it"
    assert set(services) == {"mariadb", "redis", *arcana_services(mode)}
    for name in migrations(mode):
        assert services[name]["depends_on"] == {"mariadb": {"condition": "service_healthy"}}, name
        assert services[name]["restart"] == "no", name
    migration_of = {settings.database_url: name for name, settings in migrations(mode).items()}
    for role in servers:
        settings = arcana_services(mode)[role]
        needs = (
            {migration_of[settings.database_url]: "service_completed_successfully"} if role in layout.databases else {}
        )
        needs |= {"redis": "service_healthy"} if role in layout.redis else {}
        needs |= {
            callee: "service_healthy"
            for caller, callee in calls(mode)
            if caller == role and (callee, caller) not in calls(mode)
        }
        assert services[role]["depends_on"] == {name: {"condition": state} for name, state in needs.items()}, role


@pytest.mark.parametrize("mode", modes("compose"))
def test_compose_runs_each_role_with_settings_valid_for_it_and_each_database_migrated_once(mode: str) -> None:
    services, layout = compose(mode)["services"], LAYOUTS[mode]
    for name, settings in arcana_services(mode).items():
        service = services[name]
        [command] = service["command"]
        assert cli_has(command), name
        assert unknown_arcana(compose_environment(service)) == [], name
        assert (settings.env, settings.mode) == ("production", mode), name
        assert (settings.database_url != "") is (settings.role in layout.databases), name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["image"] == image_tag(), name
        if name in migrations(mode):
            continue
        assert command == "serve", name
        assert settings.role == name, name
        assert settings.jobs is (name in layout.jobs), name
        assert bool(settings.redis_url) is (name in layout.redis), name
        assert int(service["stop_grace_period"].rstrip("s")) > settings.shutdown_grace + KILL_MARGIN, name
    owned = [arcana_services(mode)[role].database_url for role in sorted(layout.databases)]
    assert len(set(owned)) == len(owned), f"{mode}: two roles share a database"
    assert sorted(settings.database_url for settings in migrations(mode).values()) == sorted(owned)
    for name, settings in migrations(mode).items():
        assert arcana_services(mode)[settings.role].database_url == settings.database_url, name
    for caller, callee in calls(mode):
        host, port = target_address(getattr(arcana_services(mode)[caller], f"{callee}_target"))
        assert host == callee, caller
        assert port == arcana_services(mode)[callee].grpc_port, caller
        assert services[host]["healthcheck"]["test"][:3] == ["CMD", "python", "-c"], f"{host}: gRPC health"


def _granted(mariadb: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The databases the compose MariaDB creates and those its MARIADB_USER is granted, init scripts included."""
    user, database = mariadb["environment"]["MARIADB_USER"], mariadb["environment"].get("MARIADB_DATABASE")
    created: set[str] = {database} if database else set()
    granted = set(created)
    for volume in mariadb["volumes"]:
        source, _, target = volume.partition(":")
        if target.startswith("/docker-entrypoint-initdb.d/"):
            script = re.sub(r"--.*", "", (DEPLOY / "compose" / source).read_text())  # comments create nothing
            created |= set(re.findall(r"CREATE DATABASE IF NOT EXISTS (\w+)", script))
            granted |= set(re.findall(rf"GRANT ALL PRIVILEGES ON (\w+)\.\* TO '{user}'@'%'", script))
    return created, granted


@pytest.mark.parametrize("mode", modes("compose"))
def test_compose_mariadb_creates_every_database_the_services_name_for_the_user_they_log_in_as(mode: str) -> None:
    mariadb = compose(mode)["services"]["mariadb"]
    created, granted = _granted(mariadb)
    named = set()
    for name, settings in arcana_services(mode).items():
        if not settings.database_url:
            continue
        url = urlsplit(settings.database_url)
        assert (url.hostname, url.port) == ("mariadb", 3306), name
        assert url.username == mariadb["environment"]["MARIADB_USER"], name
        assert url.password == mariadb["environment"]["MARIADB_PASSWORD"], name
        named.add(url.path.lstrip("/"))
    assert named <= created & granted, f"{mode}: {named - created} not created, {named - granted} not granted"
    assert len(named) == len(LAYOUTS[mode].databases)


@pytest.mark.parametrize("mode", modes("compose"))
def test_compose_publishes_only_the_edge_and_its_networks_join_only_who_talks(mode: str) -> None:
    services = compose(mode)["services"]
    edge = services["edge"]
    assert edge["deploy"]["replicas"] >= 2
    settings = arcana_services(mode)["edge"]
    assert [int(mapping.rsplit(":", 1)[1]) for mapping in edge["ports"]] == [settings.http_port, settings.grpc_port]
    for mapping in edge["ports"]:  # one host port per replica, or the second replica cannot start
        first, _, last = mapping.rsplit(":", 1)[0].partition("-")
        assert last, f"{mapping}: one host port for every replica"
        assert int(last) - int(first) + 1 >= edge["deploy"]["replicas"], mapping
    assert [name for name, service in services.items() if "ports" in service] == ["edge"]
    networks = {name: set(service.get("networks", ["default"])) for name, service in services.items()}
    reach = {(a, b) for a in networks for b in networks if a < b and networks[a] & networks[b]}
    assert reach == LAYOUTS[mode].compose_reach
    assert {tuple(sorted(pair)) for pair in calls(mode)} <= reach, "a caller shares no network with its callee"
    declared = compose(mode)["networks"]
    assert all(declared[name].get("internal") is True for name in declared if name != "default")


@pytest.mark.parametrize("mode", modes("compose"))
def test_compose_builds_the_repository_dockerfile_and_runs_every_process_unprivileged_and_read_only(mode: str) -> None:
    services = compose(mode)["services"]
    [user] = dockerfile_stages()[-1].all("USER")
    for name in arcana_services(mode):
        service = services[name]
        assert (DEPLOY / "compose" / service["build"]["context"]).resolve() == ROOT, name
        assert (ROOT / service["build"]["dockerfile"]).is_file(), name
        assert service["user"] == user, name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert service["tmpfs"] == [image_environment()["TMPDIR"]], name
        assert [volume.split(":", 1)[1] for volume in service["volumes"]] == [image_environment()["ARCANA_DATA_DIR"]]


@pytest.mark.parametrize("mode", modes("compose"))
def test_the_compose_file_commits_no_secret(mode: str) -> None:
    raw = yaml.safe_load((DEPLOY / "compose" / f"{mode}.yaml").read_text())
    for name, service in raw["services"].items():
        for variable, value in dict(service.get("environment", {})).items():
            if re.search(r"SECRET|PASSWORD", variable) or variable == "ARCANA_DATABASE_URL":
                assert "${" in str(value), f"{name}: {variable} is written into the compose file"


@pytest.mark.parametrize("mode", modes("k8s"))
@pytest.mark.mariadb
@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_each_migration_job_migrates_a_database_of_its_own_with_its_settings(mode: str, tmp_path: Path) -> None:
    """The real `python -m py_app migrate`, run with each migration Job's environment as it stands (production,
    the mode, the role, its targets and secrets) on a database of its own on MariaDB, ends at the head revision.
    The compose one-shots' environments differ from the Jobs' only in the database URL, checked above."""
    environments = {name: resolved_environment(mode, template) for name, template in jobs(mode).items()}
    assert len(environments) == len(LAYOUTS[mode].databases), "a Job per database"
    created: list[str] = []
    try:
        for name, environment in environments.items():
            database = f"arcana_t_{uuid.uuid4().hex[:12]}"
            try:
                asyncio.run(mariadb_admin(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4"))
            except Exception as exc:  # noqa: BLE001 - any failure to reach it: skipped, or failed in CI
                unavailable("MariaDB at 127.0.0.1:3306", exc)
            created.append(database)
            env = {
                **environment,
                "ARCANA_DATABASE_URL": MARIADB_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}",
                "ARCANA_DATA_DIR": str(tmp_path / name),  # the image's /var/lib/arcana is not this machine's
            }
            migrated = command(tmp_path, "migrate", **env)
            assert migrated.returncode == 0, f"{name}: {migrated.stderr}"
            assert f"database at revision {head_revision()}" in migrated.stdout, f"{name}: {migrated.stdout}"
    finally:
        for database in created:
            asyncio.run(mariadb_admin(f"DROP DATABASE IF EXISTS `{database}`"))


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


@pytest.mark.req("SRS-210", "SRS-235")
@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_the_compose_grpc_health_check_follows_real_tiers_and_a_dns_target_reaches_its_tier(tmp_path: Path) -> None:
    """The internal roles' compose health check (one command in both compose files), run as compose would,
    against a layered repository tier on SQLite: it fails while the schema is not migrated (the tier answers
    NOT_SERVING), passes once `migrate` has run; then against a service tier that reaches the repository by a
    `dns:///host:port` target, as manifests do."""
    checks = {
        tuple(compose(mode)["services"][callee]["healthcheck"]["test"]) for mode in LAYOUTS for _, callee in calls(mode)
    }
    [argv] = checks
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
