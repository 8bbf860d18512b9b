"""Reads of the assignment domain: the conflicts of interest experts have declared, as the
coordinator's pages list them (each in a fixed number of queries)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from review_portal.assignment.models import ExpertConflict
from review_portal.extensions import db


def conflicts_of_expert(expert_id: int) -> list[ExpertConflict]:
    """Every conflict ``expert_id`` declared, newest first, with its organization and
    program (one query)."""
    return list(
        db.session.execute(
            select(ExpertConflict)
            .options(joinedload(ExpertConflict.organization), joinedload(ExpertConflict.program))
            .where(ExpertConflict.expert_id == expert_id)
            .order_by(ExpertConflict.declared_at.desc(), ExpertConflict.id.desc())
        ).scalars()
    )


def conflicts_for_review(review) -> dict[int, ExpertConflict]:
    """Per expert, the latest declared conflict that excludes them from ``review``: one with
    its program, or with its whole organization (one query for all the candidates)."""
    program = review.program
    rows = db.session.execute(
        select(ExpertConflict)
        .where(
            or_(
                ExpertConflict.program_id == program.id,
                (ExpertConflict.organization_id == program.organization_id)
                & ExpertConflict.program_id.is_(None),
            )
        )
        .order_by(ExpertConflict.declared_at, ExpertConflict.id)
    ).scalars()
    return {conflict.expert_id: conflict for conflict in rows}
