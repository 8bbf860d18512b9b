"""Users, their roles and password-reset tokens."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from review_portal.db import TimestampMixin, enum_column
from review_portal.enums import AccountStatus, Role
from review_portal.extensions import db

if TYPE_CHECKING:
    from review_portal.experts.models import ExpertProfile
    from review_portal.organizations.models import Municipality, Organization


def normalize_email(email: str) -> str:
    """An e-mail address as :attr:`User.email` stores it."""
    return email.strip().lower()


class User(UserMixin, TimestampMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-cased, so uniqueness is case-insensitive on every database.
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    full_name: Mapped[str] = mapped_column(sa.String(255))
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    #: Switched off by an administrator: the account cannot log in at all.
    active: Mapped[bool] = mapped_column(default=True)
    #: Approval of a self-registration by a coordinator.
    status: Mapped[AccountStatus] = mapped_column(
        enum_column(AccountStatus), default=AccountStatus.PENDING
    )
    approved_at: Mapped[datetime | None] = mapped_column()
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: The provider organization of an applicant.
    organization_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organizations.id"), index=True
    )
    #: The municipality a municipal viewer may read.
    municipality_id: Mapped[int | None] = mapped_column(sa.ForeignKey("municipalities.id"))
    #: Consent to the processing of personal data (152-ФЗ): when, and which text version.
    consent_at: Mapped[datetime | None] = mapped_column()
    consent_version: Mapped[str | None] = mapped_column(sa.String(20))
    locale: Mapped[str | None] = mapped_column(sa.String(5))
    last_login_at: Mapped[datetime | None] = mapped_column()
    password_changed_at: Mapped[datetime | None] = mapped_column()
    #: Part of every session's and "remember me" cookie's identity (:meth:`get_id`); raising
    #: it (logout, a new password, deactivation, other roles) ends all of them at once.
    session_version: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))

    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    organization: Mapped[Organization | None] = relationship(foreign_keys=[organization_id])
    municipality: Mapped[Municipality | None] = relationship(foreign_keys=[municipality_id])
    expert_profile: Mapped[ExpertProfile | None] = relationship(
        back_populates="user", uselist=False
    )

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    def get_id(self) -> str:  # Flask-Login
        """``<id>:<session version>``: what the session and the remember cookie carry."""
        return f"{self.id}:{self.session_version or 0}"

    @property
    def roles(self) -> set[Role]:
        return {row.role for row in self.role_rows}

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles & set(roles))

    def add_role(self, role: Role) -> None:
        if role not in self.roles:
            self.role_rows.append(UserRole(role=role))

    def remove_role(self, role: Role) -> None:
        self.role_rows = [row for row in self.role_rows if row.role != role]

    @property
    def is_approved(self) -> bool:
        return self.active and self.status == AccountStatus.APPROVED

    @property
    def is_staff(self) -> bool:
        """Coordinators and administrators: the operators of the center."""
        return self.is_approved and self.has_role(Role.COORDINATOR, Role.ADMIN)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class UserRole(db.Model):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(enum_column(Role), primary_key=True)

    user: Mapped[User] = relationship(back_populates="role_rows")


class PasswordResetToken(db.Model):
    """A single-use, expiring token; only its SHA-256 is stored."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()

    user: Mapped[User] = relationship()
