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

The module is a leaf: it reads the rubric through :func:`rubric_view`, which takes the typed
accessors of :class:`~review_portal.rubrics.registry.RubricFile` and also accepts the
rubric's YAML dictionary (a plain ``dict``), which the property tests use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class CriterionView:
    id: str
    title: str
    weight: Decimal
    blocking: bool


@dataclass(frozen=True)
class SectionView:
    id: str
    title: str
    criteria: tuple[CriterionView, ...]


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


def rubric_view(rubric) -> RubricView:
    """Adapt a rubric (a ``RubricFile`` or its YAML dict) to :class:`RubricView`."""
    if isinstance(rubric, RubricView):
        return rubric
    if getattr(rubric, "sections", None) and hasattr(rubric, "scale_max"):
        # The typed accessors of rubrics.registry.RubricFile.
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
                        )
                        for c in s.criteria
                    ),
                )
                for s in rubric.sections
            ),
        )
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
                )
                for c in section["criteria"]
            ),
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
