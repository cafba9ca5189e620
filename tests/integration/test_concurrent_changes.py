"""Changes that race a login or each other, on the real databases: nothing an admin or user did is lost.

A gated hasher pauses a login between its password check and its write, which is exactly the window
a concurrent change lands in on a busy server (a hash takes ~20 ms).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from py_app.auth.models import ClientInfo
from py_app.bootstrap import Container, build_edge
from py_app.config import Settings
from py_app.core.errors import Conflict, Unauthenticated, Unavailable
from py_app.core.identity import Principal
from py_app.core.ports import PasswordHasher
from py_app.infra import migrations
from py_app.infra.db import create_engine
from py_app.infra.security import Argon2Hasher
from py_app.users.models import NewUser, Role, Status, UserQuery
from py_app.users.repositories import SqlUserStore

CLIENT = ClientInfo("pytest", "127.0.0.1")
PASSWORD = "correct horse battery"


class GatedHasher:
    """The real hasher; once armed, the next verify waits at a gate after checking, until released."""

    def __init__(self, inner: PasswordHasher) -> None:
        self.inner = inner
        self.armed = False
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def hash(self, password: str) -> str:
        return await self.inner.hash(password)

    def needs_rehash(self, encoded: str) -> bool:
        return self.inner.needs_rehash(encoded)

    async def verify(self, encoded: str, password: str) -> bool:
        result = await self.inner.verify(encoded, password)
        if self.armed and not self.reached.is_set():
            self.reached.set()
            await self.release.wait()
        return result


@pytest.fixture
async def gate() -> AsyncIterator[GatedHasher]:
    inner = Argon2Hasher()
    yield GatedHasher(inner)
    inner.close()


@pytest.fixture
async def container(
    database_url: str, make_settings: Callable[..., Settings], gate: GatedHasher
) -> AsyncIterator[Container]:
    await asyncio.to_thread(migrations.upgrade, database_url)
    async with build_edge(make_settings(database_url=database_url), hasher=gate) as built:
        yield built


async def paused_login(container: Container, gate: GatedHasher, login: str, password: str) -> asyncio.Task[object]:
    """A login held between its password check and its write (only this one: the gate opens once)."""
    gate.armed = True
    task: asyncio.Task[object] = asyncio.create_task(container.auth.login(login, password, CLIENT))
    await gate.reached.wait()
    return task


@pytest.mark.req("SRS-049")
async def test_a_suspension_during_a_login_wins(container: Container, gate: GatedHasher) -> None:
    admin = await container.users.create_admin("root", "root@example.com", "a long admin passphrase")
    alice = await container.users.create(NewUser("alice", "alice@example.com", PASSWORD))
    login = await paused_login(container, gate, "alice", PASSWORD)
    await container.users.set_status(Principal(admin.id, "s", "admin"), alice.id, Status.SUSPENDED)
    gate.release.set()
    with pytest.raises(Unauthenticated):
        await login
    assert (await container.users.get(Principal(admin.id, "s", "admin"), alice.id)).status is Status.SUSPENDED


@pytest.mark.req("SRS-049")
async def test_a_demotion_during_a_login_wins(container: Container, gate: GatedHasher) -> None:
    admin = await container.users.create_admin("root", "root@example.com", "a long admin passphrase")
    other = await container.users.create_admin("root2", "root2@example.com", "another admin passphrase")
    login = await paused_login(container, gate, "root2", "another admin passphrase")
    await container.users.set_role(Principal(admin.id, "s", "admin"), other.id, Role.USER)
    gate.release.set()
    result = await login
    assert (await container.users.get(Principal(admin.id, "s", "admin"), other.id)).role is Role.USER
    principal = await container.auth.authenticate(result.tokens.access_token)  # type: ignore[attr-defined]
    assert principal.role == "user"


@pytest.mark.req("SRS-048")
async def test_a_password_change_during_a_login_with_the_old_password_wins(
    container: Container, gate: GatedHasher
) -> None:
    await container.users.create(NewUser("alice", "alice@example.com", PASSWORD))
    mine = await container.auth.login("alice", PASSWORD, CLIENT)
    me = await container.auth.authenticate(mine.tokens.access_token)
    attacker = await paused_login(container, gate, "alice", PASSWORD)
    await container.users.change_password(me, me.user_id, PASSWORD, "a brand new passphrase")
    gate.release.set()
    with pytest.raises(Unauthenticated):
        await attacker
    assert (await container.auth.login("alice", "a brand new passphrase", CLIENT)).user.id == me.user_id
    with pytest.raises(Unauthenticated):
        await container.auth.login("alice", PASSWORD, CLIENT)


@pytest.mark.req("SRS-048")
async def test_two_concurrent_password_changes_cannot_both_win(container: Container) -> None:
    await container.users.create(NewUser("alice", "alice@example.com", PASSWORD))
    me = await container.auth.authenticate((await container.auth.login("alice", PASSWORD, CLIENT)).tokens.access_token)
    outcomes = await asyncio.gather(
        container.users.change_password(me, me.user_id, PASSWORD, "first new passphrase"),
        container.users.change_password(me, me.user_id, PASSWORD, "second new passphrase"),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["Conflict", "NoneType"], outcomes
    assert any(isinstance(outcome, Conflict) for outcome in outcomes)


async def test_a_database_failure_is_unavailable_not_a_crash(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(database_url="mysql+asyncmy://root@127.0.0.1:1/none")  # nothing listens: every query fails
    async with build_edge(settings) as container:
        with pytest.raises(Unavailable):
            await container.auth.login("anyone", PASSWORD, CLIENT)
    engine = create_engine(settings.effective_database_url)
    try:
        assert engine.sync_engine.hide_parameters  # parameters hold hashes: never logged
        with pytest.raises(Unavailable) as caught:
            await SqlUserStore(engine).get("00000000-0000-4000-8000-000000000000")
        assert str(caught.value) == "The database is busy or unavailable; try again."
    finally:
        await engine.dispose()


@pytest.mark.req("SRS-171")
async def test_two_admins_demoting_each_other_at_once_leave_one(container: Container) -> None:
    first = await container.users.create_admin("root", "root@example.com", "a long admin passphrase")
    second = await container.users.create_admin("root2", "root2@example.com", "another admin passphrase")
    as_first, as_second = Principal(first.id, "s1", "admin"), Principal(second.id, "s2", "admin")
    outcomes = await asyncio.gather(
        container.users.set_role(as_first, second.id, Role.USER),
        container.users.set_role(as_second, first.id, Role.USER),
        return_exceptions=True,
    )
    refused = [outcome for outcome in outcomes if isinstance(outcome, Conflict)]
    assert len(refused) == 1, outcomes
    page = await container.users.search(as_first, UserQuery(role=Role.ADMIN))
    assert page.total == 1
