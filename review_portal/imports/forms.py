"""The import form (what the file holds and the file itself) and the mapping page's form
(a field for each column of a file whose titles are not the portal's, a word for each
unknown word)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField
from wtforms.validators import InputRequired

from review_portal.forms import REQUIRED, check_upload_size, options
from review_portal.imports.services import COLUMNS, ORGANIZATIONS, PROGRAMS

_UNSET = object()


class ImportForm(FlaskForm):
    kind = SelectField(
        _l("The file holds"),
        choices=options([(ORGANIZATIONS, _l("Organizations")), (PROGRAMS, _l("Programs"))]),
        validators=[InputRequired(REQUIRED)],
    )
    file = FileField(_l("CSV or XLSX file"), validators=[FileRequired(REQUIRED), check_upload_size])


#: The choice of a column ignored, and of a word left as the file writes it.
IGNORE = ""


def mapping_form(
    kind: str,
    header: list[str],
    suggested: dict[int, str],
    candidates: list | None = None,
    formdata=_UNSET,
) -> FlaskForm:
    """The mapping page's form: a field (or "ignore") for each titled column of the file,
    then, when ``candidates`` are given, a portal word for each unknown word of the file
    (:class:`review_portal.imports.mapping.Candidate`), each preselected with its
    suggestion. Each choice must be one of those offered."""

    class MappingForm(FlaskForm):
        #: Which words were shown (a digest): the words are asked again when the columns
        #: posted find others.
        shown = HiddenField()

    fields = options(
        [(IGNORE, _l("Ignore this column"))]
        + [(column.field, column.name) for column in COLUMNS[kind]]
    )
    for index, title in enumerate(header):
        if title.strip():
            setattr(
                MappingForm,
                f"column_{index}",
                SelectField(title, choices=fields, default=suggested.get(index, IGNORE)),
            )
    for number, candidate in enumerate(candidates or []):
        setattr(
            MappingForm,
            f"value_{number}",
            SelectField(
                candidate.value,
                choices=options(
                    [(IGNORE, _l("Leave as it is (the row is reported)"))]
                    + [(word, word) for word in candidate.words]
                ),
                default=candidate.suggestion,
                description=candidate.title,
            ),
        )
    if formdata is _UNSET:
        return MappingForm()
    return MappingForm(formdata=formdata)


def column_fields(form: FlaskForm) -> list[tuple[int, SelectField]]:
    return sorted(
        (int(name.removeprefix("column_")), field)
        for name, field in form._fields.items()
        if name.startswith("column_")
    )


def value_fields(form: FlaskForm) -> list[tuple[int, SelectField]]:
    return sorted(
        (int(name.removeprefix("value_")), field)
        for name, field in form._fields.items()
        if name.startswith("value_")
    )
