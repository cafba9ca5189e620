"""Schemathesis hooks for tests/e2e/test_openapi_fuzz.py (loaded with ``SCHEMATHESIS_HOOKS``).

Two things the OpenAPI document cannot say by itself:

- Who calls. Every request that needs a token gets one from ``ArcanaAuth``: the administrator's for
  the admin routes; a freshly registered account's for each call that ends the caller's session or all
  of its account's (logout, revoke-all); and one throwaway account's for revoking a session or changing
  a password by a drawn id, so a destructive call never ends the session the rest of the run uses. A
  request a link below gave the scenario's own token keeps it; one that leaves the token out on
  purpose (a negative case) gets none.
- How calls chain. ``before_load_schema`` adds OpenAPI links for the stateful phase: register → login,
  and register or login → every call made with the new account's own token and id, each scenario on
  its own fresh account (register → validate → revoke that very session too); admin create → read,
  change and delete that user; and register → the admin's DELETE of the new account (then
  schemathesis' use_after_free reads it back and expects 404).

Settings come from the environment the test sets: ``ARCANA_FUZZ_BASE_URL`` and
``ARCANA_FUZZ_ADMIN_TOKEN``.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any

import httpx
import schemathesis

BASE_URL = os.environ.get("ARCANA_FUZZ_BASE_URL", "")
ADMIN_TOKEN = os.environ.get("ARCANA_FUZZ_ADMIN_TOKEN", "")
PASSWORD = "violet harbour lantern 42"
# They end the caller's session or every session of the account: each call gets an account of its own.
FRESH_ACCOUNT = frozenset({"auth.logout", "auth.revoke_all_sessions"})
# They end one session or change a password, of an id the fuzzer drew: one throwaway account, never the
# admin, so that no drawn (or inferred) id of the admin's can reach the admin's own session.
THROWAWAY_ACCOUNT = frozenset({"auth.revoke_session", "users.change_password"})
_serial = itertools.count()
_lock = threading.Lock()
_throwaway: list[str] = []


def register_fresh_account() -> dict[str, Any]:
    """A new account (and its first session) through the public API; its token body."""
    with _lock:
        number = next(_serial)
    name = f"fz{os.getpid()}x{number}"
    answer = httpx.post(
        f"{BASE_URL}/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        timeout=30,
    )
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


@schemathesis.auth(refresh_interval=None)
class ArcanaAuth:
    def get(self, case: schemathesis.Case[Any], ctx: schemathesis.AuthContext) -> str | None:
        own = _pop_own_token(case)
        if own:
            return own  # a link supplied the scenario's own token
        operation_id = case.operation.definition.raw.get("operationId")
        if operation_id in FRESH_ACCOUNT:
            return str(register_fresh_account()["access_token"])
        if operation_id in THROWAWAY_ACCOUNT:
            if not _throwaway:
                _throwaway.append(str(register_fresh_account()["access_token"]))
            return _throwaway[0]
        return ADMIN_TOKEN

    def set(self, case: schemathesis.Case[Any], data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


def _pop_own_token(case: schemathesis.Case[Any]) -> str | None:
    """The token a link put in ``OWN_TOKEN_HEADER`` (never sent: it becomes ``Authorization``)."""
    if not case.headers:
        return None
    for name in list(case.headers):
        if name.lower() == OWN_TOKEN_HEADER.lower():
            value = case.headers.pop(name)
            return str(value) if value else None
    return None


# Links cannot name Authorization (schemathesis generates a random one and the provider replaces it),
# so they put the token in a header of their own that ArcanaAuth turns into Authorization.
OWN_TOKEN_HEADER = "X-Fuzz-Own-Token"
OWN_TOKEN = "$response.body#/access_token"
OWN_ID = "$response.body#/user/id"
# Calls a new account makes with its own token (and its own id where the path has one).
AS_NEW_ACCOUNT: dict[str, dict[str, Any]] = {
    "auth.me": {},
    "auth.list_sessions": {},
    "auth.logout": {},
    "auth.revoke_all_sessions": {},
    "users.get": {"parameters": {"path.user_id": OWN_ID}},
    "users.update": {"parameters": {"path.user_id": OWN_ID}},
    "users.change_password": {
        "parameters": {"path.user_id": OWN_ID},
        "requestBody": {"current_password": "$request.body#/password", "new_password": "$request.body#/password"},
    },
}


def _own_links(source: str) -> dict[str, Any]:
    links: dict[str, Any] = {}
    for target, extra in AS_NEW_ACCOUNT.items():
        link: dict[str, Any] = {"operationId": target, **extra}
        link["parameters"] = {f"header.{OWN_TOKEN_HEADER}": OWN_TOKEN, **extra.get("parameters", {})}
        if target == "users.change_password" and source == "auth.login":
            link["requestBody"] = {"current_password": "$request.body#/password", "new_password": PASSWORD}
        links[f"{source}->{target}"] = link
    return links


def links_by_operation() -> dict[tuple[str, str], dict[str, Any]]:
    """(operationId, status) → the links to add to that response."""
    register = _own_links("auth.register") | {
        "login": {
            "operationId": "auth.login",
            "requestBody": {"username_or_email": "$request.body#/username", "password": "$request.body#/password"},
        },
        "refresh": {"operationId": "auth.refresh", "requestBody": {"refresh_token": "$response.body#/refresh_token"}},
        "validate": {
            "operationId": "auth.validate_token",
            "requestBody": {"access_token": "$response.body#/access_token"},
        },
        "admin-deletes": {"operationId": "users.delete", "parameters": {"path.user_id": OWN_ID}},
        "admin-reads": {"operationId": "users.get", "parameters": {"path.user_id": OWN_ID}},
    }
    login = _own_links("auth.login") | {
        "refresh": {"operationId": "auth.refresh", "requestBody": {"refresh_token": "$response.body#/refresh_token"}},
    }
    created = "$response.body#/id"
    by_admin = {
        name: {"operationId": name, "parameters": {"path.user_id": created}}
        for name in ("users.get", "users.update", "users.set_status", "users.set_role", "users.verify", "users.delete")
    }
    # validate names the session its token belongs to: that session is then revoked with that token.
    validated = {
        "revoke-own-session": {
            "operationId": "auth.revoke_session",
            "parameters": {
                "path.session_id": "$response.body#/session_id",
                f"header.{OWN_TOKEN_HEADER}": "$request.body#/access_token",
            },
        }
    }
    return {
        ("auth.register", "201"): register,
        ("auth.validate_token", "200"): validated,
        ("auth.login", "200"): login,
        ("users.create", "201"): by_admin,
    }


@schemathesis.hook
def before_load_schema(context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    wanted = links_by_operation()
    for item in raw_schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for (operation_id, status), links in wanted.items():
                if operation.get("operationId") == operation_id:
                    operation["responses"][status].setdefault("links", {}).update(links)
