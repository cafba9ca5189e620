"""The comparison itself: a scenario whose protocols answer differently fails, with a diff; masking hides only noise.

No live server: two scripted clients stand in for REST and gRPC, and ``compare_protocols`` runs a scenario
through both exactly as ``@scenario`` does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.contract.clients import Client, Outcome, unique
from tests.contract.conftest import compare_protocols
from tests.contract.transcript import unordered, varying


class Scripted:
    """A client whose every call answers the next scripted outcome (or builds one from the call)."""

    def __init__(self, protocol: str, answers: list[Outcome | Callable[..., Outcome]]) -> None:
        self.protocol = protocol
        self.answers = list(answers)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Outcome:
            await asyncio.sleep(0)
            answer = self.answers.pop(0)
            return answer if isinstance(answer, Outcome) else answer(*args, **kwargs)

        return call

    async def aclose(self) -> None:
        assert not self.answers, f"{self.protocol}: unused answers {self.answers}"


def user(name: str, *, role: str = "user", user_id: str | None = None, logged_in: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC) - timedelta(microseconds=uuid.uuid4().int % 10**6)  # a different instant each time
    return {
        "id": user_id or str(uuid.uuid4()),
        "username": name,
        "email": f"{name}@example.com",
        "role": role,
        "created_at": now,
        "last_login_at": now if logged_in else None,
    }


def tokens_for(name: str, **options: Any) -> Outcome:
    body = {"access_token": uuid.uuid4().hex, "refresh_token": uuid.uuid4().hex, "user": user(name, **options)}
    return Outcome("ok", body)


UNAUTHENTICATED = Outcome("unauthenticated", code="unauthenticated", message="no")


async def compare(
    scenario: Callable[..., Any], rest: list[Any], grpc: list[Any], **arguments: Any
) -> dict[str, list[Any]]:
    clients: dict[str, Callable[[], Client]] = {
        "rest": lambda: Scripted("rest", rest),
        "grpc": lambda: Scripted("grpc", grpc),
    }
    return await compare_protocols(scenario, clients, arguments)


async def register_then_me(client: Client) -> None:
    name = unique("alice")
    await client.register(name, f"{name}@example.com", "pw")
    await client.me("token")


async def test_the_same_answers_with_different_ids_tokens_times_and_names_are_equal() -> None:
    def registered(name: str, email: str, password: str) -> Outcome:
        return tokens_for(name)

    transcripts = await compare(register_then_me, [registered, UNAUTHENTICATED], [registered, UNAUTHENTICATED])
    assert transcripts["rest"] == transcripts["grpc"]
    body = transcripts["rest"][0].body
    assert body["access_token"] == "<token:1>"
    assert body["refresh_token"] == "<token:2>"
    assert body["user"]["id"] == "<id:1>"
    assert body["user"]["username"] == "<name:1>"
    assert body["user"]["email"] == "<name:1>@example.com"
    assert body["user"]["created_at"] == "<time>"
    assert body["user"]["last_login_at"] is None
    assert transcripts["rest"][1].where == f"test_transcript.py:{register_then_me.__code__.co_firstlineno + 3}"


async def test_a_different_kind_fails_with_a_readable_diff() -> None:
    def registered(name: str, email: str, password: str) -> Outcome:
        return tokens_for(name)

    forbidden = Outcome("forbidden", code="permission_denied", message="no")
    with pytest.raises(AssertionError) as failure:
        await compare(register_then_me, [registered, UNAUTHENTICATED], [registered, forbidden])
    message = str(failure.value)
    assert message.startswith("REST and gRPC answered the same scenario differently")
    lines = message.splitlines()
    assert "--- REST" in lines
    assert "+++ gRPC" in lines
    line = register_then_me.__code__.co_firstlineno + 3
    assert f"-#2   test_transcript.py:{line} me -> unauthenticated code=unauthenticated fields=[]" in lines
    assert f"+#2   test_transcript.py:{line} me -> forbidden code=permission_denied fields=[]" in lines
    assert not [line for line in lines if line.startswith(("-", "+")) and "register" in line]


@pytest.mark.parametrize(
    ("rest", "grpc", "changed"),
    [
        pytest.param({}, {"role": "guest"}, "'role': 'guest'", id="a field value"),
        pytest.param({}, {"logged_in": True}, "'last_login_at': '<time>'", id="a time that is set on one side only"),
    ],
)
async def test_a_different_body_fails(rest: dict[str, Any], grpc: dict[str, Any], changed: str) -> None:
    async def one_login(client: Client) -> None:
        await client.login("root", "pw")

    with pytest.raises(AssertionError) as failure:
        await compare(one_login, [tokens_for("root", **rest)], [tokens_for("root", **grpc)])
    added = [line for line in str(failure.value).splitlines() if line.startswith("+") and line != "+++ gRPC"]
    assert len(added) == 1, added
    assert changed in added[0]


async def test_the_same_id_twice_is_not_two_different_ids() -> None:
    """Placeholders keep identity: "the same user again" and "another user" do not mask to the same thing."""
    same = str(uuid.uuid4())

    async def two_reads(client: Client) -> None:
        await client.get_user("token", "x")
        await client.get_user("token", "y")

    rest = [Outcome("ok", user("root", user_id=same)), Outcome("ok", user("root", user_id=same))]
    grpc = [Outcome("ok", user("root")), Outcome("ok", user("root"))]
    with pytest.raises(AssertionError, match=r"(?s)-.*'id': '<id:1>'.*\+.*'id': '<id:2>'"):
        await compare(two_reads, rest, grpc)


async def test_an_extra_call_on_one_protocol_fails() -> None:
    async def branching(client: Client) -> None:
        await client.me("token")
        if client.protocol == "grpc":
            await client.me("token")

    with pytest.raises(AssertionError, match=r"1 calls over REST, 2 over gRPC"):
        await compare(branching, [UNAUTHENTICATED], [UNAUTHENTICATED, UNAUTHENTICATED])


async def test_a_specific_assertion_failing_names_the_protocol_run() -> None:
    async def strict(client: Client) -> None:
        assert (await client.me("token")).kind == "unauthenticated"

    with pytest.raises(AssertionError) as failure:
        await compare(strict, [UNAUTHENTICATED], [Outcome("ok", user("root"))])
    assert "(in the gRPC run of the scenario, after 1 calls)" in failure.value.__notes__


async def test_varying_hides_only_the_named_keys() -> None:
    async def count(client: Client) -> None:
        with varying("total"):
            await client.list_users("token")
        await client.list_users("token")

    def page(total: int, per_page: int = 20) -> Outcome:
        return Outcome("ok", {"items": [], "page": 1, "per_page": per_page, "total": total})

    await compare(count, [page(5), page(7)], [page(6), page(7)])
    with pytest.raises(AssertionError, match=r"'per_page': 10"):
        await compare(count, [page(5), page(7)], [page(6, per_page=10), page(7)])
    with pytest.raises(AssertionError, match=r"'total': 8"):
        await compare(count, [page(5), page(7)], [page(5), page(8)])


async def test_unordered_compares_concurrent_answers_as_a_set() -> None:
    async def race(client: Client) -> None:
        with unordered():
            await asyncio.gather(client.refresh("t"), client.refresh("t"))

    def winner(token: str) -> Outcome:
        return tokens_for("root")

    await compare(race, [winner, UNAUTHENTICATED], [UNAUTHENTICATED, winner])
    with pytest.raises(AssertionError):
        await compare(race, [winner, UNAUTHENTICATED], [UNAUTHENTICATED, UNAUTHENTICATED])


async def test_a_session_shows_the_user_agent_the_scenario_sent() -> None:
    async def sessions(client: Client) -> None:
        await client.login("root", "pw", user_agent="Agent-One/1.0")
        await client.sessions("token")

    def listing(*agents: str) -> Outcome:
        return Outcome("ok", {"items": [{"id": str(uuid.uuid4()), "user_agent": agent} for agent in agents]})

    grpc_agents = ("Agent-One/1.0 grpc-python/1.85.3 grpc-c/51.0.0 (linux; chttp2)", "grpc-python/1.85.3")
    await compare(
        sessions,
        [tokens_for("root"), listing("Agent-One/1.0", "python-httpx/0.28.1")],
        [tokens_for("root"), listing(*grpc_agents)],
    )
    with pytest.raises(AssertionError, match=r"\+ .*'user_agent': '<library default>'"):
        await compare(
            sessions,
            [tokens_for("root"), listing("Agent-One/1.0", "python-httpx/0.28.1")],
            [tokens_for("root"), listing("Agent-Two/1.0", "grpc-python/1.85.3")],
        )
