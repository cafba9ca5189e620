from __future__ import annotations

import uuid

import pytest

from py_app.core.errors import Conflict, InvalidInput
from py_app.infra.cache import NoSessionCache
from py_app.users.models import NewUser, Role, Status
from py_app.users.passwords import common_passwords
from py_app.users.services import UserService, _is_uuid
from tests.fakes import FixedClock, InMemoryUserStore, PlainHasher


@pytest.fixture
def store() -> InMemoryUserStore:
    return InMemoryUserStore()


@pytest.fixture
def service(store: InMemoryUserStore) -> UserService:
    return UserService(store, PlainHasher(), FixedClock(), NoSessionCache())


@pytest.mark.req("SRS-012")
async def test_create_stores_a_normalised_user_with_a_uuid_and_utc_times(
    service: UserService, store: InMemoryUserStore
) -> None:
    user = await service.create(NewUser("Alice_1", "  Alice@Example.COM ", "correct horse battery"))
    assert uuid.UUID(user.id).version == 4
    assert user.email == "alice@example.com"
    assert user.username == "Alice_1"
    assert (user.role, user.status, user.is_verified) == (Role.USER, Status.ACTIVE, False)
    assert user.created_at.utcoffset() is not None
    assert user.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert store.db.users[user.id] == user


@pytest.mark.req("SRS-014")
async def test_the_password_is_stored_only_as_a_hash(service: UserService) -> None:
    user = await service.create(NewUser("bob", "bob@example.com", "correct horse battery"))
    assert user.password_hash == "plain$correct horse battery"  # the fake hasher's format: hashing happened


@pytest.mark.req("SRS-012")
async def test_duplicate_username_in_another_case_or_email_conflicts(service: UserService) -> None:
    await service.create(NewUser("carol", "carol@example.com", "correct horse battery"))
    with pytest.raises(Conflict):
        await service.create(NewUser("CAROL", "other@example.com", "correct horse battery"))
    with pytest.raises(Conflict):
        await service.create(NewUser("carol2", "CAROL@example.com", "correct horse battery"))


@pytest.mark.req("SRS-014")
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "must be at least 8 characters"),
        ("x" * 129, "must be at most 128 characters"),
        ("password1", "is too common"),
        ("Iloveyou1", "is too common"),
    ],
)
async def test_weak_passwords_are_rejected_with_the_field_named(
    service: UserService, password: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await service.create(NewUser("dave", "dave@example.com", password))
    assert [(error.field, message in error.message) for error in caught.value.errors] == [("password", True)]


@pytest.mark.req("SRS-014")
async def test_long_passphrases_without_composition_rules_are_accepted(service: UserService) -> None:
    user = await service.create(NewUser("erin", "erin@example.com", "all lower case words " * 6))
    assert user.id
    assert len(common_passwords()) >= 1000


@pytest.mark.req("SRS-012")
async def test_every_bad_field_is_named_at_once(service: UserService) -> None:
    with pytest.raises(InvalidInput) as caught:
        await service.create(NewUser("x", "not-an-email", "short"))
    assert {error.field for error in caught.value.errors} == {"username", "email", "password"}


async def test_create_admin_makes_a_verified_admin(service: UserService) -> None:
    admin = await service.create_admin("root_admin", "root@example.com", "a strong admin passphrase")
    assert (admin.role, admin.is_verified) == (Role.ADMIN, True)


@pytest.mark.req("SRS-173")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", "Ann\x00"),
        ("last_name", "Lee\u200b"),
        ("last_name", "\x1b[31mred"),
        ("first_name", "\u202eevil"),
        ("email", "ann\u200b@example.com"),
    ],
    ids=["nul", "zero-width", "ansi-escape", "bidi-override", "zero-width-email"],
)
async def test_text_fields_refuse_control_and_format_characters(
    service: UserService, store: InMemoryUserStore, field: str, value: str
) -> None:
    fields = {"first_name": "", "last_name": "", "email": "ann@example.com"} | {field: value}
    with pytest.raises(InvalidInput) as caught:
        await service.create(
            NewUser("ann", fields["email"], "correct horse battery", fields["first_name"], fields["last_name"])
        )
    assert [error.field for error in caught.value.errors] == [field]
    assert store.db.users == {}


@pytest.mark.req("SRS-174")
@pytest.mark.parametrize(
    "password",
    ["          ", "ann-is-my-password", "my ANN@example.com", "annie.smith rocks!", "arcana forever 2026"],
    ids=["whitespace-only", "username", "username-any-case", "email-local-part", "service-name"],
)
async def test_passwords_refuse_blanks_and_context_words(service: UserService, password: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await service.create(NewUser("ann", "annie.smith@example.com", password))
    assert [error.field for error in caught.value.errors] == ["password"]


@pytest.mark.req("SRS-174")
async def test_passwords_are_nfkc_normalised_before_hashing(service: UserService) -> None:
    user = await service.create(
        NewUser("ann", "ann@example.com", "\ufb01ne \uff30\uff21\uff33\uff33 phrase")
    )  # ligature, fullwidth
    assert user.password_hash == "plain$fine PASS phrase"


@pytest.mark.req("SRS-110")
async def test_a_mebibyte_email_or_password_is_refused_by_its_length_before_any_per_character_check(
    service: UserService, store: InMemoryUserStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """email-validator and the password's character rules walk the whole input: a 1 MiB field cost a second
    of the event loop (over a minute under coverage) before its length was looked at."""

    def walked(*_: object, **__: object) -> None:
        raise AssertionError("email-validator ran over an address past any length limit")

    monkeypatch.setattr("py_app.users.models.validate_email", walked)
    huge = "a" * (1024 * 1024)
    with pytest.raises(InvalidInput) as caught:
        await service.create(NewUser("ann", huge + "@example.com", huge))
    assert [(error.field, error.message) for error in caught.value.errors] == [
        ("email", "must be at most 254 characters"),
        ("password", "must be at most 128 characters"),
    ]
    assert store.db.users == {}


ID = "cc7e7e6b-67c5-4c8b-bd4e-0123456789ab"


@pytest.mark.req("SRS-012")
@pytest.mark.parametrize(
    "value",
    [ID, ID.upper(), "{" + ID + "}", ID.replace("-", ""), "urn:uuid:" + ID, ID + "\n", ID[:-1] + "g", ID[:-1], "", "x"],
)
def test_what_counts_as_a_user_id_is_what_uuid_reads(value: str) -> None:
    def reads(text: str) -> bool:
        try:
            uuid.UUID(text)
        except ValueError:
            return False
        return True

    assert _is_uuid(value) is reads(value)
