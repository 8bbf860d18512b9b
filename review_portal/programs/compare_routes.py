"""The comparison of two versions of a program."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user

from review_portal.extensions import db
from review_portal.input_guard import parse_db_int
from review_portal.permissions import ensure, requires
from review_portal.programs.compare import (
    VersionNotFound,
    compare_versions,
    comparison,
    resolve_numbers,
)
from review_portal.programs.models import Program
from review_portal.programs.permissions import can_view_program

bp = Blueprint("compare", __name__)


def _version_number(name: str) -> int | None:
    """The version number given in query parameter ``name``; 404 when it is not a number."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    number = parse_db_int(raw)
    if number is None:
        abort(404)
    return number


@bp.get("/programs/<int:program_id>/compare")
@requires(lambda user: True)
def compare(program_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_view_program(current_user, program))
    try:
        numbers = resolve_numbers(program, _version_number("from"), _version_number("to"))
        versions = comparison(program, *numbers) if numbers else None
    except VersionNotFound:
        abort(404)
    result = compare_versions(*versions) if versions else None
    return render_template("programs/compare.html", program=program, result=result)
