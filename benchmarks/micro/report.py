"""Turn a pytest-benchmark JSON file into benchmarks/micro/REPORT.md (ratios from the same run).

Usage (what `make bench` does):
    .venv/bin/python -m pytest benchmarks/micro --benchmark-only -p no:cacheprovider -o addopts="" \\
        --benchmark-json=var/bench-micro.json
    .venv/bin/python benchmarks/micro/report.py var/bench-micro.json
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COMMAND = (
    '.venv/bin/python -m pytest benchmarks/micro --benchmark-only -p no:cacheprovider -o addopts="" '
    "--benchmark-json={json} && .venv/bin/python benchmarks/micro/report.py {json}"
)

# (group, rust id, reference id, target speed-up or None, note)
COMPARISONS: list[tuple[str, str, str, float | None, str]] = [
    ("jwt sign HS256", "rust", "pyjwt", 10.0, "sign_access vs jwt.encode"),
    ("jwt sign HS256", "rust-generic", "pyjwt", 10.0, "sign(dict) vs jwt.encode"),
    ("jwt verify HS256", "rust", "pyjwt", 10.0, "verify_access vs jwt.decode"),
    ("jwt verify HS256", "rust-generic", "pyjwt", 10.0, "verify (full dict) vs jwt.decode"),
    ("jwt sign EdDSA", "rust", "pyjwt", 10.0, "sign_access vs jwt.encode"),
    ("jwt verify EdDSA", "rust", "pyjwt", 10.0, "verify_access vs jwt.decode"),
    ("argon2 hash 1 thread", "rust", "argon2-cffi", 0.8, "target: Rust time <= 1.25x argon2-cffi"),
    ("argon2 verify 1 thread", "rust", "argon2-cffi", 0.8, "target: Rust time <= 1.25x argon2-cffi"),
]


# The token adapter's two Rust surfaces, run in paired repetitions (test_bench_tokens.py).
PAIRED_GROUPS = [("adapter issue HS256", "JwtAccessTokens.issue"), ("adapter verify HS256", "JwtAccessTokens.verify")]
BASELINE, CANDIDATE = "kwargs-tuple", "bytes-struct"
TOLERANCE = 1.03  # the bytes surface replaces the fast path only if it is at most 3% slower


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} µs"


def paired_section(paired: dict[str, dict[int, dict[str, float]]]) -> list[str]:
    """The adapter on both Rust surfaces: medians per variant and the median of per-repetition ratios."""
    lines = [
        "",
        f"## Token adapter: {BASELINE} (today's fast path) vs {CANDIDATE} (msgspec Structs)",
        "",
        f"Each repetition runs both variants back to back; the verdict takes the median of the paired"
        f" ratios and accepts {CANDIDATE} when it is at most {(TOLERANCE - 1) * 100:.0f}% slower.",
        "",
        f"| operation | {BASELINE} | {CANDIDATE} | {CANDIDATE}/{BASELINE} (median of pairs) | pair range | reps |"
        f" within {(TOLERANCE - 1) * 100:.0f}% |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, label in PAIRED_GROUPS:
        reps = [r for r in paired.get(group, {}).values() if BASELINE in r and CANDIDATE in r]
        if not reps:
            continue
        base = statistics.median(r[BASELINE] for r in reps)
        cand = statistics.median(r[CANDIDATE] for r in reps)
        ratios = [r[CANDIDATE] / r[BASELINE] for r in reps]
        ratio = statistics.median(ratios)
        lines.append(
            f"| {label} | {fmt_time(base)} | {fmt_time(cand)} | {ratio:.3f} | {min(ratios):.3f} to {max(ratios):.3f} |"
            f" {len(reps)} | {'yes' if ratio <= TOLERANCE else '**no**'} |"
        )
    return lines


def main(path: str) -> None:
    data: dict[str, Any] = json.loads(Path(path).read_text("utf-8"))
    by_group: dict[str, dict[str, dict[str, Any]]] = {}
    paired: dict[str, dict[int, dict[str, float]]] = {}
    for bench in data["benchmarks"]:
        if any(bench["group"] == group for group, _ in PAIRED_GROUPS):
            rep, variant = bench["params"]["rep"], bench["params"]["variant"]
            paired.setdefault(bench["group"], {}).setdefault(rep, {})[variant] = bench["stats"]["median"]
            continue
        impl = bench["param"] if bench.get("param") else bench["name"]
        impl = bench["params"].get("impl") or bench["params"].get("mode") or impl
        by_group.setdefault(bench["group"], {})[impl] = bench

    lines = [
        "# Micro-benchmark report",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} (benchmark run: {data.get('datetime', '?')})",
        f"- Machine: nproc={os.cpu_count()}, CPU: {cpu_model()}, Python {platform.python_version()}",
        f"- Command (what `make bench` runs after setup): `{COMMAND.format(json=path)}`",
        "- Times are medians; every ratio compares numbers from this same run.",
        "",
        "## Ratios",
        "",
        "| group | rust | reference | rust median | reference median | speed-up (ref/rust) | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group, rust, ref, target, note in COMPARISONS:
        entries = by_group.get(group, {})
        if rust not in entries or ref not in entries:
            continue
        r = entries[rust]["stats"]["median"]
        x = entries[ref]["stats"]["median"]
        ratio = x / r
        target_txt = "-" if target is None else f">= {target:g}x"
        met = "-" if target is None else ("yes" if ratio >= target else "**no**")
        lines.append(
            f"| {group} | {rust} | {ref} | {fmt_time(r)} | {fmt_time(x)} | {ratio:.2f}x | {target_txt} | {met} |"
            + (f" {note}" if note else "")
        )

    lines += paired_section(paired)

    lines += ["", "## argon2: 2 threads vs 1 (throughput)", ""]
    lines += [
        "| impl | 1 hash, 1 thread | 2 hashes, 2 threads | throughput gain | target | met |",
        "|---|---|---|---|---|---|",
    ]
    one = by_group.get("argon2 hash 1 thread", {})
    two = by_group.get("argon2 hash 2 threads (2 hashes per round)", {})
    for impl in ("rust", "argon2-cffi"):
        if impl in one and impl in two:
            t1 = one[impl]["stats"]["median"]
            t2 = two[impl]["stats"]["median"]
            gain = 2 * t1 / t2
            lines.append(
                f"| {impl} | {fmt_time(t1)} | {fmt_time(t2)} | {gain:.2f}x | >= 1.7x |"
                f" {'yes' if gain >= 1.7 else '**no**'} |"
            )

    lines += ["", "## Event loop: max heartbeat lag (1 ms ticks) while 8 hashes run", ""]
    lines += [
        "| mode | worst max lag (5 runs) | median of max lag | median p99 lag | target (max) | met |",
        "|---|---|---|---|---|---|",
    ]
    for mode, bench in by_group.get("event-loop max lag while 8 hashes run", {}).items():
        lag = bench["extra_info"].get("max_lag_ms", float("nan"))
        med = bench["extra_info"].get("median_max_lag_ms", float("nan"))
        p99 = bench["extra_info"].get("p99_lag_ms", float("nan"))
        reference = "control" in mode or "baseline" in mode
        met = "n/a (reference)" if reference else ("yes" if lag <= 5 else "**no**")
        lines.append(f"| {mode} | {lag:.2f} ms | {med:.2f} ms | {p99:.2f} ms | <= 5 ms | {met} |")

    lines += [
        "",
        "## All measurements",
        "",
        "| group | impl | median | mean | stddev | rounds |",
        "|---|---|---|---|---|---|",
    ]
    for group in sorted(by_group):
        for impl, bench in sorted(by_group[group].items()):
            s = bench["stats"]
            lines.append(
                f"| {group} | {impl} | {fmt_time(s['median'])} | {fmt_time(s['mean'])} |"
                f" {fmt_time(s['stddev'])} | {s['rounds']} |"
            )
    out = HERE / "REPORT.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "var/bench-micro.json")
