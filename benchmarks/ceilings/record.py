"""The record the ceilings serve: the benchmark user, from the JSON file named by BENCH_RECORD."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2

from py_app._proto.arcana.v1 import common_pb2


def load() -> dict[str, Any]:
    with open(os.environ["BENCH_RECORD"], encoding="utf-8") as handle:
        record: dict[str, Any] = json.load(handle)
    return record


def times(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its times as aware datetimes (the service's types, so encoding costs the same)."""
    return {
        key: datetime.fromisoformat(value) if key.endswith("_at") and value else value for key, value in record.items()
    }


def message(record: dict[str, Any]) -> common_pb2.User:
    """The record as the service's gRPC User message."""
    fields = times(record)
    stamps = {}
    for key in ("created_at", "updated_at", "last_login_at"):
        if fields.get(key) is not None:
            stamp = timestamp_pb2.Timestamp()
            stamp.FromDatetime(fields[key])
            stamps[key] = stamp
    plain = {key: value for key, value in fields.items() if not key.endswith("_at")}
    return common_pb2.User(**plain, **stamps)
