"""Form helpers shared by every domain: select options, checkbox lists, input filters."""

from __future__ import annotations

import re

import wtforms
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


def strip(value):
    """Input filter: surrounding white space removed."""
    return value.strip() if isinstance(value, str) else value
