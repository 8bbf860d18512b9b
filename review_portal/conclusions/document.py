"""What a conclusion says: its content gathered from the decided review, as plain data.

:func:`conclusion_content` collects everything the document holds (docs/design/domain.md)
into a JSON-ready dictionary — the issuing center, the number and date, the program, the
rubric, the criteria with each expert's score (by number only) and the final score, the total
and thresholds, the decision in words, the recommendations, the reconciliation or override
note, the signature block and the verification link. The same dictionary is rendered into
the PDF (:mod:`review_portal.conclusions.render`) and fingerprinted (:func:`content_sha256`),
and that fingerprint is printed at the document's foot. Texts are Russian whatever the
issuing coordinator's interface language: the document is official.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from flask_babel import force_locale

from review_portal.enums import Decision, RegistryKind, Resolution, ReviewKind
from review_portal.reconciliation import rules
from review_portal.reviews.queries import review_sheets, rubric_of
from review_portal.scoring.compute import CENT, rubric_view, section_percent, sheet_total
from review_portal.settings.services import get_setting

#: The decision in the official words of the conclusion.
DECISION_WORDS = {
    Decision.ADMITTED: "рекомендована к включению в реестр",
    Decision.REVISION_REQUIRED: "направлена на доработку",
    Decision.REJECTED: "не рекомендована",
}


#: Each registry kind in the conclusion's words.
KIND_WORDS = {
    RegistryKind.CERTIFIED: "реестр сертифицированных программ",
    RegistryKind.SIGNIFICANT: "реестр социально значимых программ",
    RegistryKind.GENERAL: "реестр общеразвивающих программ",
    RegistryKind.PRE_PROFESSIONAL: "реестр предпрофессиональных программ",
}


def _kind_reasons(rubric, kind: RegistryKind, missed: dict) -> str:
    """Which of the kind's requirements (its rubric policy) the final scores miss, in words."""
    policy = rules.kind_rules(rubric).get(kind.value)
    if not missed or policy is None:
        return ""
    titles = {section.id: section.title for section in rubric_view(rubric).sections}
    reasons = []
    if missed.get("percent") and policy.admit_percent is not None:
        reasons.append(f"итоговый процент ниже {_plain(policy.admit_percent)} %")
    least = dict(policy.sections)
    for section_id in missed.get("sections") or []:
        title = titles.get(section_id, section_id)
        reasons.append(f"итог раздела «{title}» ниже {_plain(least.get(section_id, 0))} %")
    return "; ".join(reasons)


def registries(review, rubric, decision: Decision) -> list[dict] | None:
    """For an admission: each registry kind the version asks for, whether the program is
    included in it and, if not, which of the kind's requirements it does not meet (the main
    kind is always included: the decision is about it). ``None`` (nothing printed) when
    one kind is asked for."""
    if decision != Decision.ADMITTED:
        return None
    failed = (review.final_result or {}).get("kinds_failed") or {}
    main, *others = review.version.registry_kinds
    if not others:
        return None
    rows = [{"kind": KIND_WORDS[main], "included": True, "reasons": ""}]
    for kind in others:
        missed = failed.get(kind.value)
        rows.append(
            {
                "kind": KIND_WORDS[kind],
                "included": not missed,
                "reasons": _kind_reasons(rubric, kind, missed),
            }
        )
    return rows


def main_registry_failed(review, rubric, decision: Decision) -> dict | None:
    """When the decision is not an admission and the requirements of the registry the
    program mainly asks for are not met: that registry and why (``None`` otherwise)."""
    if decision == Decision.ADMITTED:
        return None
    main = review.version.requested_registry_kind
    missed = ((review.final_result or {}).get("kinds_failed") or {}).get(main.value)
    if not missed:
        return None
    return {"kind": KIND_WORDS[main], "reasons": _kind_reasons(rubric, main, missed)}


def _plain(value) -> str:
    return rules.plain(Decimal(str(value)))


def _rounded(value: Fraction) -> Decimal:
    """A fraction rounded half up to two decimals."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        CENT, rounding=ROUND_HALF_UP
    )


def conclusion_content(
    review,
    *,
    number: str,
    issued_on: date,
    verify_url: str,
    supersedes: str | None = None,
    decision: Decision | None = None,
) -> dict:
    """The content of the conclusion of ``review`` (decided) under ``number``.

    ``decision``: the decision to print when the review does not carry it yet (a bulk run
    renders the confirmation of the computed decision ahead of its transaction; no override
    reason then); by default the review's own."""
    confirming = decision is not None
    rubric = rubric_of(review)
    view = rubric_view(rubric)
    limits = rules.thresholds(rubric)
    final = review.final_result
    version = review.version
    program = review.program
    sheets = [s for s in review_sheets(review) if s.submitted]
    counted_ids = set(final.get("counted_assignments") or [])
    below_floor = set(final.get("floor_failed") or [])
    sections_failed = list(final.get("sections_failed") or [])
    exact = {k: Fraction(Decimal(v)) for k, v in final["scores"].items()}
    with force_locale("ru"):
        experts = []
        for s in sheets:
            total = sheet_total(view, s.scores)
            experts.append(
                {
                    "number": s.label,
                    "counted": s.assignment.id in counted_ids,
                    "total": _plain(total.total),
                    "percent": _plain(total.percent),
                    "below_floor": s.label in below_floor,
                    "recommendations": s.sheet.recommendations,
                }
            )
        sections = [
            {
                "id": section.id,
                "title": section.title,
                "criteria": [
                    {
                        "id": c.id,
                        "title": c.title,
                        "blocking": c.blocking,
                        "weight": _plain(c.weight),
                        "scores": [s.scores.get(c.id) for s in sheets],
                        "final": _plain(final["scores"][c.id]),
                    }
                    for c in section.criteria
                ],
                "min_percent": (
                    None if section.min_percent is None else _plain(section.min_percent)
                ),
                "percent": _plain(_rounded(section_percent(section, exact, view.scale_max))),
                "failed": section.id in sections_failed,
            }
            for section in view.sections
        ]
        decision = Decision(decision if confirming else review.decision)
        computed = Decision(review.computed_decision) if review.computed_decision else None
        content = {
            "number": number,
            "issued_on": issued_on.strftime("%d.%m.%Y"),
            "supersedes": supersedes,
            "center_name": get_setting("center_name"),
            "region_name": get_setting("region_name"),
            "center_address": get_setting("center_address"),
            "program": {
                "title": version.title,
                "organization": program.organization.full_name,
                "organization_inn": program.organization.inn,
                "municipality": version.municipality.name if version.municipality else "",
                "direction": str(version.direction.label),
                "level": str(version.level.label),
                "ages": f"{version.age_min}–{version.age_max}",
                "hours": version.total_hours,
                "version": version.number,
                # Only when there are modules: the content (and its hash) of a program
                # without them stays as it was.
                **({"modules": copy.deepcopy(version.modules)} if version.modules else {}),
            },
            "rubric": {"title": rubric.title, "version": rubric.version, "id": rubric.id},
            "experts": experts,
            "sections": sections,
            "total": _plain(final["total"]),
            "max_total": _plain(final["max_total"]),
            "percent": _plain(final["percent"]),
            "thresholds": {
                "admit_percent": _plain(limits.admit_percent),
                "revision_percent": _plain(limits.revision_percent),
                "blocking_min": limits.blocking_min,
                "floor_percent": (
                    None if limits.floor_percent is None else _plain(limits.floor_percent)
                ),
            },
            "blocking_failed": list(final.get("blocking_failed") or []),
            "floor_failed": sorted(below_floor),
            "sections_failed": sections_failed,
            "final_rule": str(rules.FINAL_SCORE_RULES.get(final["method"], "")),
            "counted": list(final.get("counted") or []),
            "decision": decision.value,
            "decision_words": DECISION_WORDS[decision],
            "computed_decision_words": DECISION_WORDS[computed] if computed else None,
            "override_reason": None if confirming else review.override_reason,
            "divergent": bool(review.divergent),
            "divergence": [rules.describe_rule(r) for r in review.divergence_rules or []],
            "resolution": str(Resolution(review.resolution).label) if review.resolution else None,
            "resolution_note": review.resolution_note,
            # An appeal panel's conclusion says so (and which conclusion it supersedes).
            "after_appeal": review.kind == ReviewKind.APPEAL,
            # Only for several registries, or the main registry's requirements not met: the
            # content (and its hash) of other conclusions stays as it was.
            **(
                {"registries": rows}
                if (rows := registries(review, rubric, decision)) is not None
                else {}
            ),
            **(
                {"main_registry_failed": missed}
                if (missed := main_registry_failed(review, rubric, decision)) is not None
                else {}
            ),
            "head_name": get_setting("head_name"),
            "head_position": get_setting("head_position"),
            "verify_url": verify_url,
        }
    return content


def content_sha256(content: dict) -> str:
    """SHA-256 of the content's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
