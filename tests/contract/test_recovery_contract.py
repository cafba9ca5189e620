"""Password reset, email verification and the audit log: the same outcome over REST and gRPC, with mail
delivered by the server's relay to a real SMTP server process."""

from __future__ import annotations

import asyncio

import pytest

from tests.contract.clients import NEW_PASSWORD, PASSWORD, Client, Tokens, fails, login, ok, register, unique
from tests.contract.conftest import LiveServer, scenario
from tests.support.smtp import token_in

ACCEPTED = {"status": "accepted", "detail": "If an account has this address, a message is on its way."}


async def mailed(server: LiveServer, to: str, subject: str) -> str:
    """The code in the mail with ``subject`` to ``to``, once the relay has delivered it."""
    return token_in(await asyncio.to_thread(server.mail.wait_for_subject, to, subject))


@pytest.mark.req("SRS-100")
@scenario
async def test_a_password_reset_by_mail_works_once_and_ends_every_session(
    client: Client, live_server: LiveServer
) -> None:
    name = unique("forgot")
    made = await register(client, name)
    other = await login(client, name)
    assert ok(await client.forgot_password(f"{name.upper()}@example.com")) == ACCEPTED
    assert ok(await client.forgot_password(f"nobody-{name}@example.com")) == ACCEPTED  # the same answer
    token = await mailed(live_server, f"{name}@example.com", "Reset your password")
    fails(await client.reset_password(token, name + "-and-more"), "invalid", "new_password")  # the policy holds
    assert ok(await client.reset_password(token, NEW_PASSWORD)) is None
    for session in (made, other):
        fails(await client.me(session.access), "unauthenticated")
        fails(await client.refresh(session.refresh), "unauthenticated")
    fails(await client.login(name, PASSWORD), "unauthenticated")
    ok(await client.login(name, NEW_PASSWORD))
    fails(await client.reset_password(token, "yet another passphrase"), "invalid", "token")  # single use
    fails(await client.reset_password("not-a-token-of-ours", NEW_PASSWORD), "invalid", "token")
    fails(await client.forgot_password("not an address"), "invalid", "email")


@pytest.mark.req("SRS-101")
@scenario
async def test_registration_mails_a_verification_code_that_verifies_once(
    client: Client, live_server: LiveServer
) -> None:
    name = unique("verify")
    made = await register(client, name)
    assert ok(await client.me(made.access))["is_verified"] is False
    token = await mailed(live_server, f"{name}@example.com", "Confirm your email address")
    verified = ok(await client.verify_email(token))
    assert (verified["id"], verified["is_verified"]) == (made.id, True)
    assert ok(await client.me(made.access))["is_verified"] is True
    fails(await client.verify_email(token), "invalid", "token")
    assert ok(await client.resend_verification(f"{name}@example.com")) == ACCEPTED
    assert ok(await client.resend_verification(f"nobody-{name}@example.com")) == ACCEPTED


@pytest.mark.req("SRS-106")
@scenario
async def test_admins_read_the_audit_log_filtered_by_user_and_event(client: Client, admin: Tokens) -> None:
    name = unique("audited")
    made = await register(client, name)
    fails(await client.login(name, "a wrong password!"), "unauthenticated")
    ok(await client.set_role(admin.access, made.id, "guest"))
    log = ok(await client.list_audit(admin.access, user_id=made.id))
    events = [item["event"] for item in log["items"]]
    # Newest first; the role change wrote its two records in one transaction, at one instant (by event name).
    assert events[:3] == ["privilege_change", "user_updated", "authn_login_fail"]
    assert {"user_created", "authn_login_success", "user_email_verification_issued"} <= set(events)
    change = next(item for item in log["items"] if item["event"] == "privilege_change")
    assert (change["actor_id"], change["target_id"], change["details"]) == (admin.id, made.id, {"role": "guest"})
    failures = ok(await client.list_audit(admin.access, user_id=made.id, event="authn_login_fail"))
    assert [(item["event"], item["actor_id"], item["details"]) for item in failures["items"]] == [
        ("authn_login_fail", None, {"reason": "credentials_or_status"})
    ]
    fails(await client.list_audit(made.access), "forbidden")
