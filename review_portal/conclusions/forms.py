"""Forms of the verification page (a number, an uploaded copy) and of revocation.

The upload form reads the file once, in chunks, and keeps its SHA-256: the file is checked
by its hash only and never stored.
"""

from __future__ import annotations

import hashlib

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, ValidationError

from review_portal.forms import refuse_too_large, strip, upload_limit_mb

CHUNK = 1024 * 1024
#: Longest revocation reason accepted (the same order as other written justifications).
MAX_REASON = 10000


def number_only(value):
    """Input filter: the number without surrounding space or a leading "№"."""
    if not isinstance(value, str):
        return value
    return value.strip().removeprefix("№").strip()


class NumberForm(FlaskForm):
    """Look a conclusion up by its number (a GET form: nothing changes, no CSRF token)."""

    class Meta:
        csrf = False

    number = StringField(
        _l("Conclusion number"),
        filters=[number_only],
        description=_l("As printed on the document, for example 67-2026-00001."),
    )


class UploadForm(FlaskForm):
    """A PDF to compare with the issued conclusions; ``sha256`` is set once it validates."""

    file = FileField(
        _l("PDF file of the conclusion"),
        validators=[FileRequired(_l("Choose the PDF file to check."))],
        render_kw={"accept": "application/pdf,.pdf"},
    )

    sha256: str | None = None

    def validate_file(self, field) -> None:
        limit = upload_limit_mb() * 1024 * 1024
        stream = field.data.stream
        stream.seek(0)
        digest = hashlib.sha256()
        size = 0
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                refuse_too_large(field)
            digest.update(chunk)
        if size == 0:
            raise ValidationError(_l("The file is empty."))
        self.sha256 = digest.hexdigest()


class RevokeForm(FlaskForm):
    """The reason is checked by ``revoke_conclusion`` (required); the form only reads it."""

    reason = TextAreaField(
        _l("Reason for revoking"),
        filters=[strip],
        validators=[Length(max=MAX_REASON, message=_l("The text is too long."))],
        description=_l(
            "Required. Printed on the public verification page; the review returns to "
            "awaiting a decision, and the new decision issues a new conclusion."
        ),
    )
