"""A program's modules: their shape, their rules and the totals derived from them.

A program may be certified with its modules (each with its own hours, months, group size
and teacher requirements). The modules are kept as a JSON list on the program and copied
with every other field into each submitted version, so a version freezes them too. Each
module is a dict with the keys of :data:`MODULE_KEYS`; when a program has modules, its total
hours are their sum and its duration the longest of them (:func:`with_module_totals`).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

#: At most this many modules a program has (the form offers as many rows).
MODULES_MAX = 8
MODULE_TITLE_MAX = 300
TEACHER_REQUIREMENTS_MAX = 2000
MODULE_KEYS = ("title", "hours", "months", "group_min", "group_max", "teacher_requirements")

#: Domain limits of a program's numbers (a year-round program has some hundreds of hours),
#: each module's too.
HOURS_MAX, MONTHS_MAX, GROUP_MAX = 10_000, 120, 1_000


def module_totals(modules: list[dict]) -> tuple[int, int] | None:
    """``(sum of hours, longest months)`` of ``modules``; ``None`` without modules."""
    if not modules:
        return None
    return sum(m["hours"] for m in modules), max(m["months"] for m in modules)


def with_module_totals(data: dict) -> dict:
    """``data`` with ``total_hours`` and ``duration_months`` derived from its ``modules``
    when it has any (a key missing from ``data`` is left alone)."""
    modules = data.get("modules")
    if modules and not module_errors(modules):
        data = dict(data)
        data["total_hours"], data["duration_months"] = module_totals(modules)
    return data


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def module_row_errors(module: dict) -> dict[str, object]:
    """Field errors of one module (empty when valid)."""
    errors: dict[str, object] = {}
    title = module.get("title")
    if not isinstance(title, str) or not title.strip():
        errors["title"] = _l("This field is required.")
    elif len(title) > MODULE_TITLE_MAX:
        errors["title"] = _l("At most %(n)s characters.", n=MODULE_TITLE_MAX)
    for key, high, message in (
        ("hours", HOURS_MAX, _l("From 1 to %(n)s hours.", n=HOURS_MAX)),
        ("months", MONTHS_MAX, _l("From 1 to %(n)s months.", n=MONTHS_MAX)),
        ("group_min", GROUP_MAX, _l("From 1 to %(n)s children.", n=GROUP_MAX)),
        ("group_max", GROUP_MAX, _l("From 1 to %(n)s children.", n=GROUP_MAX)),
    ):
        value = module.get(key)
        if value is None:
            errors[key] = _l("This field is required.")
        elif not _whole(value) or not 1 <= value <= high:
            errors[key] = message
    if (
        "group_min" not in errors
        and "group_max" not in errors
        and module["group_min"] > module["group_max"]
    ):
        errors["group_max"] = _l("The maximum group size cannot be less than the minimum.")
    requirements = module.get("teacher_requirements", "")
    if not isinstance(requirements, str):
        errors["teacher_requirements"] = _l("Enter text.")
    elif len(requirements) > TEACHER_REQUIREMENTS_MAX:
        errors["teacher_requirements"] = _l("At most %(n)s characters.", n=TEACHER_REQUIREMENTS_MAX)
    unknown = set(module) - set(MODULE_KEYS)
    if unknown:
        errors["title"] = _l("The module has unknown fields.")
    return errors


def module_errors(modules) -> list[dict[str, object]] | None:
    """The errors of each module in ``modules`` (``None`` when all are valid)."""
    if modules is None:
        return None
    if not isinstance(modules, list) or len(modules) > MODULES_MAX:
        return [{"title": _l("At most %(n)s modules.", n=MODULES_MAX)}]
    errors = [
        module_row_errors(m) if isinstance(m, dict) else {"title": _l("Not a module.")}
        for m in modules
    ]
    return errors if any(errors) else None


def summary(module: dict) -> str:
    """One line naming a module and its numbers, for lists and comparisons."""
    return str(
        _l(
            "%(title)s: %(hours)s h, %(months)s mo., group %(low)s–%(high)s",
            title=module["title"],
            hours=module["hours"],
            months=module["months"],
            low=module["group_min"],
            high=module["group_max"],
        )
    )


def modules_text(modules: list[dict], requirements: bool = False) -> str:
    """All of ``modules`` as one text (exports, comparisons): their summaries separated by
    "; ", each followed by its teacher requirements in brackets when ``requirements``."""

    def one(module: dict) -> str:
        text = summary(module)
        if requirements and module.get("teacher_requirements"):
            text += f" ({module['teacher_requirements']})"
        return text

    return "; ".join(one(m) for m in modules or [])
