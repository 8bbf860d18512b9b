"""Reads of conclusions that other parts of the portal need."""

from __future__ import annotations

from sqlalchemy import select

from review_portal.conclusions.models import Conclusion
from review_portal.extensions import db


def referenced_file_keys() -> set[str]:
    """Storage keys of every conclusion's PDF, whatever its status: a revoked or superseded
    conclusion is still verifiable and downloadable."""
    return set(db.session.execute(select(Conclusion.storage_key)).scalars().all())


def upcoming_numbers(count: int = 1) -> tuple[str, str]:
    """The first and the last of the next ``count`` conclusion numbers of this year in the
    center (read, nothing taken)."""
    from review_portal.conclusions import models
    from review_portal.conclusions.services import local_now
    from review_portal.settings.services import get_setting

    return models.upcoming_numbers(get_setting("region_code"), local_now().year, count)
