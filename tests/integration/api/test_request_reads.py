"""An uncached point query of one's own record is one query (SDD-270): the session check reads the account with
the session, and the request's own read of that account is answered from that row (``infra.request_reads``).

The statements are counted where they reach the database driver (SQLAlchemy's cursor event on every engine,
the loop-thread SQLite reader's included), through both transports: REST through the app's ASGI interface,
gRPC through a real server and client on the same container. Then the guarantees: a row kept for one request
never enters a cache, and a request's write drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, users_pb2, users_pb2_grpc
from py_app.entrypoints import rpc
from py_app.infra import request_reads
from py_app.infra.db import create_engine, transaction
from py_app.users.models import UserChanges
from py_app.users.repositories import SqlUserStore
from tests.integration.api.api_support import V1, expect
from tests.integration.api.conftest import OpenApi

pytestmark = pytest.mark.req("SDD-270")


@contextlib.contextmanager
def reads_of_users() -> Iterator[list[str]]:
    """Every statement any engine sends that reads the ``users`` table, as it is sent."""
    seen: list[str] = []

    def sent(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split()).lower()
        if text.startswith("select") and " users" in text:
            seen.append(text)

    event.listen(Engine, "before_cursor_execute", sent)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", sent)


async def test_an_uncached_point_query_of_ones_own_record_is_one_query_on_both_protocols(
    open_api: OpenApi, database_url: str
) -> None:
    async with open_api(database_url=database_url, session_cache_ttl=0) as api:
        dana = await api.register("dana")
        other = await api.register("erin")
        admin = api.admin_headers
        async with (
            rpc.serving(api.container, "127.0.0.1", 0) as server,
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            users, auth = users_pb2_grpc.UserServiceStub(channel), auth_pb2_grpc.AuthServiceStub(channel)
            metadata = (("authorization", f"Bearer {dana.access}"),)
            counts: dict[str, int] = {}
            for name, call in {
                "rest get own": lambda: api.client.get(f"{V1}/users/{dana.id}", headers=dana.headers),
                "rest me": lambda: api.me(dana.access),
                "grpc get own": lambda: users.GetUser(users_pb2.GetUserRequest(id=dana.id), metadata=metadata),
                "grpc me": lambda: auth.Me(auth_pb2.MeRequest(), metadata=metadata),
                "rest admin gets another": lambda: api.client.get(f"{V1}/users/{other.id}", headers=admin),
            }.items():
                with reads_of_users() as seen:
                    answer = await call()
                if hasattr(answer, "status_code"):
                    expect(answer, 200)
                counts[name] = len(seen)
    assert counts == {
        "rest get own": 1,  # the session with its account, and nothing more
        "rest me": 1,
        "grpc get own": 1,
        "grpc me": 1,
        "rest admin gets another": 2,  # the admin's session, then the other account
    }


async def test_a_row_kept_for_one_request_never_enters_the_user_records_cache(
    open_api: OpenApi, make_settings: Callable[..., Any]
) -> None:
    """The kept row was read before the cache's stamp: were it cached, a commit between the session check and
    the request's read (here, another process's update) would be served to the next request."""
    async with open_api(session_cache_ttl=60) as api:
        fay = await api.register("fay")
        container = api.container
        elsewhere = create_engine(api.settings.effective_database_url)
        try:
            scope = request_reads.enter()
            try:
                principal = await container.auth.authenticate(fay.access)
                # Another process's commit: outside this request's scope (a write inside it would drop the row).
                update = SqlUserStore(elsewhere).update(fay.id, UserChanges(first_name="Later"), datetime.now(UTC))
                await asyncio.create_task(update, context=contextvars.Context())
                during = await container.users.get(principal, fay.id)
            finally:
                request_reads.leave(scope)
            scope = request_reads.enter()
            try:
                after = await container.users.get(await container.auth.authenticate(fay.access), fay.id)
            finally:
                request_reads.leave(scope)
        finally:
            await elsewhere.dispose()
    assert during.first_name == ""  # the row the request was authorized on, read once
    assert after.first_name == "Later"  # the next request reads what the database holds


async def test_the_kept_row_is_the_requesting_tasks_and_goes_with_a_write(open_api: OpenApi) -> None:
    async with open_api() as api:
        gus = await api.register("gus")
        account = await SqlUserStore(engine := create_engine(api.settings.effective_database_url)).get(gus.id)
        assert account is not None
        try:
            request_reads.remember(account)
            outside = request_reads.recall(gus.id)  # no scope: nothing is kept
            scope = request_reads.enter()
            try:
                request_reads.remember(account)
                kept, other_id = request_reads.recall(gus.id), request_reads.recall("another-id")
                child = await asyncio.create_task(_recall_in_task(gus.id))
                async with transaction(engine):
                    pass
                after_write = request_reads.recall(gus.id)
            finally:
                request_reads.leave(scope)
        finally:
            await engine.dispose()
    assert outside is None
    assert kept == account
    assert other_id is None
    assert child is None  # a task started during the request inherits the context, not the row
    assert after_write is None


async def _recall_in_task(user_id: str) -> Any:
    return request_reads.recall(user_id)
