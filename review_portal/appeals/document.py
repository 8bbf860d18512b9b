"""The content of the decision on a dismissed appeal (решение по апелляции): what the PDF
prints, as a plain dictionary (always in Russian), fingerprinted like a conclusion's."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from review_portal.conclusions.document import DECISION_WORDS
from review_portal.enums import Decision
from review_portal.i18n import local_date
from review_portal.reconciliation import rules
from review_portal.reviews.queries import rubric_of
from review_portal.settings.services import get_setting


def _plain(value) -> str:
    return rules.plain(Decimal(str(value)))


def appeal_content(appeal, *, number: str, issued_on: date, verify_url: str) -> dict:
    """Everything the decision on ``appeal`` prints under ``number``."""
    original = appeal.review
    panel = appeal.panel_review
    version = original.version
    program = original.program
    rubric = rubric_of(original)
    titles = {c.id: c.title for c in rubric.criteria}
    before = (original.final_result or {}).get("scores") or {}
    after = (panel.final_result or {}).get("scores") or {}
    computed = Decision(panel.computed_decision) if panel.computed_decision else None
    return {
        "number": number,
        "issued_on": issued_on.strftime("%d.%m.%Y"),
        "center_name": get_setting("center_name"),
        "region_name": get_setting("region_name"),
        "center_address": get_setting("center_address"),
        "program": {
            "title": version.title,
            "organization": program.organization.full_name,
            "organization_inn": program.organization.inn,
            "version": version.number,
        },
        "conclusion": {
            "number": appeal.conclusion.number,
            "issued_on": local_date(appeal.conclusion.issued_at).strftime("%d.%m.%Y"),
            "decision_words": DECISION_WORDS[Decision(appeal.appealed_decision)],
        },
        "filed_on": local_date(appeal.filed_at).strftime("%d.%m.%Y"),
        "whole_sheet": not panel.scope_criteria,
        "contested": [
            {
                "id": item["criterion"],
                "title": titles.get(item["criterion"], item["criterion"]),
                "argument": item["text"],
                "before": _plain(before[item["criterion"]])
                if item["criterion"] in before
                else None,
                "after": _plain(after[item["criterion"]]) if item["criterion"] in after else None,
            }
            for item in appeal.arguments
        ],
        "panel": {
            "experts": len((panel.final_result or {}).get("counted_assignments") or []),
            "total": _plain(panel.final_result["total"]),
            "max_total": _plain(panel.final_result["max_total"]),
            "percent": _plain(panel.final_result["percent"]),
            "computed_decision_words": DECISION_WORDS[computed] if computed else None,
        },
        "answer": appeal.answer or "",
        "head_name": get_setting("head_name"),
        "head_position": get_setting("head_position"),
        "verify_url": verify_url,
    }
