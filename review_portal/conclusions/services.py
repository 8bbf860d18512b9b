"""Issuing, revoking and finding conclusions.

* :func:`take_number` gives the next number of a year, ``<region>-<year>-<00001>``, from a
  counter row locked for the rest of the transaction: two coordinators confirming at the
  same moment wait for each other, and a transaction that fails gives its number back (it
  never committed), so the numbers of a year have no gaps and no repeats.
* :func:`issue_conclusion` runs in the transaction of the decision: number, content, PDF
  (rendered once, here), SHA-256 of the file and of the content, stored file, row. When
  rendering fails it raises :class:`ConclusionError` and the caller rolls everything back.
  Earlier conclusions of the review are marked superseded by the new one.
* :func:`revoke_conclusion`: a coordinator withdraws a conclusion with a reason; the review
  goes back to ``awaiting_decision`` for a new decision, whose conclusion supersedes it.

The stored bytes are the document: downloads return them as they are, never re-rendered.
Services flush and audit; the caller commits.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from review_portal import storage
from review_portal.audit.services import record_event
from review_portal.conclusions.document import conclusion_content, content_sha256
from review_portal.conclusions.models import Conclusion, ConclusionCounter, format_number
from review_portal.db import utcnow
from review_portal.enums import ConclusionStatus, Decision, ReviewKind
from review_portal.errors import DomainError
from review_portal.extensions import db
from review_portal.i18n import quote
from review_portal.notifications.services import tell_provider
from review_portal.permissions import authorize_staff_on
from review_portal.registry.services import enter_registry, leave_registry
from review_portal.reviews.services import (
    ReviewError,
    awaits_appeal_decision,
    issue_conclusions_with,
    lock_review,
)
from review_portal.settings.services import get_setting
from review_portal.urls import public_url, site_path
from review_portal.workflow import DECISION_STATES, ReviewState, advance

log = logging.getLogger(__name__)


class ConclusionError(DomainError):
    """A conclusion operation refused or failed, with a message for the user."""


def take_number(year: int) -> tuple[str, int]:
    """The next number of ``year`` and its sequence, the counter row locked until commit."""
    sequence = next_in_counter(ConclusionCounter, year)
    return format_number(get_setting("region_code"), year, sequence), sequence


def next_numbers(year: int, count: int) -> list[str]:
    """The numbers the next ``count`` calls of :func:`take_number` for ``year`` give if no
    other transaction takes one first. Read without a lock and taking nothing: a guess, for
    work done ahead that the transaction taking the numbers checks (see
    :mod:`review_portal.conclusions.bulk`)."""
    last = db.session.execute(
        select(ConclusionCounter.last_value).where(ConclusionCounter.year == year)
    ).scalar()
    region = get_setting("region_code")
    return [format_number(region, year, (last or 0) + i) for i in range(1, count + 1)]


def next_in_counter(model, year: int) -> int:
    """The next value of ``year`` in a per-year counter table (``model``: a conclusion's, or
    a decision on an appeal's), its row locked until commit: gapless and unique."""
    locked = (
        select(model)
        .where(model.year == year)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    counter = db.session.execute(locked).scalar_one_or_none()
    if counter is None:
        _create_counter(model, year)
        counter = db.session.execute(locked).scalar_one()
    counter.last_value += 1
    db.session.flush()
    return counter.last_value


def _create_counter(model, year: int) -> None:
    """Insert the year's counter row unless another transaction already has."""
    bind = db.session.get_bind()
    table = model.__table__
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(
        insert(table)
        .values(year=year, last_value=0)
        .on_conflict_do_nothing(index_elements=["year"])
    )


def local_now():
    return utcnow().astimezone(ZoneInfo(get_setting("timezone")))


def prepare_conclusion(
    review, number: str, issued_on, supersedes: str | None, *, decision: Decision | None = None
):
    """The content and its fingerprint for ``review`` under ``number`` (no rendering);
    ``decision``: see :func:`~review_portal.conclusions.document.conclusion_content`."""
    content = conclusion_content(
        review,
        number=number,
        issued_on=issued_on,
        verify_url=public_url("conclusions.verify", number=number),
        supersedes=supersedes,
        decision=decision,
    )
    content["content_sha256"] = content_sha256(content)
    return content


def issue_conclusion(review, actor, *, pdf: bytes | None = None, content: dict | None = None):
    """Number, render, store and record the conclusion of the decided ``review``.

    ``pdf`` and ``content`` let a bulk run pass a document it rendered in another process
    for the number it took here. Raises :class:`ConclusionError` when rendering fails.
    """
    from review_portal.conclusions.render import RenderError, render_pdf

    authorize_staff_on(actor, review)
    if review.state not in DECISION_STATES or review.decision is None:
        raise ConclusionError(_l("Only a decided review gets a conclusion."))
    now = local_now()
    previous = [c for c in review.conclusions if c.status != ConclusionStatus.SUPERSEDED]
    if review.kind == ReviewKind.APPEAL:
        # An upheld appeal: the panel's conclusion supersedes the appealed one.
        previous = appealed_conclusions(review) + previous
    if content is None:
        number, sequence = take_number(now.year)
        content = prepare_conclusion(
            review, number, now.date(), previous[-1].number if previous else None
        )
    else:
        number = content["number"]
        sequence = int(number.rsplit("-", 1)[1])
    # The year of the number, not of the clock: a batch may run across midnight.
    year = int(number.rsplit("-", 2)[1])
    if pdf is None:
        try:
            pdf = render_pdf(content)
        except RenderError as error:
            log.exception("conclusion %s of review %s could not be rendered", number, review.id)
            raise ConclusionError(
                _l("The conclusion could not be rendered: %(error)s", error=str(error))
            ) from error
    sha256, size = storage.save_bytes(pdf)
    assert sha256 == hashlib.sha256(pdf).hexdigest()
    conclusion = Conclusion(
        review=review,
        number=number,
        year=year,
        sequence=sequence,
        issued_at=utcnow(),
        issued_by_id=actor.id,
        decision=review.decision,
        total=content["total"],
        max_total=content["max_total"],
        percent=content["percent"],
        storage_key=sha256,
        sha256=sha256,
        content_sha256=content["content_sha256"],
        size=size,
        status=ConclusionStatus.VALID,
    )
    db.session.add(conclusion)
    db.session.flush()
    for old in previous:
        old.superseded_by_id = conclusion.id
        if old.status == ConclusionStatus.VALID:
            old.status = ConclusionStatus.SUPERSEDED
    record_event(
        "conclusion.issue",
        actor=actor,
        object_type="conclusion",
        object_id=conclusion.id,
        after={
            "number": number,
            "review_id": review.id,
            "decision": review.decision,
            "sha256": sha256,
            "content_sha256": content["content_sha256"],
            "supersedes": [c.number for c in previous],
        },
    )
    enter_registry(conclusion, actor)
    if not awaits_appeal_decision(review):  # the appeals service tells an appeal's outcome
        # (a panel's conclusion revoked after its appeal is decided again as any other)
        _tell_decision(review, conclusion)
    return conclusion


#: The decisions a provider may appeal (as :data:`review_portal.appeals.services.APPEALABLE`).
_APPEALABLE = (Decision.REVISION_REQUIRED, Decision.REJECTED)


def _tell_decision(review, conclusion: Conclusion) -> None:
    """Tell the provider the decision: the conclusion's number, where anyone can verify it,
    and (for a decision they may appeal) how long they have to appeal."""
    program = review.program
    text = _l(
        "The assessment of the program %(title)s is complete.\nDecision: %(decision)s.\n"
        "Conclusion № %(number)s is on the program's page; anyone can verify it at %(url)s",
        title=quote(program.title),
        decision=conclusion.decision.label,
        number=conclusion.number,
        url=public_url("conclusions.verify", number=conclusion.number),
    )
    if conclusion.decision in _APPEALABLE:
        text = _l(
            "%(text)s\n\nIf you disagree with the decision, you may appeal against the "
            "conclusion on the program's page within %(days)s working days of its issue.",
            text=text,
            days=get_setting("appeal_working_days"),
        )
    tell_provider(
        program,
        _l("Decision on your program: %(title)s", title=program.title),
        text,
        link=site_path("programs.view", program_id=program.id),
    )


def revoke_conclusion(conclusion: Conclusion, actor, reason: str) -> Conclusion:
    """Revoke a valid conclusion (reason required); its review awaits a new decision."""
    authorize_staff_on(actor, conclusion.review)
    reason = (reason or "").strip()
    if not reason:
        raise ConclusionError(_l("A reason is required for this action."))

    review = lock_review(conclusion.review)
    db.session.refresh(conclusion)
    if conclusion.status != ConclusionStatus.VALID:
        raise ConclusionError(_l("Only a valid conclusion can be revoked."))
    if review.state not in DECISION_STATES:
        raise ConclusionError(
            _l("The program's state no longer allows revoking: %(state)s", state=review.state.label)
        )
    if review.program.current_review_id != review.id:
        raise ConclusionError(
            _l(
                "The program has moved on to a new version; this conclusion can no longer be revoked."
            )
        )
    conclusion.status = ConclusionStatus.REVOKED
    conclusion.revoked_at = utcnow()
    conclusion.revoked_by_id = actor.id
    conclusion.revoke_reason = reason
    advance(review, ReviewState.AWAITING_DECISION, actor, reason=reason)
    review.decision = None
    review.decided_at = None
    review.decided_by_id = None
    review.override_reason = None
    record_event(
        "conclusion.revoke",
        actor=actor,
        object_type="conclusion",
        object_id=conclusion.id,
        before={"status": "valid"},
        after={"status": "revoked", "reason": reason},
    )
    leave_registry(review.program_id, actor, reason, conclusion_id=conclusion.id)
    return conclusion


def appealed_conclusions(panel) -> list[Conclusion]:
    """The valid conclusion(s) the appeal whose panel ``panel`` is contests."""
    from review_portal.appeals.models import Appeal

    return list(
        db.session.execute(
            select(Conclusion)
            .join(Appeal, Appeal.conclusion_id == Conclusion.id)
            .where(Appeal.panel_review_id == panel.id, Conclusion.status == ConclusionStatus.VALID)
        ).scalars()
    )


def find_conclusion(number: str) -> Conclusion | None:
    """The conclusion of that number with its review, the program version reviewed, the
    program, its organization and the conclusion that replaced it, if any (one query: what
    the verification page reads)."""
    return db.session.execute(_by_number(), {"number": number}).scalar_one_or_none()


@functools.cache
def _by_number():
    """:func:`find_conclusion`'s statement, built once (building costs more CPU than
    running it). Of the related rows only the columns the verification page, its JSON and
    the download's permission read (the others load when something reads them)."""
    from sqlalchemy.orm import joinedload

    from review_portal.organizations.models import Organization
    from review_portal.programs.models import Program, ProgramVersion
    from review_portal.reviews.models import Review

    review = joinedload(Conclusion.review).load_only(
        Review.program_id, Review.version_id, Review.state
    )
    return (
        select(Conclusion)
        .where(Conclusion.number == sa.bindparam("number"))
        .options(
            review.joinedload(Review.program)
            .load_only(
                Program.title,
                Program.organization_id,
                Program.municipality_id,
                Program.current_review_id,
            )
            .joinedload(Program.organization)
            .load_only(Organization.full_name),
            review.joinedload(Review.version).load_only(ProgramVersion.title),
            joinedload(Conclusion.superseded_by).load_only(Conclusion.number),
        )
    )


def find_by_file_hash(sha256: str) -> Conclusion | None:
    return db.session.execute(
        select(Conclusion).where(Conclusion.sha256 == sha256)
    ).scalar_one_or_none()


def stored_pdf(conclusion: Conclusion) -> bytes:
    """The bytes stored at issue time (never rendered again)."""
    return storage.read_bytes(conclusion.storage_key)


def current_conclusion(review) -> Conclusion | None:
    valid = [c for c in review.conclusions if c.status == ConclusionStatus.VALID]
    return valid[-1] if valid else None


def _issue_on_decision(review, actor) -> None:
    """:func:`review_portal.reviews.services.decide_review` issues the conclusion through
    this: a failure is the decision's error, and the caller rolls the decision back."""
    try:
        issue_conclusion(review, actor)
    except ConclusionError as error:
        raise ReviewError(error.message) from error


issue_conclusions_with(_issue_on_decision)
