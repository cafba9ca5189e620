"""The mail port's SMTP adapter (``ARCANA_SMTP_URL``), over the standard library in a thread.

``smtp://user:password@host:587?starttls=true`` or ``smtps://host:465``; without a URL there is no
mailer, and messages wait in the outbox (the relay says so in the log) until one is configured.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

TIMEOUT_SECONDS = 10.0
Renderer = Callable[[str, Mapping[str, Any]], tuple[str, str]]  # (template, params) -> (subject, body)


@dataclass(frozen=True, slots=True)
class Letter:
    """A rendered mail, ready to send."""

    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, letter: Letter) -> None: ...


class MailDelivery:
    """The outbox handler of topic ``mail``: render the message's template, then send it."""

    def __init__(self, mailer: Mailer, render: Renderer) -> None:
        self._mailer = mailer
        self._render = render

    async def __call__(self, payload: Mapping[str, Any]) -> None:
        subject, body = self._render(str(payload["template"]), payload.get("params") or {})
        await self._mailer.send(Letter(str(payload["to"]), subject, body))


class SmtpMailer:
    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("ARCANA_SMTP_URL must look like smtp://host:587 or smtps://host:465")
        self._ssl = parts.scheme == "smtps"
        self._starttls = parse_qs(parts.query).get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        self._host, self._port = parts.hostname, parts.port or (465 if self._ssl else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._sender = sender

    async def send(self, letter: Letter) -> None:
        """Deliver, or raise (the relay retries with back-off)."""
        await asyncio.to_thread(self._send, letter)

    def _send(self, letter: Letter) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self._sender, letter.to, letter.subject
        message.set_content(letter.body)
        context = ssl.create_default_context()
        smtp: smtplib.SMTP = (
            smtplib.SMTP_SSL(self._host, self._port, timeout=TIMEOUT_SECONDS, context=context)
            if self._ssl
            else smtplib.SMTP(self._host, self._port, timeout=TIMEOUT_SECONDS)
        )
        with smtp:
            if self._starttls:
                smtp.starttls(context=context)
            if self._user is not None:
                smtp.login(self._user, self._password or "")
            smtp.send_message(message)
