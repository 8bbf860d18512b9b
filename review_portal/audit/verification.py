"""Verifying the audit log: every record's content, every link of the chain, the head, and
every signed anchor — those of the anchor table and the copies published with the registry.

A record changed in place breaks its own content hash; one changed and re-hashed breaks its
link; a chain rewritten from some record on, every later hash and link recomputed and the
head moved, is consistent in itself but no longer matches the signed anchors at or after
that record, and nobody without ``AUDIT_ANCHOR_KEY`` can sign new ones. Such a mismatch is
reported at the first record after the last anchor that still matches: the rewrite began
there or later. Reads only; memory stays bounded (the chain is read in batches).

Left undetected by design: records appended after the last anchor by someone with write
access to the database (appending is what the log is for), and an unlinked record removed
together with its queue entry in the seconds before the chaining step links it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from review_portal.audit.chain import GENESIS_HASH, event_hash, link_hash, signature_valid
from review_portal.audit.models import (
    AuditAnchor,
    AuditChainHead,
    AuditEvent,
    AuditLink,
    AuditPending,
)
from review_portal.audit.services import anchor_keys
from review_portal.extensions import db
from review_portal.registry.models import RegistrySnapshot

PROBLEMS = {
    "gap": _l("records before this one are missing"),
    "missing": _l("this record was removed from the log"),
    "link": _l("link to the previous record is broken"),
    "hash": _l("content does not match its hash"),
    "tail": _l("records at the end of the log are missing"),
    "anchor": _l(
        "the chain no longer matches a signed anchor: a record from here on was changed or removed"
    ),
    "forged": _l(
        "an anchor's signature is not valid (forged, or signed with another key): the records "
        "from here on cannot be trusted"
    ),
    "unlinked": _l(
        "this record was never linked into the chain: its place in the queue was removed"
    ),
}

#: Problems found through an anchor: the record named is the first after the last good one.
ANCHOR_CODES = ("anchor", "forged")


@dataclass(frozen=True)
class Anchor:
    """A signed head, from the anchor table or copied into a registry snapshot."""

    label: str
    position: int
    link: str
    signature: str
    anchored_at: datetime


@dataclass(frozen=True)
class ChainReport:
    #: Records found intact: all of them (linked and queued) when the log is intact, else
    #: those before the record named.
    checked: int
    #: The id of the record named (the first that does not match, or the first after the
    #: last good anchor); ``None`` when the log is intact or nothing is left there.
    first_broken_id: int | None
    #: What is wrong (see :data:`PROBLEMS`), ``None`` when the log is intact.
    code: str | None
    #: The chain position of the record named.
    position: int | None = None
    #: Anchors found good (signature and link) before the problem, or all of them.
    anchors: int = 0
    #: The last good anchor before the problem (or the last of all).
    last_anchor: Anchor | None = None
    #: The anchor that gave the problem away (``anchor`` and ``forged``).
    bad_anchor: Anchor | None = None
    #: Records written but not yet linked into the chain (their content was checked).
    pending: int = 0

    @property
    def problem(self):
        """What is wrong, in the interface language."""
        return PROBLEMS[self.code] if self.code else None

    @property
    def ok(self) -> bool:
        return self.code is None


def _anchors() -> list[Anchor]:
    table = AuditAnchor.__table__
    anchors = [
        Anchor(f"anchor {r.id} ({r.reason})", r.position, r.link, r.signature, r.created_at)
        for r in db.session.execute(sa.select(table))
    ]
    snapshots = RegistrySnapshot.__table__
    anchors += [
        Anchor(
            f"registry publication {getattr(r.kind, 'value', r.kind)} № {r.number}",
            r.audit_position,
            r.audit_link,
            r.audit_signature,
            r.audit_anchored_at,
        )
        for r in db.session.execute(
            sa.select(snapshots).where(snapshots.c.audit_position.is_not(None))
        )
    ]
    return sorted(anchors, key=lambda a: (a.position, a.anchored_at))


class _Walk:
    """The state of one verification: the anchors by position and the last good one."""

    def __init__(self, anchors: list[Anchor], keys: list[str]) -> None:
        self.keys = keys
        self.by_position: dict[int, list[Anchor]] = defaultdict(list)
        for anchor in anchors:
            self.by_position[anchor.position].append(anchor)
        self.good = 0
        self.last_good: Anchor | None = None

    def check_anchors(self, position: int, link: str) -> tuple[str, Anchor] | None:
        """The anchors at ``position`` against the link found there (and forget them)."""
        for anchor in self.by_position.pop(position, ()):
            if not signature_valid(
                self.keys, anchor.position, anchor.link, anchor.anchored_at, anchor.signature
            ):
                return "forged", anchor
            if anchor.link != link:
                return "anchor", anchor
            self.good += 1
            self.last_good = anchor
        return None

    def broken_after_last_good(self, code: str, bad: Anchor, pending: int = 0) -> ChainReport:
        start = self.last_good.position if self.last_good else 0
        event_id = db.session.execute(
            sa.select(AuditLink.event_id).where(AuditLink.position == start + 1)
        ).scalar()
        return ChainReport(
            checked=start,
            first_broken_id=event_id,
            code=code,
            position=start + 1,
            anchors=self.good,
            last_anchor=self.last_good,
            bad_anchor=bad,
            pending=pending,
        )

    def broken_at(self, checked: int, event_id, code: str, position) -> ChainReport:
        return ChainReport(
            checked, event_id, code, position, anchors=self.good, last_anchor=self.last_good
        )


def verify_chain(batch_size: int = 1000) -> ChainReport:
    """Check the whole log and report the first thing that does not match.

    The anchors are read first and the head next, so an anchor is never ahead of the head
    read (the head only moves on); links appended while this runs are beyond the head
    and are left for the next verification.
    """
    walk = _Walk(_anchors(), anchor_keys())
    head_table = AuditChainHead.__table__
    head = db.session.execute(sa.select(head_table).where(head_table.c.id == 1)).first()
    found = walk.check_anchors(0, GENESIS_HASH)
    if found:
        return walk.broken_after_last_good(*found)

    links, events = AuditLink.__table__, AuditEvent.__table__
    end = head.last_position if head is not None else 0
    position, link, previous_hash, checked = 0, GENESIS_HASH, GENESIS_HASH, 0
    while True:
        rows = db.session.execute(
            sa.select(links.c.position, links.c.event_id, links.c.prev_link, links.c.link, events)
            .select_from(links.outerjoin(events, events.c.id == links.c.event_id))
            .where(links.c.position > position, links.c.position <= end)
            .order_by(links.c.position)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        for row in rows:
            code = None
            if row.position != position + 1:
                code = "gap"
            elif row.id is None:
                code = "missing"
            elif row.prev_link != link or (
                row.prev_hash is not None and row.prev_hash != previous_hash
            ):
                code = "link"
            elif event_hash(row) != row.hash:
                code = "hash"
            elif link_hash(row.position, row.prev_link, row.event_id, row.hash) != row.link:
                code = "link"
            if code:
                return walk.broken_at(checked, row.event_id, code, row.position)
            position, link, previous_hash = row.position, row.link, row.hash
            checked += 1
            found = walk.check_anchors(position, link)
            if found:
                return walk.broken_after_last_good(*found)
    if head is None or position != head.last_position or link != head.last_link:
        return walk.broken_at(
            checked,
            head.last_event_id if head is not None else None,
            "tail",
            head.last_position if head is not None else None,
        )
    # Anchors beyond the end: the chain was cut back (or its head moved back).
    for later in sorted(walk.by_position):
        return walk.broken_after_last_good(*walk.check_anchors(later, None))

    pending, last_id = 0, 0
    while True:
        rows = db.session.execute(
            sa.select(events)
            .join(AuditPending.__table__, AuditPending.event_id == events.c.id)
            .where(events.c.id > last_id)
            .order_by(events.c.id)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        for row in rows:
            if event_hash(row) != row.hash:
                return walk.broken_at(checked + pending, row.id, "hash", None)
            pending += 1
            last_id = row.id
    unlinked = db.session.execute(
        sa.select(sa.func.min(events.c.id)).where(
            ~sa.exists().where(links.c.event_id == events.c.id),
            ~sa.exists().where(AuditPending.event_id == events.c.id),
        )
    ).scalar()
    if unlinked is not None:
        return walk.broken_at(checked + pending, unlinked, "unlinked", None)
    return ChainReport(
        checked + pending,
        None,
        None,
        anchors=walk.good,
        last_anchor=walk.last_good,
        pending=pending,
    )
