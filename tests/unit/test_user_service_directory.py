"""The public directory's rule (SRS-151): active accounts only, and never an administrator."""

from __future__ import annotations

import pytest

from py_app.core.errors import NotFound
from py_app.core.identity import Principal
from py_app.infra.cache import NoSessionCache
from py_app.users.models import NewUser, Role, Status, UserChanges
from py_app.users.services import UserService
from tests.fakes import FixedClock, InMemoryUserStore, PlainHasher

PASSWORD = "correct horse battery"

pytestmark = pytest.mark.req("SRS-151", "SRS-050")


@pytest.fixture
def service() -> UserService:
    return UserService(InMemoryUserStore(), PlainHasher(), FixedClock(), NoSessionCache())


async def test_the_directory_lists_active_users_and_guests_but_no_administrator(service: UserService) -> None:
    admin = await service.create_admin("boss", "boss@example.com", PASSWORD)
    user = await service.create(NewUser("ann", "ann@example.com", PASSWORD))
    guest = await service.create(NewUser("gus", "gus@example.com", PASSWORD, role=Role.GUEST.value))
    second_admin = await service.create(NewUser("root2", "root2@example.com", PASSWORD, role=Role.ADMIN.value))
    page = await service.public_page(1, 100)
    assert sorted(listed.id for listed in page.items) == sorted([user.id, guest.id])  # one clock tick: any order
    assert page.total == 2
    for hidden in (admin, second_admin):
        with pytest.raises(NotFound):
            await service.public_get(hidden.id)
    assert (await service.public_get(user.id)).id == user.id


async def test_a_promoted_user_leaves_the_directory(service: UserService) -> None:
    user = await service.create(NewUser("rise", "rise@example.com", PASSWORD))
    admin = await service.create_admin("boss", "boss@example.com", PASSWORD)
    await service.update(Principal(admin.id, "s", Role.ADMIN), user.id, UserChanges(role=Role.ADMIN))
    with pytest.raises(NotFound):
        await service.public_get(user.id)
    assert (await service.public_page(1, 10)).total == 0


async def test_inactive_and_suspended_users_stay_hidden(service: UserService) -> None:
    admin = await service.create_admin("boss", "boss@example.com", PASSWORD)
    actor = Principal(admin.id, "s", Role.ADMIN)
    for name, status in (("ina", Status.INACTIVE), ("sus", Status.SUSPENDED)):
        user = await service.create(NewUser(name, f"{name}@example.com", PASSWORD))
        await service.set_status(actor, user.id, status)
        with pytest.raises(NotFound):
            await service.public_get(user.id)
    assert (await service.public_page(1, 10)).total == 0
