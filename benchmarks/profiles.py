"""py-spy profiles of a server under load: a speedscope file next to the results, and a top-N summary.

py-spy samples only the thread holding the GIL (``--gil``), so the shares are shares of Python time;
it runs on the generator's core, non-blocking (the server is never paused). It follows the server's
worker processes (``--subprocesses``); the summary leaves out the process it was pointed at when
that one only supervises workers (Granian's main process sits in Rust holding its own GIL, so every
sample of it would count), and leaves out of the inclusive list the frames every sample passes
through (process start, the CLI, the event loop itself).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import loadgen

SECONDS = 4.0
RATE = 200  # samples per second
TOP = 12
# Frames every sample passes through (process start, the loop itself): left out of the inclusive list.
PLUMBING = frozenset(
    {"granian", "stdlib:multiprocessing", "stdlib:threading", "stdlib:asyncio", "<string>", "<frozen runpy>"}
)
PLUMBING_FILES = ("py_app/__main__.py", "py_app/entrypoints/cli.py", "py_app/entrypoints/serve.py")


def py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


def capture(folder: Path, name: str, pid: int, load: loadgen.Load) -> dict[str, Any]:
    """Record ``pid`` (and its worker processes) while ``load`` runs; return the file and its summary."""
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / f"{name}.speedscope.json"
    argv = ["taskset", "-c", load.cpus, py_spy(), "record", "--pid", str(pid), "--subprocesses", "--gil"]
    argv += ["--nonblocking", "--rate", str(RATE), "--duration", f"{SECONDS:g}", "--format", "speedscope"]
    argv += ["--output", str(output)]
    result: dict[str, Any] = {}
    # The load starts first (its warm-up covers py-spy's attach) and outlasts the recording.
    loader = threading.Thread(target=lambda: result.update(loadgen.run(load)))
    loader.start()
    recorded = subprocess.run(argv, capture_output=True, text=True, timeout=SECONDS + 60, check=False)
    loader.join()
    if recorded.returncode != 0 or not output.exists():
        return {"error": (recorded.stderr or recorded.stdout)[-500:], "command": argv}
    return {
        "file": output.name,
        "rps_under_profiler": round(result.get("rps", 0.0), 1),
        "summary": summarize(output, supervisor=pid),
        "command": [arg if not arg.startswith(str(folder)) else output.name for arg in argv],
    }


def _of_process(profile: dict[str, Any], pid: int) -> bool:
    return str(profile.get("name", "")).startswith(f"Process {pid} ")


def _where(frame: dict[str, Any]) -> str:
    """A short name: function (package/module.py:line), site-packages and the repository cut off."""
    path = frame.get("file", "")
    for marker in ("site-packages/", "lib/python3.11/", "/work/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{frame.get('name', '?')} ({path}:{frame.get('line', '?')})"


def _package(frame: dict[str, Any]) -> str:
    path = frame.get("file", "")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/py_app/" in path:
        return "py_app"
    if "/lib/python3" in path:
        return "stdlib:" + path.rsplit("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
    return path.rsplit("/", 1)[-1] or "?"


def _plumbing(frame: dict[str, Any]) -> bool:
    return _package(frame) in PLUMBING or frame.get("file", "").endswith(PLUMBING_FILES)


def summarize(path: Path, supervisor: int | None = None) -> dict[str, Any]:
    """Self and inclusive shares per function, self share per package (the frame's top-level package).

    ``supervisor``: the pid py-spy was pointed at; left out when other (worker) processes were sampled.
    """
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    synthetic = {index for index, frame in enumerate(frames) if not frame.get("file")}  # py-spy's process frames
    own: Counter[int | None] = Counter()
    inclusive: Counter[int] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    profiles = data["profiles"]
    if supervisor is not None and any(not _of_process(p, supervisor) for p in profiles):
        profiles = [profile for profile in profiles if not _of_process(profile, supervisor)]
    for profile in profiles:
        for stack in profile["samples"]:
            real = [index for index in stack if index not in synthetic]
            total += 1
            leaf = real[-1] if real else None
            own[leaf] += 1
            packages[_package(frames[leaf]) if leaf is not None else "(no Python frame)"] += 1
            for index in set(real):
                inclusive[index] += 1
    if not total:
        return {"samples": 0, "self": [], "inclusive": [], "packages": []}

    def share(counter: Counter[Any], label: Any) -> list[list[Any]]:
        return [[label(key), round(100 * value / total, 1)] for key, value in counter.most_common(TOP)]

    return {
        "samples": int(total),
        "self": share(own, lambda key: "(no Python frame)" if key is None else _where(frames[key])),
        "inclusive": share(
            Counter({key: value for key, value in inclusive.items() if not _plumbing(frames[key])}),
            lambda key: _where(frames[key]),
        ),
        "packages": share(packages, str),
    }
