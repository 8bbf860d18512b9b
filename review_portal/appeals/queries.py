"""Reads of appeals: the coordinators' list, the appeal a panel review belongs to, and what
the panel reads of the appealed review (its sheets by seat, never a name)."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased, joinedload

from review_portal.appeals.models import Appeal
from review_portal.conclusions.models import Conclusion
from review_portal.enums import AppealState, ReviewKind
from review_portal.extensions import db
from review_portal.reviews.models import Review
from review_portal.reviews.queries import review_sheets
from review_portal.workflow import ReviewState


def appeal_list(state: AppealState | None = None, hidden_review_ids=()) -> Select:
    """Appeals, open ones first then newest, with their conclusion and program (one query
    per page); not those on a review of ``hidden_review_ids`` (the reader's open seats)."""
    stmt = (
        select(Appeal)
        .options(
            joinedload(Appeal.conclusion),
            joinedload(Appeal.program),
            joinedload(Appeal.panel_review),
        )
        .order_by(
            Appeal.state.in_((AppealState.FILED, AppealState.ACCEPTED)).desc(), Appeal.id.desc()
        )
    )
    if state is not None:
        stmt = stmt.where(Appeal.state == state)
    hidden = list(hidden_review_ids)
    if hidden:
        stmt = stmt.where(
            Appeal.review_id.not_in(hidden),
            Appeal.panel_review_id.is_(None) | Appeal.panel_review_id.not_in(hidden),
        )
    return stmt


def appeal_of_panel(review: Review) -> Appeal | None:
    """The appeal whose panel ``review`` is (``None`` for any other review)."""
    if review.kind != ReviewKind.APPEAL:
        return None
    return db.session.execute(
        select(Appeal)
        .where(Appeal.panel_review_id == review.id)
        .options(joinedload(Appeal.conclusion).joinedload(Conclusion.review))
    ).scalar_one_or_none()


def original_sheets(appeal: Appeal):
    """The appealed review's submitted sheets, labelled by seat ("Эксперт 1"…)."""
    return [s for s in review_sheets(appeal.review) if s.submitted]


def referenced_file_keys() -> set[str]:
    """Storage keys of the files appeals keep: the decisions' PDFs and the attached files
    (their ``stored_files`` rows)."""
    from review_portal.appeals.models import AppealFile
    from review_portal.programs.models import StoredFile

    decisions = db.session.execute(
        select(Appeal.storage_key).where(Appeal.storage_key.is_not(None))
    ).scalars()
    attached = db.session.execute(
        select(StoredFile.sha256).where(StoredFile.id.in_(select(AppealFile.file_id)))
    ).scalars()
    return set(decisions) | set(attached)


def waiting_for_center(hidden_review_ids=()) -> int:
    """Appeals the center has to act on: filed (accept or refuse), or accepted with the
    panel's result in (decide); not those on a review in ``hidden_review_ids``."""
    hidden = list(hidden_review_ids)
    panel = aliased(Review)
    stmt = (
        select(func.count(Appeal.id))
        .outerjoin(panel, Appeal.panel_review_id == panel.id)
        .where(
            (Appeal.state == AppealState.FILED)
            | (
                (Appeal.state == AppealState.ACCEPTED)
                & (panel.state == ReviewState.AWAITING_DECISION)
            )
        )
    )
    if hidden:
        stmt = stmt.where(
            Appeal.review_id.not_in(hidden),
            Appeal.panel_review_id.is_(None) | Appeal.panel_review_id.not_in(hidden),
        )
    return db.session.execute(stmt).scalar_one()
