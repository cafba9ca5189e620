"""What a state change causes besides itself: messages for the outbox and records for the audit log.

A store method that changes state takes an ``Effects`` value and writes it in the same transaction as
the change: a message is never sent for a change that rolled back, and none is lost after a commit
(the transactional outbox); an audit record exists exactly when the change it records does. Values
only, never secrets: a message that must carry a token carries the token's id, and the relay derives
the token from it under a server key when it renders the mail.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class SecurityEvent(StrEnum):
    """Audit and security-log event names (the OWASP logging vocabulary, as issue 10 lists them)."""

    LOGIN_SUCCESS = "authn_login_success"
    LOGIN_FAIL = "authn_login_fail"
    LOGIN_LOCK = "authn_login_lock"
    TOKEN_REUSE = "authn_token_reuse"  # noqa: S105 - an event name
    TOKEN_REVOKED = "authn_token_revoked"  # noqa: S105 - an event name
    PASSWORD_CHANGE = "authn_password_change"  # noqa: S105 - an event name
    PASSWORD_RESET = "authn_password_reset"  # noqa: S105 - an event name
    PASSWORD_RESET_ISSUED = "authn_password_reset_issued"  # noqa: S105 - an event name
    EMAIL_VERIFIED = "user_email_verified"
    EMAIL_VERIFICATION_ISSUED = "user_email_verification_issued"
    USER_CREATED = "user_created"
    USER_UPDATED = "user_updated"
    PRIVILEGE_CHANGE = "privilege_change"
    USER_DELETED = "user_deleted"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message for the relay: ``topic`` says who handles it (``mail``, ``auth.password_reset_requested`` ...)."""

    topic: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Seconds before the relay may take it: a message its writer delivers at once (and marks delivered)
    # is left to the relay only when that delivery fails.
    not_before: float = 0.0


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One security event, named with the OWASP logging vocabulary; never a password, token or hash."""

    event: str
    at: datetime
    actor_id: str | None = None
    target_id: str | None = None
    ip: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True, slots=True)
class Effects:
    messages: tuple[OutboxMessage, ...] = ()
    audit: tuple[AuditEvent, ...] = ()

    def __add__(self, other: Effects) -> Effects:
        return Effects(self.messages + other.messages, self.audit + other.audit)


NO_EFFECTS = Effects()


def audited(event: AuditEvent) -> Effects:
    return Effects(audit=(event,))


def mail(to: str, template: str, **params: Any) -> OutboxMessage:
    """A mail for the relay to render (``template``) and send; ``params`` hold ids, never secrets."""
    return OutboxMessage("mail", {"to": to, "template": template, "params": params})
