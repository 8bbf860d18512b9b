"""Writing and verifying the audit log.

``record_event`` appends one event to the chain inside the caller's transaction;
``verify_chain`` recomputes every hash and names the first record that does not match.
"""

from __future__ import annotations

import decimal
import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import has_request_context, request
from flask_babel import lazy_gettext as _l

from review_portal.assignment.models import Assignment
from review_portal.audit.models import AuditChainHead, AuditEvent
from review_portal.db import utcnow
from review_portal.extensions import db
from review_portal.permissions import SEATED_STATUSES, open_seat_review_ids
from review_portal.scoring.models import ScoreSheet

GENESIS_HASH = "0" * 64


def jsonable(value: Any) -> Any:
    """``value`` reduced to JSON types (enums by value, dates as ISO text, decimals as text)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


HASHED_FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_label",
    "ip_address",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "prev_hash",
)


def event_hash(fields: Any) -> str:
    """SHA-256 over an event's canonical content, its link to the previous hash included.

    ``fields`` is anything with the attributes of :data:`HASHED_FIELDS` (an event or a row).
    """
    content = {name: getattr(fields, name) for name in HASHED_FIELDS}
    content["occurred_at"] = _iso(content["occurred_at"])
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditChainMissing(RuntimeError):
    """The chain head row is gone: the database was not migrated, or was tampered with."""


def _lock_head() -> AuditChainHead:
    """The chain head (created by the initial migration), locked for the transaction."""
    # An UPDATE takes the row lock on PostgreSQL and the write lock on SQLite, so two
    # writers can never read the same head.
    result = db.session.execute(
        sa.update(AuditChainHead)
        .where(AuditChainHead.id == 1)
        .values(last_hash=AuditChainHead.last_hash)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise AuditChainMissing("audit_chain_head has no row 1; run the migrations")
    head = db.session.get(AuditChainHead, 1, populate_existing=True)
    assert head is not None
    return head


def lock_chain() -> None:
    """Take the audit chain's lock now rather than at the first record of the transaction.

    Every audited transaction takes it; one that also locks other rows first (a registry
    publication locks all the live entries of its kind) takes it up front, so that it waits
    for the same lock in the same order as everyone else and cannot deadlock with them.
    """
    _lock_head()


def record_event(
    action: str,
    *,
    actor=None,
    object_type: str,
    object_id: Any = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append an event to the audit chain in the current transaction (not committed).

    ``actor`` is a user or ``None`` for the portal itself; the client address is taken
    from the current request when there is one.
    """
    head = _lock_head()
    # Ids are handed out under the head's lock, so they are gapless and in chain order, and
    # the row is complete when inserted: the table never needs an UPDATE (triggers forbid it).
    event = AuditEvent(
        id=(head.last_event_id or 0) + 1,
        occurred_at=utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_label=actor.email if actor is not None else "system",
        ip_address=request.remote_addr if has_request_context() else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        prev_hash=head.last_hash,
    )
    event.hash = event_hash(event)
    db.session.add(event)
    head.last_event_id = event.id
    head.last_hash = event.hash
    db.session.flush()
    return event


PROBLEMS = {
    "gap": _l("records before this one are missing"),
    "link": _l("link to the previous record is broken"),
    "hash": _l("content does not match its hash"),
    "tail": _l("records at the end of the log are missing"),
}


@dataclass(frozen=True)
class ChainReport:
    checked: int
    #: The id of the first event whose hash or link does not match, or ``None``.
    first_broken_id: int | None
    #: What is wrong: ``gap``, ``link``, ``hash`` or ``tail`` (see :data:`PROBLEMS`).
    code: str | None

    @property
    def problem(self):
        """What is wrong, in the interface language."""
        return PROBLEMS[self.code] if self.code else None

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def verify_chain(batch_size: int = 1000) -> ChainReport:
    """Recompute the chain from its start and report the first record that does not match.

    Reads plain rows in batches, so memory stays bounded however long the log is and the
    caller's session is left alone. A deleted record shows as a gap in the ids or a broken
    link; a deleted tail shows as a mismatch with the chain head.
    """
    table = AuditEvent.__table__
    prev_hash = GENESIS_HASH
    last_id = 0
    checked = 0
    while True:
        rows = db.session.execute(
            sa.select(table).where(table.c.id > last_id).order_by(table.c.id).limit(batch_size)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.id != last_id + 1:
                return ChainReport(checked, row.id, "gap")
            if row.prev_hash != prev_hash:
                return ChainReport(checked, row.id, "link")
            if event_hash(row) != row.hash:
                return ChainReport(checked, row.id, "hash")
            prev_hash = row.hash
            last_id = row.id
            checked += 1
    head = db.session.execute(sa.select(AuditChainHead.__table__)).first()
    if head is not None and head.last_hash != prev_hash:
        return ChainReport(checked, head.last_event_id, "tail")
    return ChainReport(checked, None, None)


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
    date_from: date | None = None,
    date_to: date | None = None,
    tz: str = "UTC",
    viewer=None,
):
    """Audit events matching the filters, newest first. Dates are days in time zone ``tz``.

    For a ``viewer``, the records about the reviews on which they hold an open seat
    (:func:`~review_portal.permissions.open_seat_review_ids`, one query) are left out
    (:func:`about_reviews`): roles never widen relations."""
    from zoneinfo import ZoneInfo

    stmt = sa.select(AuditEvent).order_by(AuditEvent.id.desc())
    hidden = open_seat_review_ids(viewer) if viewer is not None else []
    if hidden:
        stmt = stmt.where(~about_reviews(hidden, viewer.id))
    if user:
        stmt = stmt.where(AuditEvent.actor_label == user.strip().lower())
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type.strip())
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id.strip())
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action.strip()))
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
