"""Operations and look-ups on organizations and municipalities."""

from __future__ import annotations

from sqlalchemy import select

from review_portal.extensions import db
from review_portal.organizations.models import Municipality


def municipality_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Municipality.id, Municipality.name).order_by(Municipality.name)
    )
    return [(row.id, row.name) for row in rows]
