"""Internal clients that balance and retry (issue 13.5): one target naming several tier processes, balanced
round-robin; reads tried again on an unavailable process, writes never. Real grpc.aio servers, counted on
the serving side."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import pytest

from py_app.config import SettingsError, load_settings
from py_app.core.errors import Unavailable
from py_app.infra import remote
from py_app.infra.remote_services import RemoteAuthUseCases, RemoteRecoveryUseCases, RemoteUserUseCases
from py_app.infra.remote_stores import RemoteCounters, RemoteOutbox, RemoteSessionStore, RemoteUserStore
from py_app.infra.service_auth import ServiceCredential
from py_app.infra.targets import TargetError, channel_target

CREDENTIAL = ServiceCredential(b"clients-test-internal-secret-of-32-bytes!", "service")


class Ledger(Protocol):
    async def balance(self, key: str) -> int: ...

    async def add(self, key: str) -> int: ...

    async def refuse(self) -> None: ...


@dataclass
class LedgerAdapter:
    name: str
    calls: Counter[str] = field(default_factory=Counter)

    async def balance(self, key: str) -> int:
        self.calls["balance"] += 1
        return len(key)

    async def add(self, key: str) -> int:
        self.calls["add"] += 1
        return 1

    async def refuse(self) -> None:
        self.calls["refuse"] += 1
        raise Unavailable("the tier behind this one is down", retry_after=1)  # a domain error: an answer


class RemoteLedger(remote.RemotePort):
    protocol = Ledger
    reads = frozenset({"balance", "refuse"})

    async def balance(self, key: str) -> int:
        found: int = await self._call("balance", key)
        return found

    async def add(self, key: str) -> int:
        found: int = await self._call("add", key)
        return found

    async def refuse(self) -> None:
        await self._call("refuse")


class Gate(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no types
    """Counts every call that reaches the server; the next ``failing`` calls get grpc's own ``code``, the way
    a process that is going away (or a proxy in front of one) answers, before the method runs."""

    def __init__(self) -> None:
        self.arrived = 0
        self.failing = 0
        self.code = grpc.StatusCode.UNAVAILABLE

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        self.arrived += 1
        if not self.failing:
            return await continuation(details)
        self.failing -= 1
        code = self.code

        async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(code, "going away")

        return grpc.unary_unary_rpc_method_handler(refuse)


@dataclass
class LedgerServer:
    adapter: LedgerAdapter
    gate: Gate
    server: grpc.aio.Server
    address: str


@pytest.fixture
async def servers() -> AsyncIterator[list[LedgerServer]]:
    started = []
    for name in ("a", "b"):
        gate = Gate()
        server = grpc.aio.server(interceptors=[gate])
        adapter = LedgerAdapter(name)
        remote.add_servicer(server, "Repository", dict([remote.served(Ledger, adapter)]))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        started.append(LedgerServer(adapter, gate, server, f"127.0.0.1:{port}"))
    try:
        yield started
    finally:
        for each in started:
            await each.server.stop(None)


async def _client(address: str, bound: float = 10.0) -> tuple[remote.Target, RemoteLedger]:
    # These servers check no credential (that is tests/unit/test_service_credentials.py); a Target needs one.
    target = remote.Target(address, "Repository", timeout=bound, credential=CREDENTIAL)
    return target, RemoteLedger(target)


async def _until_both_answered(ledger: RemoteLedger, servers: list[LedgerServer]) -> None:
    """Round-robin picks among the connected processes: call until both are (a handful of calls)."""
    for _ in range(200):
        await ledger.balance("warm")
        if all(each.adapter.calls["balance"] for each in servers):
            return
    pytest.fail(f"round-robin never reached both servers: {[each.adapter.calls for each in servers]}")


@pytest.mark.req("SRS-213")
async def test_a_list_target_spreads_the_calls_over_every_server_round_robin(servers: list[LedgerServer]) -> None:
    target, ledger = await _client(",".join(each.address for each in servers))
    try:
        await _until_both_answered(ledger, servers)
        before = [each.gate.arrived for each in servers]
        for _ in range(20):
            assert await ledger.add("k") == 1
        spread = [each.gate.arrived - was for each, was in zip(servers, before, strict=True)]
        # Round-robin over two connected servers takes turns (pick_first would send all 20 to one).
        assert min(spread) >= 5, spread
        assert sum(spread) == 20, spread
    finally:
        await target.close()


@pytest.mark.req("SRS-214")
async def test_with_one_server_gone_reads_and_writes_go_to_the_other(servers: list[LedgerServer]) -> None:
    target, ledger = await _client(",".join(each.address for each in servers))
    try:
        await _until_both_answered(ledger, servers)
        gone, left = servers
        await gone.server.stop(None)
        answered = gone.gate.arrived
        for _ in range(10):  # the first may still be sent to the one gone: a read is tried again
            assert await ledger.balance("abc") == 3
        for _ in range(10):
            assert await ledger.add("k") == 1
        assert gone.gate.arrived == answered
        assert left.adapter.calls["add"] == 10
    finally:
        await target.close()


@pytest.mark.req("SRS-214")
async def test_a_read_is_tried_again_on_unavailable_at_most_three_times(servers: list[LedgerServer]) -> None:
    one = servers[0]
    target, ledger = await _client(one.address)
    try:
        one.gate.failing = 2
        assert await ledger.balance("abcd") == 4  # the third try answers
        assert (one.gate.arrived, one.adapter.calls["balance"]) == (3, 1)
        one.gate.failing = 5
        with pytest.raises(Unavailable):
            await ledger.balance("abcd")
        assert one.gate.arrived == 6  # three more, then the caller is told
        one.gate.failing = 0
    finally:
        await target.close()


@pytest.mark.req("SRS-214")
async def test_a_write_is_sent_once_and_an_unavailable_tier_fails_it_once(servers: list[LedgerServer]) -> None:
    one = servers[0]
    target, ledger = await _client(one.address)
    try:
        one.gate.failing = 1
        with pytest.raises(Unavailable):
            await ledger.add("k")
        assert (one.gate.arrived, one.adapter.calls["add"]) == (1, 0)  # not repeated
        assert await ledger.add("k") == 1  # the next write is the caller's own
    finally:
        await target.close()


@pytest.mark.req("SRS-214")
async def test_a_domain_error_or_a_deadline_is_never_tried_again(servers: list[LedgerServer]) -> None:
    one = servers[0]
    target, ledger = await _client(one.address)
    try:
        with pytest.raises(Unavailable):
            await ledger.refuse()  # Unavailable raised behind the boundary: that tier already tried
        assert (one.gate.arrived, one.adapter.calls["refuse"]) == (1, 1)
        one.gate.failing, one.gate.code = 1, grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(Unavailable):
            await ledger.balance("k")
        assert (one.gate.arrived, one.adapter.calls["balance"]) == (2, 0)
    finally:
        await target.close()


@pytest.mark.req("SRS-214")
async def test_the_back_off_stays_within_the_calls_deadline(servers: list[LedgerServer]) -> None:
    one = servers[0]
    target, ledger = await _client(one.address, bound=0.02)  # shorter than the pause before a third try
    try:
        one.gate.failing = 3
        with pytest.raises(Unavailable):
            await ledger.balance("k")
        assert one.gate.arrived in (1, 2), one.gate.arrived  # no third try once no time is left for it
    finally:
        one.gate.failing = 0
        await target.close()


@pytest.mark.req("SDD-214")
def test_only_named_reads_are_retried_and_nothing_that_counts_or_writes() -> None:
    assert RemoteCounters.reads == {"held"}  # hit counts an attempt: never sent twice
    assert RemoteOutbox.reads == {"waiting"}
    assert RemoteUserStore.reads == {"get", "credentials", "find_by_login", "search"}
    assert RemoteSessionStore.reads == {"state", "family", "list_for_user"}
    assert RemoteAuthUseCases.reads == {"authenticate", "validate", "me", "sessions"}
    assert RemoteUserUseCases.reads == {"get", "search", "public_page", "public_get"}
    assert RemoteRecoveryUseCases.reads == frozenset()  # every recovery call counts against a limit
    with pytest.raises(TypeError, match="names no method"):

        class Misspelt(remote.RemotePort):  # defined to be refused
            protocol = Ledger
            reads = frozenset({"balanse"})


@pytest.mark.req("SRS-213")
@pytest.mark.parametrize(
    ("setting", "target"),
    [
        ("127.0.0.1:50061", "127.0.0.1:50061"),
        ("service.internal:50061", "service.internal:50061"),
        ("dns:///service.arcana.svc.cluster.local:50061", "dns:///service.arcana.svc.cluster.local:50061"),
        ("10.0.0.1:50061, 10.0.0.2:50061", "ipv4:10.0.0.1:50061,10.0.0.2:50061"),
        ("[::1]:50061,[fd00::2]:50061", "ipv6:[::1]:50061,[fd00::2]:50061"),
    ],
)
def test_a_target_is_one_address_a_dns_name_or_a_list_of_addresses(setting: str, target: str) -> None:
    assert channel_target(setting) == target
    assert load_settings({"ARCANA_MODE": "layered", "ARCANA_SERVICE_TARGET": setting}).service_target == setting


@pytest.mark.req("SRS-213")
@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("service", "is not host:port"),
        ("service:0", "is not host:port"),
        ("service:http", "is not host:port"),
        ("dns://8.8.8.8/service:50061", "no DNS server authority"),
        ("dns:///service", "is not host:port"),
        ("service-a:50061,service-b:50061", "a list takes IP addresses; for a name use dns:///service-a:50061"),
        ("10.0.0.1:50061,[::1]:50061", "one family"),
        ("10.0.0.1:50061,,10.0.0.2:50061", "an empty entry"),
        ("10.0.0.1:50061,10.0.0.1:50061", "listed twice"),
        ("::1:50061", "in brackets"),
        ("[service]:50061", "is not an IPv6 address"),
        ("bad_name!:50061", "is not a host name"),
    ],
)
def test_a_malformed_target_is_refused_at_start_with_one_line(setting: str, reason: str) -> None:
    with pytest.raises(TargetError, match=reason):
        channel_target(setting)
    with pytest.raises(SettingsError) as refused:
        load_settings({"ARCANA_MODE": "layered", "ARCANA_ROLE": "service", "ARCANA_REPOSITORY_TARGET": setting})
    message = str(refused.value)
    assert message.startswith("ARCANA_REPOSITORY_TARGET: ")
    assert reason in message
    assert "\n" not in message
