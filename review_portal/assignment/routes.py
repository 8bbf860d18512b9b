"""Deadline pages of the assignment: the coordinator's list of overdue assignments and of
the programs waiting for an expert nobody could take."""

from __future__ import annotations

from flask import Blueprint, render_template

from review_portal.assignment.reminders import overdue_assignments, reviews_waiting_for_experts
from review_portal.assignment.services import local_today
from review_portal.permissions import is_staff, requires

bp = Blueprint("assignment", __name__)


@bp.get("/assignments/overdue")
@requires(is_staff)
def overdue():
    today = local_today()
    return render_template(
        "assignment/overdue.html",
        rows=overdue_assignments(today),
        waiting=reviews_waiting_for_experts(),
        today=today,
    )
