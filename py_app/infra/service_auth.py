"""Service credentials on internal gRPC: who may call a tier of the layered mode.

Every internal call carries a short-lived service token in the ``x-arcana-service`` metadata entry:
``v1.<caller role>.<issued at>.<expires at>.<signature>``, the times in Unix seconds, the signature
HMAC-SHA256 (base64url, unpadded) over the rest, keyed with the shared ``ARCANA_INTERNAL_SECRET``. A
token lives at most ``MAX_LIFETIME`` seconds; the caller mints one and reuses it for ``REUSE_SECONDS``
(``ServiceCredential``), so signing costs one HMAC per half minute, not per call.

The serving tier checks it before any method runs (``ServiceCredentialInterceptor``): a missing,
malformed, forged, expired or too-long-lived token, or one minted for a role that does not call this
tier, is refused with UNAUTHENTICATED and logged as a security event (``authz_fail``, with the reason and
the peer, never the token). gRPC health stays open: probes and the tier in front ask it without one.

Why a token and not mTLS: the issue allows either; a shared secret needs no CA to generate and rotate
for development, the topology's processes already share a data directory, and it is what the per-hop
check needs (the caller is one of ours). It does not encrypt: the internal network stays private.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import grpc

HEADER = "x-arcana-service"
VERSION = "v1"
MAX_LIFETIME = 60  # seconds a token may live
REUSE_SECONDS = 30  # a caller mints a new token this often
CLOCK_SKEW = 5  # seconds a token's issue time may lie in the verifier's future
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)  # readiness probes call without a credential
# Who calls each tier: the edge calls the service tier, the service tier the repository tier.
CALLERS = {"Services": frozenset({"edge"}), "Repository": frozenset({"service"})}

security_log = logging.getLogger("arcana.security")


class CredentialRefused(Exception):
    """A service token that does not admit its bearer; the message is the reason (never the token)."""


def _signature(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(secret: bytes, role: str, now: int, lifetime: int = MAX_LIFETIME) -> str:
    """A token for ``role`` issued at ``now`` (Unix seconds)."""
    payload = f"{VERSION}.{role}.{now}.{now + lifetime}"
    return f"{payload}.{_signature(secret, payload)}"


def verify(secret: bytes, token: str, callers: Collection[str], now: int) -> str:
    """The caller's role, when ``token`` is valid at ``now`` for one of ``callers``; else CredentialRefused."""
    if not token:
        raise CredentialRefused("missing")
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != VERSION or not parts[2].isdigit() or not parts[3].isdigit():
        raise CredentialRefused("malformed")
    payload, signature = token.rpartition(".")[0], parts[4]
    # Constant time, and before anything else is believed: a forged token learns nothing from timing.
    if not hmac.compare_digest(_signature(secret, payload).encode(), signature.encode()):
        raise CredentialRefused("bad signature")
    role, issued, expires = parts[1], int(parts[2]), int(parts[3])
    if expires - issued > MAX_LIFETIME or issued > now + CLOCK_SKEW:
        raise CredentialRefused("bad lifetime")
    if expires <= now:
        raise CredentialRefused("expired")
    if role not in callers:
        raise CredentialRefused("role not allowed")
    return role


class ServiceCredential:
    """The calling end: this process's role and the shared secret; one token reused for ``REUSE_SECONDS``."""

    def __init__(self, secret: bytes, role: str, clock: Callable[[], float] = time.time) -> None:
        self.role = role
        self._secret = secret
        self._clock = clock
        self._token = ""
        self._renew_at = 0
        self._lock = threading.Lock()  # a process's channels may be used from several threads

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata entry to send with a call."""
        return ((HEADER, self.token()),)

    def token(self) -> str:
        now = int(self._clock())
        with self._lock:
            if now >= self._renew_at or not self._token:
                self._token = mint(self._secret, self.role, now)
                self._renew_at = now + REUSE_SECONDS
            return self._token

    def __repr__(self) -> str:  # never print the secret or the token
        return f"ServiceCredential(role={self.role!r})"


Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


class ServiceCredentialInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The serving end: every call but gRPC health must carry a valid token of one of ``callers``."""

    def __init__(self, secret: bytes, callers: Collection[str], clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._callers = frozenset(callers)
        self._clock = clock

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method = str(handler_call_details.method or "")
        if method.startswith(OPEN_PREFIXES):
            return await continuation(handler_call_details)
        offered = ""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == HEADER:
                offered = value if isinstance(value, str) else ""
        try:
            verify(self._secret, offered, self._callers, int(self._clock()))
        except CredentialRefused as refused:
            return _refusal(method, str(refused))
        return await continuation(handler_call_details)


def _refusal(method: str, reason: str) -> grpc.RpcMethodHandler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        security_log.warning("authz_fail", extra={"resource": method, "reason": reason, "peer": context.peer()})
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid service credential is required")

    # Every internal RPC is unary; the request is never decoded, so no deserializer is needed.
    return grpc.unary_unary_rpc_method_handler(refuse)
