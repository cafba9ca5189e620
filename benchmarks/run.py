"""The benchmark runner: every suite, one results folder, one report.

    python -m benchmarks.run                 # the full run (what `make bench` does), under 10 minutes
    python -m benchmarks.run --quick         # SQLite, c=16, one round (`make bench-quick`), under 2 minutes
    python -m benchmarks.run --suite load --only point_query,grpc --targets sqlite,sqlite-nocache
    python -m benchmarks.run --profile point_query   # py-spy profiles of the server under load, nothing else

Suites: ``micro`` (pytest-benchmark, Rust core against PyJWT / argon2-cffi), ``load`` (h2load, wrk and
varied-load against every target), ``client`` (pytest-benchmark, one call at a time from httpx and a
generated grpc stub), ``profile`` (py-spy under load). Results go to benchmarks/results/<date>/:
results.json (raw), report.md, charts, profiles.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import loadgen, machine, plan, wire
from benchmarks.plan import FULL, QUICK, SCALE, TARGETS, Point, Profile
from benchmarks.seed import mint_refresh_tokens
from benchmarks.stack import ROOT, Endpoint, Stack

RESULTS = ROOT / "benchmarks" / "results"
SUITES = ("micro", "load", "client", "profile", "soak")
# First guesses of throughput for ops that consume a body per request (then the run's own figures).
RATE_GUESS = {"refresh": 1500.0, "create": 150.0}
CLIENT_REFRESH_TOKENS = 4000  # per target and protocol, for the one-call-at-a-time suite


@dataclass
class Run:
    profile: Profile
    suites: tuple[str, ...]
    only: tuple[str, ...]
    out: Path
    scratch: Path
    command: str
    started: float = field(default_factory=time.monotonic)
    data: dict[str, Any] = field(default_factory=dict)
    rates: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "results.json").write_text(json.dumps(self.data, indent=1, default=str) + "\n", encoding="utf-8")

    def elapsed(self) -> str:
        seconds = time.monotonic() - self.started
        return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def say(message: str) -> None:
    print(message, flush=True)


# -- load suite -------------------------------------------------------------------------------------


def _redact(argv: list[str], endpoint: Endpoint, scratch: Path) -> list[str]:
    """Commands as recorded: tokens named, not copied; scratch paths relative to the scratch folder."""
    accounts = endpoint.accounts
    out = []
    for arg in argv:
        named = arg
        if accounts is not None:
            named = named.replace(accounts.user_token, "$USER_TOKEN").replace(accounts.admin_token, "$ADMIN_TOKEN")
        out.append(named.replace(str(scratch) + "/", "$SCRATCH/").replace(str(ROOT) + "/", ""))
    return out


def _bodies_needed(run: Run, point: Point) -> int:
    """Bodies for an op that spends one per request: twice what the fastest rate seen so far would use."""
    guess = run.rates.get((point.target.name, point.op, point.protocol), RATE_GUESS.get(point.op, 1000.0))
    return math.ceil(guess * (run.profile.warm_up + run.profile.seconds(point.op)) * 2) + 200


def prepare(run: Run, point: Point, endpoint: Endpoint, index: int, tag: str = "") -> tuple[loadgen.Load, Path | None]:
    """The generator invocation for a point, and (gRPC on h2load) the frame file to sample grpc-status with."""
    call = wire.CALLS[point.op]
    accounts = endpoint.accounts
    assert accounts is not None, f"{endpoint.target.name} has no accounts"
    varied = call.varied
    generator = point.generator or ("varied-load" if varied else "h2load")
    if point.protocol == "rest":
        url = endpoint.url(call.path(accounts))
    else:
        url = f"http://{endpoint.grpc_addr}{call.grpc_method}"
    scratch = run.scratch / "points" / f"{index:04d}{tag}"
    scratch.mkdir(parents=True, exist_ok=True)
    load = loadgen.Load(
        generator,
        point.protocol,
        url,
        point.concurrency,
        run.profile.seconds(point.op),
        run.profile.warm_up,
        point.target.generator_cpus,
        scratch,
        wire.headers(call, accounts, point.protocol),
    )
    sample = None
    if not varied:
        fields = call.fields(accounts)
        if generator == "h2load":
            if point.protocol == "grpc":
                load.body_file = scratch / "body.bin"
                load.body_file.write_bytes(wire.grpc_frame(call, fields))
                sample = load.body_file
            elif call.rest_method == "POST":
                load.body_file = scratch / "body.json"
                load.body_file.write_bytes(wire.rest_body(fields) or b"")
        else:  # the cross-check: a fixed body through a varied-body generator
            _write_bodies(load, call, [fields], scratch)
            load.cycle = True
        return load, sample
    _write_bodies(load, call, _varied_bodies(point, endpoint, _bodies_needed(run, point), index), scratch)
    return load, sample


def _write_bodies(load: loadgen.Load, call: wire.Call, bodies: list[dict[str, Any]], scratch: Path) -> None:
    if load.generator == "wrk":
        load.bodies = scratch / "bodies.jsonl"
        wire.write_rest_bodies(load.bodies, bodies)
    else:
        load.bodies = scratch / "frames.bin"
        wire.write_frames(load.bodies, call, bodies, load.protocol)


def _varied_bodies(point: Point, endpoint: Endpoint, count: int, index: int) -> list[dict[str, Any]]:
    if point.op == "create":
        tag = f"b{index:04d}{os.urandom(2).hex()}x"
        return [wire.new_user_fields(tag, n) for n in range(count)]
    if point.op == "refresh":
        database = endpoint.database
        assert database is not None
        tokens = asyncio.run(mint_refresh_tokens(database.async_url, database.seeded.user_ids, count))
        return [wire.refresh_fields(token) for token in tokens]
    raise ValueError(f"no varied bodies for {point.op}")


def measure(run: Run, point: Point, endpoint: Endpoint, index: int) -> dict[str, Any]:
    began = time.monotonic()
    pid = endpoint.rest_pid if point.protocol == "rest" else endpoint.grpc_pid
    settled = machine.settle([pid])  # work the last point abandoned (e.g. queued hashes) must not bleed in
    load, sample = prepare(run, point, endpoint, index)
    before: dict[str, int] = {}
    if sample is not None:
        before = loadgen.sample(load, sample)  # also proves the body right before the load starts
    beside = _beside(run, point, endpoint, index)
    loadavg = os.getloadavg()
    with machine.CpuWatch([pid]) as cpu, concurrent.futures.ThreadPoolExecutor(1) as pool:
        reads = pool.submit(loadgen.run, beside[0]) if beside is not None else None
        result = loadgen.run(load)
        read_result = reads.result() if reads is not None else None
    record: dict[str, Any] = {
        "target": point.target.name,
        "kind": point.target.kind,
        "backend": point.target.backend,
        "op": point.op,
        "protocol": point.protocol,
        "concurrency": point.concurrency,
        "rep": point.rep,
        "generator": load.generator,
        "cross_check": bool(point.generator),
        "loadavg_before": [round(value, 2) for value in loadavg],
        "settle_s": round(settled, 2),
        "cpu": cpu.result(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        **result,
    }
    record["command"] = _redact(result["command"], endpoint, run.scratch)
    if beside is not None and read_result is not None:
        record["beside"] = _beside_record(beside, read_result, endpoint, run.scratch)
    if sample is not None:
        machine.settle([pid])
        after = loadgen.sample(load, sample)
        record["grpc_sample"] = {"before": before, "after": after}
        bad = sum(n for s, n in before.items() if s != "0") + sum(n for s, n in after.items() if s != "0")
        record["sample_errors"] = bad
    record["wall_s"] = round(time.monotonic() - began, 2)
    if load.bodies is not None and not load.cycle:
        key = (point.target.name, point.op, point.protocol)
        run.rates[key] = max(run.rates.get(key, 0.0), result["rps"])
    return record


def _beside(run: Run, point: Point, endpoint: Endpoint, index: int) -> tuple[loadgen.Load, Path | None] | None:
    """The point queries sent beside a hashing point (issue 12.6), at a fixed rate, or None.

    A second h2load on the generator's cores, started with the main load and as long, its own warm-up
    included: ``BESIDE_CONNECTIONS`` connections at an equal share of ``reads_beside_hashing`` a second.
    A fixed rate (not as fast as answers come) so the reads take a known, small share of the server and
    their latency is what a reader sees while the hashing runs at its limit."""
    rate = run.profile.reads_beside_hashing
    if not rate or point.op not in plan.HASHING_OPS or point.generator:
        return None
    reads = Point(point.target, "point_query", point.protocol, plan.BESIDE_CONNECTIONS, point.rep)
    load, sample = prepare(run, reads, endpoint, index, "-beside")
    load.generator = "h2load"
    load.duration = run.profile.seconds(point.op)  # as long as the hashing point it runs beside
    load.rate = max(1, math.ceil(rate / plan.BESIDE_CONNECTIONS))
    return load, sample


def _beside_record(
    beside: tuple[loadgen.Load, Path | None], result: dict[str, Any], endpoint: Endpoint, scratch: Path
) -> dict[str, Any]:
    load, sample = beside
    record = {
        "op": "point_query",
        "connections": load.concurrency,
        "rate": load.rate * load.concurrency,
        **{key: result[key] for key in ("requests", "rps", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms")},
        "command": _redact(result["command"], endpoint, scratch),
    }
    if sample is not None:  # h2load counts a gRPC error as a success: the same body, checked after
        after = loadgen.sample(load, sample)
        record["grpc_sample_after"] = after
        record["errors"] += sum(n for status, n in after.items() if status != "0")
    return record


def progress_line(position: int, total: int, point: Point, record: dict[str, Any]) -> str:
    p99 = record["p99_ms"]
    tail = f" p99 {p99:.1f} ms" if p99 is not None else ""
    flags = []
    if record["errors"] or record.get("sample_errors"):
        flags.append(f"{record['errors'] + record.get('sample_errors', 0)} errors")
    if record["exhausted"]:
        flags.append("bodies ran out")
    if beside := record.get("beside"):
        read_p99 = beside["p99_ms"]
        flags.append(f"reads beside p99 {read_p99:.1f} ms" if read_p99 is not None else "no reads beside")
        if beside["errors"]:
            flags.append(f"{beside['errors']} read errors")
    flags.append(f"load {record['loadavg_before'][0]:.2f}")
    return f"[{position}/{total}] {point.label}: {record['rps']:,.0f} req/s{tail} ({', '.join(flags)})"


def load_suite(run: Run, stack: Stack) -> None:
    selected = plan.points(run.profile, run.only)
    estimate = plan.estimate_seconds(run.profile, selected)
    say(f"== load: {len(selected)} points, about {estimate / 60:.1f} min of load ({run.elapsed()} so far)")
    records: list[dict[str, Any]] = run.data.setdefault("points", [])
    probes: list[dict[str, Any]] = run.data.setdefault("hash_probes", [])
    for position, point in enumerate(selected, 1):
        endpoint = stack.start(point.target)
        if point.op in plan.HASHING_OPS and not any(
            (probe["target"], probe["rep"]) == (point.target.name, point.rep) for probe in probes
        ):
            probes.append(_hash_probe(point, endpoint))
        try:
            record = measure(run, point, endpoint, position)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            say(f"[{position}/{len(selected)}] {point.label}: FAILED: {exc}")
            records.append({**_point_keys(point), "failed": str(exc)[:500]})
            continue
        records.append(record)
        say(progress_line(position, len(selected), point, record))
        if position % 10 == 0:
            run.save()
    run.save()


def _hash_probe(point: Point, endpoint: Endpoint) -> dict[str, Any]:
    """One core's hash time, on the server's core, right before a target's first hashing point of a round."""
    machine.settle([endpoint.rest_pid, endpoint.grpc_pid])
    probe = {"target": point.target.name, "rep": point.rep, **machine.hash_probe(point.target.server_cpus)}
    say(f"   argon2id on cpu {probe['cpu']}: {1000 * probe['median_s']:.1f} ms a hash (median of {probe['count']})")
    return probe


def _point_keys(point: Point) -> dict[str, Any]:
    return {
        "target": point.target.name,
        "kind": point.target.kind,
        "backend": point.target.backend,
        "op": point.op,
        "protocol": point.protocol,
        "concurrency": point.concurrency,
        "rep": point.rep,
    }


# -- pytest-benchmark suites -------------------------------------------------------------------------


def _pytest(run: Run, name: str, path: str, max_time: float, env: dict[str, str], cpus: str | None) -> None:
    output = run.out / f"{name}.json"
    argv = [sys.executable, "-m", "pytest", path, "--benchmark-only", "-p", "no:cacheprovider", "-o", "addopts="]
    argv += ["-q", "--benchmark-json", str(output), f"--benchmark-max-time={max_time:g}"]
    argv += ["--benchmark-min-rounds=5", "--benchmark-warmup=on", "--benchmark-warmup-iterations=20"]
    if cpus:
        argv = ["taskset", "-c", cpus, *argv]
    say(f"== {name}: {shlex.join(argv).replace(str(ROOT) + '/', '')}")
    began = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if output.exists():
        trim_benchmark_json(output, run.scratch / f"{name}-full.json")
    tail = (done.stdout.strip().splitlines() or [""])[-1]
    say(f"   {tail} ({time.monotonic() - began:.0f} s)")
    if done.returncode != 0:
        say(done.stdout[-3000:] + done.stderr[-2000:])
    run.data.setdefault("suites", {})[name] = {
        "command": shlex.join(argv).replace(str(ROOT) + "/", "").replace(sys.executable, "python"),
        "json": output.name if output.exists() else None,
        "returncode": done.returncode,
    }
    run.save()


PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)


def trim_benchmark_json(path: Path, keep: Path) -> None:
    """Every round's time of a pytest-benchmark run is megabytes: the results keep the distribution as
    percentiles (ms) and drop the rounds; the full file stays in the scratch folder."""
    data = json.loads(path.read_text("utf-8"))
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, keep)
    for bench in data.get("benchmarks", []):
        if isinstance((bench.get("params") or {}).get("case"), list):  # older runs carried whole targets
            bench["params"]["case"] = bench["param"] = bench["name"].split("[", 1)[-1].rstrip("]")
        rounds = sorted(bench["stats"].pop("data", None) or [])
        if rounds:
            bench["stats"]["percentiles_ms"] = {
                f"p{p:g}": round(rounds[min(len(rounds) - 1, math.ceil(p / 100 * len(rounds)) - 1)] * 1000, 4)
                for p in PERCENTILES
            }
    data.pop("machine_info", None)  # results.json records the machine once
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def micro_suite(run: Run) -> None:
    _pytest(run, "micro", "benchmarks/micro", run.profile.micro_max_time, {}, None)


def client_suite(run: Run, stack: Stack) -> None:
    targets = []
    for name in run.profile.targets:
        target = TARGETS[name]
        if not _wanted_target(run, name):
            continue
        endpoint = stack.start(target)
        entry: dict[str, Any] = {
            "name": name,
            "kind": target.kind,
            "backend": target.backend,
            "rest_url": endpoint.rest_url,
            "grpc_addr": endpoint.grpc_addr,
            "ops": [
                op
                for op in target.ops
                if any(plan.matches(Point(target, op, protocol, 1, 1), set(run.only)) for protocol in plan.PROTOCOLS)
            ],
            "accounts": asdict(endpoint.accounts) if endpoint.accounts else None,
        }
        if target.kind == "service" and "refresh" in entry["ops"] and endpoint.database is not None:
            database = endpoint.database
            entry["refresh_tokens"] = {
                protocol: asyncio.run(
                    mint_refresh_tokens(database.async_url, database.seeded.user_ids, CLIENT_REFRESH_TOKENS)
                )
                for protocol in plan.PROTOCOLS
            }
        targets.append(entry)
    stack_file = run.scratch / "stack.json"
    stack_file.write_text(json.dumps({"targets": targets, "only": list(run.only)}), encoding="utf-8")
    cpus = TARGETS[run.profile.targets[0]].generator_cpus
    _pytest(run, "client", "benchmarks/client", run.profile.client_max_time, {"BENCH_STACK": str(stack_file)}, cpus)


def _wanted_target(run: Run, name: str) -> bool:
    target = TARGETS[name]
    wanted = set(run.only)
    return any(
        plan.matches(Point(target, op, protocol, 1, 1), wanted) for op in target.ops for protocol in target.protocols
    )


# -- profiles ----------------------------------------------------------------------------------------


def profile_suite(run: Run, stack: Stack) -> None:
    from benchmarks import profiles

    service = next((TARGETS[name] for name in run.profile.targets if TARGETS[name].kind == "service"), None)
    if service is None:
        say("== profile: no service target selected")
        return
    endpoint = stack.start(service)
    found = run.data.setdefault("profiles", [])
    for op in run.profile.profiles:
        for protocol in plan.PROTOCOLS:
            point = Point(service, op, protocol, 16, 1)
            longer = replace(run.profile, duration=profiles.SECONDS + 1.0, warm_up=0.5)
            load, _ = prepare(replace(run, profile=longer), point, endpoint, 9000 + len(found))
            pid = endpoint.rest_pid if protocol == "rest" else endpoint.grpc_pid
            say(f"== profile: {protocol} {op} c=16 {service.name} under py-spy ({profiles.SECONDS:g} s)")
            entry = profiles.capture(run.out / "profiles", f"{op}-{protocol}-{service.name}", pid, load)
            found.append({"op": op, "protocol": protocol, "target": service.name, **entry})
            run.save()


# -- the soak -----------------------------------------------------------------------------------------


def soak_suite(run: Run) -> None:
    """tests/faults/test_soak.py for the profile's soak time, its figures in the results (soak.json).

    It starts its own private MariaDB and two-worker server, after the load targets have stopped, so it
    competes with nothing of this run. Its assertions (no 5xx, RSS growth < 10%, no leaked connections)
    make a failed soak a failed suite, and the report shows it as such."""
    output = run.out / "soak.json"
    output.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pytest", "tests/faults/test_soak.py", "-q", "-s", "-p", "no:cacheprovider"]
    argv += ["-o", "addopts="]
    env = {"ARCANA_TEST_SOAK_SECONDS": f"{run.profile.soak_seconds:g}", "ARCANA_SOAK_REPORT": str(output)}
    shown = shlex.join(argv).replace(sys.executable, "python").replace(str(ROOT) + "/", "")
    say(f"== soak: {run.profile.soak_seconds:g} s, 64 clients, REST + gRPC, private MariaDB: {shown}")
    began = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    tail = (done.stdout.strip().splitlines() or [""])[-1]
    say(f"   {tail} ({time.monotonic() - began:.0f} s)")
    if done.returncode != 0:
        say(done.stdout[-3000:] + done.stderr[-2000:])
    run.data.setdefault("suites", {})["soak"] = {
        "command": f"ARCANA_TEST_SOAK_SECONDS={run.profile.soak_seconds:g} {shown}",
        "json": output.name if output.exists() else None,
        "returncode": done.returncode,
    }
    run.save()


# -- the run -----------------------------------------------------------------------------------------


def check_tools(suites: tuple[str, ...]) -> list[str]:
    missing = []
    if "load" in suites or "profile" in suites:
        missing += [tool for tool in ("h2load", "wrk", "taskset") if shutil.which(tool) is None]
        if not loadgen.VARIED_LOAD.exists():
            missing.append(f"{loadgen.VARIED_LOAD.relative_to(ROOT)} (build it: make bench-tools)")
    if "profile" in suites and shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        missing.append("py-spy")
    return missing


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="SQLite, c=16, one round: under 2 minutes")
    parser.add_argument("--scale", action="store_true", help="one worker against two, on both cores (load only)")
    parser.add_argument("--suite", help=f"comma-separated subset of {','.join(SUITES)} (default: all)")
    parser.add_argument("--only", default="", help="comma-separated ops, protocols, targets or backends to keep")
    parser.add_argument("--targets", help=f"comma-separated targets (known: {', '.join(TARGETS)})")
    parser.add_argument("--concurrency", help="comma-separated, e.g. 1,16,64")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--duration", type=float, help="seconds of measured load per point")
    parser.add_argument("--warm-up", type=float, help="seconds of unrecorded load before each point")
    parser.add_argument("--profile", help="comma-separated ops to profile with py-spy (alone: only profiles)")
    parser.add_argument("--no-cross-check", action="store_true", help="skip the generator cross-check points")
    parser.add_argument("--soak", type=float, help="seconds of soak (0: none; the full run soaks 120 s)")
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<date>[-quick])")
    return parser.parse_args(argv)


def configure(args: argparse.Namespace) -> Profile:
    profile = QUICK if args.quick else SCALE if args.scale else FULL
    changes: dict[str, Any] = {}
    if args.targets:
        changes["targets"] = tuple(args.targets.split(","))
    if args.concurrency:
        changes["concurrency"] = tuple(int(value) for value in args.concurrency.split(","))
    for name in ("repeats", "duration", "warm_up"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.duration is not None:
        changes["hashing_duration"] = 0.0  # every point as long as asked
    if args.profile:
        changes["profiles"] = tuple(args.profile.split(","))
    if args.no_cross_check:
        changes["cross_check"] = False
    if args.soak is not None:
        changes["soak_seconds"] = args.soak
    unknown = [name for name in changes.get("targets", ()) if name not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    return replace(profile, name=profile.name if not changes else f"{profile.name}+custom", **changes)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    profile = configure(args)
    default = ("load",) if args.scale else SUITES
    suites = tuple(args.suite.split(",")) if args.suite else (("profile",) if args.profile else default)
    if not profile.profiles:
        suites = tuple(suite for suite in suites if suite != "profile")
    if not profile.soak_seconds:
        suites = tuple(suite for suite in suites if suite != "soak")
    only = tuple(token for token in args.only.split(",") if token)
    if bad := [s for s in suites if s not in SUITES] or plan.unknown_only_tokens(only):
        raise SystemExit(f"unknown suite or --only token: {bad}")
    if missing := check_tools(suites):
        raise SystemExit(
            f"missing: {', '.join(missing)}. `make bench` installs them (apt-get install nghttp2-client wrk)."
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%MZ")
    suffix = {"full": "", "quick": "-quick", "scale": "-scale"}.get(profile.name, "-custom")
    out = args.out or RESULTS / f"{stamp}{suffix}"
    scratch = ROOT / "var" / "bench" / out.name
    command = "python -m benchmarks.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    run = Run(profile, suites, only, out, scratch, command.strip())
    say(f"== arcana benchmarks ({profile.name}): suites {', '.join(suites)} -> {_show(out)}")
    run.data.update(
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": run.command,
            "profile": asdict(profile),
            "suites_run": list(suites),
            "only": list(only),
            "machine": machine.describe(),
            "targets": {name: _target_info(TARGETS[name]) for name in profile.targets},
            "claims": plan.CLAIMS,
        }
    )
    run.save()
    if "micro" in suites:
        micro_suite(run)
    if {"load", "client", "profile"} & set(suites):
        with Stack(scratch, say=say) as stack:
            say(f"== starting {', '.join(profile.targets)} ({run.elapsed()})")
            for kind in ("service", "baseline", "ceiling"):
                for name in profile.targets:
                    if TARGETS[name].kind == kind and _wanted_target(run, name):
                        stack.start(TARGETS[name])
            if "load" in suites:
                load_suite(run, stack)
            if "client" in suites:
                client_suite(run, stack)
            if "profile" in suites:
                profile_suite(run, stack)
            say(f"== stopping servers ({run.elapsed()})")
    if "soak" in suites:
        soak_suite(run)
    run.data["elapsed_s"] = round(time.monotonic() - run.started, 1)
    run.save()
    from benchmarks import report

    written = report.write(out)
    say(f"== report: {_show(written)}; total {run.elapsed()}")
    print(report.headline_text(json.loads((out / "results.json").read_text())))
    return 0


def _show(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _target_info(target: plan.Target) -> dict[str, Any]:
    info = asdict(target)
    info["env"] = dict(target.env)
    return info


if __name__ == "__main__":
    raise SystemExit(main())
