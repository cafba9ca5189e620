"""Who the request being handled is for: the user and session the edge authenticated, across internal hops.

The edge binds it once it has verified a caller's access token (``identify``); the internal client
interceptor (``request_id.RequestIdClientInterceptor``) sends it with every internal call as
``x-arcana-principal`` and ``x-arcana-session``; the tier serving that call binds what arrived (``accept``)
for the call's own log lines and its own internal calls, so edge → service → repository (and edge → users
→ auth) all name the same user. A value that is not a canonical UUID is dropped on receipt, never repeated.

Information for logs and traces only, never an authorization input: the use cases authorize on their typed
``actor``/``principal`` argument, which is part of the port's signature and validated when decoded. The
metadata is only as trustworthy as the caller's service credential, and it names no role.

A scope (``enter``/``leave``) holds one mutable slot rather than the value itself: Litestar resolves a
route's dependencies in child tasks, each with a copy of the context, so a value set in the dependency that
authenticates would be gone by the time the handler runs; a slot bound before them is shared by all of them.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Mapping
from dataclasses import dataclass

USER_HEADER = "x-arcana-principal"
SESSION_HEADER = "x-arcana-session"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    session_id: str


class _Slot:
    __slots__ = ("caller",)

    def __init__(self, caller: Caller | None = None) -> None:
        self.caller = caller


_current: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar("arcana_caller", default=None)


def enter(caller: Caller | None = None) -> contextvars.Token[_Slot | None]:
    """Start a request's (or an internal call's) scope, empty or with who it is for."""
    return _current.set(_Slot(caller))


def leave(token: contextvars.Token[_Slot | None]) -> None:
    _current.reset(token)


def identify(user_id: str, session_id: str) -> None:
    """The edge verified this caller: the rest of the request (its log lines, its internal calls) is for them."""
    slot = _current.get()
    if slot is None:
        _current.set(_Slot(Caller(user_id, session_id)))
    else:
        slot.caller = Caller(user_id, session_id)


def current() -> Caller | None:
    slot = _current.get()
    return slot.caller if slot is not None else None


def outgoing_metadata() -> list[tuple[str, str]]:
    caller = current()
    return [] if caller is None else [(USER_HEADER, caller.user_id), (SESSION_HEADER, caller.session_id)]


def accept(metadata: Mapping[str, object]) -> Caller | None:
    """Who an incoming internal call is for: a canonical UUID for the user (and the session, or none)."""
    user_id, session_id = str(metadata.get(USER_HEADER) or ""), str(metadata.get(SESSION_HEADER) or "")
    if not _UUID.fullmatch(user_id):
        return None
    return Caller(user_id, session_id if _UUID.fullmatch(session_id) else "")
