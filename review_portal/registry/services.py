"""The registry's operations: entries follow conclusions, a coordinator publishes snapshots.

An entry is a program's place in one registry kind (a program's version asks for one or
several kinds; an admission includes it in each whose rubric policy it meets). Its life:

- an issued *admitted* conclusion makes a **pending inclusion** (:func:`enter_registry`);
- a revoked conclusion, or an exclusion, makes a published entry a **pending removal** and
  simply drops one that was never published (:func:`leave_registry`);
- a new admitted conclusion of a program whose entry is pending removal (revoked, then
  decided again) takes the entry back with the new conclusion: the next snapshot shows it
  as *changed*, with the same registry number;
- :func:`publish_registry` freezes the *working registry* (entries pending inclusion or
  included, with the data of the reviewed version) as a new numbered snapshot in one
  transaction: new entries get their registry number and inclusion date, new and renewed
  entries their end date (:mod:`review_portal.registry.validity`), pending removals become
  removed.

The public reads snapshots only (:mod:`review_portal.registry.queries`), so nothing pending
is ever visible to it; a snapshot's rows are copies and never change afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select, update

from review_portal.assignment.services import local_today
from review_portal.audit.services import anchor_committed_head, record_event
from review_portal.conclusions.models import Conclusion
from review_portal.db import utcnow
from review_portal.enums import Decision, RegistryEntryStatus, RegistryKind
from review_portal.errors import DomainError
from review_portal.extensions import db
from review_portal.locks import hold_lock
from review_portal.organizations.models import Municipality, Organization
from review_portal.permissions import authorize, authorize_staff_on
from review_portal.programs.models import ProgramVersion
from review_portal.registry.models import RegistryEntry, RegistrySnapshot, RegistrySnapshotItem
from review_portal.registry.permissions import can_publish_registry
from review_portal.registry.queries import (
    CHUNK,
    ChangeSummary,
    excludable_review,
    iter_compare,
    iter_snapshot_rows,
    iter_working_rows,
    latest_snapshot,
    summarize,
)
from review_portal.registry.validity import date_entries, dating
from review_portal.reviews.models import Review
from review_portal.settings.services import get_setting
from review_portal.workflow import ReviewState, advance

E = RegistryEntryStatus
LIVE_STATUSES = (E.PENDING_INCLUSION, E.INCLUDED, E.PENDING_REMOVAL)

#: The letter of each kind in a registry number: ``<region>-<letter>-<000001>``.
KIND_LETTERS = {
    RegistryKind.CERTIFIED: "С",
    RegistryKind.SIGNIFICANT: "З",
    RegistryKind.GENERAL: "О",
    RegistryKind.PRE_PROFESSIONAL: "П",
}
NUMBER_DIGITS = 6
#: Why a live entry leaves when a new admission does not include its kind (stored as it is,
#: like the other reasons of the registry: the registry's data is Russian).
NOT_INCLUDED_REASON = "новое заключение не включает программу в этот реестр"


class RegistryError(DomainError):
    """A registry operation refused, with a message for the user."""


# --- entries ----------------------------------------------------------------------------


def _live_entries(program_id: int, kind: RegistryKind | None = None) -> list[RegistryEntry]:
    """The program's live entries, locked and read as committed: a publication holds them
    until it ends, and an entry it numbered must then be seen as included, not as the
    pending inclusion read before it."""
    stmt = (
        select(RegistryEntry)
        .where(RegistryEntry.program_id == program_id, RegistryEntry.status.in_(LIVE_STATUSES))
        .order_by(RegistryEntry.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if kind is not None:
        stmt = stmt.where(RegistryEntry.kind == kind)
    return list(db.session.execute(stmt).scalars())


def _entry_facts(entry: RegistryEntry) -> dict:
    return {
        "kind": entry.kind.value,
        "program_id": entry.program_id,
        "conclusion_id": entry.conclusion_id,
        "status": entry.status.value,
        "registry_number": entry.registry_number,
    }


def admitted_kinds(review) -> tuple[RegistryKind, ...]:
    """The registry kinds an admission of ``review`` includes the program in: the kind its
    version mainly asks for (the decision is about it: a computed admission meets its
    policy, an override answers for it), and each other kind asked for whose rubric policy
    the final scores meet."""
    failed = (review.final_result or {}).get("kinds_failed") or {}
    main, *others = review.version.registry_kinds
    return (main, *(k for k in others if k.value not in failed))


def enter_registry(conclusion: Conclusion, actor) -> list[RegistryEntry]:
    """Make the program of an issued *admitted* conclusion a pending entry of each registry
    kind it is admitted to (:func:`admitted_kinds`).

    Called by ``issue_conclusion`` in its transaction (under the review's lock). Other
    decisions change nothing. A live entry of the same program and kind is reused: it takes
    the new conclusion, and one pending removal is taken back (its number is kept). A live
    entry of a kind the new conclusion does not include (no longer asked for, or its policy
    not met) leaves the registry.
    """
    if conclusion.decision != Decision.ADMITTED:
        return []
    review = conclusion.review
    kinds = admitted_kinds(review)
    entries = []
    live = _live_entries(review.program_id)
    for kind in kinds:
        entries.append(_enter_kind(conclusion, kind, [e for e in live if e.kind == kind], actor))
    for entry in live:
        if (
            entry.kind not in kinds
            and entry.conclusion_id != conclusion.id
            and entry.status != E.PENDING_REMOVAL
        ):
            _leave(entry, actor, NOT_INCLUDED_REASON)
    db.session.flush()
    return entries


def _enter_kind(conclusion: Conclusion, kind, entries, actor) -> RegistryEntry:
    review = conclusion.review
    if entries:
        entry = entries[0]
        before = _entry_facts(entry)
        entry.conclusion_id = conclusion.id
        if entry.status == E.PENDING_REMOVAL:
            entry.status = E.INCLUDED
            entry.removal_reason = None
        # A renewal (an admission of a later review of the program): the next publication
        # dates the entry again, and until then it neither expires nor is reminded of. A
        # new decision of the same review (after a revocation) keeps its end date.
        previous = db.session.get(Conclusion, before["conclusion_id"])
        if previous is None or previous.review_id != review.id:
            entry.end_date_pending = True
    else:
        before = None
        entry = RegistryEntry(
            kind=kind,
            program_id=review.program_id,
            conclusion_id=conclusion.id,
            status=E.PENDING_INCLUSION,
        )
        db.session.add(entry)
    db.session.flush()
    record_event(
        "registry.entry_pending",
        actor=actor,
        object_type="registry_entry",
        object_id=entry.id,
        before=before,
        after=_entry_facts(entry),
    )
    return entry


def _leave(entry: RegistryEntry, actor, reason: str) -> None:
    """A published entry becomes a pending removal, one never published is removed."""
    before = _entry_facts(entry)
    entry.status = E.REMOVED if entry.status == E.PENDING_INCLUSION else E.PENDING_REMOVAL
    entry.removal_reason = reason
    record_event(
        "registry.entry_removal",
        actor=actor,
        object_type="registry_entry",
        object_id=entry.id,
        before=before,
        after={**_entry_facts(entry), "reason": reason},
    )


def leave_registry(
    program_id: int, actor, reason: str, *, conclusion_id: int | None = None
) -> list[RegistryEntry]:
    """Take the program's live entries (only those of ``conclusion_id`` when given) out.

    A published entry becomes a pending removal (the public still sees it until the next
    publication); one that was never published is dropped at once (status removed, no
    removal date, no number).
    """
    changed = []
    for entry in _live_entries(program_id):
        if conclusion_id is not None and entry.conclusion_id != conclusion_id:
            continue
        if entry.status == E.PENDING_REMOVAL:
            continue
        _leave(entry, actor, reason)
        changed.append(entry)
    db.session.flush()
    return changed


def exclude_program(review: Review, actor, reason: str) -> Review:
    """Exclude an admitted program from the registry (coordinator, reason required).

    The review goes ``admitted → excluded`` through the state machine and the program's
    entries leave the registry at the next publication. Raises :class:`RegistryError` when
    the program is no longer admitted or has moved on to a newer version.
    """
    from review_portal.reviews.services import lock_review
    from review_portal.workflow import WorkflowError

    authorize_staff_on(actor, review)
    reason = (reason or "").strip()
    if not reason:
        raise RegistryError(_l("A reason is required for this action."))
    review = lock_review(review)
    if review.state == ReviewState.ADMITTED:
        # The current review, or during a renewal the one the registry entry rests on.
        excludable = excludable_review(review.program)
        if excludable is None or excludable.id != review.id:
            raise RegistryError(_l("The program has moved on to a new version."))
    elif review.program.current_review_id != review.id:
        raise RegistryError(_l("The program has moved on to a new version."))
    else:
        raise RegistryError(
            _l(
                "Only an admitted program can be excluded; its state is “%(state)s”.",
                state=review.state.label,
            )
        )
    try:
        advance(review, ReviewState.EXCLUDED, actor, reason=reason)
    except WorkflowError as error:
        raise RegistryError(error.message) from error
    leave_registry(review.program_id, actor, reason)
    return review


# --- the working registry and publication -----------------------------------------------


def format_registry_number(kind: RegistryKind, sequence: int) -> str:
    return _number_format(kind).format(sequence)


def _number_format(kind: RegistryKind) -> str:
    """The format of ``kind``'s registry numbers, taking the sequence number."""
    return f"{get_setting('region_code')}-{KIND_LETTERS[kind]}-{{:0{NUMBER_DIGITS}d}}"


def _numbering(kind: RegistryKind, pending: set[int]) -> Callable[[int], str | None]:
    """A function giving each entry id of ``pending``, asked in entry order, the next
    registry number of ``kind`` (consecutive after the last one given), other ids ``None``."""
    sequence = _last_sequence(kind)
    number_format = _number_format(kind).format

    def number(entry_id: int) -> str | None:
        nonlocal sequence
        if entry_id not in pending:
            return None
        sequence += 1
        return number_format(sequence)

    return number


def _last_sequence(kind: RegistryKind) -> int:
    """The highest sequence number given in ``kind``: the greatest zero-padded suffix, so a
    corrected region code in the prefix does not matter."""
    number = RegistryEntry.registry_number
    suffix = func.substr(number, func.length(number) - (NUMBER_DIGITS - 1))
    last = db.session.execute(
        select(func.max(suffix)).where(RegistryEntry.kind == kind, number.is_not(None))
    ).scalar()
    return int(last) if last else 0


def publish_registry(kind: RegistryKind, actor, expected: str | None = None) -> RegistrySnapshot:
    """Freeze the working registry of ``kind`` as its next snapshot (one transaction).

    New entries get consecutive registry numbers and today's inclusion date; pending
    removals become removed with today's date; the snapshot's rows are copies. Publications
    of one kind are serialised by a lock. Raises :class:`RegistryError` when nothing changed
    since the last snapshot (a first publication needs at least one entry), and when
    ``expected`` (the :func:`~review_portal.registry.queries.fingerprint` of the changes the
    coordinator reviewed) no longer matches: what is published is what was reviewed.
    """
    authorize(can_publish_registry(actor))
    kind = RegistryKind(kind)
    hold_lock(f"registry-publish:{kind.value}")
    # The live entries stay as they are until this transaction ends: a revocation or an
    # exclusion of one of them waits, so the snapshot and the statuses agree. Ids and
    # statuses only: a national registry is 100,000 entries.
    live = db.session.execute(
        select(RegistryEntry.id, RegistryEntry.status)
        .where(RegistryEntry.kind == kind, RegistryEntry.status.in_(LIVE_STATUSES))
        .order_by(RegistryEntry.id)
        .with_for_update()
    ).all()
    latest = latest_snapshot(kind)
    connection = db.session.connection()
    _STAGE.drop(connection, checkfirst=True)
    _STAGE.create(connection)
    # New entries are numbered in entry order as the working registry streams by (the
    # numbers staged, written by one statement below).
    numbers = _numbering(
        kind, {entry_id for entry_id, status in live if status == E.PENDING_INCLUSION}
    )
    changes = _locked_changes(kind, latest, {entry_id for entry_id, _ in live}, numbers)
    del live
    refusal = None
    if not changes:
        refusal = _l("Nothing has changed since the last publication.")
    elif expected is not None and changes.fingerprint != expected:
        refusal = _l(
            "The pending changes have changed since you opened the page: review them "
            "again before publishing."
        )
    if refusal is not None:
        _STAGE.drop(connection)
        raise RegistryError(refusal)
    today = local_today()
    db.session.flush()
    # The numbers (staged on the way) and the end dates of the new entries, then the end
    # dates of the renewals and the removals: a few statements whatever the registry's size.
    # By kind and status: the rows this publication locked are the only ones of the kind in
    # these statuses (the others it could see wait for its lock, or are new pending
    # inclusions left for the next publication).
    entries = RegistryEntry.__table__
    # A new entry that waits for its end date is dated as date_entries dates the others.
    dated = {
        entries.c[name]: sa.case(
            (entries.c.end_date_pending, sa.literal(value, entries.c[name].type)),
            else_=entries.c[name],
        )
        for name, value in dating(kind, today).items()
    }
    db.session.execute(
        update(entries)
        .where(entries.c.id == _STAGE.c.entry_id, _STAGE.c.registry_number.is_not(None))
        .values(
            {
                entries.c.registry_number: _STAGE.c.registry_number,
                entries.c.included_on: today,
                entries.c.status: E.INCLUDED,
                **dated,
            }
        )
    )
    # Renewals get their end date from this publication too.
    date_entries(kind, today)
    db.session.execute(
        update(entries)
        .where(entries.c.kind == kind, entries.c.status == E.PENDING_REMOVAL)
        .values(status=E.REMOVED, removed_on=today)
    )
    for instance in list(db.session.identity_map.values()):
        if isinstance(instance, RegistryEntry):
            db.session.expire(instance)  # written above in bulk
    snapshot = RegistrySnapshot(
        kind=kind,
        number=(latest.number + 1) if latest else 1,
        published_at=utcnow(),
        published_by_id=actor.id,
    )
    db.session.add(snapshot)
    db.session.flush()
    # Included only: an entry an issuing transaction committed meanwhile stays pending for
    # the next publication rather than entering without a number.
    count = _copy_snapshot(kind, snapshot.id)
    snapshot.entry_count = count
    # The audit chain's head as committed now, signed, kept with the snapshot and in the
    # anchor table (read, not locked: audited writes go on meanwhile).
    anchor = anchor_committed_head(f"registry:{kind.value}:{snapshot.number}")
    snapshot.audit_position = anchor.position
    snapshot.audit_link = anchor.link
    snapshot.audit_signature = anchor.signature
    snapshot.audit_anchored_at = anchor.created_at
    record_event(
        "registry.publish",
        actor=actor,
        object_type="registry_snapshot",
        object_id=snapshot.id,
        after={
            "kind": kind.value,
            "number": snapshot.number,
            "entries": count,
            "added": changes.added,
            "removed": changes.removed,
            "changed": changes.changed,
        },
    )
    return snapshot


def _locked_changes(
    kind: RegistryKind, latest, live_ids: set[int], numbers: Callable[[int], str | None]
) -> ChangeSummary:
    """The pending changes of ``kind`` limited to the entries this publication locked,
    counted and digested as they stream by (a first publication adds the whole registry);
    what Python computes of each working row (and ``numbers`` of its entry id) is staged
    for the numbering and the copy on the way.

    An issuing transaction may commit a new pending entry after the live entries were
    locked (nothing else holds it back): it is left for the next publication, as the copy
    leaves it (included entries only), so the changes counted, compared with what the
    coordinator reviewed and refused when empty are exactly those published."""
    old = iter_snapshot_rows(latest.id) if latest else iter(())
    return summarize(
        (what, change)
        for what, change in iter_compare(old, _staged(iter_working_rows(kind), numbers))
        if what != "added" or change["entry_id"] in live_ids
    )


#: What Python computes of each working row (the databases fold case and convert time zones
#: differently, see :func:`~review_portal.registry.queries.iter_working_rows`): staged while
#: the changes are read, then joined by the copy, in the publication's transaction.
_STAGE = sa.Table(
    "registry_publication_stage",
    sa.MetaData(),
    sa.Column("entry_id", sa.Integer, primary_key=True),
    sa.Column("search_text", sa.Text, nullable=False),
    sa.Column("conclusion_date", sa.Date, nullable=False),
    #: The registry number a new entry gets (``None``: the entry has one, or waits).
    sa.Column("registry_number", sa.String(32)),
    prefixes=["TEMPORARY"],
)


def _staged(rows: Iterator[dict], numbers: Callable[[int], str | None]) -> Iterator[dict]:
    """``rows`` passed on, their search text, conclusion date and new registry number
    written to the stage a chunk at a time."""
    chunk: list[dict] = []
    for row in rows:
        chunk.append(
            {
                "entry_id": row["entry_id"],
                "search_text": row["search_text"],
                "conclusion_date": row["conclusion_date"],
                "registry_number": numbers(row["entry_id"]),
            }
        )
        if len(chunk) == CHUNK:
            db.session.execute(insert(_STAGE), chunk)
            chunk = []
        yield row
    if chunk:
        db.session.execute(insert(_STAGE), chunk)


def _copy_snapshot(kind: RegistryKind, snapshot_id: int) -> int:
    """Copy the included entries of ``kind`` into snapshot ``snapshot_id`` inside the
    database (``INSERT … SELECT``); returns how many.

    The rows never become Python objects: only their search text and conclusion date come
    from the stage :func:`_locked_changes` filled (outer-joined: an entry missing there
    would fail the copy, never be left out)."""
    connection = db.session.connection()
    modules = ProgramVersion.modules
    json_type = func.json_typeof if connection.dialect.name == "postgresql" else func.json_type
    I = RegistrySnapshotItem  # noqa: E741 - short alias for column expressions
    copied = {
        I.snapshot_id: sa.literal(snapshot_id, sa.Integer),
        I.entry_id: RegistryEntry.id,
        I.registry_number: RegistryEntry.registry_number,
        I.program_id: RegistryEntry.program_id,
        I.title: ProgramVersion.title,
        I.organization_name: Organization.short_name,
        I.organization_inn: Organization.inn,
        I.municipality_id: Municipality.id,
        I.municipality_name: Municipality.name,
        I.direction: ProgramVersion.direction,
        I.level: ProgramVersion.level,
        I.age_min: ProgramVersion.age_min,
        I.age_max: ProgramVersion.age_max,
        I.total_hours: ProgramVersion.total_hours,
        # A JSON null is published as no modules, as the copy through Python did.
        I.modules: sa.case(
            (modules.is_(None) | (json_type(modules) == "null"), sa.literal("[]", sa.JSON)),
            else_=modules,
        ),
        I.study_form: ProgramVersion.study_form,
        I.adapted_for_disabilities: ProgramVersion.adapted_for_disabilities,
        I.conclusion_number: Conclusion.number,
        I.conclusion_date: _STAGE.c.conclusion_date,
        I.final_percent: Conclusion.percent,
        I.included_on: RegistryEntry.included_on,
        I.valid_until: RegistryEntry.valid_until,
        I.status: RegistryEntry.status,
        I.search_text: _STAGE.c.search_text,
    }
    rows = (
        select(*copied.values())
        .select_from(RegistryEntry)
        .outerjoin(_STAGE, _STAGE.c.entry_id == RegistryEntry.id)
        .join(Conclusion, Conclusion.id == RegistryEntry.conclusion_id)
        .join(Review, Review.id == Conclusion.review_id)
        .join(ProgramVersion, ProgramVersion.id == Review.version_id)
        .join(Organization, Organization.id == ProgramVersion.organization_id)
        .join(Municipality, Municipality.id == ProgramVersion.municipality_id)
        .where(RegistryEntry.kind == kind, RegistryEntry.status == E.INCLUDED)
        .order_by(RegistryEntry.id)
    )
    db.session.execute(insert(I).from_select([c.name for c in copied], rows))
    _STAGE.drop(connection)
    # Counted, not taken from the insert's row count (psycopg reports none for it here).
    return db.session.execute(
        select(func.count()).select_from(I).where(I.snapshot_id == snapshot_id)
    ).scalar_one()


def start_snapshot_exports(snapshot: RegistrySnapshot, actor):
    """A queued job building the whole snapshot's export files (flushes; the caller commits
    and starts it)."""
    from review_portal.jobs.services import EXPORT_REGISTRY, create_job

    return create_job(EXPORT_REGISTRY, {"snapshot_id": snapshot.id}, actor, total=0)
