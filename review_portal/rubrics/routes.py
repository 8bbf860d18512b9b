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
from review_portal.permissions import is_staff, requires
from review_portal.rubrics.registry import (
    RubricNotApplicable,
    active_choices,
    choose_active_rubric,
    get_rubric,
    rubric_files,
    rubrics_in_use,
)

bp = Blueprint("rubrics", __name__)


class ActiveRubricForm(FlaskForm):
    program_type = SelectField(_l("Program type"), validators=[InputRequired()])
    rubric = SelectField(_l("Rubric"), validators=[InputRequired()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.program_type.choices = ProgramType.choices()
        self.rubric.choices = [
            (f"{r.id}:{r.version}", f"{r.id} v{r.version}") for r in rubric_files().values()
        ]


def _list_page(form: ActiveRubricForm, status: int = 200):
    return (
        render_template(
            "rubrics/index.html",
            rubrics=list(rubric_files().values()),
            in_use=rubrics_in_use(),
            active=active_choices(),
            program_types=list(ProgramType),
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
    rubric_id, version = form.rubric.data.rsplit(":", 1)
    rubric = get_rubric(rubric_id, int(version))
    program_type = ProgramType(form.program_type.data)
    try:
        choose_active_rubric(program_type, rubric, current_user)
    except RubricNotApplicable:
        form.rubric.errors.append(
            _(
                "The rubric %(rubric)s does not cover the program type “%(type)s”.",
                rubric=f"{rubric.id} v{rubric.version}",
                type=program_type.label,
            )
        )
        return _list_page(form, 400)
    flash(
        _(
            "The rubric %(rubric)s is now active for “%(type)s”.",
            rubric=f"{rubric.id} v{rubric.version}",
            type=program_type.label,
        ),
        "success",
    )
    return redirect(url_for("rubrics.index"))
