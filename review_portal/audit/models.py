"""Audit events, the hash chain that links them in order, and the signed anchors of the chain.

Writing and linking are two steps, so audited transactions never wait for each other:

* an audited transaction inserts its events, each with the SHA-256 of its own canonical
  content (:class:`AuditEvent`), and queues them (:class:`AuditPending`);
* shortly after it commits, one chaining step at a time (under the lock of the single
  :class:`AuditChainHead` row, held for milliseconds) appends the queued events to the chain:
  a gapless position each and a link (:class:`AuditLink`) that covers the position, the
  event's content hash and the link before it, so changing, removing or reordering any
  record breaks every later link;
* the head of the chain is signed with ``AUDIT_ANCHOR_KEY`` (HMAC) every day and at every
  registry publication (:class:`AuditAnchor`): someone who rewrites a record and recomputes
  every later hash and link cannot sign the new links, so the anchors give them away.

Events, links and anchors are append-only in the database itself (triggers of migrations
0001 and 0012).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from review_portal.db import utcnow
from review_portal.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    #: Taken from the table's sequence (SQLite: the next rowid) before the row is written,
    #: since it is part of the hashed content. In order of writing, not gapless: the chain
    #: order is the links' (:class:`AuditLink`).
    id: Mapped[int] = mapped_column(sa.Identity(), primary_key=True)
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
    #: The hash of the event before it, for events written before migration 0012 (each
    #: transaction then linked its events itself); ``None`` since: the links do it.
    prev_hash: Mapped[str | None] = mapped_column(sa.String(64))
    #: SHA-256 of the canonical content (``prev_hash`` included: ``null`` for new events).
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)

    __table_args__ = (sa.Index("ix_audit_events_object", "object_type", "object_id"),)


class AuditPending(db.Model):
    """An event written but not yet linked into the chain (the chaining step's queue)."""

    __tablename__ = "audit_pending"

    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("audit_events.id", ondelete="RESTRICT"), primary_key=True, autoincrement=False
    )


class AuditLink(db.Model):
    """An event's place in the chain."""

    __tablename__ = "audit_links"

    #: 1, 2, 3 ... without gaps, in the order the chaining step took the events.
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("audit_events.id", ondelete="RESTRICT"), unique=True
    )
    #: The link at the position before (the genesis hash at position 1).
    prev_link: Mapped[str] = mapped_column(sa.String(64))
    #: SHA-256 over the position, ``prev_link``, the event's id and its content hash.
    link: Mapped[str] = mapped_column(sa.String(64))


class AuditChainHead(db.Model):
    """One row: the end of the chain. Only the chaining step locks it, for milliseconds."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The event at the last position (``None`` for an empty chain).
    last_event_id: Mapped[int | None] = mapped_column()
    last_position: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    last_link: Mapped[str] = mapped_column(sa.String(64))


class AuditAnchor(db.Model):
    """The head of the chain at a moment, signed with ``AUDIT_ANCHOR_KEY``."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    position: Mapped[int] = mapped_column()
    link: Mapped[str] = mapped_column(sa.String(64))
    #: HMAC-SHA256 of the position, the link and ``created_at`` (hex).
    signature: Mapped[str] = mapped_column(sa.String(64))
    #: Why it was written: ``daily``, ``registry:<kind>:<number>``, ``command``.
    reason: Mapped[str] = mapped_column(sa.String(80))
