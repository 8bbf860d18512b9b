"""The registry's forms: the public selection (a GET form, also read by the exports and the
API), publication and exclusion."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from review_portal.enums import Direction, Level, RegistryKind, StudyForm
from review_portal.extensions import db
from review_portal.forms import REQUIRED, options, strip
from review_portal.organizations.models import Municipality
from review_portal.registry.queries import DEFAULT_PER_PAGE, MAX_PER_PAGE, RegistryFilters

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
    municipality = SelectField(_l("Municipality"), validators=[Optional()])
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
    snapshot = IntegerField(_l("Publication"), validators=[Optional()])
    page = IntegerField(
        _l("Page"),
        default=1,
        validators=[Optional(), NumberRange(min=1, message=_l("The page number starts at 1."))],
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

    def selection(self) -> RegistryFilters:
        """The validated selection (call after :meth:`validate`)."""
        return RegistryFilters(
            q=self.q.data or "",
            municipality_id=int(self.municipality.data) if self.municipality.data else None,
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

    @property
    def page_number(self) -> int:
        return self.page.data or 1

    @property
    def page_size(self) -> int:
        return self.per_page.data or DEFAULT_PER_PAGE


class PublishForm(FlaskForm):
    kind = SelectField(_l("Registry"), choices=options(RegistryKind.choices()))


class ExcludeForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason for the exclusion"),
        validators=[DataRequired(REQUIRED), Length(max=10000)],
        filters=[strip],
    )
