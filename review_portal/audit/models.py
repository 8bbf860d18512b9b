"""Audit events and the head of their hash chain.

Each event stores the SHA-256 of its own canonical content together with the hash of the
event before it, so changing or deleting any stored event breaks the chain from there on.
The single ``audit_chain_head`` row is locked by every writer, which serialises appends
across processes and keeps the chain linear.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from review_portal.db import utcnow
from review_portal.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    #: Assigned under the chain head's lock: gapless and in chain order.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: The user who acted; ``None`` when the portal acted by itself.
    actor_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    #: The actor's e-mail at the time, kept so the record reads the same if the user changes.
    actor_label: Mapped[str] = mapped_column(sa.String(255), default="system")
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(80), index=True)
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    before: Mapped[dict | None] = mapped_column(sa.JSON)
    after: Mapped[dict | None] = mapped_column(sa.JSON)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)

    __table_args__ = (sa.Index("ix_audit_events_object", "object_type", "object_id"),)


class AuditChainHead(db.Model):
    """One row: the last event of the chain. Writers lock it before appending."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_event_id: Mapped[int | None] = mapped_column()
    last_hash: Mapped[str] = mapped_column(sa.String(64))
