"""Reading and changing run-time settings, with their defaults in one place."""

from __future__ import annotations

from typing import Any

from flask import g, has_app_context
from sqlalchemy import select

from review_portal.audit.services import record_event
from review_portal.extensions import db
from review_portal.settings.models import Setting

DEFAULTS: dict[str, Any] = {
    #: Region code used in conclusion numbers (``67-2026-00001``).
    "region_code": "00",
    "region_name": "",
    "center_name": "",
    "head_name": "",
    "head_position": "",
    #: ``different`` | ``prefer_different`` | ``any`` (see MunicipalityPolicy).
    "municipality_policy": "different",
    "deadline_working_days": 10,
    #: Working days the experts of a divergent review have to discuss and revise.
    "discussion_working_days": 5,
    #: Working days before an assignment's deadline when the expert is reminded.
    "reminder_days_before": 2,
    #: Public holidays as ISO dates; weekends are always non-working.
    "holidays": [],
    "timezone": "Europe/Moscow",
}


def _cache() -> dict:
    if not has_app_context():
        return {}
    if "settings_cache" not in g:
        g.settings_cache = {}
    return g.settings_cache


def get_setting(key: str) -> Any:
    """The stored value of ``key``, or its default."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown setting {key!r}")
    cache = _cache()
    if key not in cache:
        row = db.session.execute(select(Setting).where(Setting.key == key)).scalar_one_or_none()
        cache[key] = row.value if row is not None else DEFAULTS[key]
    return cache[key]


def set_setting(key: str, value: Any, actor=None) -> None:
    """Store ``value`` for ``key`` and audit the change (not committed)."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown setting {key!r}")
    before = get_setting(key)
    row = db.session.get(Setting, key)
    if row is None:
        row = Setting(key=key, value=value)
        db.session.add(row)
    else:
        row.value = value
    row.updated_by_id = actor.id if actor is not None else None
    _cache()[key] = value
    record_event(
        "settings.change",
        actor=actor,
        object_type="setting",
        object_id=key,
        before={"value": before},
        after={"value": value},
    )
