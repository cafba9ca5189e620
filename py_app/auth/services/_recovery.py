"""Account recovery by mail: password reset and email verification, with single-use tokens.

Asking (forgot-password, resend-verification) only publishes a request to the outbox, whether or not
the account exists, so the answer, its timing and its work are the same for every address. The relay
then calls ``issue_password_reset`` / ``issue_verification``, which look the account up and, when
there is one to mail, store the token's digest and the mail in one transaction. The token is derived
from its id under a server key (``models.account_token``): neither the database nor the outbox holds
one in clear.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from py_app.auth.models import (
    TOKEN_LIFETIMES,
    AccountToken,
    ClientInfo,
    TokenPurpose,
    account_token,
    token_digest,
)
from py_app.auth.ports import Accounts, AccountTokenStore
from py_app.core.effects import AuditEvent, Effects, OutboxMessage, SecurityEvent, audited, mail
from py_app.core.errors import FieldError, InvalidInput
from py_app.core.limits import Limiter, Policy
from py_app.core.ports import Clock, Outbox, PasswordHasher
from py_app.users.models import (
    MAX_SECRET,
    MAX_TOKEN,
    Status,
    User,
    check_email,
    check_length,
    normalize_email,
    raise_if,
)
from py_app.users.passwords import check_password, context_words, normalize_password
from py_app.users.ports import PrincipalCache

security_log = logging.getLogger("arcana.security")

BAD_TOKEN = "is invalid, expired or already used"  # noqa: S105 - a message, not a secret
RESET_REQUESTED = "auth.password_reset_requested"
VERIFICATION_REQUESTED = "auth.verification_requested"


@dataclass(frozen=True, slots=True)
class RecoveryLimits:
    forgot_account: Policy  # per address asked for, whether or not it has an account
    forgot_address: Policy  # per client address
    resend_account: Policy
    resend_address: Policy


class RecoveryService:
    """Password reset and email verification. Answers never depend on whether an account exists."""

    def __init__(
        self,
        *,
        limiter: Limiter,
        limits: RecoveryLimits,
        tokens: AccountTokenStore,
        accounts: Accounts,
        outbox: Outbox,
        hasher: PasswordHasher,
        cache: PrincipalCache,
        clock: Clock,
        key: bytes,
    ) -> None:
        self._limiter = limiter
        self._limits = limits
        self._tokens = tokens
        self._accounts = accounts
        self._outbox = outbox
        self._hasher = hasher
        self._cache = cache
        self._clock = clock
        self._key = key

    async def forgot_password(self, email: str, client: ClientInfo) -> None:
        limits = self._limits
        await self._request(RESET_REQUESTED, email, client, limits.forgot_account, limits.forgot_address)

    async def resend_verification(self, email: str, client: ClientInfo) -> None:
        limits = self._limits
        await self._request(VERIFICATION_REQUESTED, email, client, limits.resend_account, limits.resend_address)

    async def issue_password_reset(self, email: str, ip: str) -> None:
        user = await self._accounts.find_by_login(email)
        if user is not None and user.status is Status.ACTIVE:
            await self._issue(user, TokenPurpose.PASSWORD_RESET, ip)

    async def issue_verification(self, email: str, ip: str) -> None:
        user = await self._accounts.find_by_login(email)
        if user is not None and user.status is Status.ACTIVE and not user.is_verified:
            await self._issue(user, TokenPurpose.EMAIL_VERIFY, ip)

    async def send_verification(self, user: User, ip: str) -> None:
        await self._issue(user, TokenPurpose.EMAIL_VERIFY, ip)

    async def reset_password(self, token: str, new_password: str, client: ClientInfo) -> None:
        raise_if(check_length("token", token, MAX_TOKEN), check_length("new_password", new_password, MAX_SECRET))
        now = self._clock.now()
        digest = token_digest(token)
        found = await self._tokens.find(digest, TokenPurpose.PASSWORD_RESET, now)
        user = await self._accounts.get(found.user_id) if found is not None else None
        if user is None:
            raise InvalidInput("The reset token cannot be used.", (FieldError("token", BAD_TOKEN),))
        raise_if(check_password(new_password, "new_password", context=context_words(user.username, user.email)))
        new_hash = await self._hasher.hash(normalize_password(new_password))
        event = AuditEvent(SecurityEvent.PASSWORD_RESET, at=now, actor_id=user.id, target_id=user.id, ip=client.ip)
        if not await self._tokens.reset_password(digest, new_hash, now, audited(event)):
            raise InvalidInput("The reset token cannot be used.", (FieldError("token", BAD_TOKEN),))
        await self._cache.forget_user(user.id)
        security_log.info(SecurityEvent.PASSWORD_RESET, extra={"user_id": user.id})

    async def verify_email(self, token: str, client: ClientInfo) -> User:
        raise_if(check_length("token", token, MAX_TOKEN))
        now = self._clock.now()
        event = AuditEvent(SecurityEvent.EMAIL_VERIFIED, at=now, ip=client.ip)
        user = await self._tokens.verify_email(token_digest(token), now, audited(event))
        if user is None:
            raise InvalidInput("The verification token cannot be used.", (FieldError("token", BAD_TOKEN),))
        await self._cache.forget_user(user.id)
        return user

    async def _request(self, topic: str, email: str, client: ClientInfo, per_account: Policy, per_ip: Policy) -> None:
        raise_if(check_email(email))  # the address's form only: never whether it has an account
        normalized = normalize_email(email)
        await self._limiter.hit(per_ip, client.ip)
        await self._limiter.hit(per_account, normalized)  # counted by address, so unknown ones limit alike
        request = OutboxMessage(topic, {"email": normalized, "ip": client.ip})
        await self._outbox.publish(request, now=self._clock.now())

    async def _issue(self, user: User, purpose: TokenPurpose, ip: str) -> None:
        now = self._clock.now()
        token_id = str(uuid.uuid4())
        token = AccountToken(
            id=token_id,
            digest=token_digest(account_token(self._key, token_id)),
            purpose=purpose,
            user_id=user.id,
            email=user.email,
            created_at=now,
            expires_at=now + timedelta(seconds=TOKEN_LIFETIMES[purpose]),
        )
        issued = (
            SecurityEvent.PASSWORD_RESET_ISSUED
            if purpose is TokenPurpose.PASSWORD_RESET
            else SecurityEvent.EMAIL_VERIFICATION_ISSUED
        )
        effects = Effects(
            messages=(mail(user.email, purpose.value, token_id=token_id, username=user.username),),
            audit=(AuditEvent(issued, at=now, target_id=user.id, ip=ip, details={"purpose": purpose.value}),),
        )
        await self._tokens.issue(token, effects)
