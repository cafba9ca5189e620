"""The user store's outermost layer: a request's read of an account its session check already read
(``infra.request_reads``)."""

from __future__ import annotations

from py_app.infra import request_reads
from py_app.infra.cache._records import UserRecordsCache
from py_app.users.models import User


class RequestAccounts(UserRecordsCache):
    """``get`` answers with the row this request's session check read, when it read that account and has
    written nothing since; every other read, and every write, goes to ``store``. Outside the caches, so a
    row read before a cache's stamp never enters one."""

    async def get(self, user_id: str) -> User | None:
        account = request_reads.recall(user_id)
        return account if account is not None else await self._store.get(user_id)

    async def _forgotten(self, user_id: str) -> None:
        request_reads.forget()
