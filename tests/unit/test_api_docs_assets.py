"""The vendored docs assets are the pinned npm files (SDD-152), checked offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from py_app.entrypoints.rest_docs import accepts_gzip, asset_url, assets

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.req("SRS-153")
def test_the_vendored_files_match_their_manifest_and_the_pinned_versions() -> None:
    done = subprocess.run(
        [sys.executable, "tools/vendor_api_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.req("SRS-153")
def test_every_page_asset_is_known_and_typed() -> None:
    for prefix, file in (
        ("scalar-api-reference-", "standalone.js"),
        ("scalar-api-reference-", "style.css"),
        ("swagger-ui-dist-", "swagger-ui-bundle.js"),
        ("swagger-ui-dist-", "swagger-ui-standalone-preset.js"),
        ("swagger-ui-dist-", "swagger-ui.css"),
    ):
        url = asset_url(prefix, file)
        asset = assets()[url.removeprefix("/schema/assets/")]
        assert asset.media_type.startswith("text/css" if file.endswith(".css") else "text/javascript")
        assert asset.plain  # decompresses
    with pytest.raises(LookupError, match="vendor_api_docs"):
        asset_url("redoc-", "redoc.js")


@pytest.mark.req("SRS-153")
@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0", False),
        ("identity", False),
        ("", False),
        ("br", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_gzip_is_sent_only_to_clients_that_accept_it(header: str, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip
