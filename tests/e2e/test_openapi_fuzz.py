"""Property-based fuzzing of the live REST API from its own OpenAPI document (schemathesis).

Every generated request, valid or malformed, must get an answer that is not a server error.
Logout and revoke-all are left out (they would end the fuzzer's own session) and so is DELETE
(it would delete the fuzzer's admin); all three are covered by tests/integration/api.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import ROOT, migrate, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
ADMIN_PASSWORD = "violet harbour lantern 42"


@pytest.mark.req("SRS-051")
def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    migrate(tmp_path)
    admin = subprocess.run(
        [sys.executable, "-m", "py_app", "create-admin", "--username", "fuzzer", "--email", "fuzz@example.com"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "ARCANA_DATA_DIR": str(tmp_path / "var"),
            "ARCANA_ADMIN_PASSWORD": ADMIN_PASSWORD,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert admin.returncode == 0, admin.stderr
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path)
    try:
        server.wait_ready()
        login = httpx.post(
            f"{server.http}/api/v1/auth/login",
            json={"username_or_email": "fuzzer", "password": ADMIN_PASSWORD},
            timeout=10,
        )
        token = login.json()["access_token"]
        fuzz = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{server.http}/schema/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "25",
                "--seed",
                "20261126",
                "--exclude-path-regex",
                "(logout|revoke-all)",
                "--exclude-method",
                "DELETE",
                "--no-color",
            ],
            cwd=tmp_path,  # schemathesis keeps a cache folder where it runs
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        summary = fuzz.stdout[-3000:]
        assert fuzz.returncode == 0, summary
        assert " passed" in summary
        assert "Server error" not in summary
        assert "Traceback" not in server.output()
    finally:
        server.stop()
