"""The registry's forms: the public selection (a GET form, also read by the exports and the
API), publication and exclusion."""

from __future__ import annotations

import functools

from flask import abort, current_app
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import HiddenField, SelectField, StringField, TextAreaField, widgets
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import html_params

from review_portal.enums import Direction, Level, RegistryKind, StudyForm
from review_portal.extensions import db
from review_portal.forms import REQUIRED, IntegerField, options, strip
from review_portal.input_guard import parse_db_int
from review_portal.lazy_text import lazy_gettext as _l
from review_portal.lazy_text import wtforms_translations
from review_portal.organizations.models import Municipality
from review_portal.registry.models import RegistrySnapshot
from review_portal.registry.queries import (
    DEFAULT_PER_PAGE,
    MAX_ID,
    MAX_PAGE,
    MAX_PER_PAGE,
    RegistryFilters,
    latest_snapshot,
)

ALL = _l("All")
SORT_CHOICES = [
    ("number", _l("Registry number")),
    ("title", _l("Title")),
    ("organization", _l("Organization")),
    ("municipality", _l("Municipality")),
    ("percent", _l("Final score, highest first")),
    ("included", _l("Inclusion date, newest first")),
]
#: Ages a program may cover (the program form's limits), so also the ages one may search.
MIN_AGE, MAX_AGE = 3, 18


@functools.cache
def _municipalities():
    # Built once per process: every registry page offers them.
    return select(Municipality.id, Municipality.name).order_by(Municipality.name)


class CachedSelect(widgets.Select):
    """WTForms' ``<select>`` with its options rendered once per list of choices (values and
    labels in the page's language) and kept, the chosen one marked per request: the public
    registry's filter offers every municipality of the region (300), which WTForms rendered
    and escaped option by option on every page. The HTML is WTForms' own, byte for byte.

    For fields coercing to ``str`` with plain options (no groups, no ``render_kw``);
    anything else is rendered by WTForms as before."""

    #: The most lists of options kept (languages × lists; the municipalities change rarely).
    LIMIT = 64

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[tuple, tuple[list[str], dict[str, list[int]]]] = {}

    def __call__(self, field, **kwargs):
        choices = field.choices
        if (
            field.coerce is not str
            or not isinstance(choices, list)
            or any(c.render_kw or c.optgroup is not None or not isinstance(c.value, str)
                   for c in choices)
        ):  # fmt: skip
            return super().__call__(field, **kwargs)
        kwargs.setdefault("id", field.id)
        flags = getattr(field, "flags", {})
        for k in dir(flags):
            if k in self.validation_attrs and k not in kwargs:
                kwargs[k] = getattr(flags, k)
        # The label as WTForms escapes it (a lazy label is markup: its ``__html__``).
        key = tuple((c.value, str(escape(c.label or c.value))) for c in choices)
        cached = self._cache.get(key)
        if cached is None:
            options = [
                f"<option {html_params(value=value)}>{label}</option>" for value, label in key
            ]
            positions: dict[str, list[int]] = {}
            for index, (value, _label) in enumerate(key):
                positions.setdefault(value, []).append(index)
            if len(self._cache) >= self.LIMIT:
                self._cache.clear()
            cached = self._cache[key] = (options, positions)
        options, positions = cached
        chosen = positions.get(field.data, ()) if isinstance(field.data, str) else ()
        if chosen:
            options = list(options)
            for index in chosen:
                value, label = key[index]
                params = html_params(value=value, selected=True)
                options[index] = f"<option {params}>{label}</option>"
        html = [f"<select {html_params(name=field.name, **kwargs)}>", *options]
        html.append("</select>")
        return Markup("".join(html))


class MunicipalityField(SelectField):
    """A municipality's id. The list offers the municipalities there are; a well-formed id
    that names none is not an error in the request but a missing object, answered 404 by
    :meth:`RegistryFilterForm.selection` (as an unknown ``snapshot`` is), so the API's
    integer parameter means what its document says."""

    def pre_validate(self, form) -> None:
        if self.data and parse_db_int(self.data) is None:
            raise ValidationError(self.gettext("Not a valid choice."))


class RegistryFilterForm(FlaskForm):
    """Search, filters, sorting and paging of the registry, from the query string.

    The same form reads ``/registry``, its exports and ``/api/v1/registry``, so a selection
    means the same everywhere. Build it with ``RegistryFilterForm(request.args)``.
    """

    class Meta:
        csrf = False

        def get_translations(self, form):
            """WTForms' messages, the catalog kept per language (see ``lazy_text``)."""
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)
            return wtforms_translations

    q = StringField(
        _l("Title or organization"),
        validators=[Optional(), Length(max=200, message=_l("At most %(max)d characters."))],
        filters=[strip],
    )
    municipality = MunicipalityField(
        _l("Municipality"), validators=[Optional()], widget=CachedSelect()
    )
    direction = SelectField(
        _l("Direction"),
        choices=options([("", ALL)] + Direction.choices()),
        validators=[Optional()],
        widget=CachedSelect(),
    )
    level = SelectField(
        _l("Level"),
        choices=options([("", ALL)] + Level.choices()),
        validators=[Optional()],
        widget=CachedSelect(),
    )
    age = IntegerField(
        _l("Age of the child"),
        validators=[
            Optional(),
            NumberRange(
                MIN_AGE, MAX_AGE, message=_l("Enter an age from %(min)d to %(max)d years.")
            ),
        ],
    )
    form = SelectField(
        _l("Study form"),
        choices=options([("", ALL)] + StudyForm.choices()),
        validators=[Optional()],
        widget=CachedSelect(),
    )
    ovz = SelectField(
        _l("Adapted for children with disabilities (ОВЗ)"),
        choices=options([("", ALL), ("1", _l("Adapted only")), ("0", _l("Not adapted"))]),
        validators=[Optional()],
        widget=CachedSelect(),
    )
    sort = SelectField(
        _l("Sort by"), choices=options(SORT_CHOICES), default="number", widget=CachedSelect()
    )
    kind = SelectField(
        _l("Registry"),
        choices=options(RegistryKind.choices()),
        default=RegistryKind.CERTIFIED.value,
    )
    snapshot = IntegerField(
        _l("Publication"),
        validators=[Optional(), NumberRange(1, MAX_ID, message=_l("No such publication."))],
    )
    page = IntegerField(
        _l("Page"),
        default=1,
        validators=[
            Optional(),
            NumberRange(1, MAX_PAGE, message=_l("Enter a number from %(min)d to %(max)d.")),
        ],
    )
    per_page = IntegerField(
        _l("Per page"),
        default=DEFAULT_PER_PAGE,
        validators=[
            Optional(),
            NumberRange(1, MAX_PER_PAGE, message=_l("Enter a number from %(min)d to %(max)d.")),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Plain rows (the session's connection: no ORM result for 300 pairs of columns).
        municipalities = tuple(map(tuple, db.session.connection().execute(_municipalities()).all()))
        self.municipality.choices, self._municipality_ids = _municipality_choices(municipalities)
        self._municipality_rows = municipalities

    def render_key(self) -> tuple | None:
        """What the rendered form depends on besides the page's language and the template's
        arguments: every field's value as sent and as read, and the municipalities offered
        (``None`` when a field has an error: such a form is rendered afresh)."""
        if any(f.errors for f in self):
            return None
        values = tuple((f.name, tuple(f.raw_data or ()), f.data) for f in self)
        return (self._municipality_rows, values)

    def selection(self) -> RegistryFilters:
        """The validated selection (call after :meth:`validate`); 404 for a municipality id
        that names none."""
        municipality_id = parse_db_int(self.municipality.data) if self.municipality.data else None
        if municipality_id is not None and municipality_id not in self._municipality_ids:
            abort(404)
        return RegistryFilters(
            q=self.q.data or "",
            municipality_id=municipality_id,
            direction=Direction(self.direction.data) if self.direction.data else None,
            level=Level(self.level.data) if self.level.data else None,
            age=self.age.data,
            study_form=StudyForm(self.form.data) if self.form.data else None,
            ovz=None if not self.ovz.data else self.ovz.data == "1",
            sort=self.sort.data or "number",
        )

    @property
    def registry_kind(self) -> RegistryKind:
        return RegistryKind(self.kind.data or RegistryKind.CERTIFIED.value)

    def requested_snapshot(self) -> RegistrySnapshot | None:
        """The snapshot the (validated) selection asks for — the one rule of the page, the
        exports and the API: ``snapshot=<id>`` (404 when unknown, or of another kind than an
        explicit ``kind=``), else the latest of the kind (``None`` before the first
        publication)."""
        if self.snapshot.data is None:
            return latest_snapshot(self.registry_kind)
        snapshot = db.session.get(RegistrySnapshot, self.snapshot.data)
        if snapshot is None or (self.kind.raw_data and snapshot.kind != self.registry_kind):
            abort(404)
        return snapshot

    @property
    def page_number(self) -> int:
        return self.page.data or 1

    @property
    def page_size(self) -> int:
        return self.per_page.data or DEFAULT_PER_PAGE


#: The municipalities' options by the rows they were made of: the same list (and so the same
#: rendered options, :class:`CachedSelect`) while the municipalities stay the same.
_MUNICIPALITY_CHOICES: dict[tuple, tuple[list, frozenset[int]]] = {}


def _municipality_choices(rows: tuple) -> tuple[list, frozenset[int]]:
    found = _MUNICIPALITY_CHOICES.get(rows)
    if found is None:
        if len(_MUNICIPALITY_CHOICES) >= 8:
            _MUNICIPALITY_CHOICES.clear()
        choices = options([("", ALL)] + [(str(i), n) for i, n in rows])
        found = _MUNICIPALITY_CHOICES[rows] = (choices, frozenset(i for i, _n in rows))
    return found


class PublishForm(FlaskForm):
    """Publish the changes the coordinator has just read: ``changes`` is their fingerprint."""

    kind = SelectField(_l("Registry"), choices=options(RegistryKind.choices()))
    changes = HiddenField(validators=[DataRequired(REQUIRED)])


class ExcludeForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason for the exclusion"),
        validators=[DataRequired(REQUIRED), Length(max=10000)],
        filters=[strip],
    )
