"""Logs on stderr, one line per record: JSON objects (production) or readable lines (development).

Each line carries a UTC timestamp, the level, the logger, the message, the request id of the request being
handled (``infra.request_id``), the ``user_id`` it is for once the edge verified one (``infra.caller``; a
record's own ``user_id``, the subject of a security event, takes its place) and the record's extra fields.
Secrets never reach a log call; an email address, should one arrive as a field, is masked
(``a***@example.com``) on the way out.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
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


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record as the fields of one line, in a stable order: the fixed ones first, then the extras."""
    entry: dict[str, Any] = {
        "ts": _CLOCK.iso(record.created),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": _masked(record.getMessage()),
    }
    current = request_id.current()
    if current is not None:
        entry["request_id"] = current
    who = caller.current()
    if who is not None:
        entry["user_id"] = who.user_id
    for key, value in record.__dict__.items():
        if key not in _STANDARD:
            entry[key] = mask_email(value) if isinstance(value, str) and "@" in value else value
    return entry


class LineLogger:
    """A logger for one fixed line written very often (the per-request line): the same record, handlers and
    level checks as ``logging.Logger.log(level, msg, extra=fields)``, without looking up the caller's file
    and line (no formatter here prints them) or copying ``extra`` key by key."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def log(self, level: int, msg: str, fields: Mapping[str, Any]) -> None:
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        record = logging.LogRecord(logger.name, level, "", 0, msg, None, None)
        record.__dict__.update(fields)
        logger.handle(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = _fields(record)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return _ENCODER.encode(entry).decode()
        except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
            return _FALLBACK.encode(entry)


class ConsoleFormatter(logging.Formatter):
    """For a developer's terminal: ``12:00:01.234 info  arcana.rest request method=GET status=200 …``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _fields(record)
        head = f"{entry.pop('ts')[11:23]} {entry.pop('level'):<7} {entry.pop('logger')} {entry.pop('msg')}"
        tail = " ".join(f"{key}={value}" for key, value in entry.items())
        line = f"{head} {tail}" if tail else head
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else ConsoleFormatter()


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(fmt))
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
