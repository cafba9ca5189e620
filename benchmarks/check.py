"""`make bench-check`: the latest results' ratios to their ceilings against the previous committed results
(the newest on the same CPU model, when there is one).

Only ratios within one run are compared (a service figure over the trivial handler measured in the
same run; create and login over the argon2 limit, the server's cores over the run's hash time), never
absolute times, so a slower or busier machine does not fail the check; a ratio that
drops by more than 25% does. Quick runs (folders ending in -quick or -custom) and scale runs (-scale: another
profile, the generator sharing the server's cores) are ignored unless asked for with --include-quick.

    python -m benchmarks.check [--latest DIR] [--previous DIR] [--threshold 0.25]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import analysis
from benchmarks.analysis import ceiling_pairs, ceiling_ratio
from benchmarks.plan import HASHING_OPS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _full_runs(include_quick: bool) -> list[Path]:
    runs = [path for path in RESULTS.iterdir() if (path / "results.json").exists()] if RESULTS.exists() else []
    if not include_quick:
        runs = [path for path in runs if not path.name.endswith(("-quick", "-custom", "-scale"))]
    return sorted(runs)


def _committed(path: Path) -> bool:
    listed = subprocess.run(
        ["git", "ls-files", "--error-unmatch", str(path / "results.json")], cwd=ROOT, capture_output=True, check=False
    )
    return listed.returncode == 0


def hash_seconds(folder: Path) -> float | None:
    """One core's hash time in a run: the median of its hash probes (on the server's core, beside the hashing
    points), else its micro suite's median, else None."""
    data = json.loads((folder / "results.json").read_text()) if (folder / "results.json").exists() else {}
    probed = analysis.median(probe["median_s"] for probe in data.get("hash_probes", []))
    if probed is not None:
        return probed
    micro = folder / "micro.json"
    return analysis.hash_seconds(json.loads(micro.read_text())) if micro.exists() else None


def hashing_method(data: dict[str, Any]) -> tuple[bool, bool]:
    """How a run measured create and login: (limit probed on the server's core, reads sent beside them)."""
    return bool(data.get("hash_probes")), bool(data.get("profile", {}).get("reads_beside_hashing"))


def _over_hash_limit(
    pairs: dict[str, dict[int, tuple[float, float]]], data: dict[str, Any], seconds: float | None
) -> dict[str, dict[int, tuple[float, float]]]:
    """Create and login are one argon2id hash each: their limit is the server's cores over the hash time
    measured in the same run, not the trivial handler (whose speed moves with another part of the CPU). Left
    out when the run has no hash time."""
    out = {}
    for key, by_concurrency in pairs.items():
        target, op, _ = key.split(" ")
        if op not in HASHING_OPS:
            out[key] = by_concurrency
        elif seconds:
            cores = analysis.server_cores(data, target)
            out[key] = {c: (value, cores / seconds) for c, (value, _) in by_concurrency.items()}
    return out


def compare(
    latest: dict[str, Any],
    previous: dict[str, Any],
    threshold: float,
    hashes: tuple[float | None, float | None] = (None, None),
) -> tuple[list[str], list[str]]:
    """(table lines, failures): every ratio present in both runs (over the concurrencies both measured),
    and those that fell by more than ``threshold``. ``hashes``: each run's hash time in seconds, which the
    hashing operations are measured against (without it they are left out)."""
    if hashing_method(latest) != hashing_method(previous):
        hashes = (None, None)  # measured differently: not comparable, left out (``main`` says so)
    new = _over_hash_limit(ceiling_pairs(latest), latest, hashes[0])
    old = _over_hash_limit(ceiling_pairs(previous), previous, hashes[1])
    lines = [f"{'figure over its ceiling (hashing: limit)':<36} {'previous':>9} {'latest':>9} {'change':>8}"]
    failures = []
    for key in sorted(set(new) & set(old)):
        common = sorted(set(new[key]) & set(old[key]))
        if not common:
            continue
        before, after = ceiling_ratio(old[key], common), ceiling_ratio(new[key], common)
        change = after / before - 1
        mark = ""
        if change < -threshold:
            mark = "  FAIL"
            failures.append(f"{key}: {before:.4f} -> {after:.4f} ({change:+.0%})")
        lines.append(f"{key:<36} {before:>9.4f} {after:>9.4f} {change:>+8.0%}{mark}")
    return lines, failures


def _cpu(folder: Path) -> str | None:
    cpu = json.loads((folder / "results.json").read_text()).get("machine", {}).get("cpu")
    return str(cpu) if cpu else None


def predecessor(latest: Path, committed: list[Path]) -> Path | None:
    """The newest committed run before ``latest`` (``committed`` is oldest first) on the same CPU model, else the
    newest on any. The stacks' ceilings move with the CPU unevenly: from an AMD EPYC to a Xeon the trivial grpc.aio
    handler gained 1.85x and the service's gRPC point query 1.29x, so gRPC ratios fell a third with no change
    in the code (2026-12-02: 14:11 against 17:33)."""
    earlier = [run for run in reversed(committed) if run.resolve() != latest.resolve()]
    cpu = _cpu(latest)
    return next((run for run in earlier if _cpu(run) == cpu), earlier[0] if earlier else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--latest", type=Path, help="results folder to check (default: the newest full run)")
    parser.add_argument("--previous", type=Path, help="results folder to compare with (default: newest committed)")
    parser.add_argument("--threshold", type=float, default=0.25, help="largest tolerated drop (default 0.25)")
    parser.add_argument("--include-quick", action="store_true")
    args = parser.parse_args(argv)
    runs = _full_runs(args.include_quick)
    latest = args.latest or (runs[-1] if runs else None)
    if latest is None:
        print("bench-check: no results yet; run `make bench` first")
        return 1
    previous = args.previous or predecessor(latest, [run for run in runs if _committed(run)])
    if previous is None:
        print(f"bench-check: {latest.name} has no committed predecessor to compare with; nothing to check")
        return 0
    latest_data = json.loads((latest / "results.json").read_text())
    previous_data = json.loads((previous / "results.json").read_text())
    lines, failures = compare(
        latest_data, previous_data, args.threshold, (hash_seconds(latest), hash_seconds(previous))
    )
    print(f"bench-check: {latest.name} against {previous.name} (fails below -{args.threshold:.0%})")
    if hashing_method(latest_data) != hashing_method(previous_data):
        print(
            "bench-check: create and login left out: one run divided them by a hash time probed on the server's"
            " core with reads sent beside them, the other by the micro suite's, without"
        )
    if _cpu(latest) != _cpu(previous):
        print(f"bench-check: the CPUs differ ({_cpu(previous)} then {_cpu(latest)}): ratios move with the machine too")
    print("\n".join(lines))
    if len(lines) == 1:
        print("bench-check: the two runs share no figure; nothing to compare")
        return 0
    if failures:
        print(f"bench-check: {len(failures)} ratio(s) to their ceiling fell by more than {args.threshold:.0%}:")
        print("\n".join(f"  {failure}" for failure in failures))
        return 1
    print(f"bench-check: ok, {len(lines) - 1} ratios within {args.threshold:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
