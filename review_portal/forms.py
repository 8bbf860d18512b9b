"""Form helpers shared by every domain: select options, checkbox lists, input filters."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectMultipleField, widgets
from wtforms.fields.choices import SelectChoice

REQUIRED = _l("This field is required.")


def options(pairs) -> list[SelectChoice]:
    """``(value, label)`` pairs as select options (WTForms 3.3 deprecates plain tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]


def with_placeholder(pairs) -> list[SelectChoice]:
    """Options led by an empty "choose" entry, so nothing is picked by accident."""
    return [SelectChoice("", _l("— choose —"))] + options(pairs)


def optional_int(value):
    """Coerce for a select of ids with a placeholder: the empty entry is ``None``."""
    if value in ("", None):
        return None
    return int(value)


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as a list of checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def strip(value):
    """Input filter: surrounding white space removed."""
    return value.strip() if isinstance(value, str) else value
