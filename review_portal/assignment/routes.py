"""Deadline pages of the assignment: the coordinator's list of overdue assignments and of
the programs waiting for an expert nobody could take."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from review_portal.assignment.reminders import overdue_assignments, reviews_waiting_for_experts
from review_portal.assignment.services import local_today
from review_portal.permissions import is_staff, open_seat_review_ids, requires

bp = Blueprint("assignment", __name__)


@bp.get("/assignments/overdue")
@requires(is_staff)
def overdue():
    # Roles never widen relations: a coordinator with an open seat on a review does not
    # see its co-experts' overdue assignments.
    today = local_today()
    return render_template(
        "assignment/overdue.html",
        rows=overdue_assignments(today, open_seat_review_ids(current_user)),
        waiting=reviews_waiting_for_experts(),
        today=today,
    )
