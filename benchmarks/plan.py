"""What a run measures, as data: targets (server configurations), operations, and the ordered points.

A *target* is one server configuration the load suite drives. Adding one is a line in ``TARGETS``:
environment overrides (a cache switched off, ``ARCANA_WORKERS=2``), the cores the server and the
load generator get, and the launcher that starts it (``stack.LAUNCHERS``). Ceilings and baselines are
targets too, of kind ``ceiling`` and ``baseline``; every service figure is divided by the ceiling and
the baseline measured in the same run at the same protocol and concurrency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["service", "ceiling", "baseline"]
PROTOCOLS = ("rest", "grpc")
BACKENDS = frozenset({"sqlite", "mariadb"})
# Read operations first in each round: the writes (refresh, create, login) grow the tables.
OPS = ("point_query", "me", "list", "validate", "refresh", "create", "login")
# Operations bound by one argon2id hash per request (login verifies, create hashes).
HASHING_OPS = frozenset({"create", "login"})
CLAIMS = {"average": 2.78, "point_query": 6.30}  # "gRPC is 2.78x faster on average, 6.30x for point queries"


@dataclass(frozen=True)
class Target:
    name: str
    kind: Kind
    backend: str | None  # sqlite | mariadb; None for the in-memory ceilings
    launcher: str  # a key of stack.LAUNCHERS
    ops: tuple[str, ...] = OPS
    protocols: tuple[str, ...] = PROTOCOLS
    env: tuple[tuple[str, str], ...] = ()  # ARCANA_* overrides
    server_cpus: str = "0"
    generator_cpus: str = "1"
    note: str = ""


def _env(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"ARCANA_{key.upper()}", value) for key, value in values.items())


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("ceiling", "ceiling", None, "ceiling", ops=("point_query",), note="trivial handlers, record in memory"),
        Target("baseline-sqlite", "baseline", "sqlite", "baseline", ops=("point_query",)),
        Target("baseline-mariadb", "baseline", "mariadb", "baseline", ops=("point_query",)),
        Target("sqlite", "service", "sqlite", "service", note="monolithic, 1 worker, defaults"),
        Target("mariadb", "service", "mariadb", "service", note="monolithic, 1 worker, defaults"),
        # Not in the default run; selected with --targets (the hot-path issue measures them).
        Target("sqlite-nocache", "service", "sqlite", "service", env=_env(session_cache_ttl="0")),
        Target("mariadb-nocache", "service", "mariadb", "service", env=_env(session_cache_ttl="0")),
        Target(
            "sqlite-w1-shared",
            "service",
            "sqlite",
            "service",
            ops=("point_query", "me", "refresh", "login"),
            server_cpus="0,1",
            generator_cpus="0,1",
            note="1 worker; the load generator shares both cores (what sqlite-w2 is compared with)",
        ),
        Target(
            "sqlite-w2",
            "service",
            "sqlite",
            "service",
            ops=("point_query", "me", "refresh", "login"),
            env=_env(workers="2"),
            server_cpus="0,1",
            generator_cpus="0,1",
            note="2 workers; the load generator shares both cores",
        ),
    )
}


@dataclass(frozen=True)
class Profile:
    """How long and how hard: the full run, the quick run, or what the command line asked for."""

    name: str
    targets: tuple[str, ...]
    concurrency: tuple[int, ...]
    repeats: int
    duration: float  # seconds of measured load per point
    warm_up: float  # seconds of load before the measurement, same connections
    client_max_time: float  # pytest-benchmark --benchmark-max-time per call benchmark
    micro_max_time: float
    profiles: tuple[str, ...] = ()  # operations profiled with py-spy on the first service target
    cross_check: bool = True  # also drive one op with the other generator, to show they agree
    soak_seconds: float = 0  # the soak (tests/faults/test_soak.py) for this long; 0: no soak suite
    # Point queries a second generator sends beside every create and login point, at this rate in all
    # (issue 12.6: hashing at its limit while reads keep p99 < 20 ms); 0: none.
    reads_beside_hashing: int = 0
    # Seconds of measured load for create and login (0: ``duration``): at ~30-60 a second, a 1.2 s window
    # holds too few requests for a ratio to the hash limit to mean anything.
    hashing_duration: float = 0

    def seconds(self, op: str) -> float:
        """Seconds of measured load for a point of ``op``."""
        return self.hashing_duration if op in HASHING_OPS and self.hashing_duration else self.duration


FULL = Profile(
    "full",
    targets=("ceiling", "baseline-sqlite", "sqlite", "baseline-mariadb", "mariadb"),
    concurrency=(1, 16, 64),
    repeats=2,
    duration=1.2,
    warm_up=0.3,
    client_max_time=0.25,
    micro_max_time=0.25,
    profiles=("point_query",),
    soak_seconds=120,
    reads_beside_hashing=100,
    hashing_duration=3.0,
)
QUICK = Profile(
    "quick",
    targets=("ceiling", "baseline-sqlite", "sqlite"),
    concurrency=(16,),
    repeats=1,
    duration=1.0,
    warm_up=0.3,
    client_max_time=0.05,
    micro_max_time=0.02,
    cross_check=False,
    reads_beside_hashing=100,
)
# Does a second worker pay? One worker and two, each with the generator on the same two cores (so the
# second worker competes with the generator exactly as a real client on the machine would).
SCALE = Profile(
    "scale",
    targets=("sqlite-w1-shared", "sqlite-w2"),
    concurrency=(16, 64),
    repeats=2,
    duration=2.0,
    warm_up=0.5,
    client_max_time=0.05,
    micro_max_time=0.02,
    cross_check=False,
)
SCALE_TARGETS = ("sqlite-w1-shared", "sqlite-w2")
SCALE_GOAL = 1.6  # issue 12.5: two workers serve >= 1.6x one worker's throughput
# The same fixed-body op through the varied-body generator and through wrk, to show they agree with h2load.
CROSS_CHECK_TARGET = "sqlite"
CROSS_CHECKS = (("rest", "varied-load"), ("grpc", "varied-load"), ("rest", "wrk"))
BESIDE_CONNECTIONS = 4  # the reads beside hashing: this many connections, each at its share of the rate
BESIDE_P99_GOAL_MS = 20.0  # issue 12.6
POINT_OVERHEAD_S = 0.4  # settling, sample checks, minting, process start around each point (measured: 0.4 s)


@dataclass(frozen=True)
class Point:
    target: Target
    op: str
    protocol: str
    concurrency: int
    rep: int
    generator: str = ""  # empty: the default generator for the op; else a cross-check generator

    @property
    def label(self) -> str:
        name = self.target.name
        extra = f" via {self.generator}" if self.generator else ""
        return f"{self.protocol} {self.op} c={self.concurrency} {name} rep {self.rep}{extra}"


def points(profile: Profile, only: Iterable[str] = ()) -> list[Point]:
    """Every point of a run, in run order: repeats interleaved (all of round 1, then all of round 2)."""
    wanted = set(only)
    selected: list[Point] = []
    for rep in range(1, profile.repeats + 1):
        for target in (TARGETS[name] for name in profile.targets):
            for op in target.ops:
                for concurrency in profile.concurrency:
                    for protocol in target.protocols:
                        point = Point(target, op, protocol, concurrency, rep)
                        if matches(point, wanted):
                            selected.append(point)
                    # Right after the h2load points they are compared with, so both see the same machine.
                    if (target.name, op, concurrency) == (CROSS_CHECK_TARGET, "validate", 16) and profile.cross_check:
                        for protocol, generator in CROSS_CHECKS:
                            point = Point(target, op, protocol, concurrency, rep, generator)
                            if matches(point, wanted):
                                selected.append(point)
    return selected


def matches(point: Point, wanted: set[str]) -> bool:
    """``--only`` tokens: within one attribute any token matches; across attributes all must."""
    if not wanted:
        return True
    attributes = {
        "op": {point.op} & set(OPS),
        "protocol": {point.protocol},
        "target": {point.target.name, point.target.kind},
        "backend": {point.target.backend or ""},
    }
    universe = {
        "op": set(OPS),
        "protocol": set(PROTOCOLS),
        "target": (set(TARGETS) | {"service", "ceiling", "baseline"}) - BACKENDS,  # "sqlite" means the backend
        "backend": BACKENDS,
    }
    for name, values in attributes.items():
        asked = wanted & universe[name]
        # References stay for the ratios: a ceiling has no backend, ceilings and baselines one op.
        exempt = (name == "op" and point.target.kind != "service") or (name == "backend" and not point.target.backend)
        if asked and not exempt and not asked & values:
            return False
    return True


def unknown_only_tokens(only: Iterable[str]) -> list[str]:
    known = set(OPS) | set(PROTOCOLS) | set(TARGETS) | {"service", "ceiling", "baseline", "sqlite", "mariadb"}
    return sorted(set(only) - known)


def estimate_seconds(profile: Profile, selected: list[Point]) -> float:
    return sum(profile.seconds(point.op) + profile.warm_up + POINT_OVERHEAD_S for point in selected)
