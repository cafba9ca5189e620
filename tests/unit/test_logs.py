"""The log line itself: its fields, the request id it carries, masked emails, and the format switch."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from py_app.config import SettingsError, load_settings
from py_app.infra import request_id
from py_app.infra.logs import ConsoleFormatter, JsonFormatter, LineHandler, LineLogger, mask_email

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-secret-long-enough-for-production-use-0123456789"


def record(msg: str = "authn_login_fail", **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("arcana.security", logging.INFO, __file__, 1, msg, None, None)
    made.__dict__.update(extra)
    return made


@pytest.mark.req("SRS-137")
@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("alice@example.com", "a***@example.com"),
        ("to Bob.Smith+x@mail.example.org now", "to B***@mail.example.org now"),
        ("two: a@b.io, c@d.io", "two: a***@b.io, c***@d.io"),
        ("no address @ all", "no address @ all"),
    ],
)
def test_an_email_is_masked_to_its_first_letter_and_domain(text: str, masked: str) -> None:
    assert mask_email(text) == masked


@pytest.mark.req("SRS-135", "SRS-136", "SRS-137", "SDD-135")
def test_a_json_line_has_utc_time_level_logger_request_id_and_masked_fields() -> None:
    token = request_id.bind("req-42")
    try:
        line = JsonFormatter().format(record(user_id="u1", email="carol@example.com"))
    finally:
        request_id.unbind(token)
    entry = json.loads(line)
    assert entry["ts"].endswith("Z")
    assert (entry["level"], entry["logger"], entry["msg"]) == ("info", "arcana.security", "authn_login_fail")
    assert (entry["request_id"], entry["user_id"], entry["email"]) == ("req-42", "u1", "c***@example.com")
    assert "carol" not in line


@pytest.mark.req("SRS-135", "SDD-123")
def test_a_json_line_holds_any_value_it_is_given_as_its_text_a_lone_surrogate_included() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque-7"

    when = datetime(2026, 12, 2, 13, 45, 1, tzinfo=UTC)
    entry = json.loads(JsonFormatter().format(record(thing=Opaque(), at=when, ids={3})))
    assert (entry["thing"], entry["at"], entry["ids"]) == ("opaque-7", "2026-12-02T13:45:01Z", [3])
    odd = json.loads(JsonFormatter().format(record(path="/x\udc80y")))  # UTF-8 cannot hold it; JSON escapes it
    assert (odd["msg"], odd["path"]) == ("authn_login_fail", "/x\udc80y")


@pytest.mark.req("SRS-136")
def test_outside_a_request_a_line_has_no_request_id() -> None:
    assert "request_id" not in json.loads(JsonFormatter().format(record()))


@pytest.mark.req("SRS-135")
def test_a_console_line_reads_as_time_level_logger_message_then_fields() -> None:
    token = request_id.bind("req-7")
    try:
        line = ConsoleFormatter().format(record("request", status=200, route="/health/live"))
    finally:
        request_id.unbind(token)
    clock, level, logger, message, *fields = line.split()
    assert (len(clock), level, logger, message) == (12, "info", "arcana.security", "request")
    assert fields == ["request_id=req-7", "status=200", "route=/health/live"]


@pytest.mark.req("SRS-135")
@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "console"),
        ({"ARCANA_ENV": "production", "ARCANA_JWT_SECRET": SECRET}, "json"),
        ({"ARCANA_LOG_FORMAT": "json"}, "json"),
        ({"ARCANA_ENV": "production", "ARCANA_JWT_SECRET": SECRET, "ARCANA_LOG_FORMAT": "console"}, "console"),
    ],
)
def test_the_log_format_is_console_in_development_and_json_in_production(
    environ: dict[str, str], expected: str
) -> None:
    assert load_settings(environ).effective_log_format == expected


@pytest.mark.req("SRS-135")
def test_an_unknown_log_format_stops_the_start_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="ARCANA_LOG_FORMAT"):
        load_settings({"ARCANA_LOG_FORMAT": "xml"})


@pytest.mark.req("SRS-138")
def test_an_otel_endpoint_must_be_an_http_url() -> None:
    with pytest.raises(SettingsError, match="ARCANA_OTEL_ENDPOINT"):
        load_settings({"ARCANA_OTEL_ENDPOINT": "collector:4318"})


@pytest.mark.req("SRS-136")
@pytest.mark.parametrize(
    "offered",
    ["0af7651916cd43dd8448eb211c80319c", "lb-01/2024:17.5_x+y=z", "x" * request_id.MAX_LENGTH],
)
def test_a_safe_request_id_is_kept(offered: str) -> None:
    assert request_id.accept(offered) == offered


@pytest.mark.req("SRS-136")
@pytest.mark.parametrize(
    "offered", [None, "", "two words", 'quote"d', "new\nline", "x" * (request_id.MAX_LENGTH + 1), "snow☃man"]
)
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(offered: str | None) -> None:
    fresh = request_id.accept(offered)
    assert re.fullmatch(r"[0-9a-f]{32}", fresh), fresh
    assert request_id.accept(offered) != fresh


@pytest.mark.req("SDD-137")
def test_the_tracing_switch_loads_no_sdk_when_it_is_off() -> None:
    from py_app.infra import tracing

    assert not tracing.enabled()
    assert tracing.outgoing_metadata() == []
    with tracing.server_span("GET /x", lambda: pytest.fail("traceparent read while tracing is off")) as span:
        assert span is None
    assert "py_app.infra._otel" not in sys.modules


@pytest.mark.req("SRS-135", "SDD-123")
def test_the_request_line_logger_writes_the_same_line_as_logger_log_with_extra() -> None:
    fields = {"method": "GET", "route": "/api/v1/users/{user_id:str}", "status": 200, "duration_ms": 1.5}
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    target = logging.getLogger("arcana.test.line")
    keep = Keep()
    target.addHandler(keep)
    target.setLevel(logging.INFO)
    token = request_id.bind("req-9")
    try:
        target.log(logging.INFO, "request", extra=fields)
        LineLogger("arcana.test.line").log(logging.INFO, "request", fields)
        LineLogger("arcana.test.line").log(logging.DEBUG, "request", fields)  # below the level: no line
        plain, lean = (json.loads(JsonFormatter().format(record)) for record in seen)
    finally:
        request_id.unbind(token)
        target.removeHandler(keep)
    assert len(seen) == 2
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry.pop("ts")) for entry in (plain, lean))
    assert (
        plain
        == lean
        == {"level": "info", "logger": "arcana.test.line", "msg": "request", "request_id": "req-9", **fields}
    )


@contextlib.contextmanager
def only_handler(handler: logging.Handler) -> Iterator[None]:
    """``handler`` as the root's one handler (pytest's own capture handlers set aside), as in the service."""
    root = logging.getLogger()
    kept, level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers[:] = kept
        root.setLevel(level)


@pytest.mark.req("SRS-135", "SDD-123")
@pytest.mark.parametrize("formatter", [JsonFormatter, ConsoleFormatter])
def test_the_request_line_written_from_its_fields_is_the_line_its_record_makes(
    formatter: type[JsonFormatter | ConsoleFormatter],
) -> None:
    fields = {"method": "GET", "route": "/api/v1/users/{user_id:str}", "status": 200, "who": "ann@example.com"}
    stream = io.StringIO()
    token = request_id.bind("req-7")
    try:
        with only_handler(LineHandler(stream, formatter())):
            logging.getLogger("arcana.test.fast").log(logging.INFO, "request", extra=fields)
            LineLogger("arcana.test.fast").log(logging.INFO, "request", fields)
            LineLogger("arcana.test.fast").log(logging.DEBUG, "request", fields)  # below the level: no line
    finally:
        request_id.unbind(token)
    plain, lean = stream.getvalue().splitlines()
    time_of = (lambda line: json.loads(line).pop("ts")) if formatter is JsonFormatter else (lambda line: line[:12])
    assert re.fullmatch(r"(\d{4}-\d\d-\d\dT)?\d\d:\d\d:\d\d\.\d{3}Z?", time_of(lean))
    assert lean.replace(time_of(lean), "") == plain.replace(time_of(plain), "")
    assert "req-7" in lean
    assert "a***@example.com" in lean
    assert "ann@" not in lean


@pytest.mark.req("SRS-135", "SDD-123")
def test_a_request_line_reaches_every_handler_and_filter_on_its_way_when_there_are_others() -> None:
    stream = io.StringIO()
    line_handler = LineHandler(stream, JsonFormatter())
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    target = logging.getLogger("arcana.test.others")
    with only_handler(line_handler):
        target.addHandler(keep)
        try:
            LineLogger("arcana.test.others").log(logging.INFO, "request", {"status": 200})
            line_handler.addFilter(lambda record: record.__dict__.get("status") != 404)
            LineLogger("arcana.test.others").log(logging.INFO, "request", {"status": 404})
        finally:
            target.removeHandler(keep)
    assert [record.__dict__["status"] for record in seen] == [200, 404]
    assert [json.loads(line)["status"] for line in stream.getvalue().splitlines()] == [200]


@pytest.mark.req("SRS-135", "SDD-123")
def test_a_request_line_takes_the_formatter_its_handler_has_now() -> None:
    stream = io.StringIO()
    line_handler = LineHandler(stream, JsonFormatter())
    line_handler.setFormatter(logging.Formatter("%(levelname)s %(message)s status=%(status)s"))
    with only_handler(line_handler):
        LineLogger("arcana.test.plain").log(logging.INFO, "request", {"status": 200})
    assert stream.getvalue() == "INFO request status=200\n"


@pytest.mark.req("SRS-135", "SDD-123")
@pytest.mark.parametrize(
    "created", [0.0, 1764600000.0, 1764600000.9996, 1764600000.9999996, 1764603599.5, 1764633600.001]
)
def test_a_line_s_time_is_utc_iso_to_the_millisecond(created: float) -> None:
    made = record()
    made.created = created
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert json.loads(JsonFormatter().format(made))["ts"] == expected


class Writes(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


@pytest.mark.req("SDD-273")
def test_the_request_lines_of_one_loop_iteration_go_out_in_one_write_at_the_next_and_a_record_writes_them_first() -> (
    None
):
    stream = Writes()
    handler = LineHandler(stream, JsonFormatter())
    seen: list[list[str]] = []

    async def serve() -> None:
        for status in (200, 201, 202):
            LineLogger("arcana.test.held").log(logging.INFO, "request", {"status": status})
        seen.append(list(stream.calls))  # nothing written yet: held for the next iteration
        await asyncio.sleep(0)
        seen.append(list(stream.calls))
        LineLogger("arcana.test.held").log(logging.INFO, "request", {"status": 203})
        logging.getLogger("arcana.test.held").warning("security")  # a record: the held line first, then it
        seen.append(list(stream.calls))

    with only_handler(handler):
        asyncio.run(serve())
    assert seen[0] == []
    assert len(seen[1]) == 1
    assert [json.loads(line)["status"] for line in seen[1][0].splitlines()] == [200, 201, 202]
    assert len(seen[2]) == 2
    assert [json.loads(line).get("status", json.loads(line)["msg"]) for line in seen[2][1].splitlines()] == [
        203,
        "security",
    ]


@pytest.mark.req("SDD-273")
def test_held_lines_are_written_when_the_handler_is_flushed_and_at_once_off_a_loop() -> None:
    stream = Writes()
    handler = LineHandler(stream, JsonFormatter())

    async def log_then_stop() -> None:
        LineLogger("arcana.test.flush").log(logging.INFO, "request", {"status": 200})
        asyncio.get_running_loop().stop()  # the iteration that would write it never comes

    with only_handler(handler):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(log_then_stop())
        except RuntimeError:  # stopped before the coroutine's result was taken
            pass
        finally:
            loop.close()
        assert stream.calls == []
        handler.flush()
        assert [json.loads(line)["status"] for line in stream.getvalue().splitlines()] == [200]
        LineLogger("arcana.test.flush").log(logging.INFO, "request", {"status": 201})  # no loop here
        assert json.loads(stream.calls[-1])["status"] == 201


@pytest.mark.req("SDD-273")
def test_a_multiprocessing_child_writes_its_held_lines_as_it_exits(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, logging, multiprocessing, sys
        from py_app.infra.logs import LineLogger, configure_logging

        def child():
            configure_logging("info", "json")

            async def last_words():
                LineLogger("arcana.test.child").log(logging.INFO, "request", {"status": 299})
                asyncio.get_running_loop().stop()

            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(last_words())
            except RuntimeError:
                pass

        if __name__ == "__main__":
            process = multiprocessing.get_context("fork").Process(target=child)
            process.start()
            process.join()
            sys.exit(process.exitcode)
        """
    )
    path = tmp_path / "child.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's py_app, whatever the environment installed
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["status"] for line in done.stderr.splitlines()] == [299]


@pytest.mark.req("SDD-273")
def test_a_loop_closed_with_the_write_still_queued_does_not_stop_the_next_loop_writing() -> None:
    stream = Writes()
    handler = LineHandler(stream, JsonFormatter())

    async def log_then_stop(status: int) -> None:
        LineLogger("arcana.test.closed").log(logging.INFO, "request", {"status": status})
        asyncio.get_running_loop().stop()

    async def log(status: int) -> None:
        LineLogger("arcana.test.closed").log(logging.INFO, "request", {"status": status})

    with only_handler(handler):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(log_then_stop(200))
        except RuntimeError:  # stopped before the coroutine's result was taken
            pass
        finally:
            loop.close()  # the queued write is dropped with the loop
        assert stream.calls == []
        asyncio.run(log(201))
    assert [json.loads(line)["status"] for line in stream.getvalue().splitlines()] == [200, 201]
