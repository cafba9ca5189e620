"""Spec coverage: tests name the docs/SPEC.md requirements they prove with ``@pytest.mark.req("SRS-001")``.

Every run prints which requirements were exercised. With ``--spec-check`` (what `make test` passes) the run
fails when a listed SRS requirement has no test, or when a test names an id the spec does not list.

Under pytest-xdist the workers collect and the controller reports: each worker sends the ids it collected
back in ``workeroutput`` and the controller adds them up (every worker collects the whole suite, so any one
of them would do; the union also covers a run given only part of it).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parent.parent / "docs" / "SPEC.md"
ROW = re.compile(r"^\|\s*((?:SRS|SDD)-\d{3})\s*\|\s*([^|]+?)\s*\|", re.MULTILINE)

_tests_by_id: dict[str, list[str]] = defaultdict(list)


def spec_ids(text: str) -> dict[str, str]:
    """Requirement id -> title, from the spec's table rows."""
    return {match.group(1): match.group(2) for match in ROW.finditer(text)}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--spec-check", action="store_true", help="fail when an SRS requirement has no test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    listed = spec_ids(SPEC.read_text(encoding="utf-8"))
    unknown = []
    for item in items:
        for mark in item.iter_markers("req"):
            for requirement in mark.args:
                if requirement not in listed:
                    unknown.append(f"{item.nodeid}: {requirement}")
                _tests_by_id[requirement].append(item.nodeid)
    if hasattr(config, "workeroutput"):  # an xdist worker: the controller prints and checks
        config.workeroutput["spec_tests"] = dict(_tests_by_id)
    if unknown:
        raise pytest.UsageError("tests name requirements that docs/SPEC.md does not list:\n  " + "\n  ".join(unknown))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist's controller: a worker finished; its collected requirement ids join the report."""
    for requirement, nodeids in getattr(node, "workeroutput", {}).get("spec_tests", {}).items():
        known = _tests_by_id[requirement]
        known.extend(nodeid for nodeid in nodeids if nodeid not in known)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    listed = spec_ids(SPEC.read_text(encoding="utf-8"))
    required = [requirement for requirement in listed if requirement.startswith("SRS-")]
    missing = [requirement for requirement in required if not _tests_by_id.get(requirement)]
    covered = len(required) - len(missing)
    terminalreporter.section("spec coverage")
    terminalreporter.write_line(f"{covered}/{len(required)} SRS requirements have tests (docs/SPEC.md)")
    for requirement in listed:
        count = len(_tests_by_id.get(requirement, []))
        title = listed[requirement]
        terminalreporter.write_line(f"  {requirement} {count:3d} test(s)  {title[:90]}{'…' if len(title) > 90 else ''}")
    if missing:
        terminalreporter.write_line("requirements without a test: " + ", ".join(missing), red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.getoption("--spec-check"):
        return
    listed = spec_ids(SPEC.read_text(encoding="utf-8"))
    if any(requirement.startswith("SRS-") and not _tests_by_id.get(requirement) for requirement in listed):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
