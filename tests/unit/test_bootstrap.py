"""The composition root: what each topology gets, observed through the ports it wires (no private attributes)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from py_app.auth.models import ClientInfo, SessionState
from py_app.bootstrap import build_edge
from py_app.config import Settings
from py_app.users.models import NewUser
from tests.fakes import (
    FakeTokens,
    FixedClock,
    InMemoryAccountTokens,
    InMemoryAudit,
    InMemorySessionStore,
    InMemoryUserStore,
    PlainHasher,
)


class CountingSessions(InMemorySessionStore):
    reads = 0

    async def state(self, session_id: str, user_id: str) -> SessionState | None:
        self.reads += 1
        return await super().state(session_id, user_id)


async def store_reads_for_two_requests(settings: Settings) -> int:
    users = InMemoryUserStore()
    sessions = CountingSessions(users.db)
    wired = build_edge(
        settings,
        user_store=users,
        session_store=sessions,
        account_tokens=InMemoryAccountTokens(users.db),
        audit_store=InMemoryAudit(users.db),
        hasher=PlainHasher(),
        tokens=FakeTokens(),
        clock=FixedClock(),
    )
    async with wired as container:
        made = await container.auth.register(NewUser("ann", "ann@example.com", "correct horse battery"), ClientInfo())
        for _ in range(2):
            await container.auth.authenticate(made.tokens.access_token)
    return sessions.reads


@pytest.mark.req("SDD-083")
@pytest.mark.parametrize(
    ("topology", "reads"),
    [
        ({}, 1),  # one worker on SQLite: the only process, so the second request is served from the cache
        ({"workers": 2}, 1),  # the file's commit counter reaches every worker: served from the cache
        ({"database_url": "mysql+asyncmy://u:p@127.0.0.1:1/db"}, 2),  # other replicas may revoke: every request reads
        ({"session_cache_ttl": 0}, 2),
    ],
    ids=["one-process-sqlite", "two-workers-sqlite", "network-database", "ttl-0"],
)
async def test_the_session_cache_is_chosen_from_the_topology(
    make_settings: Callable[..., Settings], topology: dict[str, object], reads: int
) -> None:
    assert await store_reads_for_two_requests(make_settings(**topology)) == reads
