"""Transcripts: what one run of a scenario saw, masked so that a REST run and a gRPC run can be compared.

A scenario runs once over REST and once over gRPC, each time through a ``RecordingClient``. Every call's
``Outcome`` is logged as an ``Entry``: where in the scenario it was made (file:line), the call, the kind,
the domain code, the named fields and the body. The human-readable message is not compared: its wording
is each transport's own (gRPC says where the token goes: "in the authorization metadata").

Values that legitimately differ between two runs are replaced by stable placeholders, numbered in order of
first appearance so that "the same id again" stays visible:

* UUIDs (user and session ids) become ``<id:N>``; access and refresh tokens ``<token:N>``;
* timestamps become ``<time>`` (``None`` stays ``None``: "never logged in" is part of the outcome);
* the per-run unique usernames and emails (``clients.unique`` and ``volatile`` register them) ``<name:N>``;
* a session's ``user_agent`` becomes the agent the scenario sent (gRPC appends its own product token to it)
  or ``<library default>`` when the scenario sent none.

Whatever else the shared server makes differ between two runs (the total number of users, say) a scenario
names with ``varying(...)``; concurrent calls, whose order of answering is a race, go inside
``unordered()``. ``assert_same_transcripts`` fails with a unified diff of the two rendered transcripts.
"""

from __future__ import annotations

import difflib
import inspect
import pprint
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.contract.clients import Client, Outcome

LABELS = {"rest": "REST", "grpc": "gRPC"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
TOKEN_KEYS = frozenset({"access_token", "refresh_token"})
HERE = Path(__file__).resolve().parent
VARIES = "<varies>"


@dataclass(frozen=True)
class Entry:
    """One call of a scenario, masked."""

    where: str
    call: str
    kind: str
    code: str | None
    fields: tuple[str, ...]
    body: Any

    def render(self) -> list[str]:
        head = f"{self.where} {self.call} -> {self.kind}"
        if self.kind != "ok":
            head += f" code={self.code} fields={list(self.fields)}"
        if self.body is None:
            return [head]
        return [head, *("    " + line for line in pprint.pformat(self.body, width=110).splitlines())]


def render(entries: list[Entry]) -> list[str]:
    return [line for number, entry in enumerate(entries, 1) for line in _numbered(number, entry.render())]


def _numbered(number: int, lines: list[str]) -> list[str]:
    return [f"#{number:<3} {lines[0]}", *lines[1:]]


def assert_same_transcripts(transcripts: Mapping[str, list[Entry]]) -> None:
    """Both protocols saw the same thing, call for call; else fail with a diff (- REST, + gRPC)."""
    rest, grpc = render(transcripts["rest"]), render(transcripts["grpc"])
    if rest == grpc:
        return
    diff = difflib.unified_diff(rest, grpc, fromfile="REST", tofile="gRPC", lineterm="", n=2)
    raise AssertionError(
        f"REST and gRPC answered the same scenario differently ({len(transcripts['rest'])} calls over REST, "
        f"{len(transcripts['grpc'])} over gRPC):\n" + "\n".join(diff)
    )


# --- masking ---------------------------------------------------------------------------------------------------


@dataclass
class Masker:
    """Stable placeholders for one run's volatile values."""

    placeholders: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # registered unique names, in order
    agents: list[str] = field(default_factory=list)  # user agents the scenario sent

    def placeholder(self, category: str, value: str) -> str:
        key = f"{category}\0{value.lower()}"
        if key not in self.placeholders:
            self.counts[category] = self.counts.get(category, 0) + 1
            self.placeholders[key] = f"<{category}:{self.counts[category]}>"
        return self.placeholders[key]

    def register_name(self, value: str) -> None:
        if value and value.lower() not in (name.lower() for name in self.names):
            self.names.append(value)
            self.placeholder("name", value)

    def text(self, value: str) -> str:
        masked = UUID.sub(lambda match: self.placeholder("id", match.group(0)), value)
        for name in sorted(self.names, key=len, reverse=True):
            placeholder = self.placeholder("name", name)
            masked = re.sub(re.escape(name), placeholder, masked, flags=re.IGNORECASE)
        return masked

    def user_agent(self, value: str) -> str:
        sent = [agent for agent in self.agents if value.startswith(agent)]
        return max(sent, key=len) if sent else "<library default>"

    def body(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {name: self.body(item, name) for name, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.body(item) for item in value]
        if isinstance(value, datetime):
            return "<time>"
        if isinstance(value, str):
            if key in TOKEN_KEYS:
                return self.placeholder("token", value)
            if key == "user_agent":
                return self.user_agent(value)
            return self.text(value)
        return value


# --- recording -------------------------------------------------------------------------------------------------


@dataclass
class Recorder:
    """The transcript of one run over one protocol."""

    protocol: str
    entries: list[Entry] = field(default_factory=list)
    masker: Masker = field(default_factory=Masker)
    varying: frozenset[str] = frozenset()
    group: list[Entry] | None = None

    def record(self, where: str, call: str, outcome: Outcome) -> None:
        body = outcome.body
        if self.varying and isinstance(body, dict):
            body = {key: VARIES if key in self.varying else value for key, value in body.items()}
        entry = Entry(
            where=where,
            call=call,
            kind=outcome.kind,
            code=outcome.code,
            fields=tuple(sorted(outcome.fields)),
            body=self.masker.body(body),
        )
        (self.group if self.group is not None else self.entries).append(entry)


_current: ContextVar[Recorder | None] = ContextVar("contract_recorder", default=None)


@contextmanager
def recording(recorder: Recorder) -> Iterator[Recorder]:
    """Make ``recorder`` the one that ``volatile``, ``varying`` and ``unordered`` act on."""
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)


def volatile(value: str) -> str:
    """Register a per-run unique string (a username, an email) so transcripts show it as ``<name:N>``."""
    recorder = _current.get()
    if recorder is not None:
        recorder.masker.register_name(value)
    return value


def _active() -> Recorder:
    recorder = _current.get()
    assert recorder is not None, "only inside a @scenario run"
    return recorder


@contextmanager
def varying(*keys: str) -> Iterator[None]:
    """Answers in this block have these top-level body keys differ between runs (the shared server grows)."""
    recorder = _active()
    before = recorder.varying
    recorder.varying = before | frozenset(keys)
    try:
        yield
    finally:
        recorder.varying = before


@contextmanager
def unordered() -> Iterator[None]:
    """Concurrent calls: compared as a sorted group, since which one answers first is a race."""
    recorder = _active()
    assert recorder.group is None, "unordered() does not nest"
    recorder.group = []
    try:
        yield
    finally:
        group, recorder.group = recorder.group, None
        recorder.entries.extend(sorted(group, key=lambda entry: entry.render()))


def _where() -> str:
    """The scenario's own line that made the call: the first frame in a contract test module."""
    frame: FrameType | None = inspect.currentframe()
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.parent == HERE and path.name.startswith("test_"):
            return f"{path.name}:{frame.f_lineno}"
        frame = frame.f_back
    return "(fixture)"


class RecordingClient:
    """A ``Client`` that logs every outcome into its recorder and returns it unchanged."""

    def __init__(self, inner: Client, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder
        self.protocol = inner.protocol

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)
        if name.startswith("_") or name == "aclose" or not callable(method):
            return method  # type: ignore[no-any-return]

        def call(*args: Any, **kwargs: Any) -> Any:
            where = _where()  # now, while the scenario's frame is the caller (gather runs the coroutine later)
            agent = kwargs.get("user_agent")
            if agent:
                self.recorder.masker.agents.append(agent)
            return self._recorded(where, name, method(*args, **kwargs))

        return call

    async def _recorded(self, where: str, name: str, pending: Any) -> Outcome:
        outcome: Outcome = await pending
        self.recorder.record(where, name, outcome)
        return outcome

    async def aclose(self) -> None:
        await self.inner.aclose()
