"""Refresh rotation against the real databases: concurrent refreshes of one token never fork a family."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from py_app.auth.models import ClientInfo
from py_app.bootstrap import Container, build_edge
from py_app.config import Settings
from py_app.core.errors import Unauthenticated
from py_app.infra import migrations
from py_app.users.models import NewUser

CLIENT = ClientInfo("pytest", "127.0.0.1")


@pytest.fixture(params=[0], ids=["no-grace"])
async def container(
    request: pytest.FixtureRequest, database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Container]:
    await asyncio.to_thread(migrations.upgrade, database_url)
    settings = make_settings(database_url=database_url, refresh_reuse_grace=request.param)
    async with build_edge(settings) as built:
        yield built


@pytest.mark.req("SRS-043")
@pytest.mark.parametrize("racers", [2, 8])
async def test_concurrent_refreshes_of_one_token_have_exactly_one_winner(container: Container, racers: int) -> None:
    registered = await container.auth.register(NewUser("racer", "racer@example.com", "correct horse battery"), CLIENT)
    token = registered.tokens.refresh_token
    outcomes = await asyncio.gather(
        *(container.auth.refresh(token, CLIENT) for _ in range(racers)), return_exceptions=True
    )
    winners = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(outcome, Unauthenticated) for outcome in outcomes if outcome not in winners)
    # With no grace, the losers were reuse: the family is revoked as a whole, winner included. Nothing forked:
    with pytest.raises(Unauthenticated):
        await container.auth.refresh(winners[0].tokens.refresh_token, CLIENT)


@pytest.mark.req("SRS-043", "SRS-170")
@pytest.mark.parametrize("racers", [2, 8])
@pytest.mark.parametrize("container", [30], ids=["grace-30s"], indirect=True)
async def test_within_the_grace_window_racing_tabs_all_get_the_same_child(container: Container, racers: int) -> None:
    registered = await container.auth.register(NewUser("graced", "graced@example.com", "correct horse battery"), CLIENT)
    token = registered.tokens.refresh_token
    outcomes = await asyncio.gather(*(container.auth.refresh(token, CLIENT) for _ in range(racers)))
    assert len({outcome.tokens.refresh_token for outcome in outcomes}) == 1, "the family never forks"
    assert len({outcome.tokens.access_token for outcome in outcomes}) == racers, "each tab its own access token"
    sessions = {(await container.auth.authenticate(outcome.tokens.access_token)).session_id for outcome in outcomes}
    assert len(sessions) == 1
    following = await container.auth.refresh(outcomes[0].tokens.refresh_token, CLIENT)
    principal = await container.auth.authenticate(following.tokens.access_token)
    assert [session.id for session in await container.auth.sessions(principal)] == [principal.session_id]
