"""Content-addressed file storage outside the web root (``STORAGE_DIR``).

A file lives at ``<STORAGE_DIR>/files/ab/cd/<sha256>``. Writes go to a temporary file in
``files/incoming/`` and are renamed into place, so a reader never sees half a file and a
refused or failed write leaves nothing behind. Identical content is stored once.

**No file outlives its transaction.** A file is written before the row that names it is
committed (a conclusion's PDF, an upload). Each write that *creates* a file is remembered
in the database session (:data:`WRITTEN`); when the session's transaction commits the list
is forgotten, and when it ends any other way (an exception, a failed flush, a lost
database, a closed session) the files it created are deleted again by
:func:`discard_written`. A write whose content was already on disk creates nothing and
deletes nothing: the same bytes may be another row's file.

Two transactions may store the same bytes at once, one of them failing. Every write that
finds its file already there *touches* it (sets its modification time to the exact present
nanosecond), and a file is discarded only when its modification time is still the one its
own write gave it: it is first renamed out of place (atomic), then checked, then put back
or deleted. A writer arriving after the rename finds no file and writes it again. The same
check guards ``flask storage-cleanup`` (:mod:`review_portal.storage_cleanup`), whose grace
period counts from that modification time: a file in use by a transaction that has not
committed yet is always younger than the grace period.

Files written inside a savepoint that rolls back while its transaction commits are kept
(rare: ``storage-cleanup`` finds them once nothing references them).

**A commit whose outcome is unknown keeps its files.** When the database's ``COMMIT``
itself fails (the connection lost while it was in flight), the server may have applied
it: the rows naming the files may exist. Deleting then could leave a committed conclusion
without its PDF, so the files are kept and logged; ``storage-cleanup`` deletes them later
if no row refers to them. Everything that fails before the ``COMMIT`` is sent (the code
between the write and the commit, the flush) is sure not to have committed and deletes
them as above. The moment is seen by the engine's ``commit`` event, counted per thread
(:data:`_database_commits`) and compared with the count when the session began to commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from pathlib import Path

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024

#: The ending of a file moved aside by :func:`discard` for its last check.
DISCARDING = ".discard"

#: Key in a session's ``info``: ``{path of a file this transaction created: its mtime_ns}``.
WRITTEN = "storage_written"

#: Key in a session's ``info``: :data:`_database_commits` when the session began to commit.
COMMITTING = "storage_committing"

#: ``COMMIT`` statements this thread (context) has sent to a database, counted by the
#: engine's ``commit`` event, which fires just before the statement goes out.
_database_commits: ContextVar[int] = ContextVar("storage_database_commits", default=0)


class TooLarge(Exception):
    """The content is longer than the allowed size."""


def root() -> Path:
    return Path(current_app.config["STORAGE_DIR"]) / "files"


def incoming() -> Path:
    """Where writes are assembled and discarded files wait for their last check."""
    return root() / "incoming"


def is_key(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def path_for(sha256: str) -> Path:
    if not is_key(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return root() / sha256[:2] / sha256[2:4] / sha256


def _touch(path: Path) -> bool:
    """Mark an existing file as in use now; false when there is no file (one system call,
    so a concurrent discard either sees the new time or has already moved the file away)."""
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except FileNotFoundError:
        return False
    return True


def save_stream(chunks: Iterable[bytes], max_size: int | None = None) -> tuple[str, int]:
    """Store the content of ``chunks``; returns its SHA-256 and size.

    Raises :class:`TooLarge` (leaving nothing on disk) when it exceeds ``max_size`` bytes.
    A file this call creates is deleted again if the current transaction does not commit.
    """
    folder = incoming()
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, temp_name = tempfile.mkstemp(dir=folder)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise TooLarge
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha256 = digest.hexdigest()
        target = path_for(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        if _touch(target):
            temp.unlink()
        else:
            # The exact time the file is created with: a later touch by another writer
            # always differs from it (see the module's docstring).
            written = time.time_ns()
            os.utime(temp, ns=(written, written))
            os.replace(temp, target)
            _remember(target, written)
        return sha256, size
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def save_bytes(data: bytes) -> tuple[str, int]:
    return save_stream([data])


def read_bytes(sha256: str) -> bytes:
    return path_for(sha256).read_bytes()


def iter_chunks(stream, size: int = CHUNK):
    """The chunks of a binary stream (an upload)."""
    while chunk := stream.read(size):
        yield chunk


# --- files of a transaction ---------------------------------------------------------------


def _session():
    from review_portal.extensions import db

    # The session itself, not the scoped proxy (which does not pass on everything).
    return db.session() if has_app_context() else None


def _remember(path: Path, written_ns: int) -> None:
    session = _session()
    if session is not None:
        if not session.in_transaction():
            # What the session's next statement would do (no connection is taken yet): the
            # file belongs to this transaction, whichever way it ends.
            session.begin()
        session.info.setdefault(WRITTEN, {})[str(path)] = written_ns


def forget_written(sha256: str) -> None:
    """Delete now a file the current transaction created for ``sha256`` (a refused upload
    in a request that still commits); a file that was there before is kept."""
    session = _session()
    written = session.info.get(WRITTEN, {}) if session is not None else {}
    path = path_for(sha256)
    if str(path) in written:
        discard(path, written.pop(str(path)))


def discard(path: Path, written_ns: int | None = None, *, older_than_ns: int | None = None) -> bool:
    """Delete ``path`` unless someone has used it since: its modification time must still
    be ``written_ns`` (a write's own) or before ``older_than_ns`` (the clean-up's grace
    period). Returns whether the file was deleted. The file is moved out of place first,
    so a writer storing the same bytes meanwhile either touched it before (it is put back)
    or finds no file and writes it again."""
    aside = path.parent / f".{path.name}.{uuid.uuid4().hex}{DISCARDING}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    mtime = aside.stat().st_mtime_ns
    unused = (written_ns is not None and mtime == written_ns) or (
        older_than_ns is not None and mtime < older_than_ns
    )
    if not unused:
        # Written again meanwhile (FileExistsError): the same bytes.
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
        aside.unlink()
        return False
    aside.unlink()
    return True


def discard_written(written: dict[str, int]) -> None:
    """Delete the files a transaction that did not commit created (see the docstring)."""
    for name, written_ns in written.items():
        try:
            if discard(Path(name), written_ns):
                log.info("deleted %s: its transaction did not commit", name)
        except OSError:
            log.exception("could not delete %s after its transaction rolled back", name)


@event.listens_for(Engine, "commit")
def _database_commit(connection) -> None:
    _database_commits.set(_database_commits.get() + 1)


@event.listens_for(Session, "before_commit")
def _committing(session) -> None:
    if WRITTEN in session.info and not session.in_nested_transaction():
        session.info[COMMITTING] = _database_commits.get()


@event.listens_for(Session, "after_commit")
def _committed(session) -> None:
    # Fired for a savepoint's release too, which commits nothing yet.
    if not session.in_nested_transaction():
        session.info.pop(WRITTEN, None)
        session.info.pop(COMMITTING, None)


@event.listens_for(Session, "after_transaction_end")
def _ended(session, transaction) -> None:
    # The outermost transaction only: a savepoint's end decides nothing (its transaction
    # may still commit). After a commit ``_committed`` has emptied the list already.
    if transaction.parent is None and not transaction.nested:
        written = session.info.pop(WRITTEN, None)
        committing = session.info.pop(COMMITTING, None)
        if not written:
            return
        if committing is not None and _database_commits.get() > committing:
            log.warning(
                "kept %d file(s) of a transaction whose COMMIT failed in flight (it may have "
                "committed); storage-cleanup deletes them if no row refers to them: %s",
                len(written),
                ", ".join(sorted(written)),
            )
            return
        discard_written(written)
