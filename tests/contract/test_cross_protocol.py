"""One service behind two protocols: tokens cross over, records and errors read the same on both sides."""

from __future__ import annotations

import uuid

import jwt
import pytest

from tests.contract.clients import (
    PASSWORD,
    Client,
    GrpcClient,
    Outcome,
    RestClient,
    Tokens,
    assert_same_user,
    assert_user,
    fails,
    login,
    ok,
    register,
    tokens,
    unique,
)
from tests.contract.conftest import LiveServer

# --- tokens cross over (SRS-061) --------------------------------------------------------------------------------


@pytest.mark.req("SRS-060", "SRS-061")
async def test_a_rest_login_token_works_over_grpc(rest: RestClient, grpc_client: GrpcClient) -> None:
    name = unique("cross_r")
    made = await register(rest, name)
    via_rest = await login(rest, name)
    me = assert_user(ok(await grpc_client.me(via_rest.access)), id=made.id, username=name)
    assert_same_user(me, ok(await rest.me(via_rest.access)))
    assert_same_user(ok(await grpc_client.get_user(via_rest.access, made.id)), me)
    sessions = ok(await grpc_client.sessions(via_rest.access))["items"]
    assert len(sessions) == 2
    assert [item["current"] for item in sessions].count(True) == 1


@pytest.mark.req("SRS-060", "SRS-061")
async def test_a_grpc_login_token_works_over_rest(rest: RestClient, grpc_client: GrpcClient) -> None:
    name = unique("cross_g")
    made = await register(grpc_client, name)
    via_grpc = await login(grpc_client, f"{name}@example.com")
    me = assert_user(ok(await rest.me(via_grpc.access)), id=made.id, username=name)
    assert_same_user(me, ok(await grpc_client.me(via_grpc.access)))
    assert_same_user(via_grpc.user, ok(await rest.get_user(via_grpc.access, made.id)))


@pytest.mark.req("SRS-060", "SRS-061")
@pytest.mark.parametrize("first", ["rest", "grpc"])
async def test_refresh_tokens_rotate_across_protocols(rest: RestClient, grpc_client: GrpcClient, first: str) -> None:
    one, other = (rest, grpc_client) if first == "rest" else (grpc_client, rest)
    made = await register(one, unique("cross_f"))
    rotated = tokens(await other.refresh(made.refresh))  # issued by one protocol, rotated by the other
    assert rotated.id == made.id
    ok(await one.me(rotated.access))
    again = tokens(await one.refresh(rotated.refresh))
    ok(await other.me(again.access))
    # Reuse of a rotated token is detected whichever protocol presents it: the family dies on both.
    fails(await other.refresh(made.refresh), "unauthenticated")
    fails(await one.me(again.access), "unauthenticated")
    fails(await other.me(again.access), "unauthenticated")
    fails(await one.refresh(again.refresh), "unauthenticated")


@pytest.mark.req("SRS-060", "SRS-061")
@pytest.mark.parametrize("first", ["rest", "grpc"])
async def test_logout_and_revocation_apply_to_both_protocols(
    rest: RestClient, grpc_client: GrpcClient, first: str
) -> None:
    one, other = (rest, grpc_client) if first == "rest" else (grpc_client, rest)
    name = unique("cross_l")
    leaving = await register(one, name)
    dropped = await login(other, name)
    keeping = await login(one, name)
    ok(await other.logout(leaving.access))
    for client in (rest, grpc_client):
        fails(await client.me(leaving.access), "unauthenticated")
    fails(await one.refresh(leaving.refresh), "unauthenticated")
    dropped_id = next(item["id"] for item in ok(await other.sessions(dropped.access))["items"] if item["current"])
    assert ok(await one.revoke_session(keeping.access, dropped_id)) is None
    for client in (rest, grpc_client):
        fails(await client.me(dropped.access), "unauthenticated")
        ok(await client.me(keeping.access))


@pytest.mark.req("SRS-060", "SRS-061")
async def test_admin_changes_over_one_protocol_show_on_the_other(
    rest: RestClient, grpc_client: GrpcClient, rest_admin: Tokens
) -> None:
    name = unique("cross_a")
    user = await register(grpc_client, name)
    # REST admin token drives the gRPC admin calls.
    verified = assert_user(ok(await grpc_client.verify(rest_admin.access, user.id)), is_verified=True)
    assert_same_user(verified, ok(await rest.get_user(rest_admin.access, user.id)))
    patched = assert_user(ok(await rest.update_user(rest_admin.access, user.id, phone="+44 20 7946 0000")))
    assert_same_user(patched, ok(await grpc_client.get_user(rest_admin.access, user.id)))
    on_rest = ok(await rest.list_users(rest_admin.access, q=name))
    on_grpc = ok(await grpc_client.list_users(rest_admin.access, q=name))
    assert {key: on_rest[key] for key in ("page", "per_page", "total", "total_pages")} == {
        key: on_grpc[key] for key in ("page", "per_page", "total", "total_pages")
    }
    for left, right in zip(on_rest["items"], on_grpc["items"], strict=True):
        assert_same_user(left, right)
    # A suspension over gRPC ends the REST-issued session too.
    session = await login(rest, name)
    ok(await grpc_client.set_status(rest_admin.access, user.id, "suspended"))
    fails(await rest.me(session.access), "unauthenticated")
    fails(await grpc_client.me(session.access), "unauthenticated")


# --- ValidateToken / POST /auth/validate ---------------------------------------------------------------------------


@pytest.mark.req("SRS-060", "SRS-061", "SRS-062")
async def test_validate_token_verifies_access_tokens_from_either_protocol(
    rest: RestClient, grpc_client: GrpcClient, live_server: LiveServer
) -> None:
    name = unique("validate")
    for issuer in (rest, grpc_client):
        made = await login(issuer, name) if issuer is grpc_client else await register(issuer, name)
        claims = jwt.decode(made.access, live_server.jwt_secret(), algorithms=["HS256"], audience="arcana")
        for checker in (rest, grpc_client):
            answer = ok(await checker.validate(made.access))
            assert answer == {"user_id": made.id, "session_id": claims["sid"], "role": "user"}, checker.protocol
        current = next(item for item in ok(await rest.sessions(made.access))["items"] if item["current"])
        assert current["id"] == claims["sid"]

        for checker in (rest, grpc_client):
            fails(await checker.validate(made.refresh), "unauthenticated")
        ok(await issuer.logout(made.access))
        for checker in (rest, grpc_client):
            fails(await checker.validate(made.access), "unauthenticated")  # the live session is checked

    for garbage in ("", "garbage", "a.b.c", "Bearer x", "a" * 5000):
        for checker in (rest, grpc_client):
            fails(await checker.validate(garbage), "unauthenticated")


@pytest.mark.req("SRS-060", "SRS-061")
async def test_validate_token_reports_the_current_role(
    rest: RestClient, grpc_client: GrpcClient, rest_admin: Tokens
) -> None:
    made = await register(rest, unique("validate_r"))
    ok(await rest.set_role(rest_admin.access, made.id, "guest"))
    for checker in (rest, grpc_client):
        assert ok(await checker.validate(made.access))["role"] == "guest"
        assert ok(await checker.validate(rest_admin.access))["role"] == "admin"


# --- the same error, whichever protocol (SRS-062) ---------------------------------------------------------------


# Each error case's one kind and the exact fields it names, on both protocols.
EXPECTED_ERRORS: dict[str, tuple[str, frozenset[str]]] = {
    "weak password": ("invalid", frozenset({"password"})),
    "all bad": ("invalid", frozenset({"username", "email", "password"})),
    "duplicate": ("conflict", frozenset()),
    "bad login": ("unauthenticated", frozenset()),
    "no token": ("unauthenticated", frozenset()),
    "garbage token": ("unauthenticated", frozenset()),
    "refresh garbage": ("unauthenticated", frozenset()),
    "non-admin list": ("forbidden", frozenset()),
    "non-admin set role": ("forbidden", frozenset()),
    "unknown user": ("not_found", frozenset()),
    "unknown session": ("not_found", frozenset()),
    "bad role": ("invalid", frozenset({"role"})),
    "bad status": ("invalid", frozenset({"status"})),
    "bad email": ("invalid", frozenset({"email"})),
    "bad paging": ("invalid", frozenset({"per_page"})),
    "wrong current password": ("invalid", frozenset({"current_password"})),
    "duplicate create": ("conflict", frozenset()),
}


async def error_scenarios(client: Client, admin: Tokens, user: Tokens, taken: str) -> dict[str, Outcome]:
    missing = str(uuid.uuid4())
    return {
        "weak password": await client.register(unique("weak"), f"{unique('w')}@example.com", "short"),
        "all bad": await client.register("x", "nope", "password123"),
        "duplicate": await client.register(taken, f"{unique('d')}@example.com", PASSWORD),
        "bad login": await client.login(taken, "wrong-password-here"),
        "no token": await client.me(None),
        "garbage token": await client.me("garbage"),
        "refresh garbage": await client.refresh("garbage"),
        "non-admin list": await client.list_users(user.access),
        "non-admin set role": await client.set_role(user.access, user.id, "admin"),
        "unknown user": await client.get_user(admin.access, missing),
        "unknown session": await client.revoke_session(user.access, missing),
        "bad role": await client.set_role(admin.access, user.id, "emperor"),
        "bad status": await client.set_status(admin.access, user.id, "banned"),
        "bad email": await client.update_user(user.access, user.id, email="nope"),
        "bad paging": await client.list_users(admin.access, per_page=101),
        "wrong current password": await client.change_password(user.access, user.id, "not-it-at-all", "new-pass-99x"),
        "duplicate create": await client.create_user(admin.access, taken, f"{unique('c')}@example.org", PASSWORD),
    }


@pytest.mark.req("SRS-060", "SRS-062")
async def test_every_error_case_has_the_same_kind_code_and_fields_on_both_protocols(
    rest: RestClient, grpc_client: GrpcClient, rest_admin: Tokens
) -> None:
    taken = unique("taken")
    user = await register(rest, taken)
    on_rest = await error_scenarios(rest, rest_admin, user, taken)
    on_grpc = await error_scenarios(grpc_client, rest_admin, user, taken)
    assert set(on_rest) == set(on_grpc) == set(EXPECTED_ERRORS)
    for name, (kind, fields) in EXPECTED_ERRORS.items():
        outcome = fails(on_rest[name], kind, *fields)  # the error, with its domain code and message
        assert outcome.fields == fields, f"{name}: {outcome}"
        assert on_grpc[name] == outcome, f"{name}:\n  REST {outcome}\n  gRPC {on_grpc[name]}"
