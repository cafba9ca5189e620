"""Method (a), the reference method: one call at a time from a Python client, per-call latency.

pytest-benchmark warms up, calibrates rounds, and keeps every round's time (the report reads the
median and p99). Each call is first made once outside the timing, which proves it succeeds.
"""

from __future__ import annotations

import os
from typing import Any

import grpc
import httpx

from benchmarks import wire
from benchmarks.client.calls import grpc_call, rest_call
from benchmarks.client.conftest import target as target_named


def test_call(benchmark: Any, case: tuple[str, str, str]) -> None:
    name, op, protocol = case
    target = target_named(name)
    benchmark.group = f"{target['name']} {op}"
    benchmark.extra_info.update(target=target["name"], kind=target["kind"], op=op, protocol=protocol)
    benchmark.extra_info["loadavg_before"] = round(os.getloadavg()[0], 2)  # the machine may be shared
    accounts = wire.Accounts(**target["accounts"])
    tokens = target.get("refresh_tokens", {}).get(protocol, [])
    if protocol == "rest":
        with httpx.Client(base_url=target["rest_url"], timeout=30) as client:
            call = rest_call(client, op, accounts, tokens)
            call()
            benchmark(call)
    else:
        with grpc.insecure_channel(target["grpc_addr"]) as channel:
            call = grpc_call(channel, op, accounts, tokens)
            call()
            benchmark(call)
