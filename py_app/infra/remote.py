"""Ports across a process boundary: the generic envelope of ``arcana.internal.v1`` at both ends.

A tier serves its ports with one ``Call`` RPC (``PortServicer``); another process holds a gRPC-client
adapter per port (``RemotePort`` subclasses in ``remote_stores`` and ``remote_services``) whose methods
have the Protocol's own signatures. The wire shape of every method is derived from the Protocol's
annotations (``port_methods``): the arguments travel as a msgspec JSON object of the parameters, the
result as msgspec JSON of the return type, so both ends are typed by the one Protocol and decoding
validates what arrives. Domain errors cross through the error registry (``infra.rpc_errors``) both ways:
a NotFound raised behind the boundary is the same NotFound in front of it.

Known simplification: one envelope instead of a typed proto message per method (docs/ARCHITECTURE.md).

Each call carries the request id and the principal the edge verified (``RequestIdClientInterceptor``,
``infra.caller``: for logs and traces, never authorized on) and a deadline: the remaining time of
the internal call being served, when there is one, else the configured ``ARCANA_INTERNAL_TIMEOUT``.
A tier that is down or too slow is ``Unavailable`` (503 / UNAVAILABLE at the edge, with a retry hint).

A target may name several processes of a tier (``infra.targets``); the channel balances round-robin over
those that are connected. A read (a method in its port's ``reads``: idempotent, counts nothing) that finds
a tier process unavailable is tried again, on another, after a jittered exponential back-off, at most
``READ_ATTEMPTS`` times within the call's deadline; a write is sent once, never again (whether a lost
write ran is not known, and running it twice is not the same as once).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
import random
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
import msgspec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from py_app._proto.arcana.internal.v1 import ports_pb2, ports_pb2_grpc
from py_app.core.errors import DomainError, Internal, Unavailable
from py_app.health.ports import CheckFailed
from py_app.infra import caller, request_id, tracing
from py_app.infra.rpc_errors import from_rpc_error, to_status
from py_app.infra.service_auth import ServiceCredential
from py_app.infra.targets import channel_target

logger = logging.getLogger("arcana.internal")

RETRY_AFTER_SECONDS = 1  # what the edge tells a caller when a tier behind it is down
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 60_000),
    # Reconnect soon after a tier comes back, instead of grpc's back-off of up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]
# Balance over every address the target resolves to (grpc's default, pick_first, would use one of them).
SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
READ_ATTEMPTS = 3  # a read's tries in all, when a tier process is unavailable
RETRY_BACKOFF = 0.05  # seconds before the second try; doubled before each next one, then jittered to 50-100%
# The absolute time (time.monotonic) by which the internal call this process is serving must answer.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("arcana_internal_deadline", default=None)
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Method:
    """The wire shape of one port method."""

    name: str
    signature: inspect.Signature
    arguments: type[msgspec.Struct]  # one field per parameter (a ``*args`` parameter is a tuple)
    result: Any  # the return annotation, as msgspec decodes it

    def encode_arguments(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bytes:
        bound = self.signature.bind(None, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        values.pop(next(iter(self.signature.parameters)))  # self
        return _ENCODER.encode(values)

    def decode_arguments(self, raw: bytes) -> tuple[list[Any], dict[str, Any]]:
        decoded = msgspec.json.decode(raw, type=self.arguments)
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        for parameter in list(self.signature.parameters.values())[1:]:
            value = getattr(decoded, parameter.name)
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                positional.extend(value)
            elif parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                keywords[parameter.name] = value
            else:
                positional.append(value)
        return positional, keywords

    def decode_result(self, raw: bytes) -> Any:
        return msgspec.json.decode(raw, type=self.result)


def port_methods(protocol: type) -> dict[str, Method]:
    """Every public method of a port Protocol, with its wire shape from the Protocol's annotations."""
    methods = {}
    for name in dir(protocol):  # dir: a Protocol that extends another has its methods too
        function = getattr(protocol, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(function):
            continue
        hints = typing.get_type_hints(function)
        signature = inspect.signature(function)
        fields: list[tuple[str, Any]] = []
        for parameter in list(signature.parameters.values())[1:]:
            kind: Any = hints[parameter.name]
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                kind = tuple.__class_getitem__((kind, ...))  # tuple[kind, ...], built at run time
            fields.append((parameter.name, kind))
        arguments = msgspec.defstruct(f"{protocol.__name__}.{name}", fields, forbid_unknown_fields=True)
        methods[name] = Method(name, signature, arguments, hints.get("return", type(None)))
    return methods


def inherit_deadline(remaining: float | None) -> None:
    """Make the internal calls of the call being served (in this task's context) end by its caller's
    deadline, ``remaining`` seconds from now (None: the caller set none)."""
    _deadline.set(time.monotonic() + remaining if remaining is not None else None)


# --- the serving end ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Served:
    """One port a tier serves: its Protocol's methods and the adapter that implements them."""

    methods: Mapping[str, Method]
    adapter: object


def served(protocol: type, adapter: object) -> tuple[str, Served]:
    return protocol.__name__, Served(port_methods(protocol), adapter)


class PortServicer:
    """The ``Call`` RPC of a tier: decode, run the adapter's method, encode; a domain error becomes its status."""

    def __init__(
        self, ports: Mapping[str, Served], service: str = "", encode: Callable[[Any], bytes] = _ENCODER.encode
    ) -> None:
        self._ports = ports
        self._service = service  # the full gRPC service name, for the trace spans
        self._encode = encode

    async def Call(  # noqa: N802 - the RPC's name
        self, request: ports_pb2.CallRequest, context: grpc.aio.ServicerContext
    ) -> ports_pb2.CallReply:
        port = self._ports.get(request.port)
        method = port.methods.get(request.method) if port is not None else None
        if port is None or method is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"no method {request.port}.{request.method}")
            raise AssertionError  # abort raises
        offered = dict(context.invocation_metadata() or ())
        token = request_id.bind(request_id.accept(str(offered.get(request_id.HEADER) or "") or None))
        # Who the call is for, as the edge verified it: for this call's log lines and its own internal calls.
        # Never re-verified and never authorized on here: the adapter's typed actor argument is (infra.caller).
        for_whom = caller.enter(caller.accept(offered))
        started = time.perf_counter()
        deadline = _deadline.get()
        inherit_deadline(context.time_remaining())
        name = f"{self._service}/{request.port}.{request.method}"
        # An internal tier only continues traces: a call from a caller's request carries its trace context; a
        # background job's call (outbox polling, pruning) carries none and makes no trace of its own.
        parent = str(offered.get("traceparent") or "") or None
        span = tracing.server_span(name, lambda: parent) if parent else contextlib.nullcontext()
        code = "OK"
        try:
            with span as active:
                if (who := caller.current()) is not None:
                    tracing.name_user(active, who.user_id)
                try:
                    reply = await self._answer(port, method, request, context)
                except BaseException:
                    code = _code(context)
                    tracing.finish_grpc(active, code)
                    raise
                tracing.finish_grpc(active, code)
                return reply
        finally:
            # One line per call served, at debug (the edge's request line is the one kept at info).
            logger.debug("internal call", extra={"rpc": name, "code": code, "duration_ms": _since(started)})
            _deadline.set(deadline)
            caller.leave(for_whom)
            request_id.unbind(token)

    async def _answer(
        self, port: Served, method: Method, request: ports_pb2.CallRequest, context: grpc.aio.ServicerContext
    ) -> ports_pb2.CallReply:
        try:
            positional, keywords = method.decode_arguments(request.arguments)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{request.port}.{request.method}: {exc}")
            raise AssertionError from None
        try:
            result = await getattr(port.adapter, method.name)(*positional, **keywords)
        except DomainError as error:
            await context.abort_with_status(to_status(error))
            raise AssertionError from None
        except Exception:
            # A defect behind the boundary: logged here, where its traceback is; the caller gets Internal.
            logger.exception("internal call failed", extra={"port": request.port, "method": request.method})
            await context.abort_with_status(to_status(Internal()))
            raise AssertionError from None
        return ports_pb2.CallReply(result=self._encode(result))


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _code(context: grpc.aio.ServicerContext) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


HASH_FIELD = "password_hash"


def without_hashes(result: Any) -> bytes:
    """msgspec JSON of ``result`` with every password hash in it emptied: what the Services tier answers.

    The hash is verified in the service tier (login, password change) and goes no further: the edge gets
    ``User`` values whose ``password_hash`` is "" (the field stays, so the edge decodes the one ``User`` type).
    """
    return _ENCODER.encode(_strip(msgspec.to_builtins(result)))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "" if key == HASH_FIELD else _strip(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def add_servicer(server: grpc.aio.Server, tier: str, ports: Mapping[str, Served]) -> str:
    """Serve ``ports`` as the ``Repository`` or ``Services`` tier; the full service name (for health).

    The repository tier answers the service tier, which verifies passwords, so its ``User`` values keep the
    hash; the Services tier's answers cross to the edge, so they carry none (``without_hashes``)."""
    encode = _ENCODER.encode if tier == "Repository" else without_hashes
    servicer = PortServicer(ports, str(ports_pb2.DESCRIPTOR.services_by_name[tier].full_name), encode)
    if tier == "Repository":
        ports_pb2_grpc.add_RepositoryServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    else:
        ports_pb2_grpc.add_ServicesServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    return str(ports_pb2.DESCRIPTOR.services_by_name[tier].full_name)


# --- the calling end ---------------------------------------------------------------------------------------


class Target:
    """One channel to one tier, shared by every adapter of this process that calls it."""

    def __init__(self, address: str, tier: str, timeout: float, *, credential: ServiceCredential) -> None:
        self.address = address
        self._timeout = timeout
        self._credential = credential  # sent with every call (infra.service_auth); health asks without it
        self._channel = grpc.aio.insecure_channel(
            channel_target(address),  # one address, dns:///, or a list (infra.targets; Settings checked it)
            options=[*CHANNEL_OPTIONS, ("grpc.service_config", SERVICE_CONFIG)],
            interceptors=[request_id.RequestIdClientInterceptor()],
        )
        stub = ports_pb2_grpc.RepositoryStub if tier == "Repository" else ports_pb2_grpc.ServicesStub
        self._service = str(ports_pb2.DESCRIPTOR.services_by_name[tier].full_name)
        self._call: Callable[..., Any] = stub(self._channel).Call
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def timeout(self) -> float:
        """This call's deadline: what is left of the call being served, if any, within the configured bound."""
        deadline = _deadline.get()
        if deadline is None:
            return self._timeout
        return max(0.0, min(self._timeout, deadline - time.monotonic()))

    async def call(
        self, port: str, method: Method, args: tuple[Any, ...], kwargs: Mapping[str, Any], *, read: bool = False
    ) -> Any:
        """One port method's call; a ``read`` is tried again on an unavailable tier process (module docstring)."""
        request = ports_pb2.CallRequest(port=port, method=method.name, arguments=method.encode_arguments(args, kwargs))
        deadline = time.monotonic() + self.timeout()
        attempts = READ_ATTEMPTS if read else 1
        # The span is current while the call starts: the channel's interceptor sends it as the callee's parent.
        with tracing.client_span(f"{self._service}/{port}.{method.name}"):
            for attempt in range(1, attempts + 1):
                try:
                    reply = await self._call(
                        request,
                        timeout=max(0.0, deadline - time.monotonic()),
                        metadata=self._credential.metadata(),
                        wait_for_ready=False,
                    )
                    break
                except grpc.aio.AioRpcError as exc:
                    pause = RETRY_BACKOFF * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
                    if attempt == attempts or not _retryable(exc) or time.monotonic() + pause >= deadline:
                        raise _remote_error(exc, self.address) from None
                    logger.info(
                        "internal read retried", extra={"target": self.address, "method": f"{port}.{method.name}"}
                    )
                await asyncio.sleep(pause)
        return method.decode_result(reply.result)

    async def serving(self, within: float) -> bool:
        """Whether the tier reports SERVING on its gRPC health service (asked with a deadline of ``within`` s)."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=within)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self._channel.close()


class TierProbe:
    """Readiness of a tier this process calls: this process is not ready while that one is not."""

    def __init__(self, name: str, target: Target, timeout: float = 1.5, *, critical: bool = True) -> None:
        self.critical = critical  # False: this process still serves what it can without that tier (degraded)
        self.name = name
        self._target = target
        self._timeout = timeout

    async def check(self) -> None:
        if not await self._target.serving(self._timeout):
            raise CheckFailed(f"the {self.name} tier at {self._target.address} is not serving")


def _detailed(exc: grpc.aio.AioRpcError) -> bool:
    """Whether the status carries a domain error (ErrorInfo details), rather than being grpc's own."""
    return any(key == "grpc-status-details-bin" for key, _ in exc.trailing_metadata() or ())


def _retryable(exc: grpc.aio.AioRpcError) -> bool:
    """A tier process unavailable: not a domain error (an ``Unavailable`` from behind it was already the
    answer of a tier that tried), not a deadline (no time is left to try again)."""
    return exc.code() == grpc.StatusCode.UNAVAILABLE and not _detailed(exc)


def _remote_error(exc: grpc.aio.AioRpcError, address: str) -> DomainError:
    detailed = _detailed(exc)
    if not detailed and exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        # The tier itself is down or too slow (grpc's message would name internal addresses).
        logger.warning("internal tier unavailable", extra={"target": address, "code": exc.code().name})
        return Unavailable("a service behind this one is unavailable", retry_after=RETRY_AFTER_SECONDS)
    error = from_rpc_error(exc)
    if isinstance(error, Internal):
        logger.error("internal tier failed", extra={"target": address, "code": exc.code().name})
    return error


class RemotePort:
    """Base of every gRPC-client adapter: subclasses name their Protocol and spell its methods."""

    protocol: ClassVar[type]
    # The methods that only read (idempotent, count nothing): the only ones tried again. Named per adapter,
    # never inferred, so a new method is a write until someone decides otherwise.
    reads: ClassVar[frozenset[str]] = frozenset()
    _methods: ClassVar[dict[str, Method]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._methods = port_methods(cls.protocol)
        if unknown := cls.reads - cls._methods.keys():
            raise TypeError(f"{cls.__name__}.reads names no method of {cls.protocol.__name__}: {sorted(unknown)}")

    def __init__(self, target: Target) -> None:
        self._target = target

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = self._methods[name]
        return await self._target.call(self.protocol.__name__, method, args, kwargs, read=name in self.reads)
