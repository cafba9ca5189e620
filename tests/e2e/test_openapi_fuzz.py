"""Property-based fuzzing of the live REST API from its own OpenAPI document (schemathesis 4.32).

Every operation in ``/schema/openapi.json`` is fuzzed, logout, revoke-all and the DELETEs included,
in all four phases (examples, coverage, fuzzing, stateful) with ``--checks all``: no 5xx, the status
code, content type, headers and body each as documented, schema-violating requests rejected,
schema-valid ones accepted, auth not ignored, ``Allow`` as documented, a deleted user gone
(use_after_free) and a created one readable (ensure_resource_availability).

Who calls and how calls chain is in ``tests/e2e/fuzz_hooks.py``: the administrator's token for the
admin routes; a freshly registered account for every call that ends or changes the caller's own
sessions or password; and OpenAPI links for the stateful phase (register → login → calls with that
account's own token and id, each scenario on its own fresh account).

Settings (``tests/e2e/schemathesis.toml``): a fixed seed and bounded examples (about a minute without
coverage, well under 4 minutes with it); and these check settings, none of them a check turned off:

- negative_data_rejection also takes 413: a body over 64 KiB is refused before it is read.
- positive_data_acceptance also takes 400 on the operations whose validation goes past what JSON
  Schema can say (the password policy's common-password list and "not your username", email-validator
  syntax, one-time codes unknown or spent): register, users.create, users.update, change_password,
  reset/forgot password, verify/resend email. Everywhere else a schema-valid request met with 400 fails.
- object_level_authorization is on but has nothing to compare without a second WFC identity: the
  cross-account rules (self or admin) are tests/integration/api/test_api_users.py's.

The server runs with the per-address limits raised (register, login, forgot, resend) so that the
fresh accounts can be made and the mail routes reach their logic; the 429 answers themselves are in
the document and tested in tests/integration/api/test_api_auth.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import ROOT, command, migrate, start

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
ADMIN_PASSWORD = "violet harbour lantern 42"
CONFIG = ROOT / "tests/e2e/schemathesis.toml"  # seed 20261126, 5 examples per operation and phase, 25 scenarios
RAISED_LIMITS = {f"ARCANA_LIMIT_{name}_ADDRESS": "1000000/60" for name in ("REGISTER", "LOGIN", "FORGOT", "RESEND")}


@pytest.mark.req("SRS-051")
@pytest.mark.req("SRS-140")
def test_every_operation_passes_every_schemathesis_check(tmp_path: Path) -> None:
    migrate(tmp_path)
    admin = command(
        tmp_path,
        "create-admin",
        "--username",
        "fuzzer",
        "--email",
        "fuzz@example.com",
        ARCANA_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    assert admin.returncode == 0, admin.stderr
    server = start([sys.executable, "-m", "py_app", "serve"], tmp_path, **RAISED_LIMITS)
    try:
        server.wait_ready()
        login = httpx.post(
            f"{server.http}/api/v1/auth/login",
            json={"username_or_email": "fuzzer", "password": ADMIN_PASSWORD},
            timeout=10,
        )
        token = login.json()["access_token"]
        # The fuzzer is not the code under test: it runs without coverage's tracer (the server keeps it), which
        # takes about a quarter off the test's CPU time under `make test` (47 s -> 35 s user time, measured).
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("ARCANA_") and key not in ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")
        }
        environ.update(
            PYTHONPATH=str(ROOT),
            SCHEMATHESIS_HOOKS="tests.e2e.fuzz_hooks",
            ARCANA_FUZZ_BASE_URL=server.http,
            ARCANA_FUZZ_ADMIN_TOKEN=token,
        )
        fuzz = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(CONFIG),
                "run",
                f"{server.http}/schema/openapi.json",
                "--checks",
                "all",
                "--workers",
                "1",
                "--no-color",
            ],
            cwd=tmp_path,  # schemathesis keeps a cache folder where it runs
            env=environ,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        report = fuzz.stdout[fuzz.stdout.find("SUMMARY") :] or fuzz.stdout[-3000:]
        assert fuzz.returncode == 0, fuzz.stdout[-6000:] + fuzz.stderr[-2000:]
        selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", report)
        assert selected is not None, report
        assert selected.group(1) == selected.group(2) == selected.group(3), report  # every operation in the document
        links = re.search(r"API Links:\s+(\d+) covered", fuzz.stdout)
        assert links is not None, report
        assert int(links.group(1)) > 0, report  # the stateful phase ran scenarios through the links
        assert "Server error" not in fuzz.stdout
        assert "Traceback" not in server.output()
    finally:
        server.stop()
