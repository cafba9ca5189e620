"""A slow database: a TCP proxy between the service and a private MariaDB delays everything the database sends.

Slowed a little, every create still succeeds; slowed past ARCANA_DB_TIMEOUT, every create ends within the
deadline's bound with 503 + Retry-After / UNAVAILABLE + RetryInfo; throughout, /health/live answers (the event
loop is never stuck behind the database); with the latency gone, creates succeed again by themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.e2e.support import Server
from tests.faults.load import (
    Load,
    assert_clean_failures,
    assert_clean_log,
    creates,
    live_seconds,
    readiness,
    wait_until,
)
from tests.faults.private import PrivateMariaDB
from tests.faults.proxy import latency_proxy

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.timeout(300)]
DB_TIMEOUT = 4.0
BOUND = 2 * DB_TIMEOUT + 2  # a pre-ping and a reconnect may each take the timeout (SDD-161), and CI is loaded
LIVE_BOUND = DB_TIMEOUT / 2  # generous (it answers in milliseconds), yet well short of a loop stuck on the database
SLOW = 0.02  # seconds added to each answer of the database: slower, well within the deadline
HUNG = 3 * DB_TIMEOUT  # past every deadline
CLIENTS = 4


@pytest.mark.req("SRS-182")
def test_a_slow_database_keeps_request_deadlines_and_a_responsive_liveness_check(
    mariadb: PrivateMariaDB, serve: Callable[..., Server]
) -> None:
    with latency_proxy(mariadb.port) as proxy:
        url = mariadb.create_database().replace(f":{mariadb.port}/", f":{proxy.port}/")
        server = serve(ARCANA_DATABASE_URL=url, ARCANA_DB_TIMEOUT=str(DB_TIMEOUT), ARCANA_RATE_LIMITS="off")
        with Load(creates(server, "slow", pause=0.05), CLIENTS) as load:
            load.wait_for(5)
            proxy.delay = SLOW
            slowed = time.monotonic()
            time.sleep(3)
            hung = time.monotonic()
            proxy.delay = HUNG
            time.sleep(0.5)  # calls now wait on the database
            lives = [live_seconds(server) for _ in range(5)]
            status = readiness(server)[0]
            time.sleep(BOUND)  # every call begun before the latency went up has ended by now
            restored = time.monotonic()
            proxy.delay = 0
            resumed_after = wait_until(lambda: any(o.acknowledged for o in load.since(restored)), 2 * BOUND)
    outcomes = load.outcomes

    slow = [o for o in outcomes if slowed <= o.began and o.ended <= hung]
    stuck = [o for o in outcomes if hung <= o.began and o.ended <= restored]
    print(  # the measured figures, for the report (pytest -s)
        f"slow: {len(slow)} creates, slowest {max(o.seconds for o in slow):.2f}s; hung: {len(stuck)} creates, "
        f"slowest {max(o.seconds for o in stuck):.2f}s; /health/live slowest {max(lives):.3f}s; "
        f"creates again {resumed_after:.2f}s after the latency went"
    )
    assert slow, "no create ran on the slowed database"
    assert all(o.acknowledged for o in slow), [o for o in slow if not o.acknowledged]
    assert {o.what for o in stuck} == {"rest register", "grpc register"}, stuck
    assert not any(o.acknowledged for o in stuck), stuck
    assert_clean_failures(outcomes, BOUND)
    assert max(lives) <= LIVE_BOUND, lives
    assert status == 503
    assert_clean_log(server)
