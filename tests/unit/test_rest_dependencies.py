"""Each REST route resolves its dependencies one level at a time: Litestar awaits a lone dependency but
spawns an anyio task group for two at one level, which cost the authenticated point query more than a
quarter of its throughput."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from py_app.config import Settings
from py_app.entrypoints.rest import create_app

pytestmark = pytest.mark.req("SDD-264")


def _batches(settings: Settings) -> dict[str, list[list[str]]]:
    app = create_app(settings)
    found = {}
    for route in app.routes:
        for method, (_, kwargs_model) in getattr(route, "route_handler_map", {}).items():
            levels = kwargs_model.dependency_batches
            found[f"{method} {route.path}"] = [sorted(dependency.key for dependency in level) for level in levels]
    return found


def test_no_route_resolves_two_dependencies_side_by_side(make_settings: Callable[..., Settings]) -> None:
    batches = _batches(make_settings(public_directory=True))
    crowded = {route: levels for route, levels in batches.items() if any(len(level) > 1 for level in levels)}
    assert crowded == {}
    assert batches["GET /api/v1/users/{user_id:str}"] == [["principal"], ["users"]]
    assert batches["GET /api/v1/auth/me"] == [["principal"], ["auth"]]
    assert batches["GET /api/v1/audit"] == [["principal"], ["audit"]]
    assert batches["POST /api/v1/auth/login"] == [["auth"]]
