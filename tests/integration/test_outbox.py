"""The transactional outbox and its relay, on the real databases and a real SMTP server process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from py_app.auth.models import ClientInfo
from py_app.bootstrap import Container, build_edge
from py_app.config import Settings
from py_app.core.effects import mail
from py_app.core.errors import Conflict
from py_app.infra import migrations
from py_app.infra.db import create_engine
from py_app.infra.outbox import MAX_ATTEMPTS, SqlOutbox, outbox
from py_app.infra.relay import OutboxRelay
from py_app.users.models import NewUser
from tests.fakes import FixedClock
from tests.support.smtp import Sink, smtp_sink, token_in

__all__ = ["smtp_sink"]
pytestmark = pytest.mark.req("SRS-102")
CLIENT = ClientInfo("pytest", "203.0.113.9")
PASSWORD = "violet harbour lantern 42"


def relay_of(container: Container) -> OutboxRelay:
    return next(job for job in container.jobs if isinstance(job, OutboxRelay))


@pytest.fixture
async def migrated(database_url: str) -> str:
    await asyncio.to_thread(migrations.upgrade, database_url)
    return database_url


@pytest.fixture
def settings(migrated: str, make_settings: Callable[..., Settings], smtp_sink: Sink) -> Settings:
    return make_settings(database_url=migrated, smtp_url=smtp_sink.url)


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    async with build_edge(settings) as built:
        yield built


@contextlib.asynccontextmanager
async def store_at(url: str) -> AsyncIterator[SqlOutbox]:
    engine = create_engine(url)
    try:
        yield SqlOutbox(engine)
    finally:
        await engine.dispose()


async def rows(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            query = sa.select(outbox.c.topic, outbox.c.status, outbox.c.attempts).order_by(outbox.c.created_at)
            return list((await connection.execute(query)).all())
    finally:
        await engine.dispose()


async def test_a_registration_mails_its_verification_code_through_smtp(
    container: Container, settings: Settings, smtp_sink: Sink
) -> None:
    made = await container.auth.register(NewUser("ann", "ann@example.com", PASSWORD), CLIENT)
    assert [(row.topic, row.status) for row in await rows(settings.effective_database_url)] == [("mail", "pending")]
    assert await relay_of(container).run_once() == 1
    [letter] = await asyncio.to_thread(smtp_sink.wait_for, "ann@example.com")
    assert letter["Subject"] == "Confirm your email address"
    verified = await container.recovery.verify_email(token_in(letter), CLIENT)
    assert (verified.id, verified.is_verified) == (made.user.id, True)
    assert [(row.topic, row.status) for row in await rows(settings.effective_database_url)] == [("mail", "done")]


async def test_a_change_that_rolls_back_writes_no_message(container: Container, settings: Settings) -> None:
    await container.auth.register(NewUser("bob", "bob@example.com", PASSWORD), CLIENT)
    with pytest.raises(Conflict):
        await container.auth.register(NewUser("BOB", "other@example.com", PASSWORD), CLIENT)
    assert len(await rows(settings.effective_database_url)) == 1  # only the first registration's mail


async def test_two_relays_never_send_a_message_twice(settings: Settings, smtp_sink: Sink) -> None:
    addresses = [f"reader{n}@example.com" for n in range(30)]
    async with build_edge(settings) as first, build_edge(settings) as second:
        letters = [
            mail(to, "email_verify", token_id=f"id-{n}", username=f"reader{n}") for n, to in enumerate(addresses)
        ]
        async with store_at(settings.effective_database_url) as store:
            await store.publish(*letters, now=FixedClock().current.replace(year=2000))

        async def drain(relay: OutboxRelay) -> int:
            handled = 0
            while (batch := await relay.run_once()) > 0:
                handled += batch
            return handled

        counts = await asyncio.gather(drain(relay_of(first)), drain(relay_of(second)))
    assert sum(counts) == 30
    assert counts[0] > 0
    assert counts[1] > 0, "both relays worked (the lease, not luck, kept them apart)"
    delivered = [message["To"] for message in smtp_sink.messages()]
    assert sorted(delivered) == sorted(addresses)  # each exactly once


async def test_a_message_that_keeps_failing_is_retried_with_back_off_then_kept_as_dead(
    migrated: str, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FixedClock()
    dead_port = make_settings(database_url=migrated, smtp_url="smtp://127.0.0.1:1")  # nothing listens there
    async with build_edge(dead_port, clock=clock) as container:
        await container.auth.register(NewUser("cat", "cat@example.com", PASSWORD), CLIENT)
        relay = relay_of(container)
        delays = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert await relay.run_once() == 1
            [row] = await rows(migrated)
            assert (row.attempts, row.status) == (attempt, "dead" if attempt == MAX_ATTEMPTS else "pending")
            assert await relay.run_once() == 0  # not due again yet
            delays.append(5 * 2 ** (attempt - 1))
            clock.advance(min(delays[-1], 3600))
    assert delays[:3] == [5, 10, 20]
    assert "outbox message dead" in caplog.text


async def test_without_a_mail_server_messages_wait_and_the_relay_says_so(
    migrated: str, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    async with build_edge(make_settings(database_url=migrated)) as container:
        await container.auth.register(NewUser("dan", "dan@example.com", PASSWORD), CLIENT)
        stop = asyncio.Event()
        with caplog.at_level(logging.WARNING, logger="arcana.outbox"):
            task = asyncio.create_task(relay_of(container).run(stop))
            await asyncio.sleep(0.5)
            stop.set()
            await task
    assert [(row.topic, row.status) for row in await rows(migrated)] == [("mail", "pending")]
    assert "waiting for delivery; set ARCANA_SMTP_URL" in caplog.text


async def test_delivered_messages_are_pruned_after_a_week(container: Container, settings: Settings) -> None:
    await container.auth.register(NewUser("eve", "eve@example.com", PASSWORD), CLIENT)
    await relay_of(container).run_once()
    async with store_at(settings.effective_database_url) as store:
        assert await store.prune(FixedClock().current) == 0  # delivered just now (in 2026): kept
        assert await store.prune(FixedClock().current.replace(year=2999) - timedelta(days=7)) == 1
