"""The coordinator's rubric pages: the list, a preview as the expert's sheet, the active choice."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import InputRequired

from review_portal.enums import ProgramType
from review_portal.forms import options
from review_portal.permissions import is_staff, requires
from review_portal.rubrics.registry import (
    RubricNotApplicable,
    active_choices,
    choose_active_rubric,
    get_rubric,
    rubric_files,
    rubrics_in_use,
)
from review_portal.scoring.compute import SHORT_TERM_MAX_HOURS, SHORT_TERM_MAX_MONTHS

bp = Blueprint("rubrics", __name__)

#: The programs of a type a choice is for: all of them, or its short-term ones apart.
SCOPES = {"regular": False, "short_term": True}


class ActiveRubricForm(FlaskForm):
    program_type = SelectField(_l("Program type"), validators=[InputRequired()])
    scope = SelectField(
        _l("For programs"),
        choices=options(
            [
                ("regular", _l("All programs of the type")),
                ("short_term", _l("Short-term programs")),
            ]
        ),
        default="regular",
    )
    #: Empty: clear the short-term programs' own choice.
    rubric = SelectField(_l("Rubric"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.program_type.choices = options(ProgramType.choices())
        self.rubric.choices = options(
            [
                *((f"{r.id}:{r.version}", f"{r.id} v{r.version}") for r in rubric_files().values()),
                # Last, so a rubric (not the clearing) is what the form offers first.
                ("", _("None of their own (short-term programs: as all programs of the type)")),
            ]
        )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if valid and not self.rubric.data and not SCOPES[self.scope.data]:
            self.rubric.errors.append(
                _("Choose a rubric: only the choice for short-term programs can be cleared.")
            )
            valid = False
        return valid


def _list_page(form: ActiveRubricForm, status: int = 200):
    return (
        render_template(
            "rubrics/index.html",
            rubrics=list(rubric_files().values()),
            in_use=rubrics_in_use(),
            choices=active_choices(),
            program_types=list(ProgramType),
            short_term_months=SHORT_TERM_MAX_MONTHS,
            short_term_hours=SHORT_TERM_MAX_HOURS,
            form=form,
        ),
        status,
    )


@bp.get("/rubrics")
@requires(is_staff)
def index():
    return _list_page(ActiveRubricForm())


@bp.get("/rubrics/<rubric_id>/<int:version>")
@requires(is_staff)
def preview(rubric_id: str, version: int):
    try:
        rubric = get_rubric(rubric_id, version)
    except KeyError:
        abort(404)
    return render_template("rubrics/preview.html", rubric=rubric)


@bp.post("/rubrics/active")
@requires(is_staff)
def choose_active():
    form = ActiveRubricForm()
    if not form.validate():
        return _list_page(form, 400)
    rubric = None
    if form.rubric.data:
        rubric_id, version = form.rubric.data.rsplit(":", 1)
        rubric = get_rubric(rubric_id, int(version))
    program_type = ProgramType(form.program_type.data)
    short_term = SCOPES[form.scope.data]
    try:
        choose_active_rubric(program_type, rubric, current_user, short_term=short_term)
    except RubricNotApplicable:
        form.rubric.errors.append(
            _(
                "The rubric %(rubric)s does not cover the program type “%(type)s”.",
                rubric=f"{rubric.id} v{rubric.version}",
                type=program_type.label,
            )
        )
        return _list_page(form, 400)
    if rubric is None:
        message = _(
            "Short-term programs of the type “%(type)s” now take the rubric of all its programs.",
            type=program_type.label,
        )
    elif short_term:
        message = _(
            "The rubric %(rubric)s is now active for short-term programs of the type “%(type)s”.",
            rubric=f"{rubric.id} v{rubric.version}",
            type=program_type.label,
        )
    else:
        message = _(
            "The rubric %(rubric)s is now active for “%(type)s”.",
            rubric=f"{rubric.id} v{rubric.version}",
            type=program_type.label,
        )
    flash(message, "success")
    return redirect(url_for("rubrics.index"))
