"""Reads of programs: the list a user may see, its filters, a program's timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, false, or_, select, union
from sqlalchemy.orm import contains_eager, selectinload

from review_portal.enums import DocumentKind, Role
from review_portal.extensions import db
from review_portal.organizations.models import Organization
from review_portal.permissions import has_role, is_staff
from review_portal.programs.compare import program_document
from review_portal.programs.models import (
    Program,
    ProgramDocument,
    ProgramVersion,
    StoredFile,
    VersionDocument,
)
from review_portal.reviews.models import Review, ReviewTransition
from review_portal.workflow import ReviewState


def visible_programs(user) -> Select:
    """Programs ``user`` may list (their current review loaded with them): staff all, a
    provider their organization's, a municipal viewer their municipality's."""
    stmt = (
        select(Program)
        .join(Review, Program.current_review_id == Review.id)
        .options(
            contains_eager(Program.current_review),
            selectinload(Program.organization),
            selectinload(Program.municipality),
        )
    )
    if is_staff(user):
        return stmt
    conditions = []
    if has_role(user, Role.APPLICANT) and user.organization_id:
        conditions.append(Program.organization_id == user.organization_id)
    if has_role(user, Role.MUNICIPAL) and user.municipality_id:
        conditions.append(Program.municipality_id == user.municipality_id)
    if not conditions:
        return stmt.where(false())
    return stmt.where(or_(*conditions))


def filter_programs(
    stmt: Select,
    *,
    q: str | None = None,
    state: ReviewState | None = None,
    direction: str | None = None,
    municipality_id: int | None = None,
    organization: str | None = None,
    changed_from: datetime | None = None,
    changed_to: datetime | None = None,
) -> Select:
    """Narrow a program list; ``changed_*`` bound the time the current state was entered."""
    if q:
        stmt = stmt.where(Program.title.icontains(q, autoescape=True))
    if state:
        stmt = stmt.where(Review.state == ReviewState(state))
    if direction:
        stmt = stmt.where(Program.direction == direction)
    if municipality_id:
        stmt = stmt.where(Program.municipality_id == municipality_id)
    if organization:
        stmt = stmt.where(
            Program.organization_id.in_(
                select(Organization.id).where(
                    or_(
                        Organization.short_name.icontains(organization, autoescape=True),
                        Organization.full_name.icontains(organization, autoescape=True),
                        Organization.inn == organization,
                    )
                )
            )
        )
    if changed_from:
        stmt = stmt.where(Review.state_changed_at >= changed_from)
    if changed_to:
        stmt = stmt.where(Review.state_changed_at < changed_to)
    return stmt


def program_timeline(program: Program) -> list[tuple[Review, ReviewTransition]]:
    """Every state change of every review of the program, oldest first."""
    stmt = (
        select(Review, ReviewTransition)
        .join(ReviewTransition, ReviewTransition.review_id == Review.id)
        .where(Review.program_id == program.id)
        .order_by(ReviewTransition.occurred_at, ReviewTransition.id)
    )
    return list(db.session.execute(stmt).tuples())


def referenced_file_keys() -> set[str]:
    """Storage keys of the files a program document or a submitted version's document
    uses (a ``stored_files`` row no document uses keeps no file: a replaced draft's)."""
    used = union(select(ProgramDocument.file_id), select(VersionDocument.file_id)).subquery()
    return set(
        db.session.execute(select(StoredFile.sha256).where(StoredFile.id.in_(select(used))))
        .scalars()
        .all()
    )


def unchanged_program_document(program: Program) -> ProgramVersion | None:
    """The last submitted version when the program's working document is the very file that
    version holds (the same content: stored files are kept once by their SHA-256), else
    ``None``. Submitting again would then send the old text: the page warns before it."""
    if not program.versions:
        return None
    last = program.versions[-1]
    working = [d for d in program.documents if d.kind == DocumentKind.PROGRAM]
    previous = program_document(last)
    if previous is None or not working:
        return None
    return last if any(d.file_id == previous.file_id for d in working) else None
