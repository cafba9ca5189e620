"""The JSON log lines of a captured output (``ARCANA_LOG_FORMAT=json``), parsed: checks read fields, not text,
so a change in how a line is spaced cannot turn a "nothing at error level" check into one that always passes."""

from __future__ import annotations

import json
from typing import Any


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of ``output`` that is a JSON object, in order; other lines (a traceback, a tool's text) skipped."""
    entries = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def at_levels(output: str, *levels: str) -> list[dict[str, Any]]:
    """The parsed lines at any of ``levels``; fails when ``output`` holds no JSON line at all, so a run whose
    log format changed cannot pass as a quiet one."""
    entries = json_lines(output)
    assert entries, f"no JSON log line in the output: {output[-2000:]}"
    return [entry for entry in entries if entry.get("level") in levels]
