"""CORS (SRS-154): no origin is granted by default; the configured origins may call the API with a bearer token."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.api.api_support import V1, Api, expect
from tests.integration.api.conftest import OpenApi

APP = "https://app.example.com"
EVIL = "https://evil.example"


def preflight(api: Api, origin: str, method: str = "PATCH") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def ask(api: Api, origin: str, method: str = "PATCH") -> httpx.Response:
    assert api.admin is not None
    return await api.client.options(f"{V1}/users/{api.admin.id}", headers=preflight(api, origin, method))


@pytest.mark.req("SRS-154")
async def test_no_origin_is_granted_by_default(sqlite_api: Api) -> None:
    api = sqlite_api
    response = await ask(api, APP)
    assert "access-control-allow-origin" not in response.headers, response.headers
    me = await api.client.get(f"{V1}/auth/me", headers={**api.admin_headers, "Origin": APP})
    expect(me, 200)
    assert "access-control-allow-origin" not in me.headers


@pytest.mark.req("SRS-154")
async def test_configured_origins_may_call_the_api_with_a_bearer_token(open_api: OpenApi) -> None:
    async with open_api(cors_origins=f"{APP}, http://localhost:5173") as api:
        for origin in (APP, "http://localhost:5173"):
            response = await ask(api, origin)
            assert response.status_code in (200, 204), response.text
            assert response.headers.get("access-control-allow-origin") == origin
            allowed_headers = response.headers.get("access-control-allow-headers", "").lower()
            assert "authorization" in allowed_headers
            assert "content-type" in allowed_headers
            assert "PATCH" in response.headers.get("access-control-allow-methods", "")
            assert "access-control-allow-credentials" not in response.headers  # tokens, never cookies
        me = await api.client.get(f"{V1}/auth/me", headers={**api.admin_headers, "Origin": APP})
        expect(me, 200)
        assert me.headers.get("access-control-allow-origin") == APP
        exposed = me.headers.get("access-control-expose-headers", "").lower()
        assert "retry-after" in exposed
        assert "www-authenticate" in exposed
        # Another origin gets no grant, on the preflight or on the request itself.
        refused = await ask(api, EVIL)
        assert refused.headers.get("access-control-allow-origin") not in (EVIL, "*")
        other = await api.client.get(f"{V1}/auth/me", headers={**api.admin_headers, "Origin": EVIL})
        assert other.headers.get("access-control-allow-origin") not in (EVIL, "*")


@pytest.mark.req("SRS-154")
async def test_a_wildcard_grants_every_origin_without_credentials(open_api: OpenApi) -> None:
    async with open_api(cors_origins="*") as api:
        response = await ask(api, EVIL, "POST")
        assert response.headers.get("access-control-allow-origin") == "*"
        assert "access-control-allow-credentials" not in response.headers
