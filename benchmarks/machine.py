"""What the numbers were measured on: machine, versions, and the CPU others used during each point."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "litestar",
    "granian",
    "grpcio",
    "sqlalchemy",
    "msgspec",
    "protobuf",
    "aiosqlite",
    "asyncmy",
    "httpx",
    "pytest-benchmark",
    "flask",
    "gunicorn",
    "pyjwt",
    "argon2-cffi",
    "pymysql",
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _tool_version(argv: list[str], pattern: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    found = re.search(pattern, out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def versions() -> dict[str, str]:
    from py_app import _rust_core

    found = {"python": platform.python_version(), "rust core": _rust_core.version(), "sqlite": sqlite3.sqlite_version}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "missing"
    found["h2load"] = _tool_version(["h2load", "--version"], r"nghttp2/(\S+)")
    found["wrk"] = _tool_version(["wrk", "-v"], r"wrk (\S+)")
    found["varied-load"] = "0.1.0 (benchmarks/varied-load)"
    from benchmarks.profiles import py_spy

    found["py-spy"] = _tool_version([py_spy(), "--version"], r"py-spy (\S+)")
    return found


def mariadb_version() -> str:
    try:
        import pymysql

        connection = pymysql.connect(host="127.0.0.1", user="root", connect_timeout=3)
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            row = cursor.fetchone()
        return str(row[0]) if row else "unknown"
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"unreachable ({type(exc).__name__})"


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def describe() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib(), 1),
        "kernel": platform.release(),
        "loadavg": os.getloadavg(),
        "versions": versions(),
        "mariadb": mariadb_version(),
        "commit": git_commit(),
    }


def _busy_ticks() -> tuple[int, int]:
    """(busy, steal) clock ticks of the whole machine since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal, steal


def _tree_ticks(pid: int) -> int:
    """utime + stime of a process and its descendants (the Granian worker is a child of its main)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            values = stat.rsplit(")", 1)[1].split()
            total += int(values[11]) + int(values[12])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, IndexError):
            continue
        pending.extend(int(child) for child in children)
    return total


def settle(pids: list[int], idle_cores: float = 0.15, window: float = 0.1, limit: float = 10.0) -> float:
    """Wait until the server is idle (abandoned work of the last point finished); return the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        before = sum(_tree_ticks(pid) for pid in pids)
        time.sleep(window)
        if (sum(_tree_ticks(pid) for pid in pids) - before) / CLOCK_TICKS / window < idle_cores:
            break
    return time.monotonic() - began


@dataclass
class CpuWatch:
    """CPU used during one point, in cores: by the server, by the generator, and by everyone else."""

    server_pids: list[int]
    _start: tuple[float, int, int, int, float] | None = None

    def __enter__(self) -> CpuWatch:
        busy, steal = _busy_ticks()
        server = sum(_tree_ticks(pid) for pid in self.server_pids)
        self._start = (time.monotonic(), busy, steal, server, _own_seconds())
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def result(self) -> dict[str, float]:
        assert self._start is not None
        began, busy0, steal0, server0, own0 = self._start
        wall = time.monotonic() - began
        busy, steal = _busy_ticks()
        server = sum(_tree_ticks(pid) for pid in self.server_pids)
        busy_s, steal_s = (busy - busy0) / CLOCK_TICKS, (steal - steal0) / CLOCK_TICKS
        server_s = (server - server0) / CLOCK_TICKS
        ours_s = _own_seconds() - own0  # the runner and the generator it waited for
        return {
            "server_cores": round(server_s / wall, 2),
            "generator_cores": round(ours_s / wall, 2),
            "other_cores": round(max(0.0, busy_s - server_s - ours_s - steal_s) / wall, 2),
            "steal_cores": round(steal_s / wall, 2),
        }


def _own_seconds() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


HASH_PROBE_COUNT = 12
_HASH_PROBE = """
import json, sys, time
from py_app import _rust_core as rc
from py_app.infra.security import DEFAULT_ITERATIONS, DEFAULT_MEMORY_KIB, DEFAULT_PARALLELISM
hasher = rc.PasswordHasher(
    memory_kib=DEFAULT_MEMORY_KIB, iterations=DEFAULT_ITERATIONS, parallelism=DEFAULT_PARALLELISM
)
hasher.hash("warm-up")
times = []
for _ in range(int(sys.argv[1])):
    began = time.perf_counter()
    hasher.hash("probe password")
    times.append(time.perf_counter() - began)
print(json.dumps(times))
"""


def hash_probe(cpus: str, count: int = HASH_PROBE_COUNT) -> dict[str, Any]:
    """Time ``count`` argon2id hashes at the service's parameters, one thread pinned to the first of ``cpus``.

    What one core hashes at this moment: the limit a hashing point is divided by, measured on the server's
    own core beside the point (the micro suite runs unpinned, minutes earlier)."""
    core = cpus.split(",", maxsplit=1)[0]
    argv = ["taskset", "-c", core, sys.executable, "-c", _HASH_PROBE, str(count)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    times = sorted(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"cpu": core, "count": count, "median_s": statistics.median(times), "min_s": times[0], "max_s": times[-1]}
