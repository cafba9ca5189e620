"""The account a request's session check read, handed to that same request's next read of the account.

An authenticated request reads its session and its account in one query (``SqlSessionStore.state``). A
point query of one's own record, or ``me``, then asks the user store for that account again: with no
cache in front, a second query for a row read a moment before, by the same request. Inside a request
scope (``enter``/``leave``, entered once per REST request and per gRPC call by the transports) the
session check keeps the row (``remember``) and the user store's outermost layer hands it out
(``RequestAccounts``), so the uncached point query is one query, not two.

Why it is never a stale answer:
- Only the task that entered the scope sees it. A task started during the request inherits the
  context, not the row: a background job begun there reads the database like any other.
- Any writing transaction in the request (``infra.db.transaction``) drops it, so a request never reads
  past its own write.
- It never reaches a cache: ``RequestAccounts`` sits outside the user records' caches. A cache keeps a
  row only when it was read after its stamp, and this one was read before.
- The row is the one the request was authorized on. A second query could only differ by a write
  that raced the request, which no caller can order before or after it; no acknowledged write is read
  past, because the row was read after every write acknowledged before the request arrived.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py_app.users.models import User


class _Scope:
    __slots__ = ("account", "task")

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        self.task = task
        self.account: User | None = None


_current: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("arcana_request_reads", default=None)


def enter() -> contextvars.Token[_Scope | None]:
    """Start a request's scope, owned by the task handling it."""
    return _current.set(_Scope(asyncio.current_task()))


def leave(token: contextvars.Token[_Scope | None]) -> None:
    scope = _current.get()
    if scope is not None:
        scope.account = None  # a task that kept a copy of the context finds nothing either
    _current.reset(token)


def _own() -> _Scope | None:
    scope = _current.get()
    if scope is None or scope.task is not asyncio.current_task():
        return None
    return scope


def remember(account: User) -> None:
    """The account this request's session check read (nothing outside a scope, or in another task)."""
    scope = _own()
    if scope is not None:
        scope.account = account


def recall(user_id: str) -> User | None:
    """The account ``user_id`` as this request already read it, if it did and has written nothing since."""
    scope = _own()
    if scope is None:
        return None
    account = scope.account
    return account if account is not None and account.id == user_id else None


def forget() -> None:
    """This request writes: whatever it read before is not what it reads after."""
    scope = _current.get()
    if scope is not None:
        scope.account = None
