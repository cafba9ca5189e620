"""The image's runtime contract, run here: the installed service on a read-only root filesystem."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.deploy.support import serve_read_only

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.mark.req("SRS-201")
def test_migrate_and_serve_write_only_the_data_directory_and_tmpdir(tmp_path: Path) -> None:
    data, tmp = tmp_path / "data", tmp_path / "tmp"
    data.mkdir()
    tmp.mkdir()
    serve_read_only(sys.executable, data, tmp)
