"""Program operations: creating a program with its first review and submitting it.

Submitting freezes the program's data and files into an immutable :class:`ProgramVersion`
and moves the current review on through :func:`review_portal.workflow.advance`, the only
writer of review states. The functions flush and audit; the caller commits.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import TYPE_CHECKING, Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from review_portal.accounts.models import User
from review_portal.assignment.services import close_assignments_of
from review_portal.audit.describe import register_field_labels
from review_portal.audit.services import apply_audited_changes, record_event
from review_portal.enums import DocumentKind, RegistryKind
from review_portal.extensions import db
from review_portal.i18n import quote
from review_portal.notifications.services import tell_provider
from review_portal.permissions import authorize, authorize_staff_on, is_staff
from review_portal.programs.labels import FIELD_LABELS
from review_portal.programs.models import (
    Program,
    ProgramData,
    ProgramVersion,
    VersionDocument,
    additional_kinds,
    kind_values,
)
from review_portal.programs.modules import with_module_totals
from review_portal.programs.permissions import (
    acts_for_program,
    can_create_program,
    can_withdraw_program,
)
from review_portal.programs.validation import program_data_errors
from review_portal.reviews.models import Review
from review_portal.reviews.queries import next_round
from review_portal.workflow import (
    EDITABLE_STATES,
    ActorKind,
    ActorNotAllowed,
    ReviewState,
    WorkflowError,
    actor_kinds,
    advance,
)

if TYPE_CHECKING:
    from review_portal.organizations.models import Organization

# The audit log names a program's changed fields as the program form does.
register_field_labels("program", FIELD_LABELS)

#: States from which the provider may submit: a draft, a formal return (the review goes
#: back to draft first, through the ``edit`` transition) and a revision decision (a new
#: review round starts).
SUBMITTABLE_STATES = frozenset(
    {ReviewState.DRAFT, ReviewState.RETURNED, ReviewState.REVISION_REQUIRED}
)

_CREATE_FIELDS = frozenset(ProgramData.DATA_FIELDS) | {"municipality"}


class SubmissionNotAllowed(WorkflowError):
    """The program is in a state from which it cannot be submitted."""


def _derived(data: dict, program: Program | None = None) -> dict:
    """``data`` with what derives from it: the totals of its modules, and the other
    registry kinds asked for without the main one (whichever of the two changes)."""
    data = with_module_totals(data)
    if "additional_registry_kinds" in data or (
        program is not None and "requested_registry_kind" in data
    ):
        main = data.get(
            "requested_registry_kind",
            program.requested_registry_kind if program is not None else RegistryKind.CERTIFIED,
        )
        others = data.get(
            "additional_registry_kinds",
            program.additional_registry_kinds if program is not None else [],
        )
        if kind_values(others) is None:
            raise ValueError(f"unknown registry kinds: {others!r}")
        data = {**data, "additional_registry_kinds": additional_kinds(main, others)}
    return data


def create_program(organization: Organization, actor: User, **data: Any) -> Program:
    """Create a program of ``organization`` with its first review (round 1, draft).

    ``data`` holds fields of :class:`ProgramData`; the municipality defaults to the
    organization's; with modules, the total hours and the duration are theirs. Keeps the invariant that every program has a current review.
    Writes the audit event ``program.create``.
    """
    authorize(
        is_staff(actor) or (can_create_program(actor) and actor.organization_id == organization.id)
    )
    unknown = set(data) - _CREATE_FIELDS
    if unknown:
        raise TypeError(f"unknown program fields: {', '.join(sorted(unknown))}")
    if "municipality" not in data and "municipality_id" not in data:
        data["municipality_id"] = organization.municipality_id
    data = _derived(data)
    program = Program(organization=organization, created_by_id=actor.id, **data)
    db.session.add(program)
    review = Review(program=program, round=1)
    db.session.add(review)
    db.session.flush()
    program.current_review = review
    db.session.flush()
    record_event(
        "program.create",
        actor=actor,
        object_type="program",
        object_id=program.id,
        after={
            "title": program.title,
            "organization_id": organization.id,
            "direction": program.direction,
            "review_id": review.id,
        },
    )
    return program


def _freeze_version(program: Program, actor: User) -> ProgramVersion:
    """A new immutable version holding the program's current data and documents."""
    previous = db.session.execute(
        select(func.max(ProgramVersion.number)).where(ProgramVersion.program_id == program.id)
    ).scalar()
    data = {name: getattr(program, name) for name in ProgramData.DATA_FIELDS}
    data["modules"] = copy.deepcopy(program.modules or [])
    data["additional_registry_kinds"] = list(program.additional_registry_kinds or [])
    # Linking the version to the program may load ``program.versions``; the new version
    # must not be flushed half-built by that load.
    with db.session.no_autoflush:
        version = ProgramVersion(
            program=program,
            number=(previous or 0) + 1,
            organization_id=program.organization_id,
            created_by_id=actor.id,
            **data,
        )
        db.session.add(version)
    for document in program.documents:
        version.documents.append(
            VersionDocument(
                kind=document.kind,
                original_name=document.original_name,
                uploaded_at=document.uploaded_at,
                file_id=document.file_id,
                uploaded_by_id=document.uploaded_by_id,
            )
        )
    db.session.flush()
    return version


def check_submission(program: Program, actor: User) -> None:
    """Raise why ``actor`` cannot submit ``program`` now (its state, not its provider, no
    program document, errors in the card); reads only (the confirmation page asks it)."""
    review = program.current_review
    state = review.state if review is not None else ReviewState.DRAFT
    if review is None or state not in SUBMITTABLE_STATES:
        raise SubmissionNotAllowed(
            _l(
                "The program cannot be submitted while its state is “%(state)s”.",
                state=ReviewState(state).label,
            )
        )
    if ActorKind.PROVIDER not in actor_kinds(review, actor):
        raise ActorNotAllowed(_l("Only a user of the program's organization may submit it."))
    if not any(d.kind == DocumentKind.PROGRAM for d in program.documents):
        raise SubmissionNotAllowed(_l("Upload the program document before submitting."))
    errors = program_data_errors(program.data())
    if errors:
        raise SubmissionNotAllowed(
            _l("The program card has errors; correct them before submitting.")
        )


def lock_program(program: Program) -> Program:
    """Take the program's row lock for the rest of the transaction and reload it: whatever
    opens a new review of the program (a submission after a revision, a renewal, an
    appeal's panel) waits for the others, so two of them never take the same round."""
    return db.session.execute(
        select(Program)
        .where(Program.id == program.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def submit_program(program: Program, actor: User) -> Review:
    """Submit ``program`` for expertise on behalf of its provider user ``actor``.

    Freezes a new :class:`ProgramVersion` (number = previous + 1, with copies of the
    documents), links it to the current review and advances that review to ``submitted``.
    After a ``revision_required`` decision a new review (round + 1) becomes current
    first; after a formal return the review goes back to draft (``edit``) first. Raises
    :class:`SubmissionNotAllowed` in any other state and
    :class:`~review_portal.workflow.ActorNotAllowed` when ``actor`` is not the program's
    provider; nothing is written then. Returns the submitted review.
    """
    program = lock_program(program)
    check_submission(program, actor)
    review = program.current_review
    state = review.state

    if state == ReviewState.REVISION_REQUIRED:
        review = Review(program=program, round=next_round(program.id))
        db.session.add(review)
        db.session.flush()
        program.current_review = review
        db.session.flush()
    elif state == ReviewState.RETURNED:
        advance(review, ReviewState.DRAFT, actor)

    version = _freeze_version(program, actor)
    review.version = version
    advance(review, ReviewState.SUBMITTED, actor)
    record_event(
        "program.submit",
        actor=actor,
        object_type="program",
        object_id=program.id,
        after={
            "version_id": version.id,
            "version": version.number,
            "review_id": review.id,
            "round": review.round,
        },
    )
    return review


class ProgramNotEditable(WorkflowError):
    """The program's data cannot change in its present state (a version is frozen)."""


def update_program(program: Program, actor: User, **data: Any) -> dict:
    """Change the program's working data (draft, returned, or after revision_required).

    Submitted versions are separate rows and never change. With modules, the total hours
    and the duration are derived from them. Returns the changed fields as
    ``{field: (before, after)}`` and audits them as ``program.update``.
    """
    if program.state not in EDITABLE_STATES:
        raise ProgramNotEditable(_l("The program cannot be edited in its present state."))
    if ActorKind.PROVIDER not in actor_kinds(program.current_review, actor):
        raise ActorNotAllowed(_l("Only a user of the program's organization may edit it."))
    unknown = set(data) - set(ProgramData.DATA_FIELDS)
    if unknown:
        raise TypeError(f"unknown program fields: {', '.join(sorted(unknown))}")
    return apply_audited_changes(
        program,
        _derived(data, program),
        action="program.update",
        actor=actor,
        object_type="program",
    )


def withdraw_program(program: Program, actor: User, reason: str | None = None) -> None:
    """Withdraw the program from assessment (any non-final state); audited by the workflow.

    Every open assignment of the review (an offer, or an accepted one not yet submitted —
    a third expert's in reconciliation too) is closed and its expert told, so nobody is
    left with an offer or a draft on a withdrawn program."""
    authorize(can_withdraw_program(actor, program))
    review = program.current_review
    advance(review, ReviewState.WITHDRAWN, actor, reason=reason)
    close_assignments_of(review, actor, str(_l("The program was withdrawn")))
    tell_provider(
        program,
        _l("Program withdrawn: %(title)s", title=program.title),
        _l(
            "The program %(title)s has been withdrawn from assessment. Its page keeps its "
            "versions and the history of the assessment.",
            title=quote(program.title),
        ),
    )


class NoActiveRubric(WorkflowError):
    """No rubric covers the program's type, so it cannot go to the experts."""


def accept_submission(program: Program, actor: User) -> Review:
    """Accept a submitted program into expertise: the active rubric is frozen on the review
    (for a short-term program the one chosen for its type's short-term programs, if any).

    The provider is notified. Raises :class:`NoActiveRubric` when no rubric covers the
    program's type.
    """
    from review_portal.rubrics.registry import active_rubric, record_rubric_use
    from review_portal.scoring.compute import is_short_term

    review = program.current_review
    authorize_staff_on(actor, review)
    submitted = review.version or program
    rubric = active_rubric(submitted.program_type, is_short_term(submitted))
    if rubric is None:
        raise NoActiveRubric(
            _l("No rubric is active for this program type; choose one before accepting.")
        )
    advance(review, ReviewState.IN_REVIEW, actor)
    review.rubric_id = rubric.id
    review.rubric_version = rubric.version
    record_rubric_use(rubric)
    db.session.flush()
    tell_provider(
        program,
        _l("Program accepted for expert review: %(title)s", title=program.title),
        _l(
            "The program %(title)s has passed screening and has been sent to the experts. "
            "Nothing is needed from you now: you will be told of the decision. The program's "
            "page shows how the assessment goes.",
            title=quote(program.title),
        ),
    )
    return review


def return_submission(program: Program, actor: User, reason: str) -> Review:
    """Return a submitted program to its provider for fixes, with the reason they will read."""
    review = program.current_review
    authorize_staff_on(actor, review)
    advance(review, ReviewState.RETURNED, actor, reason=reason)
    tell_provider(
        program,
        _l("Program returned for fixes: %(title)s", title=program.title),
        _l(
            "The program %(title)s has been returned for fixes.\nReason: %(reason)s\n\n"
            "Correct the program on its page and submit it again.",
            title=quote(program.title),
            reason=reason.strip(),
        ),
    )
    return review


# --- renewal of a registry entry ------------------------------------------------------------

#: How long before its registry entry's end date a program may be submitted for renewal.
RENEWAL_OPENS_DAYS = 180


def renewal_entry(program: Program, today: date | None = None):
    """The registry entry ``program`` may be renewed for ``today``: live, with an end date
    within :data:`RENEWAL_OPENS_DAYS` (or passed: a pending removal for its end date), the
    program admitted on its current review; ``None`` when it may not."""
    from review_portal.assignment.services import local_today
    from review_portal.enums import RegistryEntryStatus
    from review_portal.registry.models import RegistryEntry

    today = today or local_today()
    if program.current_review is None or program.state != ReviewState.ADMITTED:
        return None
    entries = db.session.execute(
        select(RegistryEntry).where(
            RegistryEntry.program_id == program.id,
            RegistryEntry.status.in_(
                (RegistryEntryStatus.INCLUDED, RegistryEntryStatus.PENDING_REMOVAL)
            ),
            RegistryEntry.valid_until.is_not(None),
            RegistryEntry.end_date_pending.is_(False),
        )
    ).scalars()
    for entry in entries:
        if entry.status == RegistryEntryStatus.PENDING_REMOVAL and entry.valid_until >= today:
            continue  # leaving for another reason (a revocation, an exclusion)
        if (entry.valid_until - today).days <= RENEWAL_OPENS_DAYS:
            return entry
    return None


def start_renewal(program: Program, actor: User, today: date | None = None) -> Review:
    """Open a new review (round after every earlier one) for renewing the program's
    registry entry: the program becomes a draft its provider edits and submits as any
    other; an admission keeps the entry's number with a new end date at the next
    publication (the previous experts are preferred, as for every re-review). Raises
    :class:`SubmissionNotAllowed` when the program may not be renewed now."""
    if not acts_for_program(actor, program):
        raise ActorNotAllowed(_l("You may not perform this action on this program."))
    program = lock_program(program)
    entry = renewal_entry(program, today)
    if entry is None:
        raise SubmissionNotAllowed(
            _l(
                "The program can be submitted for renewal within %(days)s days before its "
                "registry entry ends.",
                days=RENEWAL_OPENS_DAYS,
            )
        )
    review = Review(program_id=program.id, round=next_round(program.id))
    db.session.add(review)
    db.session.flush()
    program.current_review = review
    db.session.flush()
    record_event(
        "program.renewal_start",
        actor=actor,
        object_type="program",
        object_id=program.id,
        after={
            "review_id": review.id,
            "round": review.round,
            "registry_number": entry.registry_number,
            "valid_until": entry.valid_until.isoformat(),
        },
    )
    return review
