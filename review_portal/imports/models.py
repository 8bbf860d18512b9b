"""A saved column mapping of an import: how files of one layout (one set of column
titles, e.g. one region's Navigator export) are read, offered again for the next file."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from review_portal.db import utcnow
from review_portal.extensions import db


class ImportMapping(db.Model):
    __tablename__ = "import_mappings"
    __table_args__ = (sa.UniqueConstraint("kind", "layout", name="uq_import_mappings_layout"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``organizations`` or ``programs`` (``review_portal.imports.services.KINDS``).
    kind: Mapped[str] = mapped_column(sa.String(32))
    #: SHA-256 (hex) of the file's set of column titles, each normalised.
    layout: Mapped[str] = mapped_column(sa.String(64))
    #: The titles as the file wrote them (shown when the mapping is offered).
    titles: Mapped[list] = mapped_column(sa.JSON)
    #: ``review_portal.imports.services.Mapping.json()``.
    mapping: Mapped[dict] = mapped_column(sa.JSON)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=sa.func.now()
    )
