"""results.json (and the pytest-benchmark JSON beside it) -> report.md and the charts, in the same folder.

python -m benchmarks.report benchmarks/results/<date>     # regenerate a report from its raw data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks import analysis as an
from benchmarks.analysis import CLAIM_AVERAGE, CLAIM_POINT, Figure
from benchmarks.plan import BESIDE_CONNECTIONS, BESIDE_P99_GOAL_MS, HASHING_OPS, OPS, SCALE_GOAL, SCALE_TARGETS
from py_app.infra.db import MYSQL_POOL, MYSQL_READ_POOL

HEADLINE_C = 16
NA = "-"
TO = "\u2013"  # an en dash between the low and high of a range


def _read(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def rps(value: float | None) -> str:
    return NA if value is None else f"{value:,.0f}"


def ms(value: float | None) -> str:
    if value is None:
        return NA
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def x(value: float | None) -> str:
    return NA if value is None else f"{value:.2f}x"


def pct(value: float | None) -> str:
    if value is None:
        return NA
    return f"{100 * value:.1f}%" if value < 0.1 else f"{100 * value:.0f}%"


def _range(figure: Figure | None) -> str:
    if figure is None:
        return NA
    if figure.repeats == 1:
        return rps(figure.rps)
    return f"{rps(figure.rps_low)}{TO}{rps(figure.rps_high)}"


def _flag(figure: Figure | None) -> str:
    if figure is None:
        return ""
    marks = []
    if figure.errors:
        marks.append(f"{figure.errors} errors")
    if figure.exhausted:
        marks.append("bodies ran out")
    return f" ({', '.join(marks)})" if marks else ""


class Context:
    """The run's data and what every section derives from it."""

    def __init__(
        self,
        data: dict[str, Any],
        micro: dict[str, Any] | None,
        client: dict[str, Any] | None,
        soak: dict[str, Any] | None = None,
    ) -> None:
        self.data = data
        self.micro = micro
        self.client = client
        self.soak = soak
        self.found = an.figures(data.get("points", []))
        self.cross = an.figures(data.get("points", []), cross_check=True)
        self.times = an.client_times(client)
        self.services = [name for name in an.service_targets(data) if any(k[0] == name for k in self.found)]
        self.ceiling = an.reference(data, "ceiling", None)
        self.cs = an.concurrencies(self.found)
        self.headline_c = HEADLINE_C if HEADLINE_C in self.cs else (self.cs[-1] if self.cs else HEADLINE_C)

    def backend(self, target: str) -> str | None:
        backend: str | None = self.data["targets"][target]["backend"]
        return backend

    def baseline(self, target: str) -> str | None:
        return an.reference(self.data, "baseline", self.backend(target))

    def get(self, target: str | None, op: str, protocol: str, c: int) -> Figure | None:
        return None if target is None else self.found.get((target, op, protocol, c))


# -- sections --------------------------------------------------------------------------------------


def verdict_section(ctx: Context) -> list[str]:
    lines = [
        '## The claim: "gRPC is 2.78x faster than REST on average, 6.30x for point queries"',
        "",
        "gRPC over REST (above 1: gRPC faster). Point query: the ratio of the two medians. On average: a",
        "ratio of totals, the time one request of each operation takes over REST divided by the same over",
        'gRPC (never a mean of per-operation ratios); "without hashing" leaves out create and login, whose',
        "cost is one argon2id hash on either protocol.",
        "",
        "| method | target | concurrency | point query | verdict (6.30x) | on average | verdict (2.78x) |"
        " average without hashing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target in ctx.services:
        ops = an.ops_measured(ctx.found, target)
        for c in ctx.cs:
            point = an.grpc_over_rest(ctx.found, target, "point_query", c)
            total = an.total_ratio(ctx.found, target, c, ops)
            light = an.total_ratio(ctx.found, target, c, an.non_hashing(ops))
            lines.append(
                f"| load (h2load, varied-load) | {target} | {c} | {x(point)} | {an.verdict(point, CLAIM_POINT)} |"
                f" {x(total)} | {an.verdict(total, CLAIM_AVERAGE)} | {x(light)} |"
            )
    for target in ctx.services:
        ops = [op for op in OPS if (target, op, "rest") in ctx.times and (target, op, "grpc") in ctx.times]
        if not ops:
            continue
        point = an.client_ratio(ctx.times, target, "point_query")
        total = an.client_total(ctx.times, target, ops)
        light = an.client_total(ctx.times, target, an.non_hashing(ops))
        lines.append(
            f"| one call at a time (httpx, grpc stub) | {target} | 1 | {x(point)} | {an.verdict(point, CLAIM_POINT)} |"
            f" {x(total)} | {an.verdict(total, CLAIM_AVERAGE)} | {x(light)} |"
        )
    if ctx.ceiling:
        lines += ["", "The stacks themselves, trivial handlers serving the same record from memory (ceilings):", ""]
        lines += ["| concurrency | REST ceiling req/s | gRPC ceiling req/s | gRPC over REST |", "|---|---|---|---|"]
        for c in ctx.cs:
            rest, grpc = ctx.get(ctx.ceiling, "point_query", "rest", c), ctx.get(ctx.ceiling, "point_query", "grpc", c)
            lines.append(
                f"| {c} | {_range(rest)} | {_range(grpc)} | {x(an.ratio(grpc and grpc.rps, rest and rest.rps))} |"
            )
        one = an.client_ratio(ctx.times, ctx.ceiling, "point_query")
        if one is not None:
            lines.append(f"| one call at a time | | | {x(one)} |")
    return lines


def headline_rows(ctx: Context, target: str, c: int) -> list[str]:
    baseline = ctx.baseline(target)
    rows = [
        "| operation | REST req/s | gRPC req/s | gRPC over REST | REST / ceiling | gRPC / ceiling |"
        " REST / baseline | gRPC / baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op in an.ops_measured(ctx.found, target):
        rest, grpc = ctx.get(target, op, "rest", c), ctx.get(target, op, "grpc", c)
        cells = [
            op,
            rps(rest and rest.rps) + _flag(rest),
            rps(grpc and grpc.rps) + _flag(grpc),
            x(an.grpc_over_rest(ctx.found, target, op, c)),
        ]
        for ref in (ctx.ceiling, baseline):
            for protocol in ("rest", "grpc"):
                cells.append(pct(an.to_reference(ctx.found, (target, op, protocol, c), ref)))
        rows.append("| " + " | ".join(cells) + " |")
    ops = an.ops_measured(ctx.found, target)
    rows.append(f"| **one of each (totals)** | | | **{x(an.total_ratio(ctx.found, target, c, ops))}** | | | | |")
    for label, ref in (("ceiling", ctx.ceiling), ("baseline", baseline)):
        if ref:
            rest, grpc = ctx.get(ref, "point_query", "rest", c), ctx.get(ref, "point_query", "grpc", c)
            rows.append(
                f"| *{label}: {ref} (point query)* | {rps(rest and rest.rps)} | {rps(grpc and grpc.rps)} |"
                f" {x(an.ratio(grpc and grpc.rps, rest and rest.rps))} | | | | |"
            )
    return rows


def headline_section(ctx: Context) -> list[str]:
    lines = []
    for target in ctx.services:
        c = ctx.headline_c
        lines += [
            f"## Headline: {target}, c={c} (median of repeats)",
            "",
            "Ceiling: a trivial handler on the same stack, the record from memory. Baseline: the reference-style",
            "server (Flask/gunicorn with PyJWT, sync grpc on a thread pool without auth), a point query only:",
            "every operation is compared with that point query.",
            "",
            *headline_rows(ctx, target, c),
            "",
        ]
    return lines


def load_section(ctx: Context) -> list[str]:
    lines = [
        "## Load: throughput and latency per operation, protocol and concurrency",
        "",
        "req/s: the range over the repeats; p50 and p99 in ms, medians over the repeats.",
        "",
    ]
    for target in [*ctx.services, *[t for t in ctx.data["targets"] if t not in ctx.services]]:
        ops = [op for op in OPS if any(k[0] == target and k[1] == op for k in ctx.found)]
        if not ops:
            continue
        info = ctx.data["targets"][target]
        env = ", ".join(f"{k}={v}" for k, v in info["env"].items()) or "defaults"
        lines += [
            f"### {target} ({info['kind']}; {info['backend'] or 'in memory'}; {env};"
            f" server on cpu {info['server_cpus']}, generator on cpu {info['generator_cpus']})",
            "",
        ]
        header = "| op | protocol | " + " | ".join(f"c={c} req/s | p50 | p99" for c in ctx.cs) + " |"
        lines += [header, "|---|---|" + "---|---|---|" * len(ctx.cs)]
        for op in ops:
            for protocol in ("rest", "grpc"):
                cells = [op, protocol]
                for c in ctx.cs:
                    fig = ctx.get(target, op, protocol, c)
                    cells += [_range(fig) + _flag(fig), ms(fig and fig.p50_ms), ms(fig and fig.p99_ms)]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["![throughput](throughput.png)", "", "![latency](latency.png)", "", "![ratios](ratios.png)", ""]
    return lines


def scale_section(ctx: Context) -> list[str]:
    """Two workers over one, both with the generator on the same two cores (``--scale``)."""
    one, two = SCALE_TARGETS
    if not any(k[0] == two for k in ctx.found) or not any(k[0] == one for k in ctx.found):
        return []
    lines = [
        "## Scale: two workers against one",
        "",
        f"`{two}` (ARCANA_WORKERS=2) over `{one}` (one worker), each with the load generator on the same two"
        " cores as the server, so a second worker competes with the generator as any client on the machine"
        f" would. The goal is {SCALE_GOAL:g}x (issue 12.5). Medians of the repeats.",
        "",
        "| op | protocol | concurrency | 1 worker req/s | 2 workers req/s | 2 over 1 | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for op in OPS:
        for protocol in ("rest", "grpc"):
            for c in ctx.cs:
                single, double = ctx.get(one, op, protocol, c), ctx.get(two, op, protocol, c)
                if single is None or double is None:
                    continue
                ratio = double.rps / single.rps if single.rps else None
                met = NA if ratio is None else ("met" if ratio >= SCALE_GOAL else "not met")
                lines.append(
                    f"| {op} | {protocol} | {c} | {rps(single.rps)} | {rps(double.rps)} | {x(ratio)} | {met} |"
                )
    return [*lines, ""]


HASH_LIMIT_GOAL = 0.85  # issue 12.6: register and login at >= 85% of the argon2 limit


def hashing_section(ctx: Context) -> list[str]:
    """Create and login against the argon2 limit, and the point queries sent beside them (issue 12.6)."""
    micro = an.hash_seconds(ctx.micro)
    reads = an.beside(ctx.data.get("points", []))
    keys = sorted(
        (key for key in ctx.found if key[1] in HASHING_OPS),
        key=lambda k: (k[0], OPS.index(k[1]), ("rest", "grpc").index(k[2]), k[3]),
    )
    if not keys:
        return []
    rate = ctx.data["profile"].get("reads_beside_hashing", 0)
    lines = [
        "## Hashing at its limit, and reads beside it",
        "",
        "Create and login are one argon2id hash each, so their limit is the server's cores over one core's hash"
        " time: the median of the hash probes (12 hashes at the service's parameters, one thread pinned to the"
        " server's core, right before the target's first hashing point of each round), or where a run has none"
        " the micro suite's"
        + (f" ({_time(micro)}, `{an.HASH_BENCHMARK}`, unpinned)" if micro else "")
        + f". The goal is {HASH_LIMIT_GOAL:.0%} of it while point queries beside the hashing keep p99 under"
        f" {BESIDE_P99_GOAL_MS:g} ms (issue 12.6)"
        + (
            f": a second h2load sends {rate} point queries a second ({BESIDE_CONNECTIONS} connections at"
            " their share of the rate) on the same protocol through the whole of each point, warm-up included."
            if rate
            else "; this run sent no reads beside them."
        ),
        " Throughput: the median of the repeats; reads beside: the worst p99 of the repeats.",
        "",
        "| target | op | protocol | concurrency | req/s | hash | argon2 limit | of the limit | reads beside p50 |"
        " p99 | read errors | goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in keys:
        target, op, protocol, c = key
        figure = ctx.found[key]
        seconds = an.probed_hash_seconds(ctx.data, target) or micro
        limit = an.server_cores(ctx.data, target) / seconds if seconds else None
        share = an.ratio(figure.rps, limit)
        beside = reads.get(key, [])
        p50 = an.median(entry["p50_ms"] for entry in beside)
        p99s = [entry["p99_ms"] for entry in beside if entry["p99_ms"] is not None]
        p99 = max(p99s) if p99s else None
        errors = sum(entry["errors"] for entry in beside)
        if share is None:
            verdict = NA
        elif share < HASH_LIMIT_GOAL or (beside and (p99 is None or p99 >= BESIDE_P99_GOAL_MS)):
            verdict = "not met"
        else:
            verdict = "met" if beside else "reads not measured"
        lines.append(
            f"| {target} | {op} | {protocol} | {c} | {rps(figure.rps)}{_flag(figure)} |"
            f" {_time(seconds) if seconds else NA} | {rps(limit) if limit else NA} | {pct(share)} |"
            f" {ms(p50) if beside else NA} | {ms(p99) if beside else NA} | {errors if beside else NA} | {verdict} |"
        )
    return [*lines, ""]


def reference_section(ctx: Context) -> list[str]:
    """Every service figure over its ceiling and its baseline, at every concurrency."""
    lines = [
        "## Every figure over its ceiling and its baseline",
        "",
        "Service throughput divided by the trivial handler's (ceiling) and by the reference-style server's",
        "point query (baseline, same backend), same protocol and concurrency, medians of the repeats.",
        "`make bench-check` guards the ceiling ratios (per op and protocol, best repeats, totalled over concurrency).",
        "",
    ]
    for target in ctx.services:
        baseline = ctx.baseline(target)
        header = "| op | protocol | " + " | ".join(f"c={c} / ceiling | c={c} / baseline" for c in ctx.cs) + " |"
        lines += [f"### {target} (baseline: {baseline or 'none'})", "", header, "|---|---|" + "---|---|" * len(ctx.cs)]
        for op in an.ops_measured(ctx.found, target):
            for protocol in ("rest", "grpc"):
                cells = [op, protocol]
                for c in ctx.cs:
                    key = (target, op, protocol, c)
                    cells += [
                        pct(an.to_reference(ctx.found, key, ctx.ceiling)),
                        pct(an.to_reference(ctx.found, key, baseline)),
                    ]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def client_section(ctx: Context) -> list[str]:
    if not ctx.times:
        return []
    suite = ctx.data.get("suites", {}).get("client", {})
    lines = [
        "## One call at a time from Python clients (the reference method)",
        "",
        "pytest-benchmark: warm-up, calibrated rounds; httpx (HTTP/1.1, keep-alive) for REST, the generated",
        "grpc stub for gRPC, on the generator's core. Per-call latency in ms; gRPC over REST = REST median /",
        f"gRPC median. Command: `{suite.get('command', '')}`",
        "",
        "| target | op | REST median | REST p99 | gRPC median | gRPC p99 | gRPC over REST | rounds (REST/gRPC) |"
        " loadavg before (REST/gRPC) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    targets = list(dict.fromkeys(key[0] for key in ctx.times))
    for target in targets:
        for op in OPS:
            rest, grpc = ctx.times.get((target, op, "rest")), ctx.times.get((target, op, "grpc"))
            if not rest and not grpc:
                continue
            lines.append(
                f"| {target} | {op} | {ms(rest and rest['median_ms'])} | {ms(rest and rest['p99_ms'])} |"
                f" {ms(grpc and grpc['median_ms'])} | {ms(grpc and grpc['p99_ms'])} |"
                f" {x(an.client_ratio(ctx.times, target, op))} |"
                f" {rest and rest['rounds']}/{grpc and grpc['rounds']} |"
                f" {_load(rest)}/{_load(grpc)} |"
            )
    return [*lines, ""]


def _load(timed: dict[str, Any] | None) -> str:
    value = timed and timed.get("loadavg")
    return NA if value is None else f"{value:.2f}"


def cross_section(ctx: Context) -> list[str]:
    crossed = [p for p in ctx.data.get("points", []) if p.get("cross_check") and "failed" not in p]
    if not crossed:
        return []
    lines = [
        "## Generator cross-check",
        "",
        "The varied-body operations (create, refresh) run on varied-load; the same fixed-body call through it,",
        "through wrk and through h2load (medians of the repeats) shows what the choice of generator does.",
        "",
        "| target | op | protocol | c | h2load req/s | other generator | its req/s | other / h2load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_generator: dict[tuple[str, str, str, int, str], list[dict[str, Any]]] = {}
    for p in crossed:
        by_generator.setdefault((p["target"], p["op"], p["protocol"], p["concurrency"], p["generator"]), []).append(p)
    for (target, op, protocol, c, generator), reps in sorted(by_generator.items()):
        fig = an.figures([{**rep, "cross_check": False} for rep in reps])[(target, op, protocol, c)]
        base = ctx.found.get((target, op, protocol, c))
        lines.append(
            f"| {target} | {op} | {protocol} | {c} | {_range(base)} | {generator} | {_range(fig)} |"
            f" {x(an.ratio(fig.rps, base and base.rps))} |"
        )
    return [*lines, ""]


def micro_section(ctx: Context) -> list[str]:
    if not ctx.micro:
        return []
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for bench in ctx.micro.get("benchmarks", []):
        params = bench.get("params") or {}
        impl = params.get("impl") or params.get("mode") or bench.get("param") or bench["name"]
        groups.setdefault(bench["group"] or bench["name"], {})[str(impl)] = bench
    suite = ctx.data.get("suites", {}).get("micro", {})
    lines = [
        "## Micro: the Rust core against PyJWT and argon2-cffi",
        "",
        f"pytest-benchmark medians, this run. Command: `{suite.get('command', '')}`",
        "(benchmarks/micro/report.py still writes the micro suite's own REPORT.md from the same JSON).",
        "",
        "| group | implementation | median | against | speed-up |",
        "|---|---|---|---|---|",
    ]
    for group, impls in sorted(groups.items()):
        if group.startswith(("event-loop", "auth path")):
            continue
        reference = next((impls[name] for name in ("pyjwt", "argon2-cffi") if name in impls), None)
        for impl, bench in sorted(impls.items()):
            median = bench["stats"]["median"]
            against = speed = ""
            if reference is not None and bench is not reference:
                against = reference["params"].get("impl", "")
                speed = x(reference["stats"]["median"] / median)
            lines.append(f"| {group} | {impl} | {_time(median)} | {against} | {speed} |")
    path = next((impls for group, impls in groups.items() if group.startswith("auth path")), {})
    bare, step = path.get("rust verify_access (bare)"), path.get("loop step (no-op)")
    if path and bare and step:
        lines += [
            "",
            "One token verify through the full authentication path (`AuthService.authenticate` as `bootstrap.build`",
            "wires it, SQLite), beside the bare Rust verify; async rows include one `run_until_complete` step:",
            "",
            "| mode | median | less the loop step | times the bare verify |",
            "|---|---|---|---|",
        ]
        for mode, bench in path.items():
            median = bench["stats"]["median"]
            if mode.startswith("authenticate"):
                net = median - step["stats"]["median"]
                lines.append(f"| {mode} | {_time(median)} | {_time(net)} | {x(net / bare['stats']['median'])} |")
            else:
                lines.append(f"| {mode} | {_time(median)} | | |")
    loop = groups.get("event-loop max lag while 8 hashes run", {})
    if loop:
        lines += [
            "",
            "Event-loop lag of a 1 ms heartbeat while 8 hashes run (the service's adapter is `service`):",
            "",
            "| mode | worst max lag | median max lag | median p99 lag |",
            "|---|---|---|---|",
        ]
        for mode, bench in loop.items():
            info = bench.get("extra_info", {})
            lines.append(
                f"| {mode} | {ms(info.get('max_lag_ms'))} ms | {ms(info.get('median_max_lag_ms'))} ms |"
                f" {ms(info.get('p99_lag_ms'))} ms |"
            )
    return [*lines, ""]


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.2f} µs"


def profile_section(ctx: Context) -> list[str]:
    found = [entry for entry in ctx.data.get("profiles", []) if "summary" in entry]
    if not found:
        return []
    lines = [
        "## Profiles (py-spy, GIL samples, c=16)",
        "",
        "The server under load; open the `.speedscope.json` files at https://www.speedscope.app.",
        "Shares are of the samples in which a thread held the GIL (Python time).",
        "",
    ]
    for entry in found:
        summary = entry["summary"]
        lines += [
            f"### {entry['protocol']} {entry['op']} on {entry['target']} ({summary['samples']} samples,"
            f" {rps(entry.get('rps_under_profiler'))} req/s under the profiler):"
            f" [{entry['file']}](profiles/{entry['file']})",
            "",
            "| top self time | share | | by package (self) | share |",
            "|---|---|---|---|---|",
        ]
        for index in range(max(len(summary["self"]), len(summary["packages"]))):
            own = summary["self"][index] if index < len(summary["self"]) else ["", ""]
            package = summary["packages"][index] if index < len(summary["packages"]) else ["", ""]
            lines.append(f"| `{own[0]}` | {own[1]}% | | {package[0]} | {package[1]}{'%' if package[1] != '' else ''} |")
        lines += ["", "Top inclusive:", ""]
        lines += [f"- {share}% `{where}`" for where, share in summary["inclusive"][:8]]
        lines.append("")
    return lines


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def soak_section(ctx: Context) -> list[str]:
    """The soak's figures (soak.json, written by tests/faults/test_soak.py) and its chart."""
    suite = ctx.data.get("suites", {}).get("soak")
    if ctx.soak is None:
        if suite is None:
            return []
        return ["## Soak", "", f"The soak wrote no figures (exit {suite['returncode']}): `{suite['command']}`.", ""]
    s = ctx.soak
    held = s["db_connections"]
    unexpected = ", ".join(f"{what}: {count}" for what, count in sorted(s["unexpected"].items())) or "none"
    if suite is None:
        outcome = "Its figures were copied here from a separate run (`make soak`), whose exit code is not recorded."
    elif suite["returncode"] == 0:
        outcome = "The soak's assertions held."
    else:
        outcome = f"The soak FAILED (exit {suite['returncode']}); the figures say where."
    lines = [
        "## Soak",
        "",
        f"{s['seconds']:g} s of mixed load ({s['warm_up_seconds']:g} s warm-up) from {s['clients']} clients, half over"
        f" REST and half over gRPC, each looping register-once, login, me, read, write, refresh, me, against a"
        f" {s['workers']}-worker server on {s['database']}, at {s['when']}"
        + (f": `{suite['command']}`" if suite else "")
        + f". {outcome} Server and clients share the machine's cores, so the rates are the machine's, not a"
        " ceiling.",
        "",
        "![soak](soak.png)",
        "",
        "| figure | value |",
        "|---|---|",
        f"| calls | {s['calls']:,} ({s['calls_per_second']:,.0f}/s after warm-up) |",
        f"| unexpected answers (5xx, UNKNOWN, anything not acknowledged) | {unexpected} |",
        f"| server RSS, all processes: after warm-up → end | {_mib(s['rss_after_warm_up'])} → {_mib(s['rss_end'])}"
        f" ({100 * s['rss_growth']:+.1f}%; the limit is +10%) |",
        f"| database connections: idle before, peak, after | {held['idle_before']}, {held['peak']},"
        f" {held['idle_after']} (the pools keep up to {MYSQL_POOL + MYSQL_READ_POOL} idle per process) |",
        f"| transactions left open after the load | {s['open_transactions_after']} |",
        "",
        "| call | count | p50 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    for kind, count in s["by_kind"].items():
        latency = s["latency_ms"].get(kind, {})
        lines.append(f"| {kind} | {count:,} | {ms(latency.get('p50'))} | {ms(latency.get('p99'))} |")
    return [*lines, ""]


def machine_section(ctx: Context) -> list[str]:
    m = ctx.data["machine"]
    versions = ", ".join(f"{name} {value}" for name, value in m["versions"].items())
    points = [p for p in ctx.data.get("points", []) if "cpu" in p]
    other = [p["cpu"]["other_cores"] for p in points]
    busy = sum(1 for value in other if value >= 0.25)
    lines = [
        "## Machine, versions, conditions",
        "",
        f"- Date: {ctx.data['date']} (UTC); total run time {ctx.data.get('elapsed_s', '?')} s",
        f"- Command: `{ctx.data['command']}` at commit {m['commit']}",
        f"- Machine: {m['cpu']}, {m['cores']} cores (nproc), {m['memory_gib']} GiB, Linux {m['kernel']};"
        f" load average at start {', '.join(f'{v:.2f}' for v in m['loadavg'])}",
        f"- MariaDB server: {m['mariadb']} (not pinned: it runs on either core while it serves the service)",
        f"- Versions: {versions}",
        "- Pinning (`taskset`): each target's server and generator cores are named in its load table (by default"
        " server on cpu 0, generator on cpu 1; the Python-client suite on cpu 1); the micro suite is not pinned.",
    ]
    if other:
        lines.append(
            f"- Other processes' CPU during the points (not the server, the generator or the runner): median"
            f" {sorted(other)[len(other) // 2]:.2f} cores, max {max(other):.2f}; {busy} of {len(other)} points saw"
            " more than a quarter of a core taken by others. Per point in the appendix."
        )
    return [*lines, ""]


def appendix(ctx: Context) -> list[str]:
    lines = [
        "## Appendix: every point, in run order",
        "",
        "loadavg: the 1-minute load average just before the point; other: cores used by other processes during it.",
        "",
        "| # | target | op | protocol | c | rep | generator | req/s | p50 | p99 | errors | loadavg | other |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    commands = []
    for index, p in enumerate(ctx.data.get("points", []), 1):
        if "failed" in p:
            lines.append(
                f"| {index} | {p['target']} | {p['op']} | {p['protocol']} | {p['concurrency']} | {p['rep']} |"
                f" | failed: {p['failed'][:80]} | | | | | |"
            )
            continue
        errors = p["errors"] + p.get("sample_errors", 0)
        lines.append(
            f"| {index} | {p['target']} | {p['op']} | {p['protocol']} | {p['concurrency']} | {p['rep']} |"
            f" {p['generator']} | {rps(p['rps'])} | {ms(p['p50_ms'])} | {ms(p['p99_ms'])} | {errors} |"
            f" {p['loadavg_before'][0]:.2f} | {p['cpu']['other_cores']:.2f} |"
        )
        commands.append(f"{index}: {' '.join(p['command'])}")
    lines += [
        "",
        "<details><summary>The exact generator command of every point</summary>",
        "",
        "`$USER_TOKEN` and `$ADMIN_TOKEN` are the access tokens of bench_user and bench_admin from real logins at the",
        "start of the run; `$SCRATCH` is var/bench/<run>/ (bodies, frames and logs, not kept).",
        "",
        "```",
        *commands,
        "```",
        "",
        "</details>",
    ]
    return lines


def _hashing_seconds(profile: dict[str, Any]) -> str:
    seconds = profile.get("hashing_duration") or 0
    return f" ({seconds:g} s for create and login)" if seconds and seconds != profile["duration"] else ""


def render(
    data: dict[str, Any],
    micro: dict[str, Any] | None,
    client: dict[str, Any] | None,
    soak: dict[str, Any] | None = None,
) -> str:
    ctx = Context(data, micro, client, soak)
    stamp = data["date"][:16].replace("T", " ")
    lines = [
        f"# Arcana benchmarks, {stamp} UTC ({data['profile']['name']})",
        "",
        f"Raw data: [results.json](results.json). Command: `{data['command']}`. Profile: "
        f"{data['profile']['duration']:g} s of load per point"
        f"{_hashing_seconds(data['profile'])} after {data['profile']['warm_up']:g} s of warm-up, "
        f"{data['profile']['repeats']} interleaved repeat(s), concurrency {', '.join(map(str, ctx.cs))}.",
        "",
        *(  # a run of other suites only (e.g. `--suite soak`) has no load points to compare
            [
                *verdict_section(ctx),
                "",
                *headline_section(ctx),
                *scale_section(ctx),
                *hashing_section(ctx),
                *load_section(ctx),
                *reference_section(ctx),
            ]
            if ctx.found
            else []
        ),
        *client_section(ctx),
        *cross_section(ctx),
        *micro_section(ctx),
        *profile_section(ctx),
        *soak_section(ctx),
        *machine_section(ctx),
        *appendix(ctx),
    ]
    return "\n".join(lines) + "\n"


def headline_text(data: dict[str, Any]) -> str:
    """A few lines for the terminal: the verdicts at the headline concurrency."""
    ctx = Context(data, None, None)
    out = []
    for target in ctx.services:
        c = ctx.headline_c
        ops = an.ops_measured(ctx.found, target)
        point = an.grpc_over_rest(ctx.found, target, "point_query", c)
        total = an.total_ratio(ctx.found, target, c, ops)
        out.append(f"{target} c={c}: point query gRPC/REST {x(point)}: {an.verdict(point, CLAIM_POINT)}")
        out.append(f"{target} c={c}: on average (totals) {x(total)}: {an.verdict(total, CLAIM_AVERAGE)}")
    return "\n".join(out)


def summary(folder: Path, link: str) -> str:
    """The Markdown the READMEs quote: verdicts, the SQLite headline table, the conditions; ``link`` to the report."""
    data = _read(folder, "results.json")
    if data is None:
        raise SystemExit(f"no results.json in {folder}")
    ctx = Context(data, _read(folder, "micro.json"), _read(folder, "client.json"))
    m = data["machine"]
    other = sorted(p["cpu"]["other_cores"] for p in data.get("points", []) if "cpu" in p)
    median = other[len(other) // 2] if other else 0.0
    busy = sum(1 for value in other if value >= 0.25)
    effect = "absolute figures are low and noisy" if median >= 0.5 else "some points are noisy"
    lines = [
        f"Run of {data['date'][:16].replace('T', ' ')} UTC on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB"
        f" ([report]({link}/report.md), [raw data]({link}/results.json)). The machine was shared: other processes"
        f" used a median of {median:.2f} of its {m['cores']} cores during the points ({busy} of {len(other)} points"
        f" saw more than a quarter of a core taken), so {effect}; the ratios within the run are what to read.",
        "",
        "| measured gRPC over REST | " + " | ".join(f"c={c}" for c in ctx.cs) + " | one call at a time |",
        "|---|" + "---|" * (len(ctx.cs) + 1),
    ]
    for target in ctx.services:
        ops = an.ops_measured(ctx.found, target)
        timed = [op for op in ops if (target, op, "rest") in ctx.times and (target, op, "grpc") in ctx.times]
        point = [x(an.grpc_over_rest(ctx.found, target, "point_query", c)) for c in ctx.cs]
        total = [x(an.total_ratio(ctx.found, target, c, ops)) for c in ctx.cs]
        lines.append(
            f"| {target}: point query (claimed 6.30x) | "
            + " | ".join(point)
            + f" | {x(an.client_ratio(ctx.times, target, 'point_query'))} |"
        )
        lines.append(
            f"| {target}: on average, from totals (claimed 2.78x) | "
            + " | ".join(total)
            + f" | {x(an.client_total(ctx.times, target, timed))} |"
        )
    if ctx.ceiling:
        ceiling = [x(an.grpc_over_rest(ctx.found, ctx.ceiling, "point_query", c)) for c in ctx.cs]
        lines.append(
            "| trivial handlers (ceilings) | "
            + " | ".join(ceiling)
            + f" | {x(an.client_ratio(ctx.times, ctx.ceiling, 'point_query'))} |"
        )
    target = "sqlite" if "sqlite" in ctx.services else (ctx.services[0] if ctx.services else None)
    if target:
        lines += ["", f"{target}, c={ctx.headline_c}, req/s (medians of the repeats):", ""]
        lines += headline_rows(ctx, target, ctx.headline_c)
    return "\n".join(lines) + "\n"


def write(folder: Path) -> Path:
    data = _read(folder, "results.json")
    if data is None:
        raise SystemExit(f"no results.json in {folder}")
    micro, client, soak = _read(folder, "micro.json"), _read(folder, "client.json"), _read(folder, "soak.json")
    try:
        from benchmarks import charts

        charts.render(folder, Context(data, micro, client, soak))
    except ImportError as exc:  # matplotlib is a dev dependency; the report still stands without charts
        print(f"charts skipped: {exc}")
    out = folder / "report.md"
    out.write_text(render(data, micro, client, soak), encoding="utf-8")
    return out


if __name__ == "__main__":
    if sys.argv[1] == "--summary":  # python -m benchmarks.report --summary DIR LINK: what the READMEs quote
        print(summary(Path(sys.argv[2]), sys.argv[3]), end="")
    else:
        print(write(Path(sys.argv[1])))
