"""Who is calling. Shared by every domain: the auth domain makes it, the others authorise with it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller verified from an access token and a live session."""

    user_id: str
    session_id: str
    role: str
    verified: bool = True  # the account's email is verified
    ip: str = ""  # where this request came from (for the audit log); not part of what is cached

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
