"""The caller's own account and sessions: me, list, revoke one, revoke all, over both protocols."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from tests.contract.clients import Client, Tokens, assert_user, fails, login, ok, register, tokens, unique
from tests.contract.conftest import ADMIN_USERNAME, scenario

pytestmark = pytest.mark.req("SRS-060")
SESSION_FIELDS = {"id", "created_at", "last_used_at", "user_agent", "ip", "current"}


@scenario
async def test_me_returns_the_caller(client: Client, admin: Tokens) -> None:
    name = unique("sam")
    made = await register(client, name, first_name="Sam")
    assert_user(ok(await client.me(made.access)), id=made.id, username=name, first_name="Sam", role="user")
    assert_user(ok(await client.me(admin.access)), username=ADMIN_USERNAME, role="admin", is_verified=True)


@scenario
async def test_sessions_list_marks_the_current_one_and_never_shows_tokens(client: Client) -> None:
    name = unique("tina")
    first = await register(client, name, user_agent="Agent-One/1.0")
    second = await login(client, name, user_agent="Agent-Two/2.0")
    stranger = await register(client, unique("ulrich"))

    outcome = await client.sessions(first.access)
    items = ok(outcome)["items"]
    for token in (first.access, first.refresh, second.access, second.refresh):
        assert token not in outcome.raw
        assert token not in repr(items)
    assert len(items) == 2, items
    for item in items:
        assert set(item) == SESSION_FIELDS, item
        assert isinstance(item["current"], bool)
        assert isinstance(item["created_at"], datetime)
        assert isinstance(item["last_used_at"], datetime)
        uuid.UUID(item["id"])
    assert [item["current"] for item in items].count(True) == 1
    # gRPC carries the channel's primary user agent first, then its own product token.
    current = next(item for item in items if item["current"])
    assert current["user_agent"].startswith("Agent-One/1.0"), current
    other = next(item for item in items if not item["current"])
    assert other["user_agent"].startswith("Agent-Two/2.0"), other

    from_second = ok(await client.sessions(second.access))["items"]
    assert next(item for item in from_second if item["current"])["id"] == other["id"]
    assert {item["id"] for item in from_second} == {item["id"] for item in items}

    theirs = ok(await client.sessions(stranger.access))["items"]
    assert len(theirs) == 1
    assert not {item["id"] for item in theirs} & {item["id"] for item in items}


@scenario
async def test_revoke_one_session(client: Client) -> None:
    name = unique("victor")
    keep = await register(client, name, user_agent="Keep/1")
    drop = await login(client, name, user_agent="Drop/1")
    stranger = await register(client, unique("wendy"))
    items = ok(await client.sessions(keep.access))["items"]
    drop_id = next(item["id"] for item in items if item["user_agent"].startswith("Drop/1"))

    # Another user cannot see or delete it: not found, and it keeps working.
    fails(await client.revoke_session(stranger.access, drop_id), "not_found")
    ok(await client.me(drop.access))
    fails(await client.revoke_session(keep.access, str(uuid.uuid4())), "not_found")

    assert ok(await client.revoke_session(keep.access, drop_id)) is None
    fails(await client.me(drop.access), "unauthenticated")
    fails(await client.refresh(drop.refresh), "unauthenticated")
    ok(await client.me(keep.access))
    remaining = ok(await client.sessions(keep.access))["items"]
    assert drop_id not in {item["id"] for item in remaining}
    fails(await client.revoke_session(keep.access, drop_id), "not_found")


@scenario
async def test_revoke_all_keeping_the_current_session(client: Client) -> None:
    name = unique("xena")
    current = await register(client, name)
    others = [await login(client, name), await login(client, f"{name}@example.com")]
    bystander = await register(client, unique("yuri"))
    assert ok(await client.revoke_all(current.access, keep_current=True)) == {"revoked": 2}
    ok(await client.me(current.access))
    for other in others:
        fails(await client.me(other.access), "unauthenticated")
        fails(await client.refresh(other.refresh), "unauthenticated")
    assert [item["current"] for item in ok(await client.sessions(current.access))["items"]] == [True]
    ok(await client.me(bystander.access))


@scenario
async def test_revoke_all_by_default_includes_the_current_session(client: Client) -> None:
    name = unique("zoe")
    current = await register(client, name)
    other = await login(client, name)
    assert ok(await client.revoke_all(current.access)) == {"revoked": 2}
    for session in (current, other):
        fails(await client.me(session.access), "unauthenticated")
        fails(await client.refresh(session.refresh), "unauthenticated")
    tokens(await client.login(name, "violet-harbour-lantern-42"))


@scenario
async def test_account_calls_need_a_token(client: Client) -> None:
    fails(await client.me(None), "unauthenticated")
    fails(await client.sessions(None), "unauthenticated")
    fails(await client.revoke_session(None, str(uuid.uuid4())), "unauthenticated")
    fails(await client.revoke_all(None), "unauthenticated")
    fails(await client.logout(None), "unauthenticated")
