"""The mails the auth domain sends, rendered by the relay from the outbox's ids (never from secrets).

A one-time token is derived from its id under the server key here, at the last moment, so it exists
in clear only in the mail itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from py_app.auth.models import TOKEN_LIFETIMES, TokenPurpose, account_token


def render(template: str, params: Mapping[str, Any], key: bytes, links: Mapping[str, str]) -> tuple[str, str]:
    """(subject, body) of mail ``template``; ``links`` may hold a URL per purpose with a ``{token}`` slot."""
    purpose = TokenPurpose(template)
    token = account_token(key, str(params["token_id"]))
    minutes = TOKEN_LIFETIMES[purpose] // 60
    link = links.get(purpose.value, "")
    where = f"\n\nOr open: {link.format(token=token)}" if link else ""
    name = str(params.get("username", ""))
    if purpose is TokenPurpose.PASSWORD_RESET:
        return (
            "Reset your password",
            f"Hello {name},\n\nsomeone asked to reset the password of your account. If it was you, use this "
            f"code within {minutes} minutes (POST /api/v1/auth/password/reset):\n\n    {token}{where}\n\n"
            "If it was not you, ignore this mail: your password stays as it is.\n",
        )
    return (
        "Confirm your email address",
        f"Hello {name},\n\nplease confirm this address within {minutes // 60} hours with this code "
        f"(POST /api/v1/auth/email/verify):\n\n    {token}{where}\n",
    )
