"""Reading a score sheet's assignment for its pages and its autosave. Nothing here writes."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from review_portal.assignment.models import Assignment
from review_portal.extensions import db
from review_portal.programs.models import Program, ProgramVersion
from review_portal.reviews.models import Review
from review_portal.scoring.compute import FACT_COLUMNS
from review_portal.scoring.models import ScoreSheet


def sheet_assignment(assignment_id: int, *, with_program: bool = False) -> Assignment | None:
    """The assignment with its sheet and the sheet's scores, its review and the program
    version under review, in one statement (``None`` when there is none): what saving and
    showing a sheet read, instead of a lazy load each. ``with_program``: the program and
    its organization too (the sheet page's card)."""
    return (
        db.session.execute(_sheet_statement(with_program), {"assignment_id": assignment_id})
        .unique()
        .scalar_one_or_none()
    )


@functools.cache
def _sheet_statement(with_program: bool):
    """:func:`sheet_assignment`'s statement, built once per process (the sheet page and every
    autosave run it; building costs more CPU than running it)."""
    review = joinedload(Assignment.review)
    options = [joinedload(Assignment.sheet).joinedload(ScoreSheet.scores)]
    if not with_program:
        # Saving reads of the version only the facts the rubric applies by (the others,
        # long texts repeated on every score's row, load if something reads them).
        facts = (getattr(ProgramVersion, name) for name in FACT_COLUMNS)
        options.append(review.joinedload(Review.version).load_only(*facts))
    else:
        options += [
            review.joinedload(Review.program).joinedload(Program.organization),
            review.joinedload(Review.version).joinedload(ProgramVersion.municipality),
        ]
    return (
        select(Assignment).where(Assignment.id == sa.bindparam("assignment_id")).options(*options)
    )
