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
    """The first and the last of the next ``count`` conclusion numbers as they stand now
    (read, nothing taken: another issuing meanwhile moves them on)."""
    from review_portal.conclusions.models import ConclusionCounter
    from review_portal.conclusions.services import format_number, local_now
    from review_portal.settings.services import get_setting

    year = local_now().year
    last = db.session.execute(
        select(ConclusionCounter.last_value).where(ConclusionCounter.year == year)
    ).scalar()
    region = get_setting("region_code")
    first = (last or 0) + 1
    return format_number(region, year, first), format_number(region, year, first + count - 1)
