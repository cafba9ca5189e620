"""The microservices users service on a SQLite file reads account records through the in-process cache, as
the monolith does (SDD-255, SDD-267): a repeated read is a hit, and any commit to the file, by another
process or by a write the auth service asks for, is read afresh by the very next call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from py_app.bootstrap import build_users_service
from py_app.config import Settings
from py_app.core.errors import Unavailable
from py_app.core.identity import Principal
from py_app.infra import migrations
from py_app.infra.db import create_engine
from py_app.users.models import LoginWrite, Role, User, UserChanges
from py_app.users.ports import AccountWrites, UserUseCases
from py_app.users.repositories import SqlUserStore
from tests.conftest import free_port
from tests.fakes import PlainHasher, RecordingMetrics

pytestmark = pytest.mark.req("SRS-255", "SDD-267")
ADMIN = Principal(str(uuid.uuid4()), "admin-session", Role.ADMIN.value)


async def test_the_users_service_caches_records_and_reads_every_commit_afresh(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        mode="microservices", role="users", auth_target=f"127.0.0.1:{free_port()}", internal_timeout=1.0
    )
    await asyncio.to_thread(migrations.upgrade, settings.effective_database_url)
    other_process = create_engine(settings.effective_database_url)
    database = SqlUserStore(other_process)
    now = datetime.now(UTC).replace(microsecond=0)
    hashed = await PlainHasher().hash("a password")
    account = User(
        id=str(uuid.uuid4()),
        username="cached",
        email="cached@example.com",
        password_hash=hashed,
        created_at=now,
        updated_at=now,
    )
    await database.add(account)
    metrics = RecordingMetrics()
    container = build_users_service(settings, metrics=metrics, hasher=PlainHasher())
    users: UserUseCases = container.ports["UserUseCases"].adapter  # type: ignore[assignment]
    writes: AccountWrites = container.ports["AccountWrites"].adapter  # type: ignore[assignment]
    try:
        assert (await users.get(ADMIN, account.id)).first_name == ""
        assert (await users.get(ADMIN, account.id)).first_name == ""
        assert metrics.counts["cache", "user", "hit"] == 1

        await database.update(account.id, UserChanges(first_name="Other"), now)  # another process's commit
        assert (await users.get(ADMIN, account.id)).first_name == "Other"

        # The auth service's write of a login commits, then cannot reach the (absent) auth replica: 503,
        # yet the record read next is the one committed.
        logged_in = now + timedelta(seconds=5)
        with pytest.raises(Unavailable):
            await writes.record_login(LoginWrite(account.id, hashed, logged_in))
        assert (await users.get(ADMIN, account.id)).last_login_at == logged_in
        assert metrics.counts["cache", "user", "hit"] == 1
    finally:
        await container.stack.aclose()
        await other_process.dispose()
