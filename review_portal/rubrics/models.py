"""What the database knows of rubrics: the fingerprint of every version ever loaded, and
which rubric is active for each program type (and, apart, for its short-term programs). The
rubrics themselves are the YAML files."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from review_portal.db import enum_column, utcnow
from review_portal.enums import ProgramType
from review_portal.extensions import db


class RubricRecord(db.Model):
    """A rubric version as first seen: a file with the same id and version must not change."""

    __tablename__ = "rubric_records"

    rubric_id: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the file's canonical content.
    sha256: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(500))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class ActiveRubric(db.Model):
    """The coordinator's choice of rubric for a program type, or for its short-term programs."""

    __tablename__ = "active_rubrics"

    program_type: Mapped[ProgramType] = mapped_column(enum_column(ProgramType), primary_key=True)
    #: The choice for the type's short-term programs (see
    #: :func:`review_portal.scoring.compute.program_facts`); without one they take the
    #: regular choice.
    short_term: Mapped[bool] = mapped_column(
        primary_key=True, default=False, server_default=sa.false()
    )
    rubric_id: Mapped[str] = mapped_column(sa.String(80))
    rubric_version: Mapped[int] = mapped_column()
    chosen_at: Mapped[datetime] = mapped_column(default=utcnow)
    chosen_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
