"""The expert profile of a user, the directions they review and their unavailable periods."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from review_portal.db import TimestampMixin, enum_column
from review_portal.enums import Direction
from review_portal.extensions import db

if TYPE_CHECKING:
    from review_portal.accounts.models import User
    from review_portal.organizations.models import Municipality, Organization


class ExpertProfile(TimestampMixin, db.Model):
    __tablename__ = "expert_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    municipality_id: Mapped[int] = mapped_column(sa.ForeignKey("municipalities.id"), index=True)
    #: The home organization when it is a provider registered on the portal ...
    home_organization_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    #: ... otherwise its name and ИНН as the expert gave them.
    home_organization_name: Mapped[str] = mapped_column(sa.String(500))
    home_organization_inn: Mapped[str | None] = mapped_column(sa.String(12), index=True)
    position: Mapped[str | None] = mapped_column(sa.String(255))
    qualification: Mapped[str] = mapped_column(sa.Text, default="")
    experience_years: Mapped[int | None] = mapped_column()
    #: Maximum number of open assignments at once.
    capacity: Mapped[int] = mapped_column(default=5)
    #: Suspended by a coordinator: keeps the history, gets no new assignments.
    suspended: Mapped[bool] = mapped_column(default=False)
    suspended_reason: Mapped[str | None] = mapped_column(sa.Text)

    user: Mapped[User] = relationship(back_populates="expert_profile")
    municipality: Mapped[Municipality] = relationship()
    home_organization: Mapped[Organization | None] = relationship()
    direction_rows: Mapped[list[ExpertDirection]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )
    unavailability: Mapped[list[ExpertUnavailability]] = relationship(
        cascade="all, delete-orphan", order_by="ExpertUnavailability.starts_on"
    )

    __table_args__ = (sa.CheckConstraint("capacity >= 0", "capacity"),)

    @property
    def directions(self) -> set[Direction]:
        return {row.direction for row in self.direction_rows}

    def set_directions(self, directions) -> None:
        wanted = {Direction(d) for d in directions}
        self.direction_rows = [r for r in self.direction_rows if r.direction in wanted]
        for direction in sorted(wanted - self.directions):
            self.direction_rows.append(ExpertDirection(direction=direction))


class ExpertDirection(db.Model):
    __tablename__ = "expert_directions"

    expert_id: Mapped[int] = mapped_column(
        sa.ForeignKey("expert_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    direction: Mapped[Direction] = mapped_column(enum_column(Direction), primary_key=True)


class ExpertUnavailability(db.Model):
    __tablename__ = "expert_unavailability"

    id: Mapped[int] = mapped_column(primary_key=True)
    expert_id: Mapped[int] = mapped_column(
        sa.ForeignKey("expert_profiles.id", ondelete="CASCADE"), index=True
    )
    starts_on: Mapped[date] = mapped_column()
    ends_on: Mapped[date] = mapped_column()
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (sa.CheckConstraint("starts_on <= ends_on", "period"),)
