"""Content-addressed file storage outside the web root (``STORAGE_DIR``).

A file lives at ``<STORAGE_DIR>/files/ab/cd/<sha256>``. Writes go to a temporary file in the
same directory and are renamed into place, so a reader never sees half a file and a
refused or failed write leaves nothing behind. Identical content is stored once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from flask import current_app

CHUNK = 1024 * 1024


class TooLarge(Exception):
    """The content is longer than the allowed size."""


def root() -> Path:
    return Path(current_app.config["STORAGE_DIR"]) / "files"


def path_for(sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a SHA-256 hex digest")
    return root() / sha256[:2] / sha256[2:4] / sha256


def save_stream(chunks: Iterable[bytes], max_size: int | None = None) -> tuple[str, int]:
    """Store the content of ``chunks``; returns its SHA-256 and size.

    Raises :class:`TooLarge` (leaving nothing on disk) when it exceeds ``max_size`` bytes.
    """
    incoming = root() / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, temp_name = tempfile.mkstemp(dir=incoming)
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
        if target.exists():
            temp.unlink()
        else:
            os.replace(temp, target)
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
