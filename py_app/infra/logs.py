"""Logs on stderr, one line per record: JSON objects (production) or readable lines (development).

Each line carries a UTC timestamp, the level, the logger, the message, the request id of the request being
handled (``infra.request_id``), the ``user_id`` it is for once the edge verified one (``infra.caller``; a
record's own ``user_id``, the subject of a security event, takes its place) and the record's extra fields.
Secrets never reach a log call; an email address, should one arrive as a field, is masked
(``a***@example.com``) on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing.util
import os
import re
import sys
import time
import weakref
from collections.abc import Mapping
from typing import Any

import msgspec

from py_app.infra import caller, request_id

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_EMAIL = re.compile(r"([^\s@\"'<>,;:]{1,64})@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")

# Database driver loggers print what flows through them, whatever ARCANA_LOG_LEVEL says: aiosqlite logs
# every call with its arguments at debug (statement parameters: argon2 hashes, token digests, emails),
# SQLAlchemy logs statements at info and result rows at debug, asyncmy relays server warnings that can
# quote the values they are about. Pinned here, for the CLI's logging and Granian's alike.
# Alembic narrates every migration context it opens at info: the readiness schema check opens one each
# time it runs.
DRIVER_LEVELS = {"aiosqlite": "WARNING", "sqlalchemy": "WARNING", "asyncmy": "ERROR", "alembic": "WARNING"}
FORMATS = ("json", "console")
# A line is encoded by msgspec (0.5 µs for the request line, against 2.5 for the stdlib's encoder), anything it
# has no encoding for as its str(). The stdlib encoder, built once (json.dumps(default=...) builds one per
# call), takes the rare line msgspec refuses: a string holding a lone surrogate, which it escapes.
_ENCODER = msgspec.json.Encoder(enc_hook=str)
_FALLBACK = json.JSONEncoder(default=str)


def mask_email(text: str) -> str:
    """``alice@example.com`` → ``a***@example.com``, wherever one appears in ``text``."""
    return _EMAIL.sub(lambda match: f"{match.group(1)[0]}***@{match.group(2)}", text)


def _masked(value: Any) -> Any:
    return mask_email(value) if isinstance(value, str) and "@" in value else value


class _Clock:
    """UTC ISO timestamps to the millisecond; the seconds part is formatted once per second, not per line."""

    def __init__(self) -> None:
        self._cached = (-1, "")  # one tuple, replaced whole: threads that log never see half an update

    def iso(self, created: float) -> str:
        second = int(created)
        micros = round((created - second) * 1_000_000)  # rounded to the microsecond, then cut, as datetime does
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        return f"{prefix}.{micros // 1000:03d}Z"


_CLOCK = _Clock()


def _entry(created: float, level: str, name: str, message: str) -> dict[str, Any]:
    """A line's fixed fields, in a stable order, and the request's id and caller: what every line starts with."""
    entry: dict[str, Any] = {"ts": _CLOCK.iso(created), "level": level, "logger": name, "msg": _masked(message)}
    current = request_id.current()
    if current is not None:
        entry["request_id"] = current
    who = caller.current()
    if who is not None:
        entry["user_id"] = who.user_id
    return entry


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record as the fields of one line: the fixed ones first, then the extras."""
    entry = _entry(record.created, record.levelname.lower(), record.name, record.getMessage())
    for key, value in record.__dict__.items():
        if key not in _STANDARD:
            entry[key] = _masked(value)
    return entry


class LineLogger:
    """A logger for one fixed line written very often (the per-request line): the same line, handlers and
    level checks as ``logging.Logger.log(level, msg, extra=fields)``, without looking up the caller's file
    and line (no formatter here prints them) or copying ``extra`` key by key.

    Where the line can only reach the handler ``configure_logging`` installed (the root's only handler, no
    handler or filter on the way), it is handed to that handler as its fields, with no ``LogRecord``: the
    record, ``Logger.handle`` and the handler calls cost more than the line's encoding (the request line
    took 18 µs of a REST request on the benchmark machine, and writing it was not what cost). Anything
    else (a test's capture handler, a filter) gets the record, as before. ``fields`` never names a
    ``LogRecord`` attribute, as ``extra`` may not.
    """

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def log(self, level: int, msg: str, fields: Mapping[str, Any]) -> None:
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        handler = _sole_handler(logger, level)
        if handler is not None and handler.line(level, logger.name, msg, fields):
            return
        record = logging.LogRecord(logger.name, level, "", 0, msg, None, None)
        record.__dict__.update(fields)
        logger.handle(record)


def _sole_handler(logger: logging.Logger, level: int) -> LineHandler | None:
    """The ``LineHandler`` that is the only place a line of ``logger`` at ``level`` can go, if there is one."""
    if logger.disabled or logger.filters:
        return None
    found: LineHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None or not isinstance(handler, LineHandler) or handler.filters:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found if found is not None and level >= found.level else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = _fields(record)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self.render(entry)

    def render(self, entry: dict[str, Any]) -> str:
        try:
            return _ENCODER.encode(entry).decode()
        except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
            return _FALLBACK.encode(entry)


class ConsoleFormatter(logging.Formatter):
    """For a developer's terminal: ``12:00:01.234 info  arcana.rest request method=GET status=200 …``."""

    def format(self, record: logging.LogRecord) -> str:
        line = self.render(_fields(record))
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line

    def render(self, entry: dict[str, Any]) -> str:
        head = f"{entry.pop('ts')[11:23]} {entry.pop('level'):<7} {entry.pop('logger')} {entry.pop('msg')}"
        tail = " ".join(f"{key}={value}" for key, value in entry.items())
        return f"{head} {tail}" if tail else head


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stream handler ``configure_logging`` installs, which also writes a ``LineLogger``'s line from its
    fields: the same text, as ``emit`` would write it.

    A ``LineLogger`` line written on a thread running an event loop is held until the loop's next
    iteration and goes out with every other line of that iteration in one write: a write is a system
    call, and one per request line was about 10 µs of the 190 a REST point query costs on the benchmark
    machine (about a sixth of its throughput went with the request line). Any other record first writes what
    is held, then itself, at once, so lines keep their order and a record logged before an answer is on
    the stream before the answer is sent. What is held is written when the handler is flushed or closed,
    before the process forks, and when it exits (``logging.shutdown`` at exit; the finalizers a
    ``multiprocessing`` child runs, as Granian's workers are); only a process killed outright (SIGKILL,
    a crash) loses the lines of its last loop iteration.
    """

    def __init__(self, stream: Any, formatter: JsonFormatter | ConsoleFormatter) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self._held: list[str] = []
        self._queued_on: asyncio.AbstractEventLoop | None = None  # the loop a write of the held lines waits on
        _HANDLERS.add(self)
        _finalize_in_this_process()

    def line(self, level: int, name: str, msg: str, fields: Mapping[str, Any]) -> bool:
        """Write the line; False when it cannot be (a formatter of another kind set since, a failed write),
        for the caller to log the record."""
        formatter = self.formatter
        if not isinstance(formatter, JsonFormatter | ConsoleFormatter):
            return False
        entry = _entry(time.time(), _LEVEL_NAMES.get(level) or logging.getLevelName(level).lower(), name, msg)
        for key, value in fields.items():
            entry[key] = _masked(value)
        try:
            text = formatter.render(entry) + self.terminator
            with self.lock or contextlib.nullcontext():
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # no loop on this thread: nothing marks an iteration's end
                    self._write(text)
                    return True
                if self._queued_on is not loop:  # none queued, or on a loop that may never run it
                    loop.call_soon(self.write_held)
                    self._queued_on = loop
                self._held.append(text)
        except Exception:  # noqa: BLE001 - the record path reports it through handleError, as ever
            return False
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
            with self.lock or contextlib.nullcontext():
                self._write(text)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - as StreamHandler.emit
            self.handleError(record)

    def flush(self) -> None:
        self.write_held()
        super().flush()

    def _write(self, text: str) -> None:
        """Write what is held, then ``text``, in one write (called with the lock held)."""
        if self._held:
            # Taken in one step: a signal handler logging during the write finds nothing held to repeat.
            held, self._held = self._held, []
            text = "".join(held) + text
        self.stream.write(text)
        self.stream.flush()

    def write_held(self) -> None:
        """Write the lines held for the loop's next iteration, if any."""
        with self.lock or contextlib.nullcontext():
            self._queued_on = None
            if self._held:
                try:
                    self._write("")
                except Exception:  # noqa: BLE001 - reported as a record's failed write is, then dropped
                    self._held = []
                    self.handleError(logging.makeLogRecord({"msg": "held log lines could not be written"}))

    def forget_held(self) -> None:
        """In a forked child: the lines held were the parent's, which writes them."""
        self._held = []
        self._queued_on = None


_HANDLERS: weakref.WeakSet[LineHandler] = weakref.WeakSet()


_FINALIZED_IN: list[int] = []  # the process that registered the exit finalizer


def _write_every_held() -> None:
    for handler in list(_HANDLERS):
        handler.write_held()


def _forget_every_held() -> None:
    for handler in list(_HANDLERS):
        handler.forget_held()


def _finalize_in_this_process() -> None:
    """A multiprocessing child (Granian's worker) leaves by ``os._exit`` after running the finalizers
    registered in it, without ``logging.shutdown``: one registered here writes what is held."""
    if _FINALIZED_IN[-1:] != [os.getpid()]:
        multiprocessing.util.Finalize(None, _write_every_held, exitpriority=100)
        _FINALIZED_IN.append(os.getpid())


# A child forked with lines held would write them a second time (a thread may add one after the parent's
# write and before the fork: the child forgets it, the parent writes it).
os.register_at_fork(before=_write_every_held, after_in_child=_forget_every_held)


_LEVEL_NAMES = {level: logging.getLevelName(level).lower() for level in (10, 20, 30, 40, 50)}


def _formatter(fmt: str) -> JsonFormatter | ConsoleFormatter:
    return JsonFormatter() if fmt == "json" else ConsoleFormatter()


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    handler = LineHandler(sys.stderr, _formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, pinned in DRIVER_LEVELS.items():
        logging.getLogger(name).setLevel(pinned)
    _lean_records()


def _lean_records() -> None:
    # No formatter of ours prints a record's thread or process names, which every record otherwise looks up.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def dict_config(level: str = "info", fmt: str = "json") -> dict[str, object]:
    """The same lines for Granian's own loggers (server and access) as for the application."""
    formatter = "py_app.infra.logs.JsonFormatter" if fmt == "json" else "py_app.infra.logs.ConsoleFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"arcana": {"()": formatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "arcana", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "_granian": {"level": level.upper()},
            "granian.access": {"level": level.upper()},
            **{name: {"level": pinned} for name, pinned in DRIVER_LEVELS.items()},
        },
    }
