"""What the user records' caches share: every ``UserStore`` method but ``get`` goes to the store, and each
write through the cache forgets the user afterwards (also when it failed: a write whose answer was lost may
still have committed)."""

from __future__ import annotations

from datetime import datetime

from py_app.core.effects import NO_EFFECTS, Effects
from py_app.users.models import PasswordChange, User, UserChanges, UserQuery
from py_app.users.ports import UserStore


class UserRecordsCache:
    """The part of a caching ``UserStore`` that is not the cached read: subclasses add ``get`` and say what
    forgetting a user is (``_forgotten``)."""

    def __init__(self, store: UserStore) -> None:
        self._store = store

    async def _forgotten(self, user_id: str) -> None:
        raise NotImplementedError

    async def credentials(self, user_id: str) -> User | None:
        return await self._store.credentials(user_id)  # never cached: the password checks start here

    async def add(self, user: User, effects: Effects = NO_EFFECTS) -> None:
        await self._store.add(user, effects)  # a new id: nothing of it can be cached (misses are not kept)

    async def find_by_login(self, username_or_email: str) -> User | None:
        return await self._store.find_by_login(username_or_email)

    async def search(self, query: UserQuery) -> tuple[list[User], int]:
        return await self._store.search(query)

    async def update(
        self, user_id: str, changes: UserChanges, now: datetime, effects: Effects = NO_EFFECTS
    ) -> User | None:
        try:
            return await self._store.update(user_id, changes, now, effects)
        finally:
            await self._forgotten(user_id)

    async def change_password(self, change: PasswordChange, effects: Effects = NO_EFFECTS) -> bool:
        try:
            return await self._store.change_password(change, effects)
        finally:
            await self._forgotten(change.user_id)

    async def delete(self, user_id: str, now: datetime, effects: Effects = NO_EFFECTS) -> bool:
        try:
            return await self._store.delete(user_id, now, effects)
        finally:
            await self._forgotten(user_id)
