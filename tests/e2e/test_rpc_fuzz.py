"""Seeded fuzzing of a live gRPC server: every method of every service the generated descriptors name.

Each method gets a batch of calls of its own, with accounts made for that batch (so Logout, RevokeAllSessions,
DeleteUser or ChangePassword end only that batch's sessions): valid request messages built from the request
type's descriptor (with the batch's real ids, tokens and passwords mixed with odd values), the same messages
byte-truncated, bit-flipped and byte-mutated, and random bytes; each without metadata, with a user's bearer, an
admin's bearer and a garbage one. Every answer must be OK or one of the status codes the API documents, promptly;
the server must stay up, and log no traceback and nothing at error level.

The methods come from the descriptors (the public `py_app/_proto/arcana/v1` walked, plus the health and
reflection services the server adds), checked against what the server offers through reflection: a new RPC is
fuzzed without an edit. The layered mode's internal tiers (`arcana.internal.v1`, one `Call` RPC behind a service
token) are not served here; their bad envelopes and missing credentials have tests of their own
(tests/unit/test_layered_wiring.py, tests/unit/test_service_credentials.py).
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import random
import string
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from py_app._proto.arcana.v1 import auth_pb2, auth_pb2_grpc, users_pb2, users_pb2_grpc
from tests.e2e.support import STOP_SECONDS, command, migrate, start
from tests.support.logs import at_levels

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SEED = 20261201
# Batches per method (each sends KINDS x AUTHS calls), by backend: a second, differently seeded batch on SQLite;
# one on MariaDB, where the server code is the same and only the store differs (every method, kind and auth is
# still sent there; a second batch there only repeated the same shapes at twice the time).
ROUNDS = {"sqlite": 2, "mariadb": 1}
KINDS = ("valid", "valid", "truncated", "truncated", "bit-flipped", "bit-flipped", "mutated", "mutated", "random")
AUTHS = ("none", "user", "admin", "garbage")
PARALLEL = 6  # batches at once: enough to overlap hashing with the rest, few enough for a 2-core machine
CALL_SECONDS = 30.0  # a hang is an outcome (DEADLINE_EXCEEDED), not a stuck test; answers take milliseconds
ADMIN_PASSWORD = "violet harbour lantern 42"
PASSWORD = "correct horse battery staple"
# The codes the README documents for errors; UNAVAILABLE only means a dependency is down, and nothing is here.
CLEAN = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
LEAKS = ("Traceback", "DecodeError", "Error parsing", "google.protobuf", "Exception", "Error:")


def generated_services() -> list[ServiceDescriptor]:
    """Every service of every generated public module, and the two the server adds from grpcio's own packages."""
    generated = importlib.import_module("py_app._proto.arcana.v1")
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(generated.__path__, f"{generated.__name__}.")
        if info.name.endswith("_pb2")
    ]
    files = [module.DESCRIPTOR for module in modules] + [health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR]
    return [service for file in files for service in file.services_by_name.values()]


METHODS: list[MethodDescriptor] = [method for service in generated_services() for method in service.methods]


@dataclass
class Batch:
    """The accounts of one batch and the real values a valid message may carry."""

    user_id: str
    user_email: str
    username: str
    user_access: str
    user_refresh: str
    admin_id: str
    admin_username: str
    admin_access: str
    session_ids: list[str]


# --- messages -------------------------------------------------------------------------------------------------


def odd_string(rng: random.Random) -> str:
    return rng.choice(
        [
            "",
            "x",
            " ",
            "a" * 300,
            "é🔥\u202e",
            "\x00",
            "' OR 1=1 --",
            "%_*",
            "../../etc/passwd",
            str(uuid.UUID(int=0)),
            "".join(rng.choices(string.printable, k=rng.randint(1, 40))),
            "b" * 5000,
        ]
    )


def mangled_token(rng: random.Random, token: str) -> str:
    if not token:
        return odd_string(rng)
    chars = list(token)
    index = rng.randrange(len(chars))
    chars[index] = rng.choice(string.ascii_letters + "-_.=")
    return "".join(chars)


def string_value(rng: random.Random, name: str, batch: Batch) -> str:
    """A value for a string field: mostly what the field means (a real id, token or password), sometimes odd."""
    if rng.random() < 0.1:
        return odd_string(rng)
    fresh = f"fz{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
    choices: dict[str, list[str]] = {
        "username": [fresh, batch.username],
        "email": [f"{fresh}@example.com", batch.user_email, "no-at-sign", f"{fresh}@"],
        "username_or_email": [batch.username, batch.user_email, batch.admin_username],
        "password": [PASSWORD, f"{fresh} long enough pass", "short"],
        "refresh_token": [batch.user_refresh, mangled_token(rng, batch.user_refresh)],
        "access_token": [batch.user_access, batch.admin_access, mangled_token(rng, batch.user_access)],
        "token": [mangled_token(rng, batch.user_access), "x" * 43],
        "role": ["user", "admin", "guest", "root"],
        "status": ["active", "inactive", "suspended", "gone"],
        "service": ["", "arcana.v1.AuthService", "unknown.Service"],
        "phone": ["+15551234567", "12"],
        "avatar_url": ["https://example.com/a.png", "javascript:alert(1)"],
        "event": ["authn_login_fail", "user_created", "nope"],
        "q": [batch.username[:3], "fz", ""],
    }
    ids = [batch.user_id, batch.user_id, batch.admin_id, str(uuid.UUID(int=rng.getrandbits(128))), *batch.session_ids]
    if name in ("id", "user_id", "session_id"):
        return rng.choice(ids)
    if name.endswith("password"):
        name = "password"
    return rng.choice(choices.get(name, [fresh, odd_string(rng)]))


def scalar(rng: random.Random, field: FieldDescriptor, batch: Batch) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return string_value(rng, field.name, batch)
    if kind == FieldDescriptor.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 32))
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == FieldDescriptor.TYPE_ENUM:
        return rng.choice([value.number for value in field.enum_type.values])
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice([0.0, -1.5, 1e300 if kind == FieldDescriptor.TYPE_DOUBLE else 1e30, float("nan")])
    bits = 64 if kind in (3, 4, 6, 16, 18) else 32  # (s/u/fixed/sfixed)int64
    unsigned = kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64, 6, 7)
    edges = [0, 1, 2, 20, 100, 101, rng.randint(0, 1000)]
    edges += [2**bits - 1] if unsigned else [-1, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1]
    return rng.choice(edges)


def fill(rng: random.Random, message: Message, batch: Batch, depth: int = 0) -> Message:
    """Sets a random selection of the fields of ``message`` (every field of a flat request, mostly)."""
    for field in message.DESCRIPTOR.fields:
        present = (field.has_presence and field.containing_oneof is None) or field.type == FieldDescriptor.TYPE_MESSAGE
        if present and rng.random() < 0.35:
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3:
                continue
            if field.is_repeated:
                for _ in range(rng.randint(0, 2)):
                    fill(rng, getattr(message, field.name).add(), batch, depth + 1)
            else:
                fill(rng, getattr(message, field.name), batch, depth + 1)
                getattr(message, field.name).SetInParent()
        elif field.is_repeated:
            getattr(message, field.name).extend(scalar(rng, field, batch) for _ in range(rng.randint(0, 3)))
        else:
            setattr(message, field.name, scalar(rng, field, batch))
    return message


def valid_bytes(rng: random.Random, request_type: Descriptor, batch: Batch) -> bytes:
    message: Message = message_factory.GetMessageClass(request_type)()
    return bytes(fill(rng, message, batch).SerializeToString())


def payload(rng: random.Random, kind: str, request_type: Descriptor, batch: Batch) -> bytes:
    data = bytearray(valid_bytes(rng, request_type, batch) or b"\x08\x01")
    if kind == "valid":
        return valid_bytes(rng, request_type, batch)
    if kind == "truncated":
        return bytes(data[: rng.randrange(len(data))])
    if kind == "bit-flipped":
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == "mutated":
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data) + 1)
            edit = rng.choice(("set", "insert", "delete"))
            if edit == "insert" or not data:
                data[at:at] = rng.randbytes(rng.randint(1, 4))
            elif edit == "set":
                data[min(at, len(data) - 1)] = rng.choice((0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)))
            else:
                del data[min(at, len(data) - 1)]
        return bytes(data)
    return rng.randbytes(rng.randint(0, 64))


def metadata(rng: random.Random, auth: str, batch: Batch) -> tuple[tuple[str, str], ...]:
    if auth == "none":
        return ()
    if auth == "user":
        return (("authorization", f"Bearer {batch.user_access}"),)
    if auth == "admin":
        return (("authorization", f"Bearer {batch.admin_access}"),)
    garbage = rng.choice(
        [
            f"Bearer {mangled_token(rng, batch.user_access)}",
            f"Bearer {mangled_token(rng, batch.admin_access)}",
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  # alg none
            "Bearer " + "".join(rng.choices(string.ascii_letters + string.digits + "._-", k=rng.randint(0, 300))),
            f"Basic {batch.user_access}",
            "Bearer",
            f"Bearer {batch.user_access} extra",
        ]
    )
    return (("authorization", garbage),)


# --- calls ----------------------------------------------------------------------------------------------------


def path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


@dataclass(frozen=True)
class Outcome:
    path: str
    kind: str
    auth: str
    code: grpc.StatusCode
    details: str


async def call(
    channel: grpc.aio.Channel, method: MethodDescriptor, body: bytes, md: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str]:
    """One call with raw bytes; a streaming answer counts by its first message (Watch never ends by itself)."""
    raw: dict[str, Callable[[bytes], bytes]] = {"request_serializer": bytes, "response_deserializer": bytes}
    name = path(method)
    try:
        if method.client_streaming:
            stream = (channel.stream_stream if method.server_streaming else channel.stream_unary)(name, **raw)
            bidi = stream(timeout=CALL_SECONDS, metadata=md)
            await bidi.write(body)
            await bidi.done_writing()
            if method.server_streaming:
                async for _ in bidi:
                    pass
            else:
                await bidi
        elif method.server_streaming:
            answers = channel.unary_stream(name, **raw)(body, timeout=CALL_SECONDS, metadata=md)
            await answers.read()
            answers.cancel()
        else:
            await channel.unary_unary(name, **raw)(body, timeout=CALL_SECONDS, metadata=md)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


class Accounts:
    """Makes each batch's accounts through the bootstrap admin, from an address of the batch's own (the server
    trusts 127.0.0.1 as a proxy), so the fuzzed calls' rate limits on 127.0.0.1 never refuse the setup."""

    def __init__(self, channel: grpc.aio.Channel, admin_access: str) -> None:
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)
        self.users = users_pb2_grpc.UserServiceStub(channel)
        self.admin = (("authorization", f"Bearer {admin_access}"),)
        self.made = 0

    async def batch(self) -> Batch:
        self.made += 1
        name = f"fz{self.made}x{uuid.uuid4().hex[:8]}"
        via = (("x-forwarded-for", f"10.{self.made // 250}.{self.made % 250}.1"),)
        made = await self.auth.Register(
            auth_pb2.RegisterRequest(username=name, email=f"{name}@example.com", password=PASSWORD),
            metadata=via,
            timeout=CALL_SECONDS,
        )
        await self.users.VerifyUser(users_pb2.VerifyUserRequest(id=made.user.id), metadata=self.admin + via)
        admin = await self.users.CreateUser(
            users_pb2.CreateUserRequest(
                username=f"{name}a", email=f"{name}a@example.com", password=PASSWORD, role="admin"
            ),
            metadata=self.admin + via,
            timeout=CALL_SECONDS,
        )
        await self.users.VerifyUser(users_pb2.VerifyUserRequest(id=admin.id), metadata=self.admin + via)
        admin_login = await self.auth.Login(
            auth_pb2.LoginRequest(username_or_email=admin.username, password=PASSWORD), metadata=via
        )
        second = await self.auth.Login(auth_pb2.LoginRequest(username_or_email=name, password=PASSWORD), metadata=via)
        sessions = await self.auth.ListSessions(
            auth_pb2.ListSessionsRequest(), metadata=(("authorization", f"Bearer {second.access_token}"), *via)
        )
        return Batch(
            user_id=made.user.id,
            user_email=made.user.email,
            username=name,
            user_access=made.access_token,
            user_refresh=made.refresh_token,
            admin_id=admin.id,
            admin_username=admin.username,
            admin_access=admin_login.access_token,
            session_ids=[session.id for session in sessions.items],
        )


def plan(method: MethodDescriptor, round_: int) -> Iterator[tuple[random.Random, str, str]]:
    """The batch's calls in a seeded order: destructive ones land anywhere, so later calls see their effects."""
    rng = random.Random(f"{SEED}/{path(method)}/{round_}")
    pairs = [(kind, auth) for kind in KINDS for auth in AUTHS]
    rng.shuffle(pairs)
    for kind, auth in pairs:
        yield rng, kind, auth


async def fuzz_method(
    channel: grpc.aio.Channel, accounts: Accounts, method: MethodDescriptor, round_: int
) -> list[Outcome]:
    batch = await accounts.batch()
    outcomes = []
    for rng, kind, auth in plan(method, round_):
        body = payload(rng, kind, method.input_type, batch)
        code, details = await call(channel, method, body, metadata(rng, auth, batch))
        outcomes.append(Outcome(path(method), kind, auth, code, details))
    return outcomes


async def offered(channel: grpc.aio.Channel) -> set[str]:
    stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(timeout=CALL_SECONDS)
    await stream.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    answer = await stream.read()
    await stream.done_writing()
    return {service.name for service in answer.list_services_response.service}


async def fuzz(target: str, rounds: int = ROUNDS["sqlite"]) -> list[Outcome]:
    async with grpc.aio.insecure_channel(target) as channel:
        assert await offered(channel) == {method.containing_service.full_name for method in METHODS}
        login = await auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username_or_email="fuzzadmin", password=ADMIN_PASSWORD),
            metadata=(("x-forwarded-for", "10.255.0.1"),),
            timeout=CALL_SECONDS,
        )
        accounts = Accounts(channel, login.access_token)
        gate = asyncio.Semaphore(PARALLEL)

        async def one(method: MethodDescriptor, round_: int) -> list[Outcome]:
            async with gate:
                return await fuzz_method(channel, accounts, method, round_)

        batches = await asyncio.gather(*(one(method, r) for r in range(rounds) for method in METHODS))
        assert await auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username_or_email="fuzzadmin", password=ADMIN_PASSWORD),
            metadata=(("x-forwarded-for", "10.255.0.2"),),
            timeout=CALL_SECONDS,
        ), "the server stopped answering"
    return [outcome for outcomes in batches for outcome in outcomes]


@pytest.mark.req("SRS-145")
def test_fuzzed_calls_to_every_rpc_get_only_documented_codes_and_the_server_logs_no_error(
    tmp_path: Path, database_url: str
) -> None:
    env = {
        "ARCANA_DATABASE_URL": database_url,
        "ARCANA_TRUSTED_PROXIES": "127.0.0.1",
        "ARCANA_REQUIRE_VERIFIED_EMAIL": "true",
        "ARCANA_LOG_LEVEL": "info",
    }
    rounds = ROUNDS["sqlite" if database_url.startswith("sqlite") else "mariadb"]
    migrate(tmp_path, ARCANA_DATABASE_URL=database_url)
    admin = command(
        tmp_path, "create-admin", "--username", "fuzzadmin", "--email", "fz@example.com", "--password", ADMIN_PASSWORD,
        ARCANA_DATABASE_URL=database_url,
    )  # fmt: skip
    assert admin.returncode == 0, admin.stderr
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, **env)
    try:
        server.wait_ready()
        outcomes = asyncio.run(fuzz(server.grpc, rounds))
        assert server.process.poll() is None, "the server exited"
    finally:
        server.stop()
        server.process.wait(STOP_SECONDS)
    unclean = sorted({(o.path, o.code.name, o.details[:120]) for o in outcomes if o.code not in CLEAN})
    assert not unclean, unclean
    leaking = [outcome for outcome in outcomes if any(leak in outcome.details for leak in LEAKS)]
    assert not leaking, leaking[:20]
    # The fuzzer reached past parsing and authentication: some calls of each method were answered OK or refused
    # on their merits, not all refused as unparseable.
    answered = {outcome.path for outcome in outcomes if outcome.code is grpc.StatusCode.OK}
    assert len(answered) >= len(METHODS) // 2, sorted(answered)
    assert len(outcomes) == len(METHODS) * rounds * len(KINDS) * len(AUTHS)
    output = server.output()
    assert "Traceback" not in output, output[-3000:]
    loud = at_levels(output, "error", "critical")
    assert not loud, loud[:10]
