"""The import form: what the file holds and the file itself."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField
from wtforms.validators import InputRequired, ValidationError

from review_portal.forms import REQUIRED, options
from review_portal.imports.services import ORGANIZATIONS, PROGRAMS


class ImportForm(FlaskForm):
    kind = SelectField(
        _l("The file holds"),
        choices=options([(ORGANIZATIONS, _l("Organizations")), (PROGRAMS, _l("Programs"))]),
        validators=[InputRequired(REQUIRED)],
    )
    file = FileField(_l("CSV file"), validators=[FileRequired(REQUIRED)])

    def validate_file(self, field) -> None:
        limit_mb = current_app.config["MAX_UPLOAD_MB"]
        stream = field.data.stream
        size = stream.seek(0, 2)
        stream.seek(0)
        if size > limit_mb * 1024 * 1024:
            raise ValidationError(_l("The file is larger than %(n)s MB.", n=limit_mb))
