"""Who reads the analytics: the center sees everything; a municipal viewer sees the
figures of their municipality, without experts' names (workload, calibration) and without
the region-wide capacity check."""

from __future__ import annotations

from review_portal.enums import Role
from review_portal.permissions import has_role, is_staff


def can_view_analytics(user) -> bool:
    return is_staff(user) or (
        has_role(user, Role.MUNICIPAL) and getattr(user, "municipality_id", None) is not None
    )


def can_view_calibration(user) -> bool:
    """Workload and calibration name experts: personal data, the center's only."""
    return is_staff(user)


def analytics_municipality(user) -> int | None:
    """The municipality the user's dashboard is restricted to (``None``: the whole region)."""
    return None if is_staff(user) else user.municipality_id


def can_export_table(user, name: str) -> bool:
    from review_portal.analytics.services import MUNICIPAL_TABLES, TABLES

    if name not in TABLES or not can_view_analytics(user):
        return False
    return can_view_calibration(user) or name in MUNICIPAL_TABLES


TEMPLATE_PREDICATES = {"can_view_analytics": can_view_analytics}
