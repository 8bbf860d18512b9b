"""The appeal against a conclusion, its attached files and the counter that numbers the
decisions on appeals.

An appeal's ``state`` is written only by :func:`review_portal.workflow.advance_appeal`. One
appeal per conclusion (a unique key). A dismissed appeal gets its decision as a PDF, stored
once and numbered ``<region>-<year>-A<5-digit sequence>`` from its own counter.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from review_portal.db import enum_column, utcnow
from review_portal.enums import AppealState, Decision, RefusalGround
from review_portal.extensions import db
from review_portal.workflow import WorkflowError, is_advancing

if TYPE_CHECKING:
    from review_portal.conclusions.models import Conclusion
    from review_portal.programs.models import Program, StoredFile
    from review_portal.reviews.models import Review


class Appeal(db.Model):
    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The conclusion appealed against: one appeal per conclusion.
    conclusion_id: Mapped[int] = mapped_column(sa.ForeignKey("conclusions.id"), unique=True)
    #: The review whose decision the conclusion records.
    review_id: Mapped[int] = mapped_column(sa.ForeignKey("reviews.id"), index=True)
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("programs.id"), index=True)
    #: The new panel's review, once the appeal is accepted.
    panel_review_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reviews.id"))
    state: Mapped[AppealState] = mapped_column(
        enum_column(AppealState), default=AppealState.FILED, index=True
    )
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)
    filed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    #: The last day of the window the appeal was filed in (center's calendar).
    window_ends_on: Mapped[date] = mapped_column()
    #: The provider's reasons: ``[{"criterion": id, "text": ...}]``, in the rubric's order.
    arguments: Mapped[list] = mapped_column(sa.JSON)
    #: The appealed decision (as the conclusion records it).
    appealed_decision: Mapped[Decision] = mapped_column(
        enum_column(Decision, name="appealed_decision")
    )
    refusal_ground: Mapped[RefusalGround | None] = mapped_column(enum_column(RefusalGround))
    #: The coordinator's words: why refused, the reasoned answer of a dismissal, or a note.
    answer: Mapped[str | None] = mapped_column(sa.Text)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: The conclusion that superseded the appealed one (upheld).
    new_conclusion_id: Mapped[int | None] = mapped_column(sa.ForeignKey("conclusions.id"))
    #: The decision on a dismissed appeal: number, stored PDF and fingerprints.
    number: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    year: Mapped[int | None] = mapped_column()
    sequence: Mapped[int | None] = mapped_column()
    issued_at: Mapped[datetime | None] = mapped_column()
    storage_key: Mapped[str | None] = mapped_column(sa.String(255))
    sha256: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    size: Mapped[int | None] = mapped_column(sa.BigInteger)

    conclusion: Mapped[Conclusion] = relationship(foreign_keys=[conclusion_id])
    new_conclusion: Mapped[Conclusion | None] = relationship(foreign_keys=[new_conclusion_id])
    review: Mapped[Review] = relationship(foreign_keys=[review_id])
    panel_review: Mapped[Review | None] = relationship(foreign_keys=[panel_review_id])
    program: Mapped[Program] = relationship()
    files: Mapped[list[AppealFile]] = relationship(
        back_populates="appeal", order_by="AppealFile.id", cascade="all, delete-orphan"
    )

    @validates("state")
    def _only_through_workflow(self, key, value):
        if self.state is not None and not is_advancing():
            raise WorkflowError("Appeal.state is changed only through workflow.advance_appeal()")
        return value

    @property
    def contested(self) -> list[str]:
        return [item["criterion"] for item in self.arguments or []]


class AppealFile(db.Model):
    """A file the provider attached to an appeal (PDF, DOCX or ODT, stored once)."""

    __tablename__ = "appeal_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(
        sa.ForeignKey("appeals.id", ondelete="CASCADE"), index=True
    )
    file_id: Mapped[int] = mapped_column(sa.ForeignKey("stored_files.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    appeal: Mapped[Appeal] = relationship(back_populates="files")
    file: Mapped[StoredFile] = relationship()


class AppealCounter(db.Model):
    """The last number of a decision on an appeal issued in a year (locked while taken)."""

    __tablename__ = "appeal_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(default=0)


def format_decision_number(region_code: str, year: int, sequence: int) -> str:
    """A decision on an appeal: ``<region>-<year>-A<sequence, 5 digits>``."""
    return f"{region_code}-{year}-A{sequence:05d}"
