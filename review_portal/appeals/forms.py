"""Forms of appeals: filing (a reason per criterion of the rubric, files), refusing,
accepting and deciding. Every text is stripped and bounded."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from review_portal.enums import Decision, RefusalGround
from review_portal.forms import options, refuse_too_large, strip, upload_limit_mb, with_placeholder

MAX_TEXT = 10_000


def each_upload_size(form, field) -> None:
    """Every chosen file at most ``MAX_UPLOAD_MB`` (the page then answers 413)."""
    for upload in field.data or ():
        stream = getattr(upload, "stream", None)
        if stream is None:
            continue
        size = stream.seek(0, 2)
        stream.seek(0)
        if size > upload_limit_mb() * 1024 * 1024:
            refuse_too_large(field)


class AppealForm(FlaskForm):
    """A reason per contested criterion (fields ``reason_<criterion id>``, added per rubric
    by :func:`appeal_form`) and up to five files."""

    file = MultipleFileField(
        _l("Files supporting the appeal (PDF, DOCX or ODT; optional)"),
        validators=[each_upload_size],
    )

    def reasons(self) -> dict[str, str]:
        return {
            name.removeprefix("reason_"): (field.data or "")
            for name, field in self._fields.items()
            if name.startswith("reason_")
        }


def appeal_form(rubric, **kwargs) -> AppealForm:
    """The filing form for ``rubric``: one optional text area per criterion."""

    class Form(AppealForm):
        pass

    for criterion in rubric.criteria:
        setattr(
            Form,
            f"reason_{criterion.id}",
            TextAreaField(
                f"{criterion.id}. {criterion.title}",
                filters=[strip],
                validators=[Length(max=MAX_TEXT)],
            ),
        )
    return Form(**kwargs)


class AcceptForm(FlaskForm):
    """Accept an appeal for a new panel (the token only)."""


class RefuseForm(FlaskForm):
    ground = SelectField(
        _l("Ground"),
        choices=with_placeholder(RefusalGround.choices()),
        validators=[DataRequired(_l("Choose a ground."))],
    )
    reason = TextAreaField(
        _l("Reason (the provider reads it)"),
        filters=[strip],
        validators=[
            DataRequired(_l("A reason is required for this action.")),
            Length(max=MAX_TEXT),
        ],
    )


class DecideForm(FlaskForm):
    decision = SelectField(_l("Decision"), choices=options(Decision.choices()))
    answer = TextAreaField(
        _l("Reasoned answer to the provider (required when the appeal is dismissed)"),
        filters=[strip],
        validators=[Length(max=MAX_TEXT)],
    )
