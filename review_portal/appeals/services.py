"""Filing, accepting, refusing and deciding appeals (docs/design/rules.md, "Appeals").

* :func:`file_appeal`: the provider of a program whose valid conclusion says *revision* or
  *rejected* contests criteria with reasons (and files), within ``appeal_working_days``
  working days of the issue date; one appeal per conclusion; never against a conclusion
  that an appeal panel produced, nor once the program has moved on to a new review.
* :func:`accept_appeal` opens the panel: a new review of kind ``appeal`` on the appealed
  version and rubric, made current, in ``in_review`` at once; the solver fills it with
  eligible experts who never sat on the program's earlier reviews. With the rubric's
  ``appeal_scope: contested`` the panel scores only the contested criteria and the others
  keep the appealed final scores (exact).
* :func:`refuse_appeal`: late or unfounded, with the coordinator's reason.
* :func:`decide_appeal`: once the panel's result is in (``awaiting_decision``) the
  coordinator confirms the computed decision (or overrides it with a justification, as
  for any review). A better decision than the appealed one *upholds* the appeal: the
  panel's conclusion is issued and supersedes the appealed one (an admission enters the
  registry's pending changes). Otherwise the appeal is *dismissed* with a reasoned answer:
  the appealed conclusion stands, the appealed review is current again, and the decision on
  the appeal is issued as a numbered PDF.

Every service takes the acting user and checks permission and state itself, locks what it
changes, flushes and writes the audit record; the caller commits.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from review_portal import storage
from review_portal.accounts.models import User
from review_portal.appeals.models import Appeal, AppealCounter, AppealFile, format_decision_number
from review_portal.assignment.queries import active_coordinators
from review_portal.assignment.services import fill_vacancy
from review_portal.audit.services import record_event
from review_portal.conclusions.models import Conclusion
from review_portal.conclusions.services import current_conclusion, local_now, next_in_counter
from review_portal.db import utcnow
from review_portal.enums import (
    AppealState,
    ConclusionStatus,
    Decision,
    NotificationKind,
    RefusalGround,
    ReviewKind,
)
from review_portal.errors import DomainError, Forbidden
from review_portal.extensions import db
from review_portal.i18n import local_date, quote
from review_portal.notifications.services import tell, tell_provider
from review_portal.permissions import authorize, is_staff
from review_portal.programs.documents import safe_display_name, store_upload
from review_portal.programs.services import lock_program
from review_portal.reviews.models import Review
from review_portal.reviews.queries import next_round, review_sheets, rubric_of
from review_portal.reviews.services import (
    DECISION_TARGETS,
    check_decision,
    decide_review,
    lock_review,
)
from review_portal.settings.calendar import center_calendar
from review_portal.settings.services import get_setting
from review_portal.urls import public_url, site_path
from review_portal.workflow import (
    ActorKind,
    ReviewState,
    actor_kinds,
    advance,
    advance_appeal,
    appeal_actor_kinds,
)

log = logging.getLogger(__name__)

#: Decisions that may be appealed.
APPEALABLE = (Decision.REVISION_REQUIRED, Decision.REJECTED)
#: The order of decisions, best first: an appeal is upheld by a better one.
_RANK = {Decision.ADMITTED: 0, Decision.REVISION_REQUIRED: 1, Decision.REJECTED: 2}
#: Longest reason per criterion, answer or refusal (characters); most files per appeal.
MAX_TEXT = 10_000
MAX_FILES = 5


class AppealError(DomainError):
    """An appeal operation refused for a reason the user should read."""


def is_better(decision: Decision, than: Decision) -> bool:
    return _RANK[Decision(decision)] < _RANK[Decision(than)]


def window_ends_on(conclusion: Conclusion) -> date:
    """The last day on which ``conclusion`` may be appealed (center's calendar)."""
    return center_calendar().add_working_days(
        local_date(conclusion.issued_at), get_setting("appeal_working_days")
    )


def appeal_of(conclusion: Conclusion) -> Appeal | None:
    return db.session.execute(
        select(Appeal).where(Appeal.conclusion_id == conclusion.id)
    ).scalar_one_or_none()


def appealable_refusal(conclusion: Conclusion, today: date | None = None):
    """Why ``conclusion`` cannot be appealed now (``None``: it can), whoever asks."""
    review = conclusion.review
    if conclusion.status != ConclusionStatus.VALID:
        return _l("Only a valid conclusion can be appealed.")
    if conclusion.decision not in APPEALABLE:
        return _l(
            "Only a decision to send the program for revision or to reject it can be appealed."
        )
    if review.kind == ReviewKind.APPEAL:
        return _l("A conclusion issued after an appeal cannot be appealed again.")
    if appeal_of(conclusion) is not None:
        return _l("An appeal against this conclusion has already been filed.")
    if review.program.current_review_id != review.id:
        return _l(
            "The program has moved on to a new version; this conclusion can no longer be appealed."
        )
    ends = window_ends_on(conclusion)
    if (today or local_now().date()) > ends:
        return _l("The appeal window ended on %(date)s.", date=ends.strftime("%d.%m.%Y"))
    return None


def clean_arguments(conclusion: Conclusion, arguments: dict[str, str]) -> list[dict]:
    """The reasons per contested criterion in the rubric's order (blank ones dropped);
    :class:`AppealError` when none is given, a criterion is unknown or a text too long."""
    rubric = rubric_of(conclusion.review)
    known = [c.id for c in rubric.criteria]
    unknown = set(arguments) - set(known)
    if unknown:
        raise AppealError(_l("Choose from the options offered."))
    cleaned = []
    for criterion in known:
        text = (arguments.get(criterion) or "").strip()
        if not text:
            continue
        if len(text) > MAX_TEXT:
            raise AppealError(_l("The text is too long."))
        cleaned.append({"criterion": criterion, "text": text})
    if not cleaned:
        raise AppealError(_l("Give your reasons for at least one contested criterion."))
    return cleaned


def check_appeal(
    conclusion: Conclusion, actor: User, arguments: dict[str, str], today: date | None = None
) -> list[dict]:
    """Raise when ``actor`` may not appeal ``conclusion`` with ``arguments`` ``today`` (the
    center's date by default); returns the cleaned reasons. Reads only."""
    if ActorKind.PROVIDER not in actor_kinds(conclusion.review, actor):
        raise Forbidden(_l("Only the provider organization of the program may appeal."))
    refusal = appealable_refusal(conclusion, today)
    if refusal is not None:
        raise AppealError(refusal)
    return clean_arguments(conclusion, arguments)


def file_appeal(
    conclusion: Conclusion,
    actor: User,
    arguments: dict[str, str],
    uploads=(),
    *,
    today: date | None = None,
):
    """File the provider's appeal against ``conclusion`` (see :func:`check_appeal`;
    ``today``: the date the provider files on, the center's today by default — ``simulate``
    plays a provider who comes too late)."""
    uploads = [u for u in uploads if u is not None and getattr(u, "filename", "")]
    if len(uploads) > MAX_FILES:
        raise AppealError(_l("Attach at most %(n)s files.", n=MAX_FILES))
    # Two filings at the same moment: the second waits here and then finds the first.
    lock_review(conclusion.review)
    db.session.refresh(conclusion)
    cleaned = check_appeal(conclusion, actor, arguments, today)
    appeal = Appeal(
        conclusion_id=conclusion.id,
        review_id=conclusion.review_id,
        program_id=conclusion.review.program_id,
        state=AppealState.FILED,
        filed_at=utcnow(),
        filed_by_id=actor.id,
        window_ends_on=window_ends_on(conclusion),
        arguments=cleaned,
        appealed_decision=conclusion.decision,
    )
    for upload in uploads:
        stored = store_upload(upload)
        appeal.files.append(
            AppealFile(
                file_id=stored.id, name=safe_display_name(upload.filename, stored.media_type)
            )
        )
    db.session.add(appeal)
    db.session.flush()
    record_event(
        "appeal.file",
        actor=actor,
        object_type="appeal",
        object_id=appeal.id,
        after={
            "state": AppealState.FILED.value,
            "conclusion": conclusion.number,
            "contested": appeal.contested,
            "files": [f.file.sha256 for f in appeal.files],
        },
    )
    program = conclusion.review.program
    for coordinator in active_coordinators():
        tell(
            coordinator,
            NotificationKind.WORK_QUEUE,
            _l(
                "An appeal against conclusion № %(number)s (%(title)s) waits for your decision: "
                "accept it for a panel's review or refuse it, on its page.",
                number=conclusion.number,
                title=quote(program.title),
            ),
            link=site_path("appeals.show", appeal_id=appeal.id),
        )
    return appeal


def _handling_check(appeal: Appeal, actor: User) -> None:
    authorize(is_staff(actor))
    if ActorKind.COORDINATOR not in appeal_actor_kinds(appeal, actor):
        raise Forbidden(_l("You may not perform this action on this appeal."))


def check_acceptance(appeal: Appeal) -> None:
    """Raise when ``appeal`` cannot be accepted now (read only)."""
    if appeal.state != AppealState.FILED:
        raise AppealError(_l("This appeal is no longer waiting for a decision."))
    review = appeal.review
    if review.program.current_review_id != review.id:
        raise AppealError(
            _l("The program has moved on to a new version; the appeal can only be refused.")
        )
    if appeal.conclusion.status != ConclusionStatus.VALID:
        raise AppealError(
            _l("The appealed conclusion is no longer valid; the appeal can only be refused.")
        )


def _exact_final_scores(review: Review) -> dict[str, Fraction]:
    """The appealed review's final score of each criterion, exact: the mean of its counted
    sheets (the stored result keeps them rounded for display)."""
    counted = set((review.final_result or {}).get("counted_assignments") or [])
    sheets = [s for s in review_sheets(review) if s.submitted and s.assignment.id in counted]
    if not sheets:
        raise AppealError(_l("The appealed review has no counted score sheets."))
    return {
        c.id: Fraction(sum(int(s.scores.get(c.id) or 0) for s in sheets), len(sheets))
        for c in rubric_of(review).criteria
    }


def accept_appeal(appeal: Appeal, actor: User) -> Review:
    """Accept ``appeal`` for a new panel; returns the panel's review (current, in review,
    experts assigned when eligible ones exist)."""
    _handling_check(appeal, actor)
    # The program first (as a submission or a renewal takes it), then the review.
    lock_program(appeal.program)
    original = lock_review(appeal.review)
    db.session.refresh(appeal)
    check_acceptance(appeal)
    program = original.program
    rubric = rubric_of(original)
    scope = fixed = None
    if getattr(rubric, "appeal_scope", "contested") == "contested":
        exact = _exact_final_scores(original)
        contested = set(appeal.contested)
        scope = [c.id for c in rubric.criteria if c.id in contested]
        fixed = {
            criterion: f"{value.numerator}/{value.denominator}"
            for criterion, value in exact.items()
            if criterion not in contested
        }
    panel = Review(
        program_id=program.id,
        round=next_round(program.id),
        kind=ReviewKind.APPEAL,
        version_id=original.version_id,
        rubric_id=original.rubric_id,
        rubric_version=original.rubric_version,
        scope_criteria=scope,
        fixed_scores=fixed,
    )
    db.session.add(panel)
    db.session.flush()
    db.session.refresh(program)
    advance_appeal(appeal, AppealState.ACCEPTED, actor)
    appeal.panel_review_id = panel.id
    appeal.panel_review = panel
    program.current_review = panel
    db.session.flush()
    advance(panel, ReviewState.IN_REVIEW, actor, reason=_appeal_reason(appeal))
    fill_vacancy(panel, actor=None)
    tell_provider(
        program,
        _l("Your appeal is accepted: %(title)s", title=program.title),
        _l(
            "The appeal against conclusion № %(number)s on the program %(title)s is accepted. "
            "A new panel of experts will score the contested criteria; you will be told of "
            "the outcome. The appeal's page shows how it goes.",
            number=appeal.conclusion.number,
            title=quote(program.title),
        ),
        link=site_path("appeals.show", appeal_id=appeal.id),
    )
    return panel


def _appeal_reason(appeal: Appeal) -> str:
    return f"Апелляция на заключение № {appeal.conclusion.number}"


def refuse_appeal(appeal: Appeal, actor: User, ground: RefusalGround | str, reason: str) -> Appeal:
    """Refuse ``appeal`` (out of time or unfounded) with the coordinator's reason."""
    _handling_check(appeal, actor)
    lock_review(appeal.review)
    db.session.refresh(appeal)
    ground = RefusalGround(ground)
    reason = (reason or "").strip()
    if appeal.state != AppealState.FILED:
        raise AppealError(_l("This appeal is no longer waiting for a decision."))
    if not reason:
        raise AppealError(_l("A reason is required for this action."))
    if len(reason) > MAX_TEXT:
        raise AppealError(_l("The text is too long."))
    advance_appeal(appeal, AppealState.REFUSED, actor, reason=reason)
    appeal.refusal_ground = ground
    appeal.answer = reason
    appeal.decided_at = utcnow()
    appeal.decided_by_id = actor.id
    program = appeal.review.program
    tell_provider(
        program,
        _l("Your appeal is refused: %(title)s", title=program.title),
        _l(
            "The appeal against conclusion № %(number)s on the program %(title)s is refused "
            "(%(ground)s).\nReason: %(reason)s\n\nConclusion № %(number)s stands; the "
            "appeal's page keeps the answer.",
            number=appeal.conclusion.number,
            title=quote(program.title),
            ground=ground.label,
            reason=reason,
        ),
        link=site_path("appeals.show", appeal_id=appeal.id),
    )
    return appeal


@dataclass(frozen=True)
class AppealOutcome:
    decision: Decision
    upheld: bool


def check_appeal_decision(appeal: Appeal, decision: Decision | str, answer: str) -> AppealOutcome:
    """Raise when ``decision`` (with the stripped ``answer``) cannot close ``appeal`` now;
    returns what it would mean. Reads only (the confirmation page asks it too)."""
    decision = Decision(decision)
    if appeal.state != AppealState.ACCEPTED or appeal.panel_review is None:
        raise AppealError(_l("This appeal is not under review by a panel."))
    check_decision(appeal.panel_review, decision, answer, for_appeal=True)
    upheld = is_better(decision, appeal.appealed_decision)
    if not upheld and not answer:
        raise AppealError(_l("A dismissed appeal needs a reasoned answer to the provider."))
    return AppealOutcome(decision, upheld)


def decide_appeal(appeal: Appeal, actor: User, decision: Decision | str, answer: str | None):
    """Close the accepted ``appeal`` on its panel's result (see the module docstring)."""
    _handling_check(appeal, actor)
    panel = lock_review(appeal.panel_review) if appeal.panel_review is not None else None
    db.session.refresh(appeal)
    answer = (answer or "").strip()
    outcome = check_appeal_decision(appeal, decision, answer)
    program = appeal.review.program
    appeal.answer = answer or None
    appeal.decided_at = utcnow()
    appeal.decided_by_id = actor.id
    if outcome.upheld:
        decide_review(panel, actor, outcome.decision, answer or None, for_appeal=True)
        appeal.new_conclusion = current_conclusion(panel)
        advance_appeal(appeal, AppealState.UPHELD, actor, reason=answer or None)
        tell_provider(
            program,
            _l("Your appeal is upheld: %(title)s", title=program.title),
            _l(
                "The appeal on the program %(title)s is upheld. Conclusion № %(new)s "
                "supersedes conclusion № %(old)s; it is on the program's page, and anyone can "
                "verify it at %(url)s",
                title=quote(program.title),
                new=appeal.new_conclusion.number,
                old=appeal.conclusion.number,
                url=public_url("conclusions.verify", number=appeal.new_conclusion.number),
            ),
            link=site_path("appeals.show", appeal_id=appeal.id),
        )
        return appeal
    # Dismissed: the appealed decision stands; the panel's case closes with it.
    panel.decision = appeal.appealed_decision
    # The reasoned answer is the override's justification only when the kept decision is
    # not the panel's computed one.
    panel.override_reason = answer if panel.decision != panel.computed_decision else None
    panel.decided_at = utcnow()
    panel.decided_by_id = actor.id
    advance(panel, DECISION_TARGETS[appeal.appealed_decision], actor, reason=answer)
    program.current_review = appeal.review
    advance_appeal(appeal, AppealState.DISMISSED, actor, reason=answer)
    issue_appeal_decision(appeal, actor)
    tell_provider(
        program,
        _l("Your appeal is dismissed: %(title)s", title=program.title),
        _l(
            "The appeal on the program %(title)s is dismissed; conclusion № %(old)s stands. "
            "Decision on the appeal: № %(number)s, on the appeal's page; anyone can verify it "
            "at %(url)s\nReasons: %(answer)s",
            title=quote(program.title),
            old=appeal.conclusion.number,
            number=appeal.number,
            url=public_url("appeals.verify", number=appeal.number),
            answer=answer,
        ),
        link=site_path("appeals.show", appeal_id=appeal.id),
    )
    return appeal


# --- the decision on a dismissed appeal ----------------------------------------------------


def take_decision_number(year: int) -> tuple[str, int]:
    """The next decision number of ``year``, from its own counter (taken as a conclusion's
    number is: gapless, a failed transaction gives it back)."""
    sequence = next_in_counter(AppealCounter, year)
    return format_decision_number(get_setting("region_code"), year, sequence), sequence


def issue_appeal_decision(appeal: Appeal, actor: User) -> Appeal:
    """Number, render and store the decision on the dismissed ``appeal``; a rendering
    failure raises :class:`AppealError` and the caller rolls everything back."""
    from review_portal.appeals.document import appeal_content
    from review_portal.conclusions.document import content_sha256
    from review_portal.conclusions.render import RenderError, render_pdf

    now = local_now()
    number, sequence = take_decision_number(now.year)
    content = appeal_content(
        appeal,
        number=number,
        issued_on=now.date(),
        verify_url=public_url("appeals.verify", number=number),
    )
    content["content_sha256"] = content_sha256(content)
    try:
        pdf = render_pdf(content, template="appeals/document.html")
    except RenderError as error:
        log.exception("decision %s on appeal %s could not be rendered", number, appeal.id)
        raise AppealError(
            _l("The decision could not be rendered: %(error)s", error=str(error))
        ) from error
    sha256, size = storage.save_bytes(pdf)
    assert sha256 == hashlib.sha256(pdf).hexdigest()
    appeal.number = number
    appeal.year = now.year
    appeal.sequence = sequence
    appeal.issued_at = utcnow()
    appeal.storage_key = sha256
    appeal.sha256 = sha256
    appeal.content_sha256 = content["content_sha256"]
    appeal.size = size
    db.session.flush()
    record_event(
        "appeal.decision_issue",
        actor=actor,
        object_type="appeal",
        object_id=appeal.id,
        after={"number": number, "sha256": sha256, "content_sha256": content["content_sha256"]},
    )
    return appeal


def find_decision(number: str) -> Appeal | None:
    return db.session.execute(select(Appeal).where(Appeal.number == number)).scalar_one_or_none()


def stored_decision_pdf(appeal: Appeal) -> bytes:
    return storage.read_bytes(appeal.storage_key)
