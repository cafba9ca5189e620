"""The native load generators, driven the same way and parsed into one result shape.

- h2load (nghttp2): fixed-body operations, on both protocols (``--h1`` for REST, HTTP/2 for gRPC with a
  pre-encoded length-prefixed body), ``-c N -m 1``: N connections, one request in flight on each.
  Latency percentiles come from its per-request ``--log-file``. It counts HTTP 200 as success, so
  the runner checks ``grpc-status`` on a sample of the same body before and after (``sample``).
- varied-load (benchmarks/varied-load, Rust): operations that need a distinct body per request, on
  both protocols (``--h1`` for REST). h2load's model (``-c N``, one call in flight per connection, a
  warm-up on the same connections, calls in flight at the end dropped), a body per request from a
  file, every gRPC call's grpc-status read from its trailers.
- wrk + lua/bodies.lua: the cross-check for REST (``-t 1 -c N``). It has no warm-up phase and whole-
  second windows: a slow call at high concurrency starts its window with an empty pipeline (create at
  c=64 read 0 req/s in a 1 s window), which is why it is not the varied-body generator.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIED_LOAD = ROOT / "target" / "varied-load" / "release" / "varied-load"
BODIES_LUA = ROOT / "benchmarks" / "lua" / "bodies.lua"


@dataclass
class Load:
    generator: str  # h2load | varied-load | wrk
    protocol: str  # rest | grpc
    url: str
    concurrency: int
    duration: float
    warm_up: float
    cpus: str
    scratch: Path  # where log files go
    headers: list[tuple[str, str]] = field(default_factory=list)
    body_file: Path | None = None  # one body for every request (h2load -d); None for GET
    bodies: Path | None = None  # a body per request: length-prefixed (varied-load) or JSON lines (wrk)
    cycle: bool = False  # reuse the bodies round-robin (a fixed body through a varied-body tool)
    rate: int = 0  # h2load only: requests per second per connection (--rps); 0: as fast as answers come


def _ms(value: float) -> str:
    return f"{max(1, round(value * 1000))}ms"


def _percentiles(latencies_us: list[int]) -> dict[str, float | None]:
    if not latencies_us:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    ordered = sorted(latencies_us)

    def rank(fraction: float) -> float:
        return ordered[min(len(ordered), max(1, math.ceil(fraction * len(ordered)))) - 1] / 1000

    return {
        "p50_ms": rank(0.50),
        "p90_ms": rank(0.90),
        "p99_ms": rank(0.99),
        "max_ms": ordered[-1] / 1000,
        "mean_ms": sum(ordered) / len(ordered) / 1000,
    }


def h2load_command(load: Load, log: Path) -> list[str]:
    argv = ["taskset", "-c", load.cpus, "h2load", "-c", str(load.concurrency), "-m", "1", "-t", "1"]
    argv += ["-D", _ms(load.duration), "--warm-up-time", _ms(load.warm_up), "--log-file", str(log)]
    if load.rate:
        argv.append(f"--rps={load.rate}")
    if load.protocol == "rest":
        argv.append("--h1")
    else:
        argv += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    for name, value in load.headers:
        argv += ["-H", f"{name}: {value}"]
    if load.body_file is not None:
        argv += ["-d", str(load.body_file)]
    return [*argv, load.url]


def _h2load(load: Load) -> dict[str, Any]:
    log = load.scratch / "h2load.log"
    log.unlink(missing_ok=True)  # h2load appends
    argv = h2load_command(load, log)
    out = _run(argv, load)
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored,"
        r" (\d+) timeout",
        out,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if counts is None or codes is None:
        raise RuntimeError(f"cannot parse h2load output:\n{out[-1500:]}")
    _total, _started, done, _ok, failed, errored, timeout = map(int, counts.groups())
    latencies = []
    if log.exists():
        for line in log.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                latencies.append(int(parts[2]))
    return {
        "requests": done,
        "rps": done / load.duration,
        "errors": failed + errored + timeout,
        "error_detail": {
            "4xx": int(codes.group(3)),
            "5xx": int(codes.group(4)),
            "errored": errored,
            "timeout": timeout,
        },
        "duration_s": load.duration,
        "exhausted": False,
        **_percentiles(latencies),
        "command": argv,
    }


def wrk_command(load: Load, bodies: Path, seconds: int) -> list[str]:
    argv = ["taskset", "-c", load.cpus, "wrk", "-t", "1", "-c", str(load.concurrency), "-d", f"{seconds}s"]
    argv += ["--timeout", "30s", "-s", str(BODIES_LUA), load.url, "--", _path_of(load.url), str(bodies)]
    argv.append("1" if load.cycle else "0")
    return argv + [f"{name}: {value}" for name, value in load.headers]


def _wrk(load: Load) -> dict[str, Any]:
    assert load.bodies is not None
    if load.warm_up > 0:  # wrk has no warm-up phase of its own: a separate, unrecorded run (same bodies)
        _run(wrk_command(load, load.bodies, max(1, round(load.warm_up))), load)
    seconds = max(1, round(load.duration))  # wrk takes whole seconds
    argv = wrk_command(load, load.bodies, seconds)
    result = _last_json(_run(argv, load))
    duration = result["duration_us"] / 1e6
    errors = sum(result[key] for key in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": result["requests"],
        "rps": result["requests"] / duration,
        "errors": errors,
        "error_detail": {key: result[key] for key in ("connect", "read", "write", "status", "timeout")},
        "duration_s": duration,
        "exhausted": result["exhausted"],
        "p50_ms": result["p50_us"] / 1000,
        "p90_ms": result["p90_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
        "mean_ms": result["mean_us"] / 1000,
        "command": argv,
    }


def varied_load_command(load: Load, requests: int | None = None) -> list[str]:
    assert load.bodies is not None
    argv = ["taskset", "-c", load.cpus, str(VARIED_LOAD), "-c", str(load.concurrency), "--frames", str(load.bodies)]
    if load.protocol == "rest":
        argv.append("--h1")
    argv += ["-n", str(requests)] if requests else ["-D", f"{load.duration:g}", "--warm-up", f"{load.warm_up:g}"]
    if load.cycle:
        argv.append("--cycle")
    for name, value in load.headers:
        argv += ["-H", f"{name}: {value}"]
    return [*argv, load.url]


def _varied_load(load: Load) -> dict[str, Any]:
    argv = varied_load_command(load)
    result = _last_json(_run(argv, load))
    statuses = result["statuses"]
    return {
        "requests": result["completed"],
        "rps": result["rps"],
        "errors": result["errors"],
        "error_detail": {
            "grpc_status": statuses,
            "transport": result["transport_errors"],
            "first": result["first_error"],
        }
        if result["errors"]
        else {},
        "duration_s": result["duration_s"],
        "exhausted": result["exhausted"],
        **{key: result[key] for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms")},
        "command": argv,
    }


def sample(load: Load, frames: Path, requests: int = 5) -> dict[str, int]:
    """grpc-status counts of ``requests`` calls with the same body, one at a time (h2load cannot see them)."""
    probe = Load(
        "varied-load", "grpc", load.url, 1, 1, 0, load.cpus, load.scratch, load.headers, bodies=frames, cycle=True
    )
    result = _last_json(_run(varied_load_command(probe, requests), probe))
    statuses: dict[str, int] = result["statuses"]
    if result["transport_errors"]:
        statuses["transport"] = result["transport_errors"]
    return statuses


GENERATORS = {"h2load": _h2load, "varied-load": _varied_load, "wrk": _wrk}


def run(load: Load) -> dict[str, Any]:
    return GENERATORS[load.generator](load)


def _run(argv: list[str], load: Load) -> str:
    budget = load.duration + load.warm_up + 60
    done = subprocess.run(argv, capture_output=True, text=True, timeout=budget, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[3]} exited {done.returncode}: {done.stderr[-1500:] or done.stdout[-1500:]}")
    return done.stdout


def _last_json(out: str) -> dict[str, Any]:
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise RuntimeError(f"no JSON result in the generator's output:\n{out[-1500:]}")


def _path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]
