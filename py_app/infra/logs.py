"""JSON logs on stderr, UTC timestamps, one object per line; secrets never reach a log call."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Database driver loggers print what flows through them, whatever ARCANA_LOG_LEVEL says: aiosqlite logs
# every call with its arguments at debug (statement parameters: argon2 hashes, token digests, emails),
# SQLAlchemy logs statements at info and result rows at debug, asyncmy relays server warnings that can
# quote the values they are about. Pinned here, for the CLI's logging and Granian's alike.
# Alembic narrates every migration context it opens at info: the readiness schema check opens one each
# time it runs.
DRIVER_LEVELS = {"aiosqlite": "WARNING", "sqlalchemy": "WARNING", "asyncmy": "ERROR", "alembic": "WARNING"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, pinned in DRIVER_LEVELS.items():
        logging.getLogger(name).setLevel(pinned)


def dict_config(level: str = "info") -> dict[str, object]:
    """The same JSON lines for Granian's own loggers (server and access) as for the application."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "py_app.infra.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "_granian": {"level": level.upper()},
            "granian.access": {"level": level.upper()},
            **{name: {"level": pinned} for name, pinned in DRIVER_LEVELS.items()},
        },
    }
