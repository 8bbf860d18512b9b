"""Reads of conclusions that other parts of the portal need."""

from __future__ import annotations

from sqlalchemy import select

from review_portal.conclusions.models import Conclusion
from review_portal.extensions import db


def referenced_file_keys() -> set[str]:
    """Storage keys of every conclusion's PDF, whatever its status: a revoked or superseded
    conclusion is still verifiable and downloadable."""
    return set(db.session.execute(select(Conclusion.storage_key)).scalars().all())
