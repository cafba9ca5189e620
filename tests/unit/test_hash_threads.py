"""The hashing threads follow the cores the process may run on, not the machine's (SDD-271): a worker pinned
to one core with two hashing threads time-slices two 19 MiB argon2 working sets on it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.req("SDD-271")

# Hash eight passwords at once and count the hasher's threads (a ThreadPoolExecutor starts them as needed).
COUNT_THREADS = """
import asyncio, os, sys, threading
if sys.argv[1] != "all":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from py_app.infra.security import Argon2Hasher

async def main():
    hasher = Argon2Hasher(memory_kib=1024, iterations=1)
    await asyncio.gather(*(hasher.hash(f"password {n}") for n in range(8)))
    print(sum(thread.name.startswith("argon2") for thread in threading.enumerate()), len(os.sched_getaffinity(0)))
    hasher.close()

asyncio.run(main())
"""


def _threads(cores: str) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", COUNT_THREADS, cores], capture_output=True, text=True, check=True)
    threads, allowed = done.stdout.split()
    return int(threads), int(allowed)


def test_a_process_pinned_to_one_core_hashes_on_one_thread() -> None:
    assert _threads("one") == (1, 1)


def test_a_process_on_every_core_hashes_on_one_thread_per_core() -> None:
    threads, allowed = _threads("all")
    assert allowed == len(os.sched_getaffinity(0))
    assert threads == allowed
