"""The REST edge of a real server process (`python -m py_app serve`): bad bodies, headers, offline docs.

The integration suite proves each rule on every route in-process; this proves the same from outside, through
Granian, and that nothing lands in the server's output as a traceback while it happens.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import migrate, start
from tests.support.logs import at_levels

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
DEEP = 10_000
BAD_BODIES = {
    "invalid UTF-8": b'{"username_or_email": "\xc3\x28", "password": "x"}',
    "nested 10,000 deep": b"[" * DEEP + b"]" * DEEP,
}


@pytest.mark.req("SRS-150", "SRS-152", "SRS-153")
def test_a_real_server_refuses_bad_bodies_and_serves_offline_docs(tmp_path: Path) -> None:
    migrate(tmp_path)
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.http, timeout=10) as client:
            for route in ("/api/v1/auth/login", "/api/v1/auth/register"):
                for name, raw in BAD_BODIES.items():
                    response = client.post(route, content=raw, headers={"Content-Type": "application/json"})
                    assert response.status_code == 400, (route, name, response.text)
                    assert response.json()["code"] == "invalid_input"
                response = client.post(route, content=b'{"password": "x"}', headers={"Content-Type": "text/plain"})
                assert response.status_code == 415, (route, response.text)
                assert response.headers["x-content-type-options"] == "nosniff"
                assert response.headers["cache-control"] == "no-store"
            for page in ("/schema", "/schema/swagger"):
                html = client.get(page)
                assert html.status_code == 200, page
                urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text.split("spec:")[0])
                assets = [url for url in urls if not url.startswith("data:")]
                assert assets, page
                for url in assets:
                    assert url.startswith("/schema/assets/"), f"{page} loads {url} from elsewhere"
                    asset = client.get(url)
                    assert asset.status_code == 200, url
                    assert asset.headers["content-type"].startswith(("text/javascript", "text/css")), url
                    assert len(asset.content) > 10_000, url
    finally:
        server.stop()
    output = server.output()
    assert "Traceback" not in output, output[-3000:]
    assert not at_levels(output, "error", "critical"), output[-3000:]
