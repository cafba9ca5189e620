"""A scratch folder the runner makes before its worker processes start and names in the environment they inherit."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def inherited_folder(variable: str, prefix: str) -> Iterator[Path]:
    """A fresh, empty folder named in ``variable`` for the processes started inside the block; afterwards the
    variable is as it was and the folder is gone (one start's files never leak into the next)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    previous = os.environ.get(variable)
    os.environ[variable] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous
        shutil.rmtree(folder, ignore_errors=True)
