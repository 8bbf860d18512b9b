"""Form helpers shared by every domain: select options, checkbox lists, input filters, and
how a refused upload is answered."""

from __future__ import annotations

import re
from typing import NoReturn

import wtforms
from flask import current_app
from flask_babel import lazy_gettext as _l
from wtforms import SelectMultipleField, widgets
from wtforms.fields.choices import SelectChoice

from review_portal.input_guard import DB_INT_MAX

REQUIRED = _l("This field is required.")


def options(pairs) -> list[SelectChoice]:
    """``(value, label)`` pairs as select options (WTForms 3.3 deprecates plain tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]


def with_placeholder(pairs) -> list[SelectChoice]:
    """Options led by an empty "choose" entry, so nothing is picked by accident."""
    return [SelectChoice("", _l("— choose —"))] + options(pairs)


#: An integer as typed: ASCII digits (``int()`` also reads "٢" and "²"-free Unicode digits).
_INTEGER = re.compile(r"-?[0-9]{1,10}")


def db_int(value) -> int:
    """Coerce for ids and counts: ASCII digits within the database integer range, else
    ``ValueError`` (the field's "not a valid choice/number" error)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise ValueError("not an integer")
    if abs(number) > DB_INT_MAX:
        raise ValueError("out of range")
    return number


def optional_int(value):
    """Coerce for a select of ids with a placeholder: the empty entry is ``None``."""
    if value in ("", None):
        return None
    return db_int(value)


class IntegerField(wtforms.IntegerField):
    """WTForms' integer field, reading ASCII digits only and within the database integer
    range: a 20-digit number or "٢" is the field's error, never a value."""

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        try:
            self.data = db_int(valuelist[0])
        except ValueError:
            self.data = None
            raise ValueError(self.gettext("Not a valid integer value.")) from None


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as a list of checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()

    def pre_validate(self, form) -> None:
        """Only the options offered; the refusal does not repeat what was sent."""
        if not self.validate_choice or not self.data:
            return
        offered = {self.coerce(choice.value) for choice in self.iter_choices()}
        if any(value not in offered for value in self.data):
            raise wtforms.ValidationError(_l("Choose from the options offered."))


def strip(value):
    """Input filter: surrounding white space removed."""
    return value.strip() if isinstance(value, str) else value


# --- uploads ------------------------------------------------------------------------------
#
# A refused upload writes nothing and answers 4xx with the form page and the message at the
# file field: 413 for a file over the size limit, 422 for anything else refused.


def upload_limit_mb() -> int:
    return int(current_app.config.get("MAX_UPLOAD_MB") or 20)


def too_large_message():
    return _l("The file is larger than %(n)s MB.", n=upload_limit_mb())


def refuse_too_large(field) -> NoReturn:
    """Refuse the file of ``field`` for its size (the page then answers 413)."""
    field.too_large = True
    raise wtforms.ValidationError(too_large_message())


def check_upload_size(form, field) -> None:
    """A file field's validator: at most ``MAX_UPLOAD_MB``."""
    stream = field.data.stream
    size = stream.seek(0, 2)
    stream.seek(0)
    if size > upload_limit_mb() * 1024 * 1024:
        refuse_too_large(field)


def refused_status(form) -> int:
    """The status of a form page shown again after a refused upload."""
    return 413 if any(getattr(field, "too_large", False) for field in form) else 422


def form_page_too_large(form_class, page):
    """The ``render`` of :func:`on_too_large` for a page built around one upload form:
    ``page(form, status=413)`` with an empty ``form_class`` (``formdata=None``: the body over
    the limit is never read) carrying :func:`too_large_message` at its ``file`` field."""

    def render():
        form = form_class(formdata=None)
        form.file.errors = [too_large_message()]
        return page(form, status=413)

    return render


def on_too_large(render):
    """Mark an upload view whose request may be over ``MAX_CONTENT_LENGTH``: werkzeug refuses
    it before the view runs, and the one error handler (:mod:`review_portal.main.errors`)
    then answers 413 with ``render()`` — the view's own form page showing
    :func:`too_large_message` at the file field — or, when it returns ``None`` (no page to
    show this user), the error page."""

    def mark(view):
        view.on_too_large = render
        return view

    return mark
