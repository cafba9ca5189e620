"""A real SMTP server process for tests: aiosmtpd with its Maildir handler, on a free port of 127.0.0.1.

Tests read what arrived with ``Sink.messages()``; nothing is mocked between the service and the socket.
"""

from __future__ import annotations

import mailbox
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from tests.conftest import free_port

TOKEN = re.compile(r"^ {4}([A-Za-z0-9_-]{40,})$", re.MULTILINE)


class Sink:
    def __init__(self, folder: Path, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.log = log
        self.folder = folder
        self.port = port
        self.url = f"smtp://127.0.0.1:{port}"
        self.process = process

    def messages(self) -> list[Message]:
        return list(mailbox.Maildir(str(self.folder), create=False))

    def to(self, address: str) -> list[Message]:
        return [message for message in self.messages() if message["To"] == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list[Message]:
        """The mails to ``address``, once at least ``count`` have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        pytest.fail(f"no {count} mail(s) to {address} within {timeout}s; got {len(self.to(address))}")

    def wait_for_subject(self, address: str, subject: str, timeout: float = 20.0) -> Message:
        """The one mail with ``subject`` to ``address``, once it has arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [message for message in self.to(address) if message["Subject"] == subject]
            if found:
                assert len(found) == 1, f"{len(found)} mails {subject!r} to {address}"
                return found[0]
            time.sleep(0.1)
        pytest.fail(
            f"no mail {subject!r} to {address} within {timeout}s; got {[m['Subject'] for m in self.to(address)]}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def token_in(message: Message) -> str:
    """The one-time code of an Arcana mail (the indented line)."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes), message
    found: list[str] = TOKEN.findall(payload.decode())
    assert len(found) == 1, payload
    return found[0]


def start_sink(folder: Path) -> Sink:
    mailbox.Maildir(str(folder), create=True)  # cur/, new/, tmp/
    port = free_port()
    log = folder.parent / f"smtp-{port}.log"
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox"]
    with log.open("wb") as sink:
        process = subprocess.Popen([*command, str(folder)], stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return Sink(folder, port, process, log)
        if process.poll() is not None:
            pytest.fail(f"aiosmtpd exited: {log.read_text(errors='replace')}")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    pytest.fail("aiosmtpd did not listen within 20 s")


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[Sink]:
    sink = start_sink(tmp_path / "maildir")
    try:
        yield sink
    finally:
        sink.stop()
