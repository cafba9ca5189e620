"""Whether each edge worker drained cleanly at shutdown, told to the runner that decides the exit code.

Granian ignores its workers' exit codes once it has asked them to stop, and kills a worker still busy
after its kill timeout with only a warning. So the edge runner makes a report folder before the workers
start and names it in the environment they inherit; each worker writes ``serving`` when it starts and
its outcome when its drain ends. A worker whose report still says ``serving`` was killed mid-drain.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from py_app.infra.scratch import inherited_folder

logger = logging.getLogger("arcana.serve")

# A worker still busy this long past the shutdown grace is killed: its gRPC drain (up to the grace,
# after its HTTP requests finished) and the closing of its pools must fit in it.
KILL_MARGIN = 5
REPORTS = "_ARCANA_DRAIN_REPORTS"  # inherited by the workers; not a setting (no ARCANA_ prefix)
SERVING = "serving"
DRAINED = "drained"


@contextlib.contextmanager
def worker_reports() -> Iterator[WorkerReports]:
    """For the runner: a report folder named in the environment, removed afterwards."""
    with inherited_folder(REPORTS, "arcana-drain-") as folder:
        yield WorkerReports(folder)


class WorkerReports:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def forced(self) -> list[str]:
        """What each worker that did not drain cleanly left unfinished, one phrase per worker."""
        problems = []
        for report in sorted(path for path in self._folder.iterdir() if not path.suffix):
            outcome = report.read_text().strip()
            if outcome == SERVING:
                problems.append(f"worker {report.name} was killed with requests still running")
            elif outcome != DRAINED:
                problems.append(f"worker {report.name}: {outcome}")
        return problems


def report(outcome: str) -> None:
    """For a worker: record ``serving``, ``drained`` or what its drain had to abandon (no-op outside a runner)."""
    folder = os.environ.get(REPORTS)
    if not folder or not Path(folder).is_dir():
        return
    path = Path(folder) / str(os.getpid())
    partial = path.with_suffix(".tmp")
    partial.write_text(outcome)
    partial.replace(path)  # never half a word: the runner may read while a worker writes


def unfinished_calls(count: int) -> str:
    return f"{count} gRPC call{'s' if count != 1 else ''} still running"


def log_forced(problems: list[str], grace: float) -> None:
    logger.error("drain forced", extra={"unfinished": problems, "shutdown_grace": grace})
