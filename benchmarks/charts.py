"""The report's PNG charts: throughput, p50/p99 latency, and measured ratios beside the claimed ones."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks import analysis as an
from benchmarks.plan import CLAIMS, OPS

if TYPE_CHECKING:
    from benchmarks.report import Context

COLORS = {"rest": "#1f77b4", "grpc": "#ff7f0e"}


def _groups(ctx: Context, target: str) -> list[tuple[str, str]]:
    """(label, target) per bar group: the service's ops, then the ceiling's and baseline's point query."""
    groups = [(op, target) for op in OPS if any(k[0] == target and k[1] == op for k in ctx.found)]
    for label, ref in (("ceiling", ctx.ceiling), ("baseline", ctx.baseline(target))):
        if ref and any(k[0] == ref for k in ctx.found):
            groups.append((label, ref))
    return groups


def _grid(ctx: Context) -> tuple[plt.Figure, list[list[plt.Axes]]]:
    rows, cols = max(1, len(ctx.services)), max(1, len(ctx.cs))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    return fig, axes


def throughput(folder: Path, ctx: Context) -> None:
    fig, axes = _grid(ctx)
    for row, target in enumerate(ctx.services):
        groups = _groups(ctx, target)
        for col, c in enumerate(ctx.cs):
            ax = axes[row][col]
            for offset, protocol in ((-0.2, "rest"), (0.2, "grpc")):
                xs, ys, lows, highs = [], [], [], []
                for index, (label, name) in enumerate(groups):
                    figure = ctx.get(name, "point_query" if label in ("ceiling", "baseline") else label, protocol, c)
                    if figure is None:
                        continue
                    xs.append(index + offset)
                    ys.append(figure.rps)
                    lows.append(figure.rps - figure.rps_low)
                    highs.append(figure.rps_high - figure.rps)
                ax.bar(xs, ys, 0.4, yerr=[lows, highs], color=COLORS[protocol], label=protocol, capsize=2)
            ax.set_yscale("log")
            ax.set_xticks(range(len(groups)), [label for label, _ in groups], rotation=45, ha="right", fontsize=8)
            ax.set_title(f"{target}, c={c}", fontsize=10)
            ax.set_ylabel("req/s (log)")
            ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Throughput per operation (median of repeats; whiskers span the repeats)", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / "throughput.png", dpi=110)
    plt.close(fig)


def latency(folder: Path, ctx: Context) -> None:
    fig, axes = _grid(ctx)
    for row, target in enumerate(ctx.services):
        groups = _groups(ctx, target)
        for col, c in enumerate(ctx.cs):
            ax = axes[row][col]
            for offset, protocol in ((-0.2, "rest"), (0.2, "grpc")):
                xs, p50, p99 = [], [], []
                for index, (label, name) in enumerate(groups):
                    figure = ctx.get(name, "point_query" if label in ("ceiling", "baseline") else label, protocol, c)
                    if figure is None or figure.p50_ms is None or figure.p99_ms is None:
                        continue
                    xs.append(index + offset)
                    p50.append(figure.p50_ms)
                    p99.append(figure.p99_ms)
                ax.bar(xs, p50, 0.4, color=COLORS[protocol], label=f"{protocol} p50")
                ax.scatter(
                    xs, p99, marker="_", s=120, color="black", label=f"{protocol} p99" if protocol == "rest" else None
                )
            ax.set_yscale("log")
            ax.set_xticks(range(len(groups)), [label for label, _ in groups], rotation=45, ha="right", fontsize=8)
            ax.set_title(f"{target}, c={c}", fontsize=10)
            ax.set_ylabel("ms (log)")
            ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Latency per operation: bars p50, black marks p99", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / "latency.png", dpi=110)
    plt.close(fig)


def ratios(folder: Path, ctx: Context) -> None:
    services = ctx.services or []
    fig, axes = plt.subplots(max(1, len(services)), 1, figsize=(12, 3.8 * max(1, len(services))), squeeze=False)
    for row, target in enumerate(services):
        ax = axes[row][0]
        ops = an.ops_measured(ctx.found, target)
        others = [op for op in ops if op != "point_query"]
        labels = ["point_query", "on average", *others, "trivial handlers"]
        blanks = [None] * (len(labels) - 2)
        series: list[tuple[str, list[float | None], str]] = [
            ("claimed", [CLAIMS["point_query"], CLAIMS["average"], *blanks], "#888888")
        ]
        shades = ["#c6dbef", "#6baed6", "#2171b5", "#08306b"]
        for index, c in enumerate(ctx.cs):
            values = [an.grpc_over_rest(ctx.found, target, "point_query", c), an.total_ratio(ctx.found, target, c, ops)]
            values += [an.grpc_over_rest(ctx.found, target, op, c) for op in others]
            values.append(an.grpc_over_rest(ctx.found, ctx.ceiling, "point_query", c) if ctx.ceiling else None)
            series.append((f"load c={c}", values, shades[index % len(shades)]))
        if any(key[0] == target for key in ctx.times):
            timed = [op for op in ops if (target, op, "rest") in ctx.times and (target, op, "grpc") in ctx.times]
            values = [an.client_ratio(ctx.times, target, "point_query"), an.client_total(ctx.times, target, timed)]
            values += [an.client_ratio(ctx.times, target, op) for op in others]
            values.append(an.client_ratio(ctx.times, ctx.ceiling, "point_query") if ctx.ceiling else None)
            series.append(("one call at a time", values, "#2ca02c"))
        width = 0.8 / len(series)
        for index, (name, values, color) in enumerate(series):
            xs = [i + (index - (len(series) - 1) / 2) * width for i, v in enumerate(values) if v is not None]
            ys = [v for v in values if v is not None]
            ax.bar(xs, ys, width, label=name, color=color)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(labels)), labels, fontsize=9)
        ax.set_ylabel("gRPC over REST")
        ax.set_title(f"{target}: measured gRPC/REST ratios beside the claimed 6.30x and 2.78x", fontsize=10)
        ax.legend(fontsize=7, ncol=len(series))
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "ratios.png", dpi=110)
    plt.close(fig)


def soak(folder: Path, ctx: Context) -> None:
    """The soak over time: the server's RSS (all processes) against the +10% line, and each call's p50/p99."""
    s = ctx.soak
    if s is None:
        return
    fig, (memory, calls) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    at = [sample[0] for sample in s["rss_bytes"]]
    mib = [sample[1] / 2**20 for sample in s["rss_bytes"]]
    memory.plot(at, mib, color="#2ca02c", label="RSS, all server processes")
    memory.axvline(s["warm_up_seconds"], color="grey", linestyle=":", label="end of warm-up")
    memory.axhline(1.1 * s["rss_after_warm_up"] / 2**20, color="red", linestyle="--", label="+10% of the warm RSS")
    memory.set_xlabel("s into the soak")
    memory.set_ylabel("MiB")
    memory.set_ylim(bottom=0)
    memory.set_title(f"Memory over {s['seconds']:g} s, {s['clients']} clients", fontsize=10)
    memory.legend(fontsize=7, loc="lower right")
    memory.grid(alpha=0.3)
    kinds = [kind for kind in s["by_kind"] if kind in s["latency_ms"]]
    xs = range(len(kinds))
    calls.bar(xs, [s["latency_ms"][k]["p50"] for k in kinds], 0.6, color="#1f77b4", label="p50")
    calls.scatter(xs, [s["latency_ms"][k]["p99"] for k in kinds], marker="_", s=160, color="black", label="p99")
    calls.set_yscale("log")
    calls.set_xticks(list(xs), kinds, rotation=45, ha="right", fontsize=7)
    calls.set_ylabel("ms (log)")
    calls.set_title("Latency per call under the soak", fontsize=10)
    calls.legend(fontsize=7)
    calls.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "soak.png", dpi=110)
    plt.close(fig)


def render(folder: Path, ctx: Context) -> None:
    soak(folder, ctx)
    if not ctx.found:
        return
    throughput(folder, ctx)
    latency(folder, ctx)
    ratios(folder, ctx)
