from __future__ import annotations

from dataclasses import replace

import pytest

from py_app.auth.models import ClientInfo, SessionRules, SessionState, token_digest
from py_app.auth.services import (
    BAD_CREDENTIALS,
    AuthLimits,
    AuthService,
    LoginPolicies,
    LoginThrottle,
    RecoveryLimits,
    RecoveryService,
)
from py_app.core.errors import EmailUnverified, InvalidInput, PermissionDenied, Unauthenticated
from py_app.core.identity import Principal
from py_app.core.limits import Limiter, Policy
from py_app.core.ports import Metrics, PasswordHasher
from py_app.infra.cache import InProcessSessionCache
from py_app.infra.counters import InProcessCounters
from py_app.users.models import MAX_TOKEN, NewUser, Role, Status, UserChanges
from py_app.users.services import UserService
from tests.fakes import (
    Database,
    FakeTokens,
    FixedClock,
    InMemoryAccountTokens,
    InMemoryAudit,
    InMemoryOutbox,
    InMemorySessionStore,
    InMemoryUserStore,
    PlainHasher,
)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


CLIENT = ClientInfo(user_agent="pytest", ip="127.0.0.1")
PASSWORD = "correct horse battery"


class CountingHasher(PlainHasher):
    def __init__(self) -> None:
        self.verified: list[str] = []
        self.hashes = 0

    async def verify(self, encoded: str, password: str) -> bool:
        self.verified.append(encoded)
        return await super().verify(encoded, password)

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return "v2:" + await super().hash(password)

    def needs_rehash(self, encoded: str) -> bool:
        return not encoded.startswith("v2:")


class Rig:
    """The two services over in-memory stores, wired as the composition root wires them."""

    def __init__(
        self,
        grace: int = 10,
        *,
        hasher: PasswordHasher | None = None,
        rules: SessionRules | None = None,
        cache_ttl: float = 60,
        sessions: InMemorySessionStore | None = None,
        limits: bool = True,
        require_verified: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = sessions.db if sessions else Database()
        self.clock = FixedClock()
        self.hasher = hasher or PlainHasher()
        self.cache = InProcessSessionCache(ttl=cache_ttl)
        self.limiter = Limiter(InProcessCounters(), self.clock, enabled=limits, metrics=metrics)
        policy = Policy.parse
        accounts = InMemoryUserStore(self.db)
        self.users = UserService(accounts, self.hasher, self.clock, self.cache)
        self.recovery = RecoveryService(
            limiter=self.limiter,
            limits=RecoveryLimits(
                forgot_account=policy("forgot_account", "1/60,5/3600"),
                forgot_address=policy("forgot_address", "20/3600"),
                resend_account=policy("resend_account", "1/60,5/3600"),
                resend_address=policy("resend_address", "20/3600"),
            ),
            tokens=InMemoryAccountTokens(self.db),
            accounts=accounts,
            outbox=InMemoryOutbox(self.db),
            hasher=self.hasher,
            cache=self.cache,
            clock=self.clock,
            key=b"r" * 32,
        )
        self.auth = AuthService(
            sessions=sessions or InMemorySessionStore(self.db),
            accounts=accounts,
            users=self.users,
            recovery=self.recovery,
            audit=InMemoryAudit(self.db),
            hasher=self.hasher,
            tokens=FakeTokens(),
            cache=self.cache,
            clock=self.clock,
            rules=rules or SessionRules(idle_seconds=3600, absolute_seconds=7200, reuse_grace_seconds=grace),
            refresh_key=b"k" * 32,
            throttle=LoginThrottle(
                self.limiter,
                LoginPolicies(policy("login_account", "5/900"), policy("login_address", "20/60")),
                metrics,
            ),
            limiter=self.limiter,
            limits=AuthLimits(register=policy("register", "100/3600"), refresh=policy("refresh", "60/60")),
            require_verified=require_verified,
            metrics=metrics,
        )


@pytest.fixture
def rig() -> Rig:
    return Rig()


async def register(rig: Rig, name: str = "alice") -> tuple[str, str, str]:
    result = await rig.auth.register(NewUser(name, f"{name}@example.com", PASSWORD), CLIENT)
    return result.user.id, result.tokens.access_token, result.tokens.refresh_token


@pytest.mark.req("SRS-041")
async def test_login_failures_are_indistinguishable(rig: Rig) -> None:
    user_id, _, _ = await register(rig)
    messages = []
    for login, password in [("alice", "wrong password!"), ("nobody", PASSWORD)]:
        with pytest.raises(Unauthenticated) as caught:
            await rig.auth.login(login, password, CLIENT)
        messages.append(caught.value.message)
    admin = Principal("admin-id", "s", "admin")
    await rig.users.set_status(admin, user_id, Status.SUSPENDED)
    with pytest.raises(Unauthenticated) as caught:
        await rig.auth.login("alice", PASSWORD, CLIENT)
    messages.append(caught.value.message)
    assert messages == [BAD_CREDENTIALS] * 3


@pytest.mark.req("SRS-041")
async def test_unknown_users_cost_a_hash_verification_too() -> None:
    hasher = CountingHasher()
    rig = Rig(hasher=hasher)  # the same service, watching its hasher
    with pytest.raises(Unauthenticated):
        await rig.auth.login("ghost@example.com", PASSWORD, CLIENT)
    assert len(hasher.verified) == 1


@pytest.mark.req("SRS-053")
async def test_login_rehashes_when_parameters_changed() -> None:
    rig = Rig()
    user_id, _, _ = await register(rig)
    rehashing = Rig(hasher=CountingHasher(), sessions=InMemorySessionStore(rig.db))  # same data, new parameters
    await rehashing.auth.login("ALICE@example.com", PASSWORD, CLIENT)
    stored = rig.db.users[user_id]
    assert stored.password_hash == f"v2:plain${PASSWORD}"
    assert stored.last_login_at == rig.clock.now()


@pytest.mark.req("SRS-042")
async def test_refresh_rotates_and_the_old_token_yields_nothing_but_its_one_child(rig: Rig) -> None:
    _, _, first = await register(rig)
    rotated = await rig.auth.refresh(first, CLIENT)
    assert rotated.tokens.refresh_token != first
    again = await rig.auth.refresh(first, CLIENT)  # within the grace: the same child, never a second family
    assert again.tokens.refresh_token == rotated.tokens.refresh_token
    following = await rig.auth.refresh(rotated.tokens.refresh_token, CLIENT)
    assert following.user.username == "alice"
    with pytest.raises(Unauthenticated):
        await rig.auth.refresh(first, CLIENT)  # its child is spent now: reuse


@pytest.mark.req("SRS-043")
async def test_reuse_after_the_grace_window_revokes_the_family(rig: Rig) -> None:
    _, _, first = await register(rig)
    second = (await rig.auth.refresh(first, CLIENT)).tokens
    rig.clock.advance(11)
    with pytest.raises(Unauthenticated):
        await rig.auth.refresh(first, CLIENT)
    with pytest.raises(Unauthenticated):
        await rig.auth.refresh(second.refresh_token, CLIENT)
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate(second.access_token)


@pytest.mark.req("SRS-043", "SRS-170")
async def test_a_second_presentation_within_the_grace_window_gets_the_same_child(rig: Rig) -> None:
    _, _, first = await register(rig)
    winner = (await rig.auth.refresh(first, CLIENT)).tokens
    rig.clock.advance(5)
    second_tab = (await rig.auth.refresh(first, CLIENT)).tokens
    assert second_tab.refresh_token == winner.refresh_token  # one family, one child
    assert second_tab.access_token != winner.access_token  # a fresh access token for the same session
    for tab in (winner, second_tab):
        principal = await rig.auth.authenticate(tab.access_token)
        assert principal.session_id == (await rig.auth.authenticate(winner.access_token)).session_id
    assert (await rig.auth.refresh(winner.refresh_token, CLIENT)).tokens.refresh_token


@pytest.mark.req("SRS-043", "SRS-170")
async def test_an_older_generation_is_reuse_even_within_the_grace_window(rig: Rig) -> None:
    _, _, first = await register(rig)
    child = (await rig.auth.refresh(first, CLIENT)).tokens
    grandchild = (await rig.auth.refresh(child.refresh_token, CLIENT)).tokens
    rig.clock.advance(1)
    with pytest.raises(Unauthenticated):
        await rig.auth.refresh(first, CLIENT)  # its child is spent: this token is two generations old
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate(grandchild.access_token)  # the session ended
    with pytest.raises(Unauthenticated):
        await rig.auth.refresh(grandchild.refresh_token, CLIENT)


@pytest.mark.req("SRS-053")
async def test_refresh_tokens_are_stored_only_as_digests(rig: Rig) -> None:
    _, _, refresh = await register(rig)
    assert refresh not in rig.db.tokens
    assert token_digest(refresh) in rig.db.tokens
    assert len(refresh) >= 43  # 256 bits, base64url


@pytest.mark.req("SRS-043")
async def test_idle_and_absolute_expiry_end_refresh(rig: Rig) -> None:
    _, _, refresh = await register(rig)
    rig.clock.advance(3601)
    with pytest.raises(Unauthenticated):
        await rig.auth.refresh(refresh, CLIENT)


@pytest.mark.req("SRS-048")
async def test_password_change_ends_the_other_sessions_only(rig: Rig) -> None:
    user_id, here, _ = await register(rig)
    other = (await rig.auth.login("alice", PASSWORD, CLIENT)).tokens
    me = await rig.auth.authenticate(here)
    with pytest.raises(InvalidInput) as caught:
        await rig.users.change_password(me, user_id, "not my password", "a brand new passphrase")
    assert caught.value.errors[0].field == "current_password"
    await rig.users.change_password(me, user_id, PASSWORD, "a brand new passphrase")
    assert (await rig.auth.authenticate(here)).user_id == user_id
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate(other.access_token)
    with pytest.raises(Unauthenticated):
        await rig.auth.login("alice", PASSWORD, CLIENT)
    assert (await rig.auth.login("alice", "a brand new passphrase", CLIENT)).user.id == user_id


@pytest.mark.req("SRS-049")
async def test_a_role_change_applies_from_the_next_request_despite_the_cache(rig: Rig) -> None:
    user_id, access, _ = await register(rig)
    assert (await rig.auth.authenticate(access)).role == "user"  # now cached
    await rig.users.set_role(Principal("admin-id", "s", "admin"), user_id, Role.ADMIN)
    assert (await rig.auth.authenticate(access)).role == "admin"


@pytest.mark.req("SRS-049")
async def test_suspension_ends_sessions_despite_the_cache(rig: Rig) -> None:
    user_id, access, refresh = await register(rig)
    await rig.auth.authenticate(access)
    await rig.users.set_status(Principal("admin-id", "s", "admin"), user_id, Status.SUSPENDED)
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate(access)
    with pytest.raises(Unauthenticated):
        await rig.auth.refresh(refresh, CLIENT)


async def test_logout_is_seen_by_the_next_request_despite_the_cache(rig: Rig) -> None:
    _, access, _ = await register(rig)
    principal = await rig.auth.authenticate(access)
    await rig.auth.logout(principal)
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate(access)


async def test_expired_access_tokens_are_rejected(rig: Rig) -> None:
    _, access, _ = await register(rig)
    rig.clock.advance(901)
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate(access)


@pytest.mark.req("SRS-044")
async def test_a_logout_during_an_uncached_check_is_not_undone_by_the_cache() -> None:
    class LogoutDuringRead(InMemorySessionStore):
        """A logout commits and clears the cache just after this request read the session as live."""

        racing: Rig | None = None

        async def state(self, session_id: str, user_id: str) -> SessionState | None:
            found = await super().state(session_id, user_id)
            if self.racing is not None:
                logout, self.racing = self.racing.auth.logout, None
                await logout(Principal(user_id, session_id, "user"))
            return found

    store = LogoutDuringRead()
    rig = store.racing = Rig(sessions=store)
    _, access, _ = await register(rig)
    await rig.auth.authenticate(access)  # saw the session live, just before it ended
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate(access)


@pytest.mark.req("SRS-043")
async def test_an_idle_session_stops_authenticating() -> None:
    rig = Rig(rules=SessionRules(idle_seconds=60, absolute_seconds=7200, reuse_grace_seconds=10), cache_ttl=0.0)
    _, access, _ = await register(rig)
    rig.clock.advance(61)
    with pytest.raises(Unauthenticated):
        await rig.auth.authenticate(access)


@pytest.mark.req("SRS-041")
async def test_the_dummy_hash_is_made_before_serving() -> None:
    hasher = CountingHasher()
    rig = Rig(hasher=hasher)
    await rig.auth.prepare()
    hashes_before = hasher.hashes
    with pytest.raises(Unauthenticated):
        await rig.auth.login("ghost", PASSWORD, CLIENT)
    assert hasher.hashes == hashes_before  # the login itself did only a verify, like a known user's
    assert len(hasher.verified) == 1


@pytest.mark.req("SRS-047")
async def test_admins_cannot_lock_themselves_out(rig: Rig) -> None:
    admin = await rig.users.create_admin("root", "root@example.com", "a long admin passphrase")
    me = Principal(admin.id, "s", "admin")
    for change in (rig.users.set_role(me, admin.id, Role.USER), rig.users.set_status(me, admin.id, Status.SUSPENDED)):
        with pytest.raises(PermissionDenied):
            await change
    with pytest.raises(PermissionDenied):
        await rig.users.delete(me, admin.id)
    assert rig.db.users[admin.id].role is Role.ADMIN


@pytest.mark.req("SRS-174")
async def test_login_accepts_any_form_of_a_normalised_password_and_upgrades_old_hashes(rig: Rig) -> None:
    decomposed, composed = "Cafe\u0301 au lait 42", "Café au lait 42"
    made = await rig.auth.register(NewUser("ann", "ann@example.com", decomposed), CLIENT)
    assert (await rig.auth.login("ann", composed, CLIENT)).user.id == made.user.id  # typed on another keyboard
    # An account whose hash predates normalisation still logs in with what it typed, and is rehashed.
    legacy = replace(rig.db.users[made.user.id], password_hash=f"plain${decomposed}")
    rig.db.users[legacy.id] = legacy
    await rig.auth.login("ann", decomposed, CLIENT)
    assert rig.db.users[legacy.id].password_hash == f"plain${composed}"
    with pytest.raises(Unauthenticated):
        await rig.auth.login("ann", "Cafe au lait 42", CLIENT)


@pytest.mark.req("SRS-041", "SRS-174")
async def test_a_password_that_normalises_costs_the_same_work_for_known_and_unknown_users() -> None:
    known, unknown = CountingHasher(), CountingHasher()
    for hasher, login in ((known, "ann"), (unknown, "ghost")):
        rig = Rig(hasher=hasher)
        await rig.auth.register(NewUser("ann", "ann@example.com", "correct horse battery"), CLIENT)
        with pytest.raises(Unauthenticated):
            await rig.auth.login(login, fullwidth("wrong") + " password!", CLIENT)  # fullwidth: two forms to try
    assert len(known.verified) == len(unknown.verified) == 2


@pytest.mark.req("SRS-110")
async def test_a_token_too_long_to_be_ours_is_invalid_input_as_a_field_and_unauthenticated_as_a_credential(
    rig: Rig,
) -> None:
    _, access, _ = await register(rig)
    assert (await rig.auth.validate(access)).session_id == (await rig.auth.authenticate(access)).session_id
    too_long = "A" * (MAX_TOKEN + 1)
    with pytest.raises(InvalidInput) as validated:
        await rig.auth.validate(too_long)
    with pytest.raises(InvalidInput) as refreshed:
        await rig.auth.refresh(too_long, CLIENT)
    assert [error.field for error in validated.value.errors] == ["access_token"]
    assert [error.field for error in refreshed.value.errors] == ["refresh_token"]
    with pytest.raises(Unauthenticated):  # a Bearer credential is not a field: malformed is invalid_token
        await rig.auth.authenticate(too_long)


@pytest.mark.req("SRS-107", "SRS-049")
async def test_an_admin_verifying_or_changing_an_email_applies_to_cached_sessions_from_the_next_request() -> None:
    """The cached principal carries whether the address is verified: a change of it forgets the user's sessions."""
    rig = Rig(require_verified=True)
    user_id, access, _ = await register(rig)
    admin = Principal("admin-id", "s", "admin")
    await rig.auth.authenticate(access, CLIENT, unverified_ok=True)  # cached, unverified
    await rig.users.verify(admin, user_id)
    assert (await rig.auth.authenticate(access, CLIENT)).verified
    await rig.users.update(admin, user_id, UserChanges(email="alice.new@example.com"))  # unproven again
    with pytest.raises(EmailUnverified):
        await rig.auth.authenticate(access, CLIENT)
