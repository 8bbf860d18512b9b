"""The rubric's divergence, final score and decision rules, as pure functions.

This module is a leaf: it takes a rubric (the typed ``RubricFile`` or its YAML dictionary)
and the sheets' ``{criterion id: score}`` and answers without a database, so the boundary
tests are plain tables. Every total comes from :func:`review_portal.scoring.compute.sheet_total`.

**Divergence** (``divergence`` in the rubric). The submitted sheets of a review diverge when
any of these fires (all that fire are reported):

* ``total_percent``: the highest and lowest totals differ by *at least* ``total_percent`` %
  of the maximum total (maximum 20, 20 % → a difference of 4 points diverges, 3 does not);
* ``decision_split`` (when true): the totals fall in different decision bands (admitted /
  revision required / rejected by ``admit_percent`` and ``revision_percent``);
* ``criterion_points``: on some criterion the highest and lowest scores differ by *at
  least* ``criterion_points``; those criteria are flagged.

**Final score** (``final_score``):

* ``closest_pair_mean``: with two sheets (or one) every sheet counts. With three or more,
  the two sheets whose totals are closest count. When several pairs are equally close, the
  pair with the higher mean total counts; when pairs are equal in both (identical totals),
  the pair of the lowest-numbered experts counts.
* ``mean``: every sheet counts.

The final score of a criterion is the mean of the counted sheets' scores; the total is the
weighted sum of the final scores; the percentage is the total over the maximum. They are
computed exactly (fractions) and the decision is taken on the exact values; they are rounded
half up to two decimals only to be stored and shown.

**Decision** (``decision``): percentage ≥ ``admit_percent`` → admitted; ≥
``revision_percent`` → revision required; below → rejected. A blocking criterion whose final
score is below ``blocking_min`` makes the decision revision required at best. So does a
counted expert's sheet below ``floor_percent`` (its total, with an appeal's fixed scores, over
the maximum: one expert's sheet below the floor is enough), and a section whose final scores
reach less than its ``min_percent``. Thresholds are compared exactly (a total of 14 out of 20
is 70 %, admitted at 70). Criteria that do not apply to the program are not in the rubric
passed here (:func:`review_portal.scoring.compute.applicable`), so not in any maximum.

**Registry kinds** (``registry_kinds`` in the rubric): a kind may ask more of an admitted
program than the decision does — a stricter ``admit_percent`` and sections' own minimums.
:func:`kinds_failed` lists, for each kind with a policy, what the final scores do not
reach (exactly, like the decision). The policy of the kind the program mainly asks for caps
the decision at revision required, as a section minimum does; an admission makes a registry
entry in the main kind and in every other kind asked for whose policy is met
(:mod:`review_portal.registry.services`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from itertools import combinations

from flask_babel import lazy_gettext as _l

from review_portal.enums import Decision
from review_portal.i18n import format_points
from review_portal.scoring.compute import (
    CENT,
    HUNDRED,
    rubric_view,
    section_percent,
    sections_below,
    sheet_total,
)

CLOSEST_PAIR_MEAN = "closest_pair_mean"
MEAN = "mean"

#: The final score rule in words, for the reconciliation page and the conclusion.
FINAL_SCORE_RULES = {
    CLOSEST_PAIR_MEAN: _l(
        "The final score of a criterion is the mean of the counted sheets. With two sheets "
        "both are counted; with three, the two whose totals are closest, and when pairs are "
        "equally close, the pair with the higher mean total."
    ),
    MEAN: _l("The final score of a criterion is the mean of all counted sheets."),
}


@dataclass(frozen=True)
class Thresholds:
    admit_percent: Decimal
    revision_percent: Decimal
    blocking_min: int
    #: Every counted expert's total must reach this percentage for admission.
    floor_percent: Decimal | None = None


@dataclass(frozen=True)
class DivergenceRules:
    total_percent: Decimal
    decision_split: bool
    criterion_points: int
    resolution: str


def plain(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: ``4.00`` → ``4``, ``13.50`` → ``13.5``."""
    return format(value.normalize(), "f")


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def thresholds(rubric) -> Thresholds:
    decision = getattr(rubric, "decision", None)
    if decision is None or isinstance(rubric, Mapping):
        data = rubric if isinstance(rubric, Mapping) else rubric.data
        d = data["decision"]
        floor = d.get("floor_percent")
        return Thresholds(
            _decimal(d["admit_percent"]),
            _decimal(d["revision_percent"]),
            int(d["blocking_min"]),
            None if floor is None else _decimal(floor),
        )
    floor = getattr(decision, "floor_percent", None)
    return Thresholds(
        _decimal(decision.admit_percent),
        _decimal(decision.revision_percent),
        int(decision.blocking_min),
        None if floor is None else _decimal(floor),
    )


@dataclass(frozen=True)
class KindRules:
    """What one registry kind asks of an admitted program beyond the decision."""

    admit_percent: Decimal | None
    #: ``((section id, least percentage), ...)``.
    sections: tuple[tuple[str, Decimal], ...]


def kind_rules(rubric) -> dict[str, KindRules]:
    """The rubric's ``registry_kinds`` policies by kind value (empty: none)."""
    policies = getattr(rubric, "registry_kinds", None)
    if policies is None or isinstance(rubric, Mapping):
        data = rubric if isinstance(rubric, Mapping) else rubric.data
        return {
            str(kind): KindRules(
                None if p.get("admit_percent") is None else _decimal(p["admit_percent"]),
                tuple((str(k), _decimal(v)) for k, v in (p.get("sections") or {}).items()),
            )
            for kind, p in (data.get("registry_kinds") or {}).items()
        }
    return {
        kind: KindRules(
            None if p.admit_percent is None else _decimal(p.admit_percent),
            tuple((str(k), _decimal(v)) for k, v in p.sections),
        )
        for kind, p in policies.items()
    }


def kinds_failed(
    rubric, scores: Mapping[str, Fraction], total, max_total
) -> dict[str, dict] | None:
    """``{kind: {"percent": admit_percent not reached, "sections": [ids below]}}`` for
    the kinds whose policy the exact final ``scores`` do not meet; ``None`` when the rubric
    has no policy. A required section absent from the program's sheet is not reached."""
    policies = kind_rules(rubric)
    if not policies:
        return None
    view = rubric_view(rubric)
    present = {s.id: s for s in view.sections}
    failed = {}
    for kind, policy in policies.items():
        low_total = policy.admit_percent is not None and Fraction(total) * 100 < Fraction(
            policy.admit_percent
        ) * Fraction(max_total)
        sections = [
            section_id
            for section_id, least in policy.sections
            if section_id not in present
            or section_percent(present[section_id], scores, view.scale_max) < Fraction(least)
        ]
        if low_total or sections:
            failed[kind] = {"percent": low_total, "sections": sections}
    return failed


def divergence_rules(rubric) -> DivergenceRules:
    divergence = getattr(rubric, "divergence", None)
    if divergence is None or isinstance(rubric, Mapping):
        data = rubric if isinstance(rubric, Mapping) else rubric.data
        d = data["divergence"]
        return DivergenceRules(
            _decimal(d["total_percent"]),
            bool(d["decision_split"]),
            int(d["criterion_points"]),
            str(d["resolution"]),
        )
    return DivergenceRules(
        _decimal(divergence.total_percent),
        bool(divergence.decision_split),
        int(divergence.criterion_points),
        str(divergence.resolution),
    )


def final_score_method(rubric) -> str:
    if isinstance(rubric, Mapping):
        return str(rubric.get("final_score", CLOSEST_PAIR_MEAN))
    return str(getattr(rubric, "final_score", CLOSEST_PAIR_MEAN))


def band(total, max_total, limits: Thresholds) -> Decision:
    """The decision a total earns by the percentage thresholds alone, compared exactly
    (``Decimal`` or ``Fraction`` totals)."""
    share = Fraction(total) * 100
    if share >= Fraction(limits.admit_percent) * Fraction(max_total):
        return Decision.ADMITTED
    if share >= Fraction(limits.revision_percent) * Fraction(max_total):
        return Decision.REVISION_REQUIRED
    return Decision.REJECTED


def _decimal_of(value: Fraction) -> Decimal:
    """A fraction rounded half up to two decimals."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        CENT, rounding=ROUND_HALF_UP
    )


# --- divergence ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DivergenceOutcome:
    divergent: bool
    #: The rules that fired, JSON-ready (stored on the review as they are).
    fired: tuple[dict, ...]
    #: Criteria whose scores differ by at least ``criterion_points``.
    flagged: tuple[str, ...]


def fixed_total(view, fixed: Mapping[str, Fraction] | None) -> Fraction:
    """The weighted sum of the ``fixed`` final scores (an appeal panel's uncontested
    criteria), exact."""
    if not fixed:
        return Fraction(0)
    return sum(
        (Fraction(c.weight) * Fraction(fixed[c.id]) for c in view.criteria if c.id in fixed),
        Fraction(0),
    )


def check_divergence(
    rubric,
    sheets: Sequence[Mapping[str, int | None]],
    fixed: Mapping[str, Fraction] | None = None,
) -> DivergenceOutcome:
    """Apply the rubric's divergence rules to the submitted sheets' scores.

    ``fixed``: an appeal panel scoring only the contested criteria; the other criteria keep
    these final scores (the same on every sheet), which count in the decision bands."""
    rules = divergence_rules(rubric)
    limits = thresholds(rubric)
    view = rubric_view(rubric)
    if len(sheets) < 2:
        return DivergenceOutcome(False, (), ())
    totals = [sheet_total(view, scores) for scores in sheets]
    extra = fixed_total(view, fixed)
    max_total = totals[0].max_total
    fired: list[dict] = []

    difference = max(t.total for t in totals) - min(t.total for t in totals)
    limit = rules.total_percent * max_total / HUNDRED
    if difference >= limit:
        fired.append(
            {
                "rule": "total_percent",
                "difference": plain(difference),
                "limit": plain(limit),
                "percent": plain(rules.total_percent),
            }
        )
    bands = {band(Fraction(t.total) + extra, max_total, limits) for t in totals}
    if rules.decision_split and len(bands) > 1:
        order = [d for d in Decision if d in bands]
        fired.append({"rule": "decision_split", "bands": [d.value for d in order]})
    flagged = []
    for criterion in view.criteria:
        values = [s.get(criterion.id) for s in sheets]
        values = [v for v in values if v is not None]
        if len(values) >= 2 and max(values) - min(values) >= rules.criterion_points:
            flagged.append(criterion.id)
    if flagged:
        fired.append(
            {"rule": "criterion_points", "points": rules.criterion_points, "criteria": flagged}
        )
    return DivergenceOutcome(bool(fired), tuple(fired), tuple(flagged))


def describe_rule(fired: Mapping) -> str:
    """One fired rule in words, for the coordinator and the experts."""
    rule = fired.get("rule")
    if rule == "total_percent":
        return str(
            _l(
                "The totals differ by %(difference)s points, at least %(percent)s%% of the "
                "maximum (%(limit)s points).",
                difference=format_points(fired["difference"]),
                percent=format_points(fired["percent"]),
                limit=format_points(fired["limit"]),
            )
        )
    if rule == "decision_split":
        return str(
            _l(
                "The totals lead to different decisions: %(bands)s.",
                bands=" / ".join(str(Decision(b).label) for b in fired["bands"]),
            )
        )
    if rule == "criterion_points":
        return str(
            _l(
                "Scores differ by %(points)s or more on: %(criteria)s.",
                points=format_points(fired["points"]),
                criteria=", ".join(fired["criteria"]),
            )
        )
    return str(rule)


# --- final result and decision -------------------------------------------------------------


@dataclass(frozen=True)
class FinalResult:
    method: str
    #: Positions (0-based, in the order given) of the counted sheets.
    counted: tuple[int, ...]
    #: ``{criterion id: final score}`` (mean of the counted sheets, 2 decimals).
    scores: dict[str, Decimal]
    total: Decimal
    max_total: Decimal
    percent: Decimal
    decision: Decision
    #: Blocking criteria whose final score is below ``blocking_min``.
    blocking_failed: tuple[str, ...]
    #: Several pairs were equally close and the higher mean decided.
    tie_broken: bool = False
    #: Positions of the counted sheets whose total is below ``floor_percent``.
    floor_failed: tuple[int, ...] = ()
    #: Sections whose final scores reach less than their ``min_percent``.
    sections_failed: tuple[str, ...] = ()
    #: Registry kinds whose policy is not met (:func:`kinds_failed`); ``None``: no policy.
    kinds_failed: dict | None = None
    #: The registry kind the program mainly asks for (its policy caps the decision).
    main_kind: str | None = None

    def as_json(self, labels: Sequence[int] | None = None) -> dict:
        """JSON-ready; ``labels`` turns positions into expert numbers."""
        counted = [labels[i] for i in self.counted] if labels is not None else list(self.counted)
        return {
            "method": self.method,
            "counted": counted,
            "scores": {k: str(v) for k, v in self.scores.items()},
            "total": str(self.total),
            "max_total": str(self.max_total),
            "percent": str(self.percent),
            "decision": self.decision.value,
            "blocking_failed": list(self.blocking_failed),
            "tie_broken": self.tie_broken,
            "floor_failed": (
                [labels[i] for i in self.floor_failed]
                if labels is not None
                else list(self.floor_failed)
            ),
            "sections_failed": list(self.sections_failed),
            # Only for a rubric with registry kinds' policies: results stored before stay.
            **(
                {}
                if self.kinds_failed is None
                else {"kinds_failed": self.kinds_failed, "main_kind": self.main_kind}
            ),
        }


def counted_sheets(totals: Sequence[Decimal], method: str) -> tuple[tuple[int, ...], bool]:
    """Positions of the sheets that count, and whether a tie between pairs was broken."""
    positions = tuple(range(len(totals)))
    if method != CLOSEST_PAIR_MEAN or len(totals) <= 2:
        return positions, False
    pairs = sorted(
        combinations(positions, 2),
        # Closest first; then the higher mean; then the lowest-numbered experts.
        key=lambda p: (abs(totals[p[0]] - totals[p[1]]), -(totals[p[0]] + totals[p[1]]), p),
    )
    best = pairs[0]
    distance = abs(totals[best[0]] - totals[best[1]])
    tie = sum(1 for p in pairs if abs(totals[p[0]] - totals[p[1]]) == distance) > 1
    return best, tie


def decide(rubric, scores: Mapping[str, Fraction], total, max_total, below_floor: bool = False):
    """The decision for final scores (exact): the band, capped at revision required by a
    failed blocking criterion, a section below its minimum or (``below_floor``) a counted
    sheet below the floor. Returns the decision, the failed blocking criteria and the
    failed sections."""
    limits = thresholds(rubric)
    view = rubric_view(rubric)
    failed = tuple(
        c.id
        for c in view.criteria
        if c.blocking and Fraction(scores.get(c.id, 0)) < limits.blocking_min
    )
    sections = sections_below(view, scores)
    decision = band(total, max_total, limits)
    if (failed or sections or below_floor) and decision == Decision.ADMITTED:
        decision = Decision.REVISION_REQUIRED
    return decision, failed, sections


def below_floor(
    rubric,
    sheets: Sequence[Mapping[str, int | None]],
    counted: Sequence[int],
    fixed: Mapping[str, Fraction] | None = None,
) -> tuple[int, ...]:
    """Positions of the counted sheets whose exact percentage (``fixed`` scores standing in
    for the criteria an appeal panel does not score) is below the rubric's floor."""
    floor = thresholds(rubric).floor_percent
    if floor is None:
        return ()
    view = rubric_view(rubric)
    maximum = sum((Fraction(c.weight) * view.scale_max for c in view.criteria), Fraction(0))
    failed = []
    for i in counted:
        total = sum(
            (
                Fraction(c.weight)
                * (Fraction(fixed[c.id]) if fixed and c.id in fixed else sheets[i].get(c.id) or 0)
                for c in view.criteria
            ),
            Fraction(0),
        )
        if total * 100 < Fraction(floor) * maximum:
            failed.append(i)
    return tuple(failed)


def final_result(
    rubric,
    sheets: Sequence[Mapping[str, int | None]],
    method: str | None = None,
    fixed: Mapping[str, Fraction] | None = None,
    main_kind: str | None = None,
) -> FinalResult:
    """The final result of the sheets by ``method`` (default: the rubric's ``final_score``).

    ``fixed``: final scores kept for the criteria an appeal panel does not score (the
    sheets' totals, which choose the counted pair, then differ only by the scored ones).
    ``main_kind``: the registry kind the program mainly asks for; when the rubric's policy
    for it is not met, the decision is revision required at best (the other kinds asked
    for only decide where an admitted program is included)."""
    if not sheets:
        raise ValueError("a final result needs at least one sheet")
    view = rubric_view(rubric)
    method = method or final_score_method(rubric)
    totals = [sheet_total(view, s) for s in sheets]
    counted, tie = counted_sheets([t.total for t in totals], method)
    # Exact arithmetic (fractions): a mean of 4/3 is not 1.33 when the decision is taken;
    # scores, total and percentage are rounded (half up, 2 decimals) only to be shown.
    exact: dict[str, Fraction] = {}
    for criterion in view.criteria:
        if fixed and criterion.id in fixed:
            exact[criterion.id] = Fraction(fixed[criterion.id])
            continue
        values = [int(sheets[i].get(criterion.id) or 0) for i in counted]
        exact[criterion.id] = Fraction(sum(values), len(values))
    total = sum((Fraction(c.weight) * exact[c.id] for c in view.criteria), Fraction(0))
    max_total = totals[0].max_total
    floor_failed = below_floor(rubric, sheets, counted, fixed)
    decision, failed, sections = decide(rubric, exact, total, max_total, bool(floor_failed))
    kinds = kinds_failed(rubric, exact, total, max_total)
    if kinds and main_kind in kinds and decision == Decision.ADMITTED:
        # The decision is about the registry the program mainly asks for.
        decision = Decision.REVISION_REQUIRED
    return FinalResult(
        method=method,
        counted=counted,
        scores={k: _decimal_of(v) for k, v in exact.items()},
        total=_decimal_of(total),
        max_total=max_total,
        percent=_decimal_of(total * 100 / Fraction(max_total)),
        decision=decision,
        blocking_failed=failed,
        tie_broken=tie,
        floor_failed=floor_failed,
        sections_failed=sections,
        kinds_failed=kinds,
        main_kind=main_kind,
    )
