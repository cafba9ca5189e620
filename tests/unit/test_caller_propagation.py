"""The principal the edge verified crosses internal hops in metadata (issue 13.4): the client interceptor sends
it, ``PortServicer.Call`` binds it for the call's log lines and its own internal calls, and a value that is
not a UUID is dropped. Two real grpc.aio tiers in this process, one calling the other."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import grpc
import pytest

from py_app._proto.arcana.internal.v1 import ports_pb2, ports_pb2_grpc
from py_app.infra import caller, remote, request_id
from py_app.infra.logs import JsonFormatter
from py_app.infra.service_auth import ServiceCredential

CREDENTIAL = ServiceCredential(b"caller-test-internal-secret-of-32-bytes!", "service")
USER, SESSION = "0b0ecf89-9afd-4e49-83b7-63b17431db14", "ff0b1fe3-c4f3-495f-9566-58f0429ae04c"


class Lookup(Protocol):
    async def find(self, key: str) -> str: ...


class Front(Protocol):
    async def show(self, key: str) -> str: ...


@dataclass
class Store:
    """The lower tier's adapter: who each call was for, as this tier saw it."""

    seen: list[caller.Caller | None] = field(default_factory=list)

    async def find(self, key: str) -> str:
        self.seen.append(caller.current())
        logging.getLogger("arcana.test.store").info("found")
        return key.upper()


class RemoteLookup(remote.RemotePort):
    protocol = Lookup

    async def find(self, key: str) -> str:
        found: str = await self._call("find", key)
        return found


class RemoteFront(remote.RemotePort):
    protocol = Front

    async def show(self, key: str) -> str:
        shown: str = await self._call("show", key)
        return shown


@dataclass
class Service:
    """The middle tier's adapter: it calls the lower tier, as a service calls its repository."""

    lookup: RemoteLookup
    seen: list[caller.Caller | None] = field(default_factory=list)

    async def show(self, key: str) -> str:
        self.seen.append(caller.current())
        logging.getLogger("arcana.test.service").info("showing")
        return await self.lookup.find(key)


class Lines(logging.Handler):
    """Each record as the JSON line the process would write, formatted when it is emitted (in its context)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []
        self._format = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self._format.format(record)))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@dataclass
class Topology:
    front: RemoteFront
    service: Service
    store: Store
    service_address: str


@pytest.fixture
async def topology() -> AsyncIterator[Topology]:
    store = Store()
    lower = grpc.aio.server()
    remote.add_servicer(lower, "Repository", dict([remote.served(Lookup, store)]))
    lower_port = lower.add_insecure_port("127.0.0.1:0")
    await lower.start()
    lower_target = remote.Target(f"127.0.0.1:{lower_port}", "Repository", timeout=10, credential=CREDENTIAL)
    service = Service(RemoteLookup(lower_target))
    middle = grpc.aio.server()
    remote.add_servicer(middle, "Services", dict([remote.served(Front, service)]))
    middle_port = middle.add_insecure_port("127.0.0.1:0")
    await middle.start()
    front_target = remote.Target(f"127.0.0.1:{middle_port}", "Services", timeout=10, credential=CREDENTIAL)
    try:
        yield Topology(RemoteFront(front_target), service, store, f"127.0.0.1:{middle_port}")
    finally:
        await front_target.close()
        await lower_target.close()
        await middle.stop(None)
        await lower.stop(None)


def _tier_lines(lines: Lines) -> list[dict[str, object]]:
    return [line for line in lines.lines if line["msg"] in ("showing", "found", "internal call")]


@pytest.mark.req("SRS-228", "SDD-228")
async def test_the_verified_principal_reaches_every_hop_and_its_log_lines(topology: Topology, lines: Lines) -> None:
    token = request_id.bind("req-principal-1")
    scope = caller.enter()
    try:
        caller.identify(USER, SESSION)  # what the edge does once it verified the access token
        assert await topology.front.show("abc") == "ABC"
    finally:
        caller.leave(scope)
        request_id.unbind(token)

    assert topology.service.seen == [caller.Caller(USER, SESSION)]
    assert topology.store.seen == [caller.Caller(USER, SESSION)]  # edge -> service -> repository
    written = _tier_lines(lines)
    # each tier's own line, and one "internal call" line per call served (the store's, then the service's)
    assert [line["msg"] for line in written] == ["showing", "found", "internal call", "internal call"]
    assert {(line["user_id"], line["request_id"]) for line in written} == {(USER, "req-principal-1")}
    assert [line["rpc"] for line in written if line["msg"] == "internal call"] == [
        "arcana.internal.v1.Repository/Lookup.find",
        "arcana.internal.v1.Services/Front.show",
    ]
    assert SESSION not in json.dumps(written)  # the session id travels, but lines name only the user


@pytest.mark.req("SRS-229")
async def test_a_call_for_nobody_carries_no_principal_and_nothing_leaks_between_calls(
    topology: Topology, lines: Lines
) -> None:
    scope = caller.enter()
    try:
        caller.identify(USER, SESSION)
        await topology.front.show("first")
    finally:
        caller.leave(scope)
    assert caller.current() is None  # the scope ended with its request
    await topology.front.show("second")  # a public call, or a background job's

    assert topology.store.seen == [caller.Caller(USER, SESSION), None]
    assert topology.service.seen == [caller.Caller(USER, SESSION), None]
    second = [line for line in _tier_lines(lines) if "user_id" not in line]
    assert [line["msg"] for line in second] == ["showing", "found", "internal call", "internal call"]


@pytest.mark.req("SRS-229", "SDD-229")
@pytest.mark.parametrize(
    ("user_id", "session_id", "bound"),
    [
        ("admin", SESSION, None),
        (USER.upper(), SESSION, None),  # not the canonical form the ids are made in
        (f"{USER}\nforged=1", SESSION, None),
        (USER, "not-a-session", caller.Caller(USER, "")),
        (USER, SESSION, caller.Caller(USER, SESSION)),
    ],
    ids=["a-name", "upper-case", "forged-field", "bad-session", "both-uuids"],
)
async def test_what_arrives_is_bound_only_when_it_is_a_uuid(
    topology: Topology, lines: Lines, user_id: str, session_id: str, bound: caller.Caller | None
) -> None:
    arguments = remote.port_methods(Front)["show"].encode_arguments(("raw",), {})
    metadata = (
        *CREDENTIAL.metadata(),
        (caller.USER_HEADER, user_id.replace("\n", " ")),
        (caller.SESSION_HEADER, session_id),
    )
    async with grpc.aio.insecure_channel(topology.service_address) as channel:
        reply = await ports_pb2_grpc.ServicesStub(channel).Call(
            ports_pb2.CallRequest(port="Front", method="show", arguments=arguments), metadata=metadata, timeout=10
        )
    assert json.loads(reply.result) == "RAW"
    assert topology.service.seen == [bound]
    assert topology.store.seen == [bound]  # passed on exactly as bound, or not at all
    users = {line.get("user_id") for line in _tier_lines(lines)}
    assert users == {bound.user_id if bound else None}
