"""SIGTERM to a two-worker server while 32 clients create accounts over REST and gRPC.

The database answers slowly (a latency proxy), so that every create takes a while and some are surely in
flight when the signal comes: those complete and are acknowledged, the process exits 0 within the grace, and
every create it acknowledged is in the database. Calls begun after the signal are refused the clean way.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.e2e.support import Server
from tests.faults.load import Load, assert_clean_log, creates
from tests.faults.private import PrivateMariaDB, query
from tests.faults.proxy import latency_proxy

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.timeout(300)]
CLIENTS = 32  # half over REST (a connection per request), half over gRPC (a channel each)
GRACE = 15.0
LATENCY = 0.1  # per answer of the database: a create takes about a second
IN_FLIGHT = 0.5  # a call sent this long before the signal has reached the server
# What a call the server no longer takes gets: the listener is closed (REST); the server stops accepting
# (gRPC: UNAVAILABLE, or CANCELLED for a call that reaches a worker just as its server shuts down).
REFUSED = frozenset({"ConnectError", "ReadError", "RemoteProtocolError", "UNAVAILABLE", "CANCELLED"})


@pytest.mark.req("SRS-183", "SDD-182")
def test_sigterm_under_load_completes_in_flight_calls_and_loses_no_acknowledged_create(
    mariadb: PrivateMariaDB, serve: Callable[..., Server]
) -> None:
    with latency_proxy(mariadb.port) as proxy:
        url = mariadb.create_database().replace(f":{mariadb.port}/", f":{proxy.port}/")
        server = serve(
            ARCANA_DATABASE_URL=url,
            ARCANA_WORKERS="2",
            ARCANA_SHUTDOWN_GRACE=str(GRACE),
            ARCANA_RATE_LIMITS="off",
        )
        proxy.delay = LATENCY
        with Load(creates(server, "term", keep_alive=False, give_up=REFUSED), CLIENTS) as load:
            load.wait_for(CLIENTS)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(GRACE + 30)
            exited_after = time.monotonic() - signalled
        outcomes = load.outcomes
        stored = {
            str(row[0])
            for row in query(url.replace(f":{proxy.port}/", f":{mariadb.port}/"), "SELECT username FROM users")
        }

    in_flight = [o for o in outcomes if o.began <= signalled - IN_FLIGHT and o.ended >= signalled]
    acknowledged = {o.name for o in outcomes if o.acknowledged}
    print(  # the measured figures, for the report (pytest -s)
        f"{len(outcomes)} creates, {len(acknowledged)} acknowledged, {len(in_flight)} in flight at SIGTERM "
        f"(completed up to {max(o.ended for o in in_flight) - signalled:.2f}s after it); exit {code} after "
        f"{exited_after:.2f}s; {len(stored)} rows stored"
    )
    assert code == 0, server.output()[-3000:]
    assert exited_after <= GRACE + 5  # Granian stops its workers one after the other, each drains within the grace
    assert {o.what for o in in_flight} == {"rest register", "grpc register"}, in_flight
    assert all(o.acknowledged for o in in_flight), [o for o in in_flight if not o.acknowledged]
    for outcome in outcomes:
        assert outcome.acknowledged or (outcome.began > signalled - IN_FLIGHT and outcome.status in REFUSED), outcome
    assert acknowledged <= stored, sorted(acknowledged - stored)[:10]
    assert "drain forced" not in server.output()
    assert_clean_log(server)
