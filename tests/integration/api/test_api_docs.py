"""The API docs pages work offline (SRS-153): every script and stylesheet comes from the service itself.

The pages are fetched from the app, every URL they reference is collected from the HTML, and each one
is fetched from the same app: none may point anywhere else, and each file served is the pinned copy
the manifest names (the vendoring tool's SHA-256 of the npm file).
"""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.integration.api.api_support import Api, expect
from tests.integration.api.conftest import OpenApi

PAGES = ("/schema", "/schema/swagger")
MANIFEST = Path(__file__).resolve().parents[3] / "py_app" / "entrypoints" / "api_docs" / "manifest.json"


class References(HTMLParser):
    """Every URL a page makes the browser load: src and href of any tag, with what kind of tag asked."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []  # (kind, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for attribute in ("src", "href"):
            url = values.get(attribute)
            if url:
                kind = "stylesheet" if tag == "link" and values.get("rel") == "stylesheet" else tag
                self.found.append((kind, url))


def references(html: str) -> list[tuple[str, str]]:
    parser = References()
    parser.feed(html)
    return parser.found


def sha256_of_manifest(url: str) -> str:
    files = json.loads(MANIFEST.read_text())["files"]
    return str(files[url.removeprefix("/schema/assets/")]["sha256"])


@pytest.mark.req("SRS-153")
async def test_the_docs_pages_load_every_script_and_stylesheet_from_the_service(sqlite_api: Api) -> None:
    api = sqlite_api
    for page in PAGES:
        html = expect_html(await api.client.get(page))
        for cdn in ("cdn.", "jsdelivr", "unpkg", "fonts.", "googleapis"):
            assert cdn not in html.split("spec:")[0], f"{page} mentions {cdn}"
        found = references(html)
        kinds = {kind for kind, _ in found}
        assert {"script", "stylesheet"} <= kinds, (page, found)
        for kind, url in found:
            if url.startswith("data:"):
                continue
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            assert not url.startswith("//"), f"{page} loads {url} from elsewhere"
            await fetch_asset(api, kind, url)


async def fetch_asset(api: Api, kind: str, url: str) -> None:
    wanted = sha256_of_manifest(url)
    plain = await api.client.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200, url
    assert "content-encoding" not in plain.headers
    compressed = await api.client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert compressed.status_code == 200, url
    assert compressed.headers.get("content-encoding") == "gzip"
    assert int(compressed.headers["content-length"]) < len(plain.content)
    for response in (plain, compressed):  # httpx has undone the gzip: both are the pinned file
        assert hashlib.sha256(response.content).hexdigest() == wanted, url
        media_type = response.headers["content-type"]
        # With nosniff a browser runs a script or applies a stylesheet only when its type says so.
        assert media_type.startswith("text/css" if kind == "stylesheet" else "text/javascript"), (url, media_type)
        assert response.headers.get("x-content-type-options") == "nosniff"
        assert "immutable" in response.headers.get("cache-control", "")
        assert response.headers.get("vary") == "Accept-Encoding"


@pytest.mark.req("SRS-153")
async def test_scalar_is_told_not_to_fetch_fonts_or_send_telemetry(sqlite_api: Api) -> None:
    html = expect_html(await sqlite_api.client.get("/schema"))
    assert '"withDefaultFonts":false' in html
    assert '"telemetry":false' in html
    assert '"agent":{"disabled":true}' in html


def expect_html(response: httpx.Response) -> str:
    assert response.status_code == 200, response.request.url
    assert response.headers["content-type"].startswith("text/html"), response.headers
    return response.text


@pytest.mark.req("SRS-153")
async def test_unknown_assets_are_404_problems(sqlite_api: Api) -> None:
    for path in ("/schema/assets/nope.js", "/schema/assets/../manifest.json", "/schema/assets/swagger-ui-dist-0/x.js"):
        response = await sqlite_api.client.get(path)
        assert response.status_code == 404, (path, response.status_code)
    manifest = await sqlite_api.client.get("/schema/assets/manifest.json")
    assert manifest.status_code == 404


@pytest.mark.req("SRS-153")
@pytest.mark.parametrize(
    "settings", [{"api_docs": False}, {"env": "production", "rate_limits": True}], ids=["off", "production"]
)
async def test_the_docs_pages_can_be_turned_off_and_are_off_in_production(
    open_api: OpenApi, settings: dict[str, object]
) -> None:
    async with open_api(**settings) as api:
        for page in ("/schema/swagger", "/schema/scalar"):
            assert (await api.client.get(page)).status_code == 404, page
        root = await api.client.get("/schema")
        assert "<script" not in root.text
        for asset in json.loads(MANIFEST.read_text())["files"]:
            assert (await api.client.get(f"/schema/assets/{asset}")).status_code == 404
        document = expect(await api.client.get("/schema/openapi.json"), 200)  # the document itself stays
        assert "/api/v1/auth/login" in document["paths"]
