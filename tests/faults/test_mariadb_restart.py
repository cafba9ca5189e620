"""MariaDB killed (SIGKILL, as a crash or an OOM kill does) and started again while creates flow over both protocols.

During the outage every create fails fast and the documented way, readiness turns 503 naming the database;
after the restart the service serves again by itself, and every create it acknowledged is in the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.e2e.support import Server
from tests.faults.load import Load, assert_clean_failures, assert_clean_log, creates, readiness, wait_until
from tests.faults.private import PrivateMariaDB, query

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.timeout(300)]
DB_TIMEOUT = 2.0
BOUND = 2 * DB_TIMEOUT + 2  # what one call may take while the database is gone (as tests/e2e/test_database_faults.py)
OUTAGE = 4.0  # seconds the database stays dead under load
RESUME = 15.0  # after the restart answers, seconds until creates succeed again: "within a few seconds", on a loaded CI
CLIENTS = 8  # half over REST, half over gRPC


@pytest.mark.req("SRS-180", "SDD-180")
def test_a_killed_database_gives_fast_503s_and_loses_no_acknowledged_create(
    mariadb: PrivateMariaDB, serve: Callable[..., Server]
) -> None:
    url = mariadb.create_database()
    server = serve(ARCANA_DATABASE_URL=url, ARCANA_DB_TIMEOUT=str(DB_TIMEOUT), ARCANA_RATE_LIMITS="off")
    with Load(creates(server, "kill", pause=0.02), CLIENTS) as load:
        load.wait_for(20)
        killed = time.monotonic()
        mariadb.kill()
        not_ready_after = wait_until(lambda: readiness(server)[0] == 503, 15)
        status, body = readiness(server)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - killed)))
        restarted = time.monotonic()
        mariadb.restart()
        answering = time.monotonic()
        resumed_after = wait_until(lambda: any(o.acknowledged for o in load.since(answering)), RESUME)
        ready_after = wait_until(lambda: readiness(server)[0] == 200, RESUME)
        time.sleep(1)  # some more creates on the recovered database
    outcomes = load.outcomes

    during = [o for o in outcomes if killed <= o.began and o.ended <= restarted]
    acknowledged = {o.name for o in outcomes if o.acknowledged}
    stored = {str(row[0]) for row in query(url, "SELECT username FROM users")}
    print(  # the measured figures, for the report (pytest -s)
        f"{len(outcomes)} creates, {len(acknowledged)} acknowledged, {len(during)} during the outage "
        f"(slowest {max(o.seconds for o in during):.2f}s); not ready {not_ready_after:.2f}s after the kill; "
        f"restart answered in {answering - restarted:.2f}s, creates again {resumed_after:.2f}s and ready "
        f"{ready_after:.2f}s after that; {len(stored)} rows stored"
    )
    assert {o.what for o in during} == {"rest register", "grpc register"}, during
    assert not any(o.acknowledged for o in during), during
    assert_clean_failures(outcomes, BOUND)
    assert (status, body["checks"]["database"][:4]) == (503, "fail"), body
    assert acknowledged <= stored, sorted(acknowledged - stored)[:10]
    assert_clean_log(server)
