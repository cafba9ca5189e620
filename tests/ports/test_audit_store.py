"""The AuditStore port: the same from fake, SQLite and MariaDB."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from py_app.audit.models import AuditQuery
from py_app.core.effects import AuditEvent
from tests.ports.conftest import T0, Stores

pytestmark = pytest.mark.req("SRS-082", "SRS-106")


async def test_records_come_back_newest_first_filtered_by_user_and_event(store: Stores) -> None:
    who, other = str(uuid.uuid4()), str(uuid.uuid4())
    events = [
        AuditEvent("authn_login_fail", at=T0 + timedelta(seconds=n), target_id=who, ip="192.0.2.7", details={"n": n})
        for n in range(3)
    ]
    acted = AuditEvent("privilege_change", at=T0 + timedelta(seconds=9), actor_id=who, target_id=other)
    await store.audit.record(*events, acted)
    found, total = await store.audit.search(AuditQuery(user_id=who, per_page=2))
    assert (total, [event.id for event in found]) == (4, [acted.id, events[2].id])
    assert found[1] == events[2]  # every field round-trips, details included
    fails, total = await store.audit.search(AuditQuery(user_id=who, event="authn_login_fail", page=2, per_page=2))
    assert (total, [event.id for event in fails]) == (3, [events[0].id])
    assert (await store.audit.search(AuditQuery(user_id=other)))[1] == 1


async def test_pruning_forgets_what_is_older_than_the_retention(store: Stores) -> None:
    who = str(uuid.uuid4())
    old = AuditEvent("authn_login_fail", at=T0 - timedelta(days=500), target_id=who)
    recent = AuditEvent("authn_login_fail", at=T0, target_id=who)
    await store.audit.record(old, recent)
    assert await store.audit.prune(T0 - timedelta(days=400)) >= 1
    found, total = await store.audit.search(AuditQuery(user_id=who))
    assert (total, [event.id for event in found]) == (1, [recent.id])
