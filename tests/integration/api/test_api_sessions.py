"""The caller's own account and sessions: me, list, delete one, revoke all (SRS-045)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.api.api_support import (
    V1,
    Api,
    assert_no_password_hash,
    assert_problem,
    assert_token_response,
    assert_user,
    expect,
    parse_time,
)

SESSION_FIELDS = {"id", "created_at", "last_used_at", "user_agent", "ip", "current"}


@pytest.mark.req("SRS-045")
async def test_me_returns_the_caller(api: Api) -> None:
    login = await api.register("sam", first_name="Sam")
    response = await api.me(login.access)
    assert_no_password_hash(response)
    assert_user(expect(response, 200), id=login.id, username="sam", first_name="Sam", role="user")
    admin = expect(await api.client.get(f"{V1}/auth/me", headers=api.admin_headers), 200)
    assert_user(admin, role="admin", is_verified=True)


@pytest.mark.req("SRS-045")
async def test_sessions_list_marks_the_current_one_and_never_shows_tokens(api: Api) -> None:
    first = await api.login_as_new("tina", user_agent="Agent-One/1.0")
    second = await api.login("tina", user_agent="Agent-Two/2.0")
    stranger = await api.register("ulrich")

    response = await api.client.get(f"{V1}/auth/sessions", headers=first.headers)
    items = expect(response, 200)["items"]
    for token in (first.access, first.refresh, second.access, second.refresh):
        assert token not in response.text
        assert token.split(".")[-1] not in response.text  # not even a signature or a suffix
    assert "token" not in response.text.lower()

    assert len(items) == 2, items  # the registration's session plus the login, not the stranger's
    for item in items:
        assert set(item) >= SESSION_FIELDS, item
        assert not any("token" in key or "hash" in key for key in item), item
        assert isinstance(item["current"], bool)
        parse_time(item["created_at"])
        if item["last_used_at"] is not None:
            parse_time(item["last_used_at"])
    assert [item["current"] for item in items].count(True) == 1
    agents = {item["user_agent"] for item in items}
    assert agents == {"Agent-One/1.0", "Agent-Two/2.0"}, agents
    current = next(item for item in items if item["current"])
    assert current["user_agent"] == "Agent-One/1.0"

    from_second = expect(await api.client.get(f"{V1}/auth/sessions", headers=second.headers), 200)["items"]
    assert next(item for item in from_second if item["current"])["user_agent"] == "Agent-Two/2.0"
    assert {item["id"] for item in from_second} == {item["id"] for item in items}

    theirs = expect(await api.client.get(f"{V1}/auth/sessions", headers=stranger.headers), 200)["items"]
    assert len(theirs) == 1
    assert not {item["id"] for item in theirs} & {item["id"] for item in items}


@pytest.mark.req("SRS-045")
async def test_delete_one_session(api: Api) -> None:
    keep = await api.login_as_new("victor", user_agent="Keep/1")
    drop = await api.login("victor", user_agent="Drop/1")
    stranger = await api.register("wendy")

    items = expect(await api.client.get(f"{V1}/auth/sessions", headers=keep.headers), 200)["items"]
    drop_id = next(item["id"] for item in items if item["user_agent"] == "Drop/1")

    # Another user cannot see or delete it: 404, and it keeps working.
    assert_problem(await api.client.delete(f"{V1}/auth/sessions/{drop_id}", headers=stranger.headers), 404)
    expect(await api.me(drop.access), 200)
    assert_problem(await api.client.delete(f"{V1}/auth/sessions/{uuid.uuid4()}", headers=keep.headers), 404)

    expect(await api.client.delete(f"{V1}/auth/sessions/{drop_id}", headers=keep.headers), 204)
    assert_problem(await api.me(drop.access), 401)
    assert_problem(await api.refresh(drop.refresh), 401)
    expect(await api.me(keep.access), 200)
    remaining = expect(await api.client.get(f"{V1}/auth/sessions", headers=keep.headers), 200)["items"]
    assert drop_id not in {item["id"] for item in remaining}
    assert_problem(await api.client.delete(f"{V1}/auth/sessions/{drop_id}", headers=keep.headers), 404)


@pytest.mark.req("SRS-045")
async def test_revoke_all_keeping_the_current_session(api: Api) -> None:
    current = await api.login_as_new("xena")
    others = [await api.login("xena"), await api.login("xena@example.com")]
    bystander = await api.register("yuri")

    response = await api.client.post(
        f"{V1}/auth/sessions/revoke-all", json={"keep_current": True}, headers=current.headers
    )
    assert expect(response, 200) == {"revoked": 2}
    expect(await api.me(current.access), 200)
    for other in others:
        assert_problem(await api.me(other.access), 401)
        assert_problem(await api.refresh(other.refresh), 401)
    items = expect(await api.client.get(f"{V1}/auth/sessions", headers=current.headers), 200)["items"]
    assert [item["current"] for item in items] == [True]
    expect(await api.me(bystander.access), 200)


@pytest.mark.req("SRS-045")
async def test_revoke_all_by_default_includes_the_current_session(api: Api) -> None:
    current = await api.login_as_new("zoe")
    other = await api.login("zoe")
    response = await api.client.post(f"{V1}/auth/sessions/revoke-all", json={}, headers=current.headers)
    assert expect(response, 200) == {"revoked": 2}
    for login in (current, other):
        assert_problem(await api.me(login.access), 401)
        assert_problem(await api.refresh(login.refresh), 401)
    # The account itself is fine: a fresh login works.
    assert_token_response(
        await api.client.post(f"{V1}/auth/login", json={"username_or_email": "zoe", "password": api.password}), 200
    )


@pytest.mark.req("SRS-045", "SRS-051")
async def test_account_endpoints_need_a_token(sqlite_api: Api) -> None:
    for method, path in (
        ("GET", "/auth/me"),
        ("GET", "/auth/sessions"),
        ("DELETE", f"/auth/sessions/{uuid.uuid4()}"),
        ("POST", "/auth/sessions/revoke-all"),
    ):
        response = await sqlite_api.client.request(method, f"{V1}{path}", json={} if method == "POST" else None)
        assert_problem(response, 401)
