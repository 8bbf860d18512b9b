"""The import form: what the file holds and the file itself."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField
from wtforms.validators import InputRequired

from review_portal.forms import REQUIRED, check_upload_size, options
from review_portal.imports.services import ORGANIZATIONS, PROGRAMS


class ImportForm(FlaskForm):
    kind = SelectField(
        _l("The file holds"),
        choices=options([(ORGANIZATIONS, _l("Organizations")), (PROGRAMS, _l("Programs"))]),
        validators=[InputRequired(REQUIRED)],
    )
    file = FileField(_l("CSV file"), validators=[FileRequired(REQUIRED), check_upload_size])
