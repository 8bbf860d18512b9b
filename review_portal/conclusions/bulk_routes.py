"""The bulk confirmation of decisions from the list of reviews awaiting one.

The form is on the reconciliation's page of decisions, and the view keeps that blueprint's
endpoint name (``reconciliation.confirm_many``, URL ``/decisions/confirm``), but what it does
is a conclusions operation: it starts :mod:`review_portal.conclusions.bulk`. The view is
therefore defined here and filed under the reconciliation's name by the application factory
(:func:`review_portal.register_blueprints`), so that reconciliation need not import
conclusions, which reads reconciliation's rules.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from review_portal.conclusions.bulk import choose_for_bulk_issue, start_bulk_issue
from review_portal.conclusions.queries import upcoming_numbers
from review_portal.confirmation import confirmation, previewing
from review_portal.i18n import quote
from review_portal.jobs.services import queue_unavailable_message, start_in_background
from review_portal.permissions import requires
from review_portal.reconciliation.forms import ConfirmForm
from review_portal.reconciliation.permissions import can_view_reconciliations


def _reasons(refused) -> str:
    """The reviews left out of a bulk run, each with why, in one line."""
    return "; ".join(
        _("%(title)s: %(reason)s", title=quote(r.review.program.title), reason=r.reason)
        for r in refused
    )


def _confirm_preview(review_ids: list[int]):
    """What confirming these reviews would do: the decisions, the numbers, those left out."""
    chosen, refused = choose_for_bulk_issue(review_ids, current_user)
    if not chosen:
        reasons = _reasons(refused)
        flash(
            _("None of the chosen reviews can be confirmed: %(reasons)s.", reasons=reasons),
            "warning",
        )
        return redirect(url_for("reconciliation.decisions"))
    first, last = upcoming_numbers(len(chosen))
    lines = [
        ngettext(
            "%(num)s decision is confirmed as computed and its conclusion issued.",
            "%(num)s decisions are confirmed as computed and their conclusions issued.",
            len(chosen),
        ),
        _(
            "The conclusions take the next numbers of the year in this order (now %(first)s "
            "to %(last)s); the numbers are taken for good.",
            first=first,
            last=last,
        )
        if len(chosen) > 1
        else _(
            "The conclusion takes the next number of the year (now %(first)s); the number is "
            "taken for good.",
            first=first,
        ),
        _("It runs in the background; its page shows the progress."),
    ]
    if refused:
        reasons = _reasons(refused)
        lines.append(
            ngettext(
                "%(num)s chosen review is left out: %(reasons)s.",
                "%(num)s chosen reviews are left out: %(reasons)s.",
                len(refused),
                reasons=reasons,
            )
        )
    return confirmation(
        _("Confirm the decisions"),
        lines,
        items=[
            _(
                "%(title)s — %(decision)s",
                title=quote(review.program.title),
                decision=review.computed_decision.label,
            )
            for review in chosen
        ],
        button=ngettext("Confirm %(num)s decision", "Confirm %(num)s decisions", len(chosen)),
        back=url_for("reconciliation.decisions"),
        fields=[("review_ids", str(review.id)) for review in chosen],
        busy=_("Starting…"),
    )


#: The rule of :func:`confirm_many`: ``(path, endpoint, methods)``.
CONFIRM_MANY_RULE = ("/decisions/confirm", "reconciliation.confirm_many", ["POST"])


@requires(can_view_reconciliations)
def confirm_many():
    """POST ``/decisions/confirm``: confirm the chosen decisions and issue their conclusions
    in a background job."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if not form.review_ids.data:
        flash(_("Choose the reviews to confirm."), "warning")
        return redirect(url_for("reconciliation.decisions"))
    if previewing():
        return _confirm_preview(form.review_ids.data)
    job, refused = start_bulk_issue(form.review_ids.data, current_user)
    if refused:
        reasons = _reasons(refused)
        flash(
            ngettext(
                "%(num)s review skipped: %(reasons)s.",
                "%(num)s reviews skipped: %(reasons)s.",
                len(refused),
                reasons=reasons,
            ),
            "warning",
        )
    if job is None:
        return redirect(url_for("reconciliation.decisions"))
    start_in_background(current_app._get_current_object(), job.id)
    if job.waiting_for_queue:
        flash(queue_unavailable_message(), "warning")
    else:
        flash(
            ngettext(
                "%(num)s decision is being confirmed and its conclusion issued.",
                "%(num)s decisions are being confirmed and their conclusions issued.",
                job.total,
            ),
            "info",
        )
    return redirect(url_for("jobs.view", job_id=job.id))
