"""The one place where a score sheet's numbers are computed.

For a rubric with criteria *i* of weight *wᵢ* on the scale ``min..max`` and the scores
*sᵢ* of one sheet::

    weighted_i = wᵢ · sᵢ                      (an unscored criterion counts 0)
    total      = Σ weighted_i
    max_total  = Σ wᵢ · max
    percent    = total / max_total · 100, rounded to 2 decimals, half up

All arithmetic is :class:`~decimal.Decimal` (weights are read through ``str`` so ``0.1``
stays 0.1). Final scores, divergence and the decision are built on :func:`sheet_total`;
nothing else computes a score.

**Conditional criteria.** A criterion with ``applies_if`` (``{program field: value or list of
values}``, every field must match) exists only for the programs it applies to:
:func:`applicable` drops the others from the rubric before anything is shown or computed,
so they are not on the sheet, not scored and not in the maximum. The fields a rubric can
test are ``PROGRAM_FIELDS`` of :mod:`review_portal.rubrics.schema` (a test keeps the two
lists equal), read from the program by :func:`program_facts`;
``short_term`` is derived: a program is short-term when it lasts at most
:data:`SHORT_TERM_MAX_MONTHS` months or totals at most :data:`SHORT_TERM_MAX_HOURS` hours.

**Section minimum** (``min_percent`` of a section): :func:`sections_below` lists the sections
whose final scores reach less than that share of the section's maximum, exactly.

The module is a leaf: it reads the rubric through :func:`rubric_view`, which takes the typed
accessors of :class:`~review_portal.rubrics.registry.RubricFile` and also accepts the
rubric's YAML dictionary (a plain ``dict``), which the property tests use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

HUNDRED = Decimal(100)
CENT = Decimal("0.01")

#: A program lasting at most this many months is short-term.
SHORT_TERM_MAX_MONTHS = 3
#: A program of at most this many hours in total is short-term.
SHORT_TERM_MAX_HOURS = 36


def _value(value):
    """An enum's value, anything else as it is."""
    return getattr(value, "value", value)


#: The attributes :func:`program_facts` reads (of a ``Program`` or ``ProgramVersion``): what a
#: query must load for the rubric to apply to a program.
FACT_COLUMNS = (
    "adapted_for_disabilities",
    "multi_level",
    "program_type",
    "level",
    "duration_months",
    "total_hours",
)


def program_facts(program) -> dict:
    """The values of the fields ``applies_if`` may test, for a program (any object with its
    attributes: a ``Program`` or a ``ProgramVersion``)."""
    return {
        "adapted_for_disabilities": bool(getattr(program, "adapted_for_disabilities", False)),
        "short_term": is_short_term(program),
        "multi_level": bool(getattr(program, "multi_level", False)),
        "program_type": _value(getattr(program, "program_type", None)),
        "level": _value(getattr(program, "level", None)),
    }


def is_short_term(program) -> bool:
    """Whether a program (or version) lasts at most :data:`SHORT_TERM_MAX_MONTHS` months or
    totals at most :data:`SHORT_TERM_MAX_HOURS` hours: it then takes the rubric chosen for
    short-term programs of its type, when there is one."""
    months = getattr(program, "duration_months", None)
    hours = getattr(program, "total_hours", None)
    return bool(
        (months is not None and months <= SHORT_TERM_MAX_MONTHS)
        or (hours is not None and hours <= SHORT_TERM_MAX_HOURS)
    )


def applies(condition: Mapping | None, facts: Mapping) -> bool:
    """Whether a criterion's ``applies_if`` holds for the program's ``facts``."""
    for name, wanted in (condition or {}).items():
        choices = wanted if isinstance(wanted, (list, tuple)) else (wanted,)
        if _value(facts.get(name)) not in [_value(c) for c in choices]:
            return False
    return True


@dataclass(frozen=True)
class CriterionView:
    id: str
    title: str
    weight: Decimal
    blocking: bool
    #: ``{program field: value or values}``; empty: the criterion always applies.
    applies_if: tuple = ()


@dataclass(frozen=True)
class SectionView:
    id: str
    title: str
    criteria: tuple[CriterionView, ...]
    #: The least percentage of the section's maximum its final scores must reach.
    min_percent: Decimal | None = None


@dataclass(frozen=True)
class RubricView:
    """What scoring needs of a rubric, independent of how the rubric is stored."""

    scale_min: int
    scale_max: int
    #: ``{score: label}`` for every point of the scale (labels may be empty).
    scale_labels: dict[int, str]
    #: A score below this needs a written comment (``None``: never).
    comment_required_below: int | None
    sections: tuple[SectionView, ...]

    @property
    def criteria(self) -> tuple[CriterionView, ...]:
        return tuple(c for s in self.sections for c in s.criteria)

    @property
    def scale(self) -> range:
        return range(self.scale_min, self.scale_max + 1)


def _weight(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _optional(value) -> Decimal | None:
    return None if value is None else _weight(value)


def _freeze(value):
    return tuple(value) if isinstance(value, list) else value


def applicable(rubric, facts: Mapping):
    """The rubric without the criteria that do not apply to a program of ``facts`` (and
    without sections left empty). Takes a ``RubricFile``, a :class:`RubricView` or a YAML
    dictionary and returns the same kind."""
    if isinstance(rubric, Mapping):
        sections = []
        for section in rubric["sections"]:
            kept = [c for c in section["criteria"] if applies(c.get("applies_if"), facts)]
            if kept:
                sections.append({**section, "criteria": kept})
        return {**rubric, "sections": sections}
    sections = []
    for section in rubric.sections:
        kept = tuple(c for c in section.criteria if applies(dict(_conditions(c)), facts))
        if kept:
            sections.append(replace(section, criteria=kept))
    return replace(rubric, sections=tuple(sections))


def _conditions(criterion) -> tuple:
    """``applies_if`` (of a criterion, or the mapping itself) as sorted, hashable pairs."""
    condition = (
        criterion
        if isinstance(criterion, Mapping) or criterion is None
        else (getattr(criterion, "applies_if", None))
    )
    if not condition:
        return ()
    pairs = condition.items() if isinstance(condition, Mapping) else condition
    return tuple(sorted((str(k), _freeze(v)) for k, v in pairs))


def _typed_view(rubric) -> RubricView:
    return RubricView(
        scale_min=int(rubric.scale_min),
        scale_max=int(rubric.scale_max),
        scale_labels={
            n: str(rubric.scale_labels.get(n, ""))
            for n in range(rubric.scale_min, rubric.scale_max + 1)
        },
        comment_required_below=rubric.comment_required_below,
        sections=tuple(
            SectionView(
                id=str(s.id),
                title=str(s.title),
                criteria=tuple(
                    CriterionView(
                        id=str(c.id),
                        title=str(c.title),
                        weight=_weight(c.weight),
                        blocking=bool(c.blocking),
                        applies_if=_conditions(c),
                    )
                    for c in s.criteria
                ),
                min_percent=_optional(getattr(s, "min_percent", None)),
            )
            for s in rubric.sections
        ),
    )


def rubric_view(rubric) -> RubricView:
    """Adapt a rubric (a ``RubricFile`` or its YAML dict) to :class:`RubricView`."""
    if isinstance(rubric, RubricView):
        return rubric
    if hasattr(rubric, "sections") and hasattr(rubric, "scale_max"):
        # The typed accessors of rubrics.registry.RubricFile. A frozen one never changes:
        # its view is built once and kept on it (not a field: no part of its equality).
        params = getattr(type(rubric), "__dataclass_params__", None)
        if not (params is not None and params.frozen and hasattr(rubric, "__dict__")):
            return _typed_view(rubric)
        held = rubric.__dict__.get("_rubric_view")
        if held is None:
            held = rubric.__dict__["_rubric_view"] = _typed_view(rubric)
        return held
    data = rubric if isinstance(rubric, Mapping) else getattr(rubric, "data", None)
    if data is None:  # pragma: no cover - a RubricFile always carries its data
        raise TypeError(f"not a rubric: {rubric!r}")
    scale = data["scale"]
    low, high = int(scale["min"]), int(scale["max"])
    labels = {int(k): str(v) for k, v in (scale.get("labels") or {}).items()}
    below = data.get("comment_required_below")
    sections = tuple(
        SectionView(
            id=str(section["id"]),
            title=str(section.get("title", "")),
            criteria=tuple(
                CriterionView(
                    id=str(c["id"]),
                    title=str(c.get("title", "")),
                    weight=_weight(c.get("weight", 1)),
                    blocking=bool(c.get("blocking", False)),
                    applies_if=_conditions(c.get("applies_if")),
                )
                for c in section["criteria"]
            ),
            min_percent=_optional(section.get("min_percent")),
        )
        for section in data["sections"]
    )
    return RubricView(
        scale_min=low,
        scale_max=high,
        scale_labels={n: labels.get(n, "") for n in range(low, high + 1)},
        comment_required_below=None if below is None else int(below),
        sections=sections,
    )


@dataclass(frozen=True)
class SheetTotal:
    total: Decimal
    max_total: Decimal
    #: ``total / max_total · 100`` rounded half up to 2 decimals.
    percent: Decimal
    #: ``{criterion id: weight · score}``, ``0`` for an unscored criterion.
    weighted: dict[str, Decimal]
    #: Criteria without a score (a draft).
    missing: tuple[str, ...]


def percent_of(total: Decimal, max_total: Decimal) -> Decimal:
    if max_total == 0:
        return Decimal("0.00")
    return (total * HUNDRED / max_total).quantize(CENT, rounding=ROUND_HALF_UP)


def sheet_total(rubric, scores: Mapping[str, int | None]) -> SheetTotal:
    """The weighted total, maximum and percentage of one sheet's ``{criterion id: score}``.

    Scores of criteria not in the rubric are ignored; an unscored criterion counts 0 and is
    listed in ``missing``.
    """
    view = rubric_view(rubric)
    weighted: dict[str, Decimal] = {}
    missing = []
    max_total = Decimal(0)
    for criterion in view.criteria:
        value = scores.get(criterion.id)
        if value is None:
            missing.append(criterion.id)
            value = 0
        weighted[criterion.id] = criterion.weight * Decimal(int(value))
        max_total += criterion.weight * view.scale_max
    total = sum(weighted.values(), Decimal(0))
    return SheetTotal(
        total=total,
        max_total=max_total,
        percent=percent_of(total, max_total),
        weighted=weighted,
        missing=tuple(missing),
    )


def section_percent(section: SectionView, scores: Mapping[str, Fraction], scale_max) -> Fraction:
    """The exact percentage of the section's maximum that ``scores`` reach."""
    total = sum(
        (Fraction(c.weight) * Fraction(scores.get(c.id) or 0) for c in section.criteria),
        Fraction(0),
    )
    maximum = sum((Fraction(c.weight) * scale_max for c in section.criteria), Fraction(0))
    return total * 100 / maximum if maximum else Fraction(0)


def sections_below(rubric, scores: Mapping[str, Fraction]) -> tuple[str, ...]:
    """Ids of the sections with a ``min_percent`` that the (final) ``scores`` do not reach."""
    view = rubric_view(rubric)
    return tuple(
        s.id
        for s in view.sections
        if s.min_percent is not None
        and section_percent(s, scores, view.scale_max) < Fraction(s.min_percent)
    )
