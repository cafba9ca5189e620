"""From raw points to the figures the report prints: medians over repeats, ratios, verdicts.

Every ratio compares figures from one run. Per operation: the median over repeats of each side, then
one division. Across operations ("on average"): a ratio of totals, the time one request of each
operation takes on one protocol against the other (sum of 1/throughput), never a mean of ratios.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from benchmarks.plan import CLAIMS, HASHING_OPS, OPS

Key = tuple[str, str, str, int]  # target, op, protocol, concurrency


@dataclass(frozen=True)
class Figure:
    """One (target, op, protocol, concurrency) over its repeats."""

    rps: float
    rps_low: float
    rps_high: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    repeats: int
    exhausted: bool


def median(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def figures(points: list[dict[str, Any]], *, cross_check: bool = False) -> dict[Key, Figure]:
    grouped: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        if "failed" in point or bool(point.get("cross_check")) != cross_check:
            continue
        grouped[(point["target"], point["op"], point["protocol"], point["concurrency"])].append(point)
    out = {}
    for key, reps in grouped.items():
        rates = [rep["rps"] for rep in reps]
        out[key] = Figure(
            rps=statistics.median(rates),
            rps_low=min(rates),
            rps_high=max(rates),
            p50_ms=median(rep["p50_ms"] for rep in reps),
            p99_ms=median(rep["p99_ms"] for rep in reps),
            errors=sum(rep["errors"] + rep.get("sample_errors", 0) for rep in reps),
            repeats=len(reps),
            exhausted=any(rep["exhausted"] for rep in reps),
        )
    return out


def service_targets(data: dict[str, Any]) -> list[str]:
    return [name for name, info in data.get("targets", {}).items() if info["kind"] == "service"]


def reference(data: dict[str, Any], kind: str, backend: str | None) -> str | None:
    """The ceiling (any backend) or the baseline of ``backend`` in this run."""
    for name, info in data.get("targets", {}).items():
        if info["kind"] == kind and (kind == "ceiling" or info["backend"] == backend):
            return name
    return None


def concurrencies(found: dict[Key, Figure]) -> list[int]:
    return sorted({key[3] for key in found})


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def grpc_over_rest(found: dict[Key, Figure], target: str, op: str, c: int) -> float | None:
    """How many times gRPC's throughput is REST's (above 1: gRPC faster), from the medians."""
    rest, grpc = found.get((target, op, "rest", c)), found.get((target, op, "grpc", c))
    return ratio(grpc.rps if grpc else None, rest.rps if rest else None)


def total_ratio(found: dict[Key, Figure], target: str, c: int, ops: Iterable[str]) -> float | None:
    """gRPC over REST for one request of each op: REST's total time divided by gRPC's."""
    rest_time = grpc_time = 0.0
    for op in ops:
        rest, grpc = found.get((target, op, "rest", c)), found.get((target, op, "grpc", c))
        if rest is None or grpc is None or not rest.rps or not grpc.rps:
            return None
        rest_time += 1 / rest.rps
        grpc_time += 1 / grpc.rps
    return rest_time / grpc_time if grpc_time else None  # no ops (a run of create and login only)


def ops_measured(found: dict[Key, Figure], target: str) -> list[str]:
    return [op for op in OPS if any(key[0] == target and key[1] == op for key in found)]


HASH_BENCHMARK = "test_argon2_hash_1_thread[rust]"  # the micro suite's one argon2id hash, as the service hashes


def hash_seconds(micro: dict[str, Any] | None) -> float | None:
    """The median time of one argon2id hash in a run's micro suite (micro.json), or None when it has none."""
    found = [entry for entry in (micro or {}).get("benchmarks", []) if entry["name"] == HASH_BENCHMARK]
    return float(found[0]["stats"]["median"]) if found else None


def probed_hash_seconds(data: dict[str, Any], target: str) -> float | None:
    """The median of the run's hash probes for ``target`` (``hash_probes``: one per round, on its server's core)."""
    return median(probe["median_s"] for probe in data.get("hash_probes", []) if probe["target"] == target)


def server_cores(data: dict[str, Any], target: str) -> int:
    return len(str(data["targets"][target].get("server_cpus") or "0").split(","))


def beside(points: list[dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    """The reads sent beside each hashing point (``beside`` records), over its repeats."""
    out: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        if "beside" in point and not point.get("cross_check"):
            out[(point["target"], point["op"], point["protocol"], point["concurrency"])].append(point["beside"])
    return dict(out)


def non_hashing(ops: Iterable[str]) -> list[str]:
    return [op for op in ops if op not in HASHING_OPS]


def to_reference(found: dict[Key, Figure], key: Key, ref: str | None) -> float | None:
    """A service figure over its reference's (the reference serves only the point query)."""
    if ref is None:
        return None
    mine, theirs = found.get(key), found.get((ref, "point_query", key[2], key[3]))
    return ratio(mine.rps if mine else None, theirs.rps if theirs else None)


def verdict(measured: float | None, claimed: float) -> str:
    if measured is None:
        return "not measured"
    if measured >= claimed * 0.9:
        return f"reproduced ({measured:.2f}x against {claimed:.2f}x)"
    if measured > 1.1:
        return f"not reproduced: gRPC faster by {measured:.2f}x, far from {claimed:.2f}x"
    if measured >= 0.9:
        return f"not reproduced: no real difference ({measured:.2f}x against {claimed:.2f}x)"
    return f"not reproduced, reversed: REST faster by {1 / measured:.2f}x (claimed gRPC {claimed:.2f}x)"


def client_times(client: dict[str, Any] | None) -> dict[tuple[str, str, str], dict[str, float]]:
    """(target, op, protocol) -> per-call latency stats in ms, from the pytest-benchmark JSON."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    for bench in (client or {}).get("benchmarks", []):
        info, stats = bench["extra_info"], bench["stats"]
        p99 = stats.get("percentiles_ms", {}).get("p99", stats["max"] * 1000)
        out[(info["target"], info["op"], info["protocol"])] = {
            "median_ms": stats["median"] * 1000,
            "p99_ms": p99,
            "rounds": stats["rounds"],
            "loadavg": info.get("loadavg_before"),
        }
    return out


def client_ratio(times: dict[tuple[str, str, str], dict[str, float]], target: str, op: str) -> float | None:
    """gRPC over REST for one call at a time: REST's median time divided by gRPC's."""
    rest, grpc = times.get((target, op, "rest")), times.get((target, op, "grpc"))
    return ratio(rest["median_ms"] if rest else None, grpc["median_ms"] if grpc else None)


def client_total(times: dict[tuple[str, str, str], dict[str, float]], target: str, ops: Iterable[str]) -> float | None:
    rest = grpc = 0.0
    for op in ops:
        a, b = times.get((target, op, "rest")), times.get((target, op, "grpc"))
        if a is None or b is None:
            return None
        rest += a["median_ms"]
        grpc += b["median_ms"]
    return rest / grpc if grpc else None


def ceiling_pairs(data: dict[str, Any]) -> dict[str, dict[int, tuple[float, float]]]:
    """'target op protocol' -> concurrency -> (service, ceiling), each the best of its repeats."""
    best: dict[Key, float] = {}
    for point in data.get("points", []):
        if "failed" in point or point.get("cross_check"):
            continue
        key = (point["target"], point["op"], point["protocol"], point["concurrency"])
        best[key] = max(best.get(key, 0.0), point["rps"])
    ceiling = reference(data, "ceiling", None)
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for (target, op, protocol, c), value in sorted(best.items()):
        limit = best.get((ceiling or "", "point_query", protocol, c))
        if data["targets"].get(target, {}).get("kind") == "service" and limit:
            out.setdefault(f"{target} {op} {protocol}", {})[c] = (value, limit)
    return out


def ceiling_ratio(pairs: dict[int, tuple[float, float]], concurrencies: Iterable[int]) -> float:
    """What bench-check guards: the service over its ceiling as a ratio of totals over ``concurrencies``.
    Best repeats, because interference only ever slows a point down; totals even out the rest."""
    chosen = list(concurrencies)
    return sum(pairs[c][0] for c in chosen) / sum(pairs[c][1] for c in chosen)


CLAIM_POINT, CLAIM_AVERAGE = CLAIMS["point_query"], CLAIMS["average"]
