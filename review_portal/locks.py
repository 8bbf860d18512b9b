"""Named locks held until the end of the current transaction.

PostgreSQL: a transaction-level advisory lock, so two processes (or machines) running the
same critical operation wait for each other. SQLite: every transaction already begins
IMMEDIATE (``db.configure_sqlite``), which serialises writers, so nothing more is needed.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa

from review_portal.extensions import db


def hold_lock(name: str) -> None:
    """Take the lock ``name`` for the rest of the current transaction (waits for it)."""
    if db.session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(name.encode())
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
