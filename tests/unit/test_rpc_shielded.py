"""The gRPC guard's start of a call's work: at once, in a context of its own; a task only for work that waits."""

from __future__ import annotations

import asyncio
import contextvars
from types import SimpleNamespace
from typing import Any

import pytest

from py_app.entrypoints.rpc_support import _shielded
from py_app.infra import request_reads

pytestmark = pytest.mark.req("SDD-274")

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


class Tracked:
    def __init__(self) -> None:
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.settled: list[asyncio.Task[Any]] = []

    def settle(self, task: asyncio.Task[Any]) -> None:
        self.in_flight.discard(task)
        self.settled.append(task)


async def test_work_that_never_waits_answers_without_a_task_and_leaves_the_callers_context_alone() -> None:
    tracked = Tracked()

    async def cached() -> str:
        seen.set("work")
        return "answer"

    before = len(asyncio.all_tasks())
    assert await _shielded(cached(), tracked.in_flight, tracked.settle) == "answer"
    assert len(asyncio.all_tasks()) == before
    assert tracked.settled == []
    assert seen.get() == "unset"


async def test_work_that_waits_goes_on_as_a_task_in_its_own_context_and_answers() -> None:
    tracked = Tracked()
    gate = asyncio.Event()
    values: list[str] = []

    async def reads() -> str:
        token = seen.set("work")
        await gate.wait()
        values.append(seen.get())
        seen.reset(token)  # a token made before the wait is valid after it: the same context throughout
        return "answer"

    call = asyncio.ensure_future(_shielded(reads(), tracked.in_flight, tracked.settle))
    await asyncio.sleep(0)
    assert len(tracked.in_flight) == 1
    gate.set()
    assert await call == "answer"
    assert values == ["work"]
    assert seen.get() == "unset"
    assert len(tracked.settled) == 1
    assert tracked.in_flight == set()


async def test_a_callers_cancel_leaves_the_waiting_work_running_and_a_drains_cancel_stops_it() -> None:
    tracked = Tracked()
    gate = asyncio.Event()
    finished: list[str] = []

    async def slow() -> str:
        try:
            await gate.wait()
            finished.append("done")
            return "late"
        finally:
            finished.append("unwound")

    call = asyncio.ensure_future(_shielded(slow(), tracked.in_flight, tracked.settle))
    await asyncio.sleep(0)
    call.cancel()  # the caller's deadline
    with pytest.raises(asyncio.CancelledError):
        await call
    (work,) = tracked.in_flight
    assert not work.done()
    gate.set()
    assert await work == "late"
    assert finished == ["done", "unwound"]

    stuck = asyncio.Event()

    async def stuck_work() -> None:
        try:
            await stuck.wait()
        finally:
            finished.append("cancelled")

    other = asyncio.ensure_future(_shielded(stuck_work(), tracked.in_flight, tracked.settle))
    await asyncio.sleep(0)
    (work,) = tracked.in_flight
    work.cancel()  # the drain, at the grace's end
    with pytest.raises(asyncio.CancelledError):
        await other
    assert finished[-1] == "cancelled"
    assert work.cancelled()


async def test_errors_reach_the_call_whether_the_work_waited_or_not() -> None:
    tracked = Tracked()

    async def fails_at_once() -> None:
        raise LookupError("at once")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise LookupError("later")

    with pytest.raises(LookupError, match="at once"):
        await _shielded(fails_at_once(), tracked.in_flight, tracked.settle)
    with pytest.raises(LookupError, match="later"):
        await _shielded(fails_later(), tracked.in_flight, tracked.settle)


async def test_the_request_scope_entered_before_the_wait_is_the_tasks_after_it() -> None:
    tracked = Tracked()
    account: Any = SimpleNamespace(id="u-1")

    async def reads_twice() -> Any:
        token = request_reads.enter()
        try:
            request_reads.remember(account)  # the session check's row
            await asyncio.sleep(0)  # waits: the rest runs as a task
            return request_reads.recall("u-1")  # the same request's read of its own account
        finally:
            request_reads.leave(token)

    assert await _shielded(reads_twice(), tracked.in_flight, tracked.settle) is account
    assert len(tracked.settled) == 1
