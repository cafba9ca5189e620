"""Password reset and email verification: the recovery service over in-memory stores."""

from __future__ import annotations

import pytest

from py_app.auth.mail import render
from py_app.auth.models import ClientInfo, TokenPurpose, account_token, token_digest
from py_app.core.effects import SecurityEvent
from py_app.core.errors import InvalidInput, Unauthenticated
from py_app.core.identity import Principal
from py_app.users.models import NewUser, Status, UserChanges
from tests.unit.test_auth_service import PASSWORD, Rig

CLIENT = ClientInfo("pytest", "198.51.100.4")
NEW = "a brand new passphrase"
KEY = b"r" * 32  # the Rig's recovery key


def mailed(rig: Rig, to: str, purpose: TokenPurpose) -> list[str]:
    """The tokens the outbox holds mails for, as the relay would render them."""
    tokens = []
    for message in rig.db.outbox:
        if message.topic == "mail" and message.payload["to"] == to and message.payload["template"] == purpose.value:
            _, body = render(purpose.value, message.payload["params"], KEY, {})
            tokens.append(account_token(KEY, str(message.payload["params"]["token_id"])))
            assert tokens[-1] in body
    return tokens


async def issue_reset(rig: Rig, email: str) -> str:
    """Ask (a minute after any earlier ask: one a minute per address), then run what the relay runs for
    the request; the newest mailed token."""
    rig.clock.advance(61)
    await rig.recovery.forgot_password(email, CLIENT)
    request = rig.db.outbox[-1]
    assert request.topic == "auth.password_reset_requested"
    await rig.recovery.issue_password_reset(str(request.payload["email"]), str(request.payload["ip"]))
    return mailed(rig, email, TokenPurpose.PASSWORD_RESET)[-1]


@pytest.fixture
async def rig() -> Rig:
    made = Rig()
    await made.auth.register(NewUser("ann", "ann@example.com", PASSWORD), CLIENT)
    return made


@pytest.mark.req("SRS-100")
async def test_forgot_password_does_the_same_for_known_and_unknown_addresses(rig: Rig) -> None:
    before = len(rig.db.outbox)
    await rig.recovery.forgot_password("ANN@example.com", CLIENT)
    await rig.recovery.forgot_password("nobody@example.com", CLIENT)
    known, unknown = rig.db.outbox[before:]
    assert (known.topic, unknown.topic) == ("auth.password_reset_requested", "auth.password_reset_requested")
    assert (dict(known.payload), dict(unknown.payload)) == (
        {"email": "ann@example.com", "ip": CLIENT.ip},
        {"email": "nobody@example.com", "ip": CLIENT.ip},
    )
    await rig.recovery.issue_password_reset("nobody@example.com", CLIENT.ip)
    assert len(rig.db.outbox) == before + 2  # nothing to mail for an unknown address
    with pytest.raises(InvalidInput) as caught:
        await rig.recovery.forgot_password("not an address", CLIENT)
    assert [error.field for error in caught.value.errors] == ["email"]


@pytest.mark.req("SRS-100")
async def test_a_reset_sets_the_password_ends_every_session_and_works_once(rig: Rig) -> None:
    sessions = [(await rig.auth.login("ann", PASSWORD, CLIENT)).tokens.access_token for _ in range(2)]
    token = await issue_reset(rig, "ann@example.com")
    assert len(token) >= 43  # 256 bits, base64url
    [stored] = [t for t in rig.db.account_tokens.values() if t.purpose is TokenPurpose.PASSWORD_RESET]
    assert stored.digest == token_digest(token)
    assert token not in repr(rig.db)  # neither the token store nor the outbox holds it
    await rig.recovery.reset_password(token, NEW, CLIENT)
    for access in sessions:
        with pytest.raises(Unauthenticated):
            await rig.auth.authenticate(access)
    assert (await rig.auth.login("ann", NEW, CLIENT)).user.username == "ann"
    with pytest.raises(InvalidInput) as caught:
        await rig.recovery.reset_password(token, "yet another passphrase", CLIENT)
    assert [error.field for error in caught.value.errors] == ["token"]
    events = [event.event for event in rig.db.audit]
    assert events.count(SecurityEvent.PASSWORD_RESET_ISSUED) == 1
    assert events.count(SecurityEvent.PASSWORD_RESET) == 1


@pytest.mark.req("SRS-100")
async def test_a_reset_token_dies_with_a_newer_one_a_password_change_or_its_half_hour(rig: Rig) -> None:
    older = await issue_reset(rig, "ann@example.com")
    newer = await issue_reset(rig, "ann@example.com")
    with pytest.raises(InvalidInput):
        await rig.recovery.reset_password(older, NEW, CLIENT)
    me = await rig.auth.authenticate((await rig.auth.login("ann", PASSWORD, CLIENT)).tokens.access_token)
    await rig.users.change_password(me, me.user_id, PASSWORD, "changed the usual way")
    with pytest.raises(InvalidInput):
        await rig.recovery.reset_password(newer, NEW, CLIENT)
    late = await issue_reset(rig, "ann@example.com")
    rig.clock.advance(30 * 60)
    with pytest.raises(InvalidInput):
        await rig.recovery.reset_password(late, NEW, CLIENT)


@pytest.mark.req("SRS-100")
async def test_the_new_password_follows_the_policy_and_suspended_accounts_get_no_mail(rig: Rig) -> None:
    token = await issue_reset(rig, "ann@example.com")
    with pytest.raises(InvalidInput) as caught:
        await rig.recovery.reset_password(token, "ann-is-me-again", CLIENT)
    assert [error.field for error in caught.value.errors] == ["new_password"]
    await rig.recovery.reset_password(token, NEW, CLIENT)  # still usable: the refused try spent nothing
    user = next(iter(rig.db.users.values()))
    await rig.users.set_status(Principal("admin", "s", "admin"), user.id, Status.SUSPENDED)
    mails = len(mailed(rig, "ann@example.com", TokenPurpose.PASSWORD_RESET))
    await rig.recovery.issue_password_reset("ann@example.com", CLIENT.ip)
    assert len(mailed(rig, "ann@example.com", TokenPurpose.PASSWORD_RESET)) == mails


@pytest.mark.req("SRS-101")
async def test_registration_mails_a_verification_token_that_verifies_once(rig: Rig) -> None:
    [token] = mailed(rig, "ann@example.com", TokenPurpose.EMAIL_VERIFY)
    user = await rig.recovery.verify_email(token, CLIENT)
    assert user.is_verified
    with pytest.raises(InvalidInput) as caught:
        await rig.recovery.verify_email(token, CLIENT)
    assert [error.field for error in caught.value.errors] == ["token"]
    await rig.recovery.issue_verification("ann@example.com", CLIENT.ip)  # verified: nothing more to send
    assert len(mailed(rig, "ann@example.com", TokenPurpose.EMAIL_VERIFY)) == 1


@pytest.mark.req("SRS-101")
async def test_a_verification_proves_only_the_address_it_was_sent_to_within_a_day(rig: Rig) -> None:
    [first] = mailed(rig, "ann@example.com", TokenPurpose.EMAIL_VERIFY)
    user = next(iter(rig.db.users.values()))
    me = Principal(user.id, "s", "user")
    await rig.users.update(me, user.id, UserChanges(email="ann.new@example.com"))
    with pytest.raises(InvalidInput):
        await rig.recovery.verify_email(first, CLIENT)  # sent to the old address
    await rig.recovery.resend_verification("ann.new@example.com", CLIENT)
    request = rig.db.outbox[-1]
    await rig.recovery.issue_verification(str(request.payload["email"]), CLIENT.ip)
    [fresh] = mailed(rig, "ann.new@example.com", TokenPurpose.EMAIL_VERIFY)
    rig.clock.advance(24 * 3600)
    with pytest.raises(InvalidInput):
        await rig.recovery.verify_email(fresh, CLIENT)
