"""The registry's forms: the public selection (a GET form, also read by the exports and the
API), publication and exclusion."""

from __future__ import annotations

from flask import abort
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from review_portal.enums import Direction, Level, RegistryKind, StudyForm
from review_portal.extensions import db
from review_portal.forms import REQUIRED, IntegerField, options, strip
from review_portal.input_guard import parse_db_int
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

    q = StringField(
        _l("Title or organization"),
        validators=[Optional(), Length(max=200, message=_l("At most %(max)d characters."))],
        filters=[strip],
    )
    municipality = MunicipalityField(_l("Municipality"), validators=[Optional()])
    direction = SelectField(
        _l("Direction"),
        choices=options([("", ALL)] + Direction.choices()),
        validators=[Optional()],
    )
    level = SelectField(
        _l("Level"), choices=options([("", ALL)] + Level.choices()), validators=[Optional()]
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
    )
    ovz = SelectField(
        _l("Adapted for children with disabilities (ОВЗ)"),
        choices=options([("", ALL), ("1", _l("Adapted only")), ("0", _l("Not adapted"))]),
        validators=[Optional()],
    )
    sort = SelectField(_l("Sort by"), choices=options(SORT_CHOICES), default="number")
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
        municipalities = db.session.execute(
            select(Municipality.id, Municipality.name).order_by(Municipality.name)
        ).all()
        self.municipality.choices = options([("", ALL)] + [(str(i), n) for i, n in municipalities])
        self._municipality_ids = {i for i, _name in municipalities}

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
