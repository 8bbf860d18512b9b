"""The rules of a program's metadata (docs/design/rules.md), in one place.

The web form and the CSV importer both call :func:`program_data_errors`, so a rule and its
message exist exactly once.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from review_portal.programs.models import kind_values
from review_portal.programs.modules import (
    GROUP_MAX,
    HOURS_MAX,
    MONTHS_MAX,
    module_errors,
    module_totals,
)

AGE_MIN, AGE_MAX = 3, 18
TITLE_MAX = 500


def program_data_errors(data: dict) -> dict[str, object]:
    """Field errors of the metadata in ``data`` (empty when valid).

    ``data`` holds the fields of :class:`~review_portal.programs.models.ProgramData`, already
    converted to their types (ints, enums, bools); a missing or ``None`` required value is
    reported as such.
    """
    errors: dict[str, object] = {}
    title = (data.get("title") or "").strip()
    if not title:
        errors["title"] = _l("This field is required.")
    elif len(title) > TITLE_MAX:
        errors["title"] = _l("At most %(n)s characters.", n=TITLE_MAX)
    for field in ("direction", "level", "program_type", "study_form", "municipality_id"):
        if data.get(field) in (None, ""):
            errors[field] = _l("This field is required.")

    def number(field: str) -> int | None:
        value = data.get(field)
        if value is None or value == "":
            errors[field] = _l("This field is required.")
            return None
        return value

    age_min, age_max = number("age_min"), number("age_max")
    for field, value in (("age_min", age_min), ("age_max", age_max)):
        if value is not None and not AGE_MIN <= value <= AGE_MAX:
            errors[field] = _l(
                "The age must be from %(low)s to %(high)s years.", low=AGE_MIN, high=AGE_MAX
            )
    if "age_min" not in errors and "age_max" not in errors and age_min > age_max:
        errors["age_max"] = _l("The maximum age cannot be less than the minimum age.")

    hours = number("total_hours")
    if hours is not None and hours <= 0:
        errors["total_hours"] = _l("The number of hours must be greater than zero.")
    elif hours is not None and hours > HOURS_MAX:
        errors["total_hours"] = _l("At most %(n)s hours.", n=HOURS_MAX)
    months = number("duration_months")
    if months is not None and months <= 0:
        errors["duration_months"] = _l("The duration must be greater than zero.")
    elif months is not None and months > MONTHS_MAX:
        errors["duration_months"] = _l("At most %(n)s months.", n=MONTHS_MAX)

    group_min, group_max = number("group_min"), number("group_max")
    if group_min is not None and group_min < 1:
        errors["group_min"] = _l("A group has at least one child.")
    for field, value in (("group_min", group_min), ("group_max", group_max)):
        if field not in errors and value is not None and value > GROUP_MAX:
            errors[field] = _l("At most %(n)s children in a group.", n=GROUP_MAX)
    if (
        "group_min" not in errors
        and "group_max" not in errors
        and group_min is not None
        and group_max is not None
        and group_min > group_max
    ):
        errors["group_max"] = _l("The maximum group size cannot be less than the minimum.")

    others = data.get("additional_registry_kinds")
    if others is not None and (
        not isinstance(others, (list, tuple)) or len(others) > 8 or kind_values(others) is None
    ):
        errors["additional_registry_kinds"] = _l("Choose registries from the list.")

    modules = data.get("modules")
    if module_errors(modules):
        errors["modules"] = _l("Correct the errors in the modules.")
    elif modules and "total_hours" not in errors and "duration_months" not in errors:
        # Derived when the card is saved; a card that disagrees did not come through it.
        hours_sum, longest = module_totals(modules)
        if hours != hours_sum:
            errors["total_hours"] = _l(
                "The total hours must be the sum of the modules' hours (%(n)s).", n=hours_sum
            )
        if months != longest:
            errors["duration_months"] = _l(
                "The duration must be the longest module's (%(n)s months).", n=longest
            )
    return errors
