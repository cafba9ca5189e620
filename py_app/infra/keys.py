"""Signing keys kept as files: the key ring, its lifecycle, and a watcher that follows it while serving.

A ring is one JSON file (``ring.json``, mode 0600) in a directory of its own. It is only ever replaced
whole (a complete temporary file renamed over it), so a reader sees the old ring or the new one, never
part of either. Creation links a complete temporary file into place, which fails when the file exists:
of several processes starting at once exactly one creates the ring and the others read that one.
Rotation holds an exclusive lock on ``.ring.lock`` while it reads, changes and replaces the ring.

A key's state follows from its times and the clock, so nothing has to be written for a key to start
signing or to retire, and every process that holds the same file agrees:

=========  ==================================================================  ===========================
state      when                                                                published / verifies / signs
=========  ==================================================================  ===========================
pending    ``now < signs_from``                                                yes / yes / no
active     the newest key whose ``signs_from`` has passed                      yes / yes / yes
verifying  superseded, ``now < retires_at``                                    yes / yes / no
retired    ``now >= retires_at``; removed from the file at the next rotation   no / no / no
=========  ==================================================================  ===========================

This module stores and schedules keys; the Rust core (``infra/security.py``) signs and verifies with them.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import itertools
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

logger = logging.getLogger("arcana.keys")

RING_FILE = "ring.json"
LOCK_FILE = ".ring.lock"
FORMAT: Final = "arcana-key-ring/1"
SEED_BYTES = 32  # an Ed25519 private key is its 32-byte seed (RFC 8032)
FILE_ALGORITHMS = ("EdDSA",)  # rings kept as files; HS256 keeps its one key in ARCANA_JWT_SECRET


class KeyRingError(ValueError):
    """The key ring is missing, unreadable, invalid or cannot do what was asked; one line, naming the file."""


class KeyState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    VERIFYING = "verifying"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class RingKey:
    """One key: its id, algorithm, private material (HMAC secret or Ed25519 seed) and times (Unix seconds)."""

    kid: str
    alg: str
    material: bytes
    created_at: int
    signs_from: int
    retires_at: int | None = None

    def __repr__(self) -> str:  # never print key material
        return (
            f"RingKey(kid={self.kid!r}, alg={self.alg!r}, signs_from={self.signs_from}, retires_at={self.retires_at})"
        )


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Keys of one algorithm (one verifier never mixes HMAC and asymmetric keys, RFC 8725), oldest first."""

    alg: str
    keys: tuple[RingKey, ...]

    def state(self, key: RingKey, now: int) -> KeyState:
        if key.retires_at is not None and now >= key.retires_at:
            return KeyState.RETIRED
        if now < key.signs_from:
            return KeyState.PENDING
        return KeyState.ACTIVE if key is self._newest_started(now) else KeyState.VERIFYING

    def signing_key(self, now: int) -> RingKey:
        key = self._newest_started(now)
        if key is None:
            raise KeyRingError("no key of the ring can sign now (all are pending or retired)")
        return key

    def verifying_keys(self, now: int) -> list[RingKey]:
        """Every key not retired: pending keys too, since another host's clock may already sign with them."""
        return [key for key in self.keys if self.state(key, now) is not KeyState.RETIRED]

    def _newest_started(self, now: int) -> RingKey | None:
        started = [k for k in self.keys if k.signs_from <= now and (k.retires_at is None or now < k.retires_at)]
        return started[-1] if started else None

    def next_change(self, now: int) -> int | None:
        """The next time a key changes state, or None."""
        times = [t for key in self.keys for t in (key.signs_from, key.retires_at) if t is not None and t > now]
        return min(times, default=None)

    def rotated(self, new: RingKey, now: int, *, verify_for: int, retire_previous: bool = False) -> KeyRing:
        """The ring with ``new`` added and every current key scheduled to retire.

        Each key still signing or verifying stops signing when ``new`` starts and keeps verifying for
        ``verify_for`` seconds after that (its last token's lifetime and leeway); a key already given a
        retirement time keeps it. ``retire_previous`` retires them now (a leaked key) and needs ``new`` to
        sign at once. Retired keys are dropped.
        """
        if new.alg != self.alg:
            raise KeyRingError(f"the ring holds {self.alg} keys; a {new.alg} key cannot join it")
        waiting = [key for key in self.keys if self.state(key, now) is KeyState.PENDING]
        if waiting:
            raise KeyRingError(
                f"key {waiting[0].kid} already waits to sign from {iso(waiting[0].signs_from)}; rotate again after that"
            )
        if retire_previous and new.signs_from > now:
            raise KeyRingError("retiring the previous keys needs the new key to sign at once")
        kept = []
        for key in self.keys:
            if self.state(key, now) is KeyState.RETIRED:
                continue
            if retire_previous:
                kept.append(replace(key, retires_at=now))
            elif key.retires_at is None:
                kept.append(replace(key, retires_at=new.signs_from + verify_for))
            else:
                kept.append(key)
        return KeyRing(self.alg, (*kept, new))


def new_key(alg: str, now: int, signs_from: int | None = None) -> RingKey:
    """A fresh random key; its id tells the day it was made and nothing about the key."""
    if alg not in FILE_ALGORITHMS:
        raise KeyRingError(f"key rings kept as files hold {', '.join(FILE_ALGORITHMS)} keys, not {alg}")
    kid = f"{datetime.fromtimestamp(now, UTC):%Y%m%d}-{secrets.token_hex(4)}"
    return RingKey(kid, alg, secrets.token_bytes(SEED_BYTES), now, now if signs_from is None else signs_from)


def secret_ring(secret: bytes, alg: str = "HS256") -> KeyRing:
    """The one-key HMAC ring of a configured secret; its kid is a prefix of the secret's SHA-256 (as ever)."""
    return KeyRing(alg, (RingKey(hashlib.sha256(secret).hexdigest()[:16], alg, secret, 0, 0),))


def iso(timestamp: int | None) -> str:
    return "-" if timestamp is None else datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the file ------------------------------------------------------------------------------------------


UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]


class _KeyEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kid: str
    alg: str
    private_key: str  # base64url without padding
    created_at: UtcTime
    signs_from: UtcTime
    retires_at: UtcTime | None = None


class _RingDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: Literal["arcana-key-ring/1"]
    keys: list[_KeyEntry]


def _seconds(value: datetime) -> int:
    return int(value.timestamp())


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def encode_ring(ring: KeyRing) -> bytes:
    entries = [
        _KeyEntry(
            kid=key.kid,
            alg=key.alg,
            private_key=base64.urlsafe_b64encode(key.material).rstrip(b"=").decode(),
            created_at=_time(key.created_at),
            signs_from=_time(key.signs_from),
            retires_at=None if key.retires_at is None else _time(key.retires_at),
        )
        for key in ring.keys
    ]
    return msgspec.json.format(msgspec.json.encode(_RingDocument(FORMAT, entries)), indent=2) + b"\n"


def decode_ring(data: bytes) -> KeyRing:
    """Parse and check a ring file's content; KeyRingError (one line) when it is not a usable ring."""
    try:
        document = msgspec.json.decode(data, type=_RingDocument)
        keys = tuple(
            RingKey(
                kid=entry.kid,
                alg=entry.alg,
                material=base64.urlsafe_b64decode(entry.private_key + "=" * (-len(entry.private_key) % 4)),
                created_at=_seconds(entry.created_at),
                signs_from=_seconds(entry.signs_from),
                retires_at=None if entry.retires_at is None else _seconds(entry.retires_at),
            )
            for entry in document.keys
        )
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise KeyRingError(f"not a key ring: {str(exc).splitlines()[0]}") from None
    _check(keys)
    return KeyRing(keys[0].alg, keys)


def _check(keys: tuple[RingKey, ...]) -> None:
    if not keys:
        raise KeyRingError("the ring holds no key")
    algorithms = {key.alg for key in keys}
    if len(algorithms) > 1:
        raise KeyRingError(f"the ring mixes algorithms ({', '.join(sorted(algorithms))}); one ring, one algorithm")
    if keys[0].alg not in FILE_ALGORITHMS:
        raise KeyRingError(f"unsupported algorithm {keys[0].alg}; key rings kept as files hold EdDSA keys")
    if len({key.kid for key in keys}) != len(keys) or any(not key.kid.isprintable() or not key.kid for key in keys):
        raise KeyRingError("key ids must be unique and printable")
    if any(len(key.material) != SEED_BYTES for key in keys):
        raise KeyRingError(f"an EdDSA private key is {SEED_BYTES} bytes")
    for older, newer in itertools.pairwise(keys):
        if older.signs_from > newer.signs_from or older.retires_at is None:
            raise KeyRingError(f"key {older.kid}: keys must be oldest first and superseded ones must retire")


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What tells a changed file from the one last read (a replaced file is a new inode)."""

    inode: int
    mtime_ns: int
    size: int


class KeyRingStore:
    """The ring file in ``directory``: read, created once, rotated under a lock, replaced whole."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / RING_FILE

    def exists(self) -> bool:
        return self.path.exists()

    def stamp(self) -> FileStamp:
        status = self.path.stat()
        return FileStamp(status.st_ino, status.st_mtime_ns, status.st_size)

    def load(self) -> KeyRing:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise KeyRingError(f"{self.path}: no key ring; create one with `python -m py_app rotate-keys`") from None
        except OSError as exc:
            raise KeyRingError(f"{self.path}: cannot read the key ring ({exc.strerror})") from None
        try:
            return decode_ring(data)
        except KeyRingError as exc:
            raise KeyRingError(f"{self.path}: {exc}") from None

    def warn_if_exposed(self) -> None:
        """Private keys readable by others draw a warning (not a refusal: secret volumes often mount 0644)."""
        with contextlib.suppress(OSError):
            mode = self.path.stat().st_mode & 0o777
            if mode & 0o077:
                logger.warning("key ring is readable by other users", extra={"path": str(self.path), "mode": oct(mode)})

    def create(self, ring: KeyRing) -> KeyRing:
        """Put ``ring`` in place unless a ring exists; return the ring that is in place (ours or the other's)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self._write_temporary(encode_ring(ring))
        try:
            os.link(temporary, self.path)  # atomic, and fails when another process was first
        except FileExistsError:
            return self.load()
        finally:
            temporary.unlink()
        self._sync_directory()
        return ring

    def update(self, change: Callable[[KeyRing | None], KeyRing]) -> tuple[KeyRing | None, KeyRing]:
        """Apply ``change`` to the current ring (None when there is none) under the lock; (before, after)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._locked():
            before = self.load() if self.exists() else None
            after = change(before)
            temporary = self._write_temporary(encode_ring(after), like=self.path if before else None)
            try:
                os.replace(temporary, self.path)
            except OSError:
                temporary.unlink()
                raise
            self._sync_directory()
        return before, after

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write_temporary(self, data: bytes, like: Path | None = None) -> Path:
        temporary = self.directory / f".{RING_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if like is not None:  # a replaced ring keeps the mode and, where allowed, the owner it was given
                status = like.stat()
                os.fchmod(fd, status.st_mode & 0o777)
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, status.st_uid, status.st_gid)
            os.write(fd, data)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            temporary.unlink()
            raise
        os.close(fd)
        return temporary

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_once(path: Path, data: bytes) -> bytes:
    """Create ``path`` (mode 0600) holding ``data`` unless it exists; return what the file holds.

    The content is complete before the file appears under its name, so a process that loses the race
    never reads a file the winner is still writing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return path.read_bytes()
    finally:
        temporary.unlink()
    return data


# --- following the ring while serving ------------------------------------------------------------------


class KeyRingWatcher:
    """Follows the ring file from a thread of its own, so no request ever waits for the disk.

    Every ``interval`` seconds it looks at the file (one ``stat``); when the file changed it reads it, and
    when the file changed or a key's time has come (a pending key starts signing, a key retires) it hands
    the ring to ``apply``. A ring that cannot be read or used is logged and the last good one kept.
    """

    def __init__(
        self,
        store: KeyRingStore,
        apply: Callable[[KeyRing, int], None],
        *,
        ring: KeyRing,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._apply, self._interval, self._clock = store, apply, interval, clock
        self._ring = ring
        self._last_error = ""
        self._stamp = self._current_stamp()
        self._due = ring.next_change(int(clock()))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """One look at the file and the clock; True when a new ring or key state was applied."""
        now = int(self._clock())
        stamp = self._current_stamp()
        ring = self._ring
        changed = stamp is not None and stamp != self._stamp
        if not changed and (self._due is None or now < self._due):
            return False
        try:
            if changed:
                ring = self._store.load()
            self._apply(ring, now)
        except KeyRingError as exc:
            self._report(str(exc))
            self._stamp = stamp  # retried when the file changes again, not every interval
            return False
        self._ring, self._stamp, self._due, self._last_error = ring, stamp, ring.next_change(now), ""
        logger.info(
            "signing keys changed",
            extra={"signing": ring.signing_key(now).kid, "verifying": [key.kid for key in ring.verifying_keys(now)]},
        )
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="key-ring-watcher", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except Exception:  # a watcher that dies would freeze the keys silently: log and keep watching
                logger.exception("key ring check failed")

    def _current_stamp(self) -> FileStamp | None:
        try:
            return self._store.stamp()
        except OSError as exc:
            self._report(f"{self._store.path}: cannot read the key ring ({exc.strerror})")
            return None

    def _report(self, message: str) -> None:
        if message != self._last_error:  # once per distinct problem, not once per interval
            logger.error("key ring not applied; the previous keys stay in use", extra={"reason": message})
            self._last_error = message
