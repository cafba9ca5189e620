"""The security adapter: the only module that imports the Rust core (enforced by import-linter).

Password hashing is memory-hard and slow on purpose, so it runs in worker threads (the Rust core
releases the GIL) behind a semaphore that bounds memory: each hash holds ``memory_kib`` KiB.
"""

from __future__ import annotations

import asyncio

from py_app import _rust_core

DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, DEFAULT_PARALLELISM = 19456, 2, 1


def core_version() -> str:
    """The version of the loaded Rust core, proof that the extension is built and importable."""
    return _rust_core.version()


class Argon2Hasher:
    """argon2id through the Rust core, off the event loop, at most ``max_concurrent`` at a time."""

    def __init__(
        self,
        memory_kib: int = DEFAULT_MEMORY_KIB,
        iterations: int = DEFAULT_ITERATIONS,
        parallelism: int = DEFAULT_PARALLELISM,
        max_concurrent: int = 4,
    ) -> None:
        self._hasher = _rust_core.PasswordHasher(memory_kib=memory_kib, iterations=iterations, parallelism=parallelism)
        self._slots = asyncio.Semaphore(max_concurrent)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, encoded: str, password: str) -> bool:
        """False for a wrong password, and for one too long to ever have been stored."""
        async with self._slots:
            try:
                return await asyncio.to_thread(self._hasher.verify, encoded, password)
            except _rust_core.PasswordTooLongError:
                return False

    def needs_rehash(self, encoded: str) -> bool:
        return self._hasher.needs_rehash(encoded)
