"""The benchmark harness's arithmetic, from fixture data (no servers, no timing): the report's ratios come
from medians and totals, never a mean of per-operation ratios, and bench-check fails a ratio that fell."""

from __future__ import annotations

from typing import Any

from benchmarks import analysis, check, report

TARGETS: dict[str, dict[str, Any]] = {
    "ceiling": {"kind": "ceiling", "backend": None, "env": {}, "server_cpus": "0", "generator_cpus": "1"},
    "sqlite": {"kind": "service", "backend": "sqlite", "env": {}, "server_cpus": "0", "generator_cpus": "1"},
}


def point(target: str, op: str, protocol: str, rps: float, rep: int = 1) -> dict[str, Any]:
    return {
        "target": target,
        "kind": TARGETS[target]["kind"],
        "backend": TARGETS[target]["backend"],
        "op": op,
        "protocol": protocol,
        "concurrency": 16,
        "rep": rep,
        "generator": "h2load",
        "rps": rps,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "errors": 0,
        "exhausted": False,
        "loadavg_before": [0.1, 0.1, 0.1],
        "cpu": {"other_cores": 0.0},
        "command": ["h2load"],
    }


def results(scale_service: float = 1.0) -> dict[str, Any]:
    points = [
        point("ceiling", "point_query", "rest", 10_000),
        point("ceiling", "point_query", "grpc", 4_000),
        # Point query: two repeats each; the medians are 1,000 (REST) and 500 (gRPC).
        point("sqlite", "point_query", "rest", 900 * scale_service, 1),
        point("sqlite", "point_query", "rest", 1_100 * scale_service, 2),
        point("sqlite", "point_query", "grpc", 400 * scale_service, 1),
        point("sqlite", "point_query", "grpc", 600 * scale_service, 2),
        # Login: gRPC twice as fast as REST.
        point("sqlite", "login", "rest", 50 * scale_service),
        point("sqlite", "login", "grpc", 100 * scale_service),
    ]
    return {
        "date": "2026-12-01T15:30:00+00:00",
        "command": "python -m benchmarks.run",
        "profile": {"name": "full", "duration": 2, "warm_up": 0.5, "repeats": 2},
        "machine": {
            "cpu": "test CPU",
            "cores": 2,
            "memory_gib": 1.0,
            "kernel": "6",
            "loadavg": [0.0, 0.0, 0.0],
            "versions": {"python": "3.11"},
            "mariadb": "-",
            "commit": "abc",
        },
        "targets": TARGETS,
        "points": points,
    }


def test_per_operation_ratios_divide_the_medians_of_the_repeats() -> None:
    found = analysis.figures(results()["points"])

    assert analysis.grpc_over_rest(found, "sqlite", "point_query", 16) == 0.5
    assert analysis.to_reference(found, ("sqlite", "point_query", "rest", 16), "ceiling") == 0.1


def test_the_average_is_a_ratio_of_totals_not_a_mean_of_ratios() -> None:
    found = analysis.figures(results()["points"])
    # REST: 1/1000 + 1/50 = 0.021 s for one of each; gRPC: 1/500 + 1/100 = 0.012 s -> 1.75x.
    # The mean of the per-operation ratios (0.5x and 2x) would claim 1.25x.
    total = analysis.total_ratio(found, "sqlite", 16, ["point_query", "login"])

    assert total is not None
    assert round(total, 3) == 1.75


def test_the_report_prints_the_measured_ratios_beside_the_claims() -> None:
    text = report.render(results(), None, None)

    assert "0.50x" in text  # the point query, gRPC over REST
    assert "1.75x" in text  # one of each operation, from totals
    assert "1.25x" not in text
    assert "not reproduced, reversed: REST faster by 2.00x (claimed gRPC 6.30x)" in text
    assert "| point_query | 1,000 | 500 | 0.50x | 10% | 12% |" in text
    assert "| login | 50 | 100 | 2.00x | 0.5% | 2.5% |" in text


def test_bench_check_fails_a_ratio_to_its_ceiling_that_fell_by_more_than_a_quarter() -> None:
    previous = results()
    _, slight = check.compare(results(scale_service=0.9), previous, 0.25)
    _, large = check.compare(results(scale_service=0.7), previous, 0.25)

    assert slight == []
    assert len(large) == 4  # point query and login, each protocol: every service figure fell 30%
    assert large[0].startswith("sqlite login grpc: ")
