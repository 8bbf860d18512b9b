"""Named locks.

:func:`hold_lock` is held until the end of the current transaction. PostgreSQL: a
transaction-level advisory lock, so two processes (or machines) running the same critical
operation wait for each other. SQLite: every transaction already begins IMMEDIATE
(``db.configure_sqlite``), which serialises writers, so nothing more is needed.

:func:`try_lock` is held for a block of code that commits many transactions (a job's whole
run), and never waits: it says whether it got the lock. Whoever holds it keeps it until the
block ends or their process dies (the operating system or the database then releases it), so
a lock is never left behind by a killed process. PostgreSQL: a session-level advisory lock
on a connection of its own, idle between the two statements that take and release it.
SQLite (one machine by nature): an exclusive ``flock`` on a file beside the database, which
threads and processes alike contend for; an in-memory database has one process only, so a
lock of that process does.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from review_portal.extensions import db


def hold_lock(name: str) -> None:
    """Take the lock ``name`` for the rest of the current transaction (waits for it)."""
    if db.session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(name.encode())
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _int32(text: str) -> int:
    """A signed 32-bit key for ``text`` (PostgreSQL's advisory keys are signed)."""
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")
    return value - (1 << 32) if value >= 1 << 31 else value


@contextmanager
def try_lock(space: str, key: int) -> Iterator[bool]:
    """Try to take the lock ``(space, key)`` (e.g. ``("job", 12)``) for the block; yields
    whether it was taken, at once (never waits). Use it outside any transaction of the
    session: it works on connections of its own."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with _postgres_lock(engine, space, key) as held:
            yield held
    elif engine.url.database and engine.url.database != ":memory:":
        with _file_lock(Path(engine.url.database), space, key) as held:
            yield held
    else:
        with _process_lock(space, key) as held:
            yield held


@contextmanager
def _postgres_lock(engine: sa.Engine, space: str, key: int) -> Iterator[bool]:
    # The two-key form: a key space apart from :func:`hold_lock`'s one-key locks.
    keys = {"space": _int32(space), "key": key}
    connection = engine.connect()
    try:
        held = connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:space, :key)"), keys
        ).scalar_one()
        connection.commit()  # idle, not "idle in transaction", while the block runs
    except BaseException:
        connection.invalidate()
        connection.close()
        raise
    try:
        yield bool(held)
    finally:
        try:
            if held:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:space, :key)"), keys)
                connection.commit()
        except Exception:  # noqa: BLE001 - a lost connection has released the lock itself
            connection.invalidate()
        finally:
            connection.close()


@contextmanager
def _file_lock(database: Path, space: str, key: int) -> Iterator[bool]:
    folder = database.parent / f"{database.name}.locks"
    folder.mkdir(exist_ok=True)
    path = folder / f"{space}-{key}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            # The holder before us may have removed the file between our open and our lock:
            # then the lock is on a file nobody else will find, and it counts as not taken.
            try:
                held = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                held = False
        yield held
    finally:
        if held:
            path.unlink(missing_ok=True)  # no file left per job; see the check above
        os.close(fd)  # releases the lock


_process_locks: dict[tuple[str, int], threading.Lock] = {}
_process_locks_guard = threading.Lock()


@contextmanager
def _process_lock(space: str, key: int) -> Iterator[bool]:
    with _process_locks_guard:
        lock = _process_locks.setdefault((space, key), threading.Lock())
    held = lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()
