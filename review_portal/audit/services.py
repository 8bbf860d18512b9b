"""Writing the audit log, linking it into the chain and signing the chain's head.

* :func:`record_event` writes an event with its own content hash and queues it, in the
  caller's transaction; it locks nothing shared, so audited transactions never wait for
  each other because of the log.
* :func:`chain_pending` links the queued events into the chain in order, in short
  transactions of its own under the chain head's lock. It runs right after every audited
  unit of work commits (:func:`review_portal.unit_of_work.after_commit`), and every minute
  on the Celery worker to catch up on whatever a failed step left.
* :func:`anchor_chain` (the daily job, ``flask audit-anchor``) and :func:`anchor_committed_head`
  (every registry publication) sign the head with ``AUDIT_ANCHOR_KEY``.

Verification is :mod:`review_portal.audit.verification`.
"""

from __future__ import annotations

import decimal
import enum
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context, request

from review_portal.accounts.models import User
from review_portal.assignment.models import Assignment
from review_portal.audit.chain import (
    event_hash,
    iso,
    link_hash,
    sign_anchor,
)
from review_portal.audit.models import (
    AuditAnchor,
    AuditChainHead,
    AuditEvent,
    AuditLink,
    AuditPending,
)
from review_portal.db import utcnow
from review_portal.extensions import db
from review_portal.jobs.models import Job
from review_portal.permissions import SEATED_STATUSES, open_seat_review_ids
from review_portal.scoring.models import ScoreSheet
from review_portal.unit_of_work import after_commit, unit_of_work

log = logging.getLogger(__name__)

#: Events linked per chaining transaction: the head's lock is held for one such batch.
CHAIN_BATCH = 500
#: Batches one call of :func:`chain_pending` links at most after a commit; what is left is
#: linked by the next audited commit or the worker's catch-up (a request never works long
#: for others).
CHAIN_ROUNDS = 10


def jsonable(value: Any) -> Any:
    """``value`` reduced to JSON types (enums by value, dates as ISO text, decimals as text)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


class AuditChainMissing(RuntimeError):
    """The chain head row is gone: the database was not migrated, or was tampered with."""


def _next_event_id() -> int:
    """The id of the event about to be written: it is part of the hashed content, so it is
    taken before the row is inserted (rows are never updated)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return db.session.execute(
            sa.text("SELECT nextval(pg_get_serial_sequence('audit_events', 'id'))")
        ).scalar_one()
    # SQLite: every write transaction begins IMMEDIATE (db.configure_sqlite), so nobody else
    # can take the same number before this transaction ends.
    return db.session.execute(
        sa.select(sa.func.coalesce(sa.func.max(AuditEvent.id), 0) + 1)
    ).scalar_one()


def record_event(
    action: str,
    *,
    actor=None,
    object_type: str,
    object_id: Any = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Write an audit event and queue it for the chain, in the current transaction (not
    committed); it is linked into the chain right after that transaction commits.

    ``actor`` is a user or ``None`` for the portal itself; the client address is taken
    from the current request when there is one.
    """
    # The row is complete when inserted: the table never needs an UPDATE (triggers forbid it).
    event = AuditEvent(
        id=_next_event_id(),
        occurred_at=utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_label=actor.email if actor is not None else "system",
        ip_address=request.remote_addr if has_request_context() else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        prev_hash=None,
    )
    event.hash = event_hash(event)
    db.session.add(event)
    db.session.flush()
    db.session.execute(sa.insert(AuditPending).values(event_id=event.id))
    after_commit(chain_after_commit)
    return event


# --- the chaining step --------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """The end of the chain: its last event, position and link."""

    last_event_id: int | None
    last_position: int
    last_link: str


def _head(*, lock: bool) -> Head:
    """The chain head; with ``lock``, locked for the current transaction (on SQLite the
    transaction already holds the database's write lock: it began IMMEDIATE)."""
    table = AuditChainHead.__table__
    stmt = sa.select(table.c.last_event_id, table.c.last_position, table.c.last_link).where(
        table.c.id == 1
    )
    if lock:
        stmt = stmt.with_for_update()
    row = db.session.execute(stmt).first()
    if row is None:
        raise AuditChainMissing("audit_chain_head has no row 1; run the migrations")
    return Head(*row)


def _links_after(head: Head, queued: list) -> list[dict]:
    """The links of the ``queued`` events (id, content hash) after ``head``, in order."""
    position, link = head.last_position, head.last_link
    links = []
    for event_id, content_hash in queued:
        position += 1
        new = link_hash(position, link, event_id, content_hash)
        links.append({"position": position, "event_id": event_id, "prev_link": link, "link": new})
        link = new
    return links


def _append(head: Head, queued: list) -> Head:
    """Link the ``queued`` events after ``head`` (locked by the caller) and move the head;
    returns the new head."""
    if not queued:
        return head
    links = _links_after(head, queued)
    ids = [event_id for event_id, _ in queued]
    db.session.execute(sa.insert(AuditLink), links)
    db.session.execute(sa.delete(AuditPending).where(AuditPending.event_id.in_(ids)))
    last = links[-1]
    table = AuditChainHead.__table__
    db.session.execute(
        table.update()
        .where(table.c.id == 1)
        .values(last_event_id=ids[-1], last_position=last["position"], last_link=last["link"])
    )
    return Head(ids[-1], last["position"], last["link"])


def _append_pending(head: Head, limit: int) -> tuple[int, Head]:
    """Link up to ``limit`` queued events after ``head`` (locked by the caller)."""
    queued = db.session.execute(
        sa.select(AuditPending.event_id, AuditEvent.hash)
        .join(AuditEvent, AuditEvent.id == AuditPending.event_id)
        .order_by(AuditPending.event_id)
        .limit(limit)
    ).all()
    return len(queued), _append(head, [tuple(row) for row in queued])


#: PostgreSQL, the chaining step's first statement: lock the head (waiting for another step
#: that holds it: a millisecond), and make the step's commit asynchronous — it does not wait
#: for its WAL to reach the disk. That is safe here: the step's rows (links, the queue
#: entries it removes, the head) derive from committed events and change together, so a
#: crash can only forget a whole recent step, whose events are then still queued and linked
#: again; and a later commit that waits for the disk (an anchor, a publication) flushes
#: every step before it, so nothing anchored or published is forgotten.
_PG_LOCK_HEAD = sa.text(
    """
    SELECT last_position, last_link, set_config('synchronous_commit', 'off', true) AS asynchronous
    FROM audit_chain_head WHERE id = 1 FOR UPDATE
    """
)
#: The second, a statement of its own: under READ COMMITTED it sees what a step that held
#: the head before committed (a queue read in the locking statement would still see the
#: entries that step removed, and link them twice).
_PG_QUEUE = sa.text(
    """
    SELECT pending.event_id, events.hash
    FROM audit_pending AS pending JOIN audit_events AS events ON events.id = pending.event_id
    ORDER BY pending.event_id LIMIT :limit
    """
)
#: The third: the links, the queue entries taken and the new head at once.
_PG_APPEND = sa.text(
    """
    WITH appended AS (
        INSERT INTO audit_links (position, event_id, prev_link, link)
        SELECT * FROM unnest(
            CAST(:positions AS integer[]), CAST(:event_ids AS integer[]),
            CAST(:prev_links AS varchar[]), CAST(:links AS varchar[])
        )
    ), dequeued AS (
        DELETE FROM audit_pending WHERE event_id = ANY(CAST(:event_ids AS integer[]))
    )
    UPDATE audit_chain_head
    SET last_event_id = :last_event_id, last_position = :last_position, last_link = :last_link
    WHERE id = 1
    """
)


def _chain_round(limit: int) -> int:
    """One chaining transaction's work (the caller commits): lock the head, link up to
    ``limit`` queued events, move the head. Returns how many were linked."""
    if db.session.get_bind().dialect.name != "postgresql":
        # SQLite: the transaction holds the database's write lock since it began.
        return _append_pending(_head(lock=True), limit)[0]
    # Three statements in all: the chaining step runs after every audited commit.
    row = db.session.execute(_PG_LOCK_HEAD).first()
    if row is None:
        raise AuditChainMissing("audit_chain_head has no row 1; run the migrations")
    queued = [tuple(r) for r in db.session.execute(_PG_QUEUE, {"limit": limit})]
    if queued:
        links = _links_after(Head(None, row.last_position, row.last_link), queued)
        db.session.execute(
            _PG_APPEND,
            {
                "positions": [link["position"] for link in links],
                "event_ids": [link["event_id"] for link in links],
                "prev_links": [link["prev_link"] for link in links],
                "links": [link["link"] for link in links],
                "last_event_id": links[-1]["event_id"],
                "last_position": links[-1]["position"],
                "last_link": links[-1]["link"],
            },
        )
    return len(queued)


def chain_pending(rounds: int = CHAIN_ROUNDS) -> int:
    """Link the queued events into the chain; returns how many. Commits (call it between
    units of work, never inside one).

    Each round is a short transaction of its own: it locks the head, reads the queue, links
    up to :data:`CHAIN_BATCH` events, moves the head and commits, so the lock is held for
    about a millisecond; a step that finds the head held waits that long, then finds the
    events it came for already linked (nothing to do) or links them itself. After ``rounds`` full batches the rest is left to the next call.
    """
    linked = 0
    for _round in range(rounds):
        count = _chain_round(CHAIN_BATCH)
        db.session.commit()
        linked += count
        if count < CHAIN_BATCH:
            break
    return linked


def chain_after_commit() -> None:
    """Registered by :func:`record_event`: link this unit of work's events (and any other
    queued ones) right after it committed."""
    chain_pending()


# --- anchors ------------------------------------------------------------------------------


def anchor_keys() -> list[str]:
    """The key anchors are signed with, then the retired keys still accepted when verifying."""
    config = current_app.config
    return [config["AUDIT_ANCHOR_KEY"], *config.get("AUDIT_ANCHOR_PREVIOUS_KEYS", ())]


def _write_anchor(position: int, link: str, reason: str) -> AuditAnchor:
    created_at = utcnow()
    anchor = AuditAnchor(
        created_at=created_at,
        position=position,
        link=link,
        signature=sign_anchor(current_app.config["AUDIT_ANCHOR_KEY"], position, link, created_at),
        reason=reason[:80],
    )
    db.session.add(anchor)
    db.session.flush()
    # The log is a second place the signed head is written to, outside the database.
    log.info(
        "audit anchor %s (%s): position %s, link %s, signature %s",
        anchor.id,
        reason,
        position,
        link,
        anchor.signature,
    )
    return anchor


def anchor_committed_head(reason: str) -> AuditAnchor:
    """Sign the chain's head as committed now and write the anchor in the current transaction
    (not committed; the head is read, not locked: a registry publication never waits for
    the chaining step nor makes it wait)."""
    head = _head(lock=False)
    return _write_anchor(head.last_position, head.last_link, reason)


def anchor_due() -> bool:
    """Whether the daily anchor would sign anything new: a record waits to be linked, or
    the chain has grown past the last anchor (of any reason). Reads only; the daily job
    makes no job row (and so no audit record of its own) without it — a quiet day adds
    nothing the last anchor does not already cover."""
    if db.session.execute(sa.select(AuditPending.event_id).limit(1)).first() is not None:
        return True
    anchored = db.session.execute(sa.select(sa.func.max(AuditAnchor.position))).scalar()
    return _head(lock=False).last_position > (anchored or 0)


def anchor_audit_job(job_id: int) -> None:
    """Job handler (``anchor_audit``, scheduled daily): link what is queued, sign the head;
    the job's count is the records linked, its result the anchor."""
    anchor, linked = anchor_chain("daily")
    with unit_of_work():
        job = db.session.get(Job, job_id)
        job.total = job.done = linked
        job.result = {"anchor_id": anchor.id, "position": anchor.position, "link": anchor.link}


def anchor_chain(reason: str) -> tuple[AuditAnchor, int]:
    """Link every queued event, then sign the head and write the anchor; commits (jobs and
    commands). Returns the anchor and how many events were linked."""
    linked = chain_pending(rounds=10 * CHAIN_ROUNDS)
    head = _head(lock=True)
    while True:
        count, head = _append_pending(head, CHAIN_BATCH)
        if not count:
            break
        linked += count
    anchor = _write_anchor(head.last_position, head.last_link, reason)
    db.session.commit()
    return anchor, linked


def about_reviews(review_ids: list[int] | tuple[int, ...], viewer_id: int | None = None):
    """The condition "the record concerns one of ``review_ids``": its object is the review,
    an assignment on it or the score sheet of such an assignment, or its actor is another
    expert than ``viewer_id`` seated on it (their records would tell who they are).

    Never NULL (a record without object id or actor is simply not about them), so its
    negation keeps those records."""
    ids = [str(review_id) for review_id in review_ids]
    on_reviews = Assignment.review_id.in_(list(review_ids))
    assignments = sa.select(sa.cast(Assignment.id, sa.String)).where(on_reviews)
    sheets = (
        sa.select(sa.cast(ScoreSheet.id, sa.String))
        .join(Assignment, ScoreSheet.assignment_id == Assignment.id)
        .where(on_reviews)
    )
    seated = sa.select(Assignment.expert_id).where(
        on_reviews, Assignment.status.in_(SEATED_STATUSES), Assignment.expert_id != viewer_id
    )
    has_object = AuditEvent.object_id.is_not(None)
    return sa.or_(
        sa.and_(AuditEvent.object_type == "review", has_object, AuditEvent.object_id.in_(ids)),
        sa.and_(
            AuditEvent.object_type == "assignment",
            has_object,
            AuditEvent.object_id.in_(assignments),
        ),
        sa.and_(
            AuditEvent.object_type == "score_sheet", has_object, AuditEvent.object_id.in_(sheets)
        ),
        sa.and_(AuditEvent.actor_id.is_not(None), AuditEvent.actor_id.in_(seated)),
    )


def events_query(
    *,
    user: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    actions: list[str] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    tz: str = "UTC",
    viewer=None,
):
    """Audit events matching the filters, newest first. Dates are days in time zone ``tz``.

    ``user`` is an e-mail (the actor's at the time) or a part of the actor's name;
    ``action`` a prefix of the action name; ``actions`` a list of action names (a group).

    For a ``viewer``, the records about the reviews on which they hold an open seat
    (:func:`~review_portal.permissions.open_seat_review_ids`, one query) are left out
    (:func:`about_reviews`): roles never widen relations."""
    from zoneinfo import ZoneInfo

    stmt = sa.select(AuditEvent).order_by(AuditEvent.id.desc())
    hidden = open_seat_review_ids(viewer) if viewer is not None else []
    if hidden:
        stmt = stmt.where(~about_reviews(hidden, viewer.id))
    if user and "@" in user:
        stmt = stmt.where(AuditEvent.actor_label == user.strip().lower())
    elif user:
        named = sa.select(User.id).where(User.full_name.icontains(user.strip(), autoescape=True))
        stmt = stmt.where(AuditEvent.actor_id.in_(named))
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type.strip())
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id.strip())
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action.strip(), autoescape=True))
    if actions is not None:
        stmt = stmt.where(AuditEvent.action.in_(actions))
    zone = ZoneInfo(tz)
    if date_from:
        start = datetime.combine(date_from, datetime.min.time(), zone)
        stmt = stmt.where(AuditEvent.occurred_at >= start)
    if date_to:
        end = datetime.combine(date_to, datetime.min.time(), zone) + timedelta(days=1)
        stmt = stmt.where(AuditEvent.occurred_at < end)
    return stmt


def apply_audited_changes(
    obj: Any, data: dict, *, action: str, actor, object_type: str
) -> dict[str, tuple]:
    """Set the fields of ``data`` on ``obj`` and audit what really changed.

    Returns ``{field: (before, after)}`` (empty when nothing changed: then nothing is
    written). Stamps ``updated_at`` when the model has one.
    """
    changes = {}
    for name, value in data.items():
        before = getattr(obj, name)
        if before != value:
            changes[name] = (before, value)
            setattr(obj, name, value)
    if changes:
        if hasattr(obj, "updated_at"):
            obj.updated_at = utcnow()
        db.session.flush()
        record_event(
            action,
            actor=actor,
            object_type=object_type,
            object_id=obj.id,
            before={k: v[0] for k, v in changes.items()},
            after={k: v[1] for k, v in changes.items()},
        )
    return changes
