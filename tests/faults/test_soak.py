"""Soak: 64 clients, half over REST and half over gRPC, run a mixed workload on a two-worker server for a while.

Each client registers once, then loops: login, me, a read (its own user), a write (its own first name), a
refresh, and me again with the refreshed token. It ends with no 5xx or UNKNOWN (no unexpected answer at all),
memory stable after warm-up (the server's RSS, every process of it, grows less than 10%), and no leaked
database connections (after the load, no more connections to the private MariaDB than the pools keep idle,
none in a transaction). The figures go to var/soak.json for the benchmark report.

ARCANA_TEST_SOAK_SECONDS sets the duration (25 s in the suite; `make soak` and `make bench` run 120 s), and
ARCANA_SOAK_REPORT where the figures go (`make bench` puts them in its results folder, for its report).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, users_pb2, users_pb2_grpc
from py_app.infra import db
from tests.e2e.support import ROOT, Server
from tests.faults.load import CALL_TIMEOUT, PASSWORD, Client, Load, Outcome, assert_clean_log, rest, rpc, unique
from tests.faults.private import PrivateMariaDB, query

SECONDS = float(os.environ.get("ARCANA_TEST_SOAK_SECONDS", "25"))
WARM_UP = max(5.0, SECONDS / 4)  # pools filled, caches and allocator arenas grown
CLIENTS = 64
WORKERS = 2
POOL_IDLE = db.MYSQL_POOL + db.MYSQL_READ_POOL  # the connections a process's two pools keep when idle
GROWTH = 0.10
REPORT = Path(os.environ.get("ARCANA_SOAK_REPORT") or ROOT / "var" / "soak.json")  # the benchmarks set it

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.timeout(SECONDS + 240)]


def rest_client(server: Server) -> Client:
    async def client(n: int, stopped: Callable[[], bool], outcomes: list[Outcome]) -> None:
        name = unique(f"soak{n}r")
        async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=CALL_TIMEOUT) as http:
            body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
            outcomes.append(made := await rest(http, "rest register", "POST", "/auth/register", json=body))
            if not made.acknowledged:
                return
            login = {"username_or_email": name, "password": PASSWORD}
            while not stopped():
                began = time.monotonic()
                response = await http.post("/auth/login", json=login)
                outcomes.append(Outcome("rest login", began, time.monotonic(), str(response.status_code)))
                if response.status_code != 200:
                    return
                tokens = response.json()
                bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
                me = f"/users/{tokens['user']['id']}"
                outcomes.append(await rest(http, "rest me", "GET", "/auth/me", headers=bearer))
                outcomes.append(await rest(http, "rest read", "GET", me, headers=bearer))
                write = {"first_name": f"n{len(outcomes) % 1000}"}
                outcomes.append(await rest(http, "rest write", "PATCH", me, headers=bearer, json=write))
                began = time.monotonic()
                refreshed = await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
                outcomes.append(Outcome("rest refresh", began, time.monotonic(), str(refreshed.status_code)))
                if refreshed.status_code != 200:
                    return
                bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
                outcomes.append(await rest(http, "rest me", "GET", "/auth/me", headers=bearer))

    return client


def grpc_client(server: Server) -> Client:
    async def client(n: int, stopped: Callable[[], bool], outcomes: list[Outcome]) -> None:
        name = unique(f"soak{n}g")
        async with grpc.aio.insecure_channel(server.grpc) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            users = users_pb2_grpc.UserServiceStub(channel)
            request = auth_pb2.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD)
            made, _ = await rpc("grpc register", auth.Register, request)
            outcomes.append(made)
            if not made.acknowledged:
                return
            login = auth_pb2.LoginRequest(username_or_email=name, password=PASSWORD)
            me = auth_pb2.MeRequest()
            while not stopped():
                outcome, tokens = await rpc("grpc login", auth.Login, login)
                outcomes.append(outcome)
                if tokens is None:
                    return
                bearer = tokens.access_token
                write = users_pb2.UpdateUserRequest(id=tokens.user.id, first_name=f"n{len(outcomes) % 1000}")
                outcomes.append((await rpc("grpc me", auth.Me, me, bearer))[0])
                outcomes.append(
                    (await rpc("grpc read", users.GetUser, users_pb2.GetUserRequest(id=tokens.user.id), bearer))[0]
                )
                outcomes.append((await rpc("grpc write", users.UpdateUser, write, bearer))[0])
                refresh = auth_pb2.RefreshRequest(refresh_token=tokens.refresh_token)
                outcome, refreshed = await rpc("grpc refresh", auth.Refresh, refresh)
                outcomes.append(outcome)
                if refreshed is None:
                    return
                outcomes.append((await rpc("grpc me", auth.Me, me, refreshed.access_token))[0])

    return client


def rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (the runner and its Granian workers)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    return total


def connections(url: str) -> tuple[int, int]:
    """The service's connections to its database, and the open transactions on the server."""
    ((held,),) = query(
        url, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()"
    )
    ((open_transactions,),) = query(url, "SELECT COUNT(*) FROM information_schema.INNODB_TRX")
    return int(held), int(open_transactions)  # type: ignore[call-overload]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@pytest.mark.req("SRS-184", "SDD-181")
def test_a_soak_of_64_clients_over_both_protocols_stays_clean_stable_and_leak_free(
    mariadb: PrivateMariaDB, serve: Callable[..., Server]
) -> None:
    url = mariadb.create_database()
    server = serve(ARCANA_DATABASE_URL=url, ARCANA_WORKERS=str(WORKERS), ARCANA_RATE_LIMITS="off")
    idle_before = connections(url)[0]
    rest_loop, grpc_loop = rest_client(server), grpc_client(server)

    async def client(n: int, stopped: Callable[[], bool], outcomes: list[Outcome]) -> None:
        await (rest_loop if n % 2 == 0 else grpc_loop)(n, stopped, outcomes)

    samples: list[tuple[float, int]] = []
    peak = 0
    with Load(client, CLIENTS) as load:
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < SECONDS:
            samples.append((elapsed, rss(server.process.pid)))
            peak = max(peak, connections(url)[0])
            time.sleep(1)
        samples.append((time.monotonic() - began, rss(server.process.pid)))
    ended = time.monotonic()
    outcomes = load.outcomes
    time.sleep(2)  # the pools take back their connections and close the overflow
    held_after, open_transactions = connections(url)
    assert_clean_log(server)

    warm = next(value for at, value in samples if at >= WARM_UP)
    growth = (samples[-1][1] - warm) / warm
    measured = [o for o in outcomes if o.began >= began + WARM_UP]
    kinds = Counter(o.what for o in outcomes)
    unexpected = Counter((o.what, o.status) for o in outcomes if not o.acknowledged)
    figures = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": SECONDS,
        "warm_up_seconds": WARM_UP,
        "clients": CLIENTS,
        "workers": WORKERS,
        "database": "mariadb (private, 127.0.0.1)",
        "calls": len(outcomes),
        "calls_per_second": round(len(measured) / (ended - began - WARM_UP), 1),
        "by_kind": dict(sorted(kinds.items())),
        "latency_ms": {
            kind: {
                "p50": round(1000 * statistics.median([o.seconds for o in measured if o.what == kind]), 1),
                "p99": round(1000 * percentile([o.seconds for o in measured if o.what == kind], 0.99), 1),
            }
            for kind in sorted(kinds)
            if any(o.what == kind for o in measured)
        },
        "unexpected": {f"{what} {status}": count for (what, status), count in unexpected.items()},
        "rss_bytes": [[round(at, 1), value] for at, value in samples],
        "rss_after_warm_up": warm,
        "rss_end": samples[-1][1],
        "rss_growth": round(growth, 4),
        "db_connections": {"idle_before": idle_before, "peak": peak, "idle_after": held_after},
        "open_transactions_after": open_transactions,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({key: value for key, value in figures.items() if key != "rss_bytes"}))  # pytest -s

    assert not unexpected, unexpected
    assert {kind.split()[0] for kind in kinds} == {"rest", "grpc"}
    assert all(kinds[f"{protocol} {op}"] for protocol in ("rest", "grpc") for op in ("login", "refresh", "write"))
    assert growth < GROWTH, figures["rss_bytes"]
    assert held_after <= WORKERS * POOL_IDLE, figures["db_connections"]
    assert open_transactions == 0
