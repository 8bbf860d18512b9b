"""The program card form (Navigator metadata) and the small action forms of programs."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from review_portal.enums import Direction, Level, ProgramType, RegistryKind, StudyForm
from review_portal.forms import (
    REQUIRED,
    IntegerField,
    MultiCheckboxField,
    optional_int,
    options,
    strip,
    with_placeholder,
)
from review_portal.programs.labels import FIELD_LABELS as L
from review_portal.programs.models import additional_kinds
from review_portal.programs.modules import (
    MODULE_TITLE_MAX,
    MODULES_MAX,
    TEACHER_REQUIREMENTS_MAX,
    module_row_errors,
)
from review_portal.programs.validation import program_data_errors

NUMBER = _l("Enter a whole number.")

ENUM_FIELDS = {
    "direction": Direction,
    "level": Level,
    "program_type": ProgramType,
    "study_form": StudyForm,
    "requested_registry_kind": RegistryKind,
}


def _number(label):
    return IntegerField(
        label, validators=[InputRequired(REQUIRED)], render_kw={"inputmode": "numeric"}
    )


def _module_number(label):
    return IntegerField(label, validators=[Optional()], render_kw={"inputmode": "numeric"})


class ModuleForm(FlaskForm):
    """One row of the program's modules; a row left blank is no module. A form of its own
    for its translated messages; the card's CSRF token covers it."""

    class Meta:
        csrf = False

    title = StringField(
        _l("Module title"), validators=[Length(max=MODULE_TITLE_MAX)], filters=[strip]
    )
    hours = _module_number(_l("Hours"))
    months = _module_number(_l("Months"))
    group_min = _module_number(L["group_min"])
    group_max = _module_number(L["group_max"])
    teacher_requirements = TextAreaField(
        _l("Requirements for teachers"),
        validators=[Length(max=TEACHER_REQUIREMENTS_MAX)],
        filters=[strip],
        render_kw={"rows": 2},
    )

    NUMBERS = ("hours", "months", "group_min", "group_max")

    def is_blank(self) -> bool:
        if self.title.data or self.teacher_requirements.data:
            return False
        for name in self.NUMBERS:
            field = getattr(self, name)
            typed = any(str(value).strip() for value in field.raw_data or [])
            if field.data is not None or typed:
                return False
        return True

    def to_module(self) -> dict:
        return {
            "title": self.title.data or "",
            **{name: getattr(self, name).data for name in self.NUMBERS},
            "teacher_requirements": self.teacher_requirements.data or "",
        }


class ProgramForm(FlaskForm):
    title = StringField(
        L["title"],
        validators=[DataRequired(REQUIRED), Length(max=500)],
        filters=[strip],
    )
    direction = SelectField(
        L["direction"],
        choices=with_placeholder(Direction.choices()),
        validators=[DataRequired(REQUIRED)],
    )
    level = SelectField(
        L["level"], choices=with_placeholder(Level.choices()), validators=[DataRequired(REQUIRED)]
    )
    program_type = SelectField(
        L["program_type"],
        choices=options(ProgramType.choices()),
        default=ProgramType.GENERAL_DEVELOPMENTAL.value,
    )
    age_min = _number(L["age_min"])
    age_max = _number(L["age_max"])
    # Derived from the modules when there are any (then they may be left empty).
    total_hours = IntegerField(
        L["total_hours"], validators=[Optional()], render_kw={"inputmode": "numeric"}
    )
    duration_months = IntegerField(
        L["duration_months"], validators=[Optional()], render_kw={"inputmode": "numeric"}
    )
    study_form = SelectField(
        L["study_form"],
        choices=with_placeholder(StudyForm.choices()),
        validators=[DataRequired(REQUIRED)],
    )
    uses_distance_learning = BooleanField(L["uses_distance_learning"])
    network_form = BooleanField(L["network_form"])
    group_min = _number(L["group_min"])
    group_max = _number(L["group_max"])
    municipality_id = SelectField(L["municipality_id"], coerce=optional_int, validate_choice=True)
    adapted_for_disabilities = BooleanField(L["adapted_for_disabilities"])
    multi_level = BooleanField(L["multi_level"])
    annotation = TextAreaField(
        L["annotation"],
        validators=[Optional(), Length(max=5000)],
        filters=[strip],
        render_kw={"rows": 4},
    )
    requested_registry_kind = SelectField(
        L["requested_registry_kind"],
        choices=options(RegistryKind.choices()),
        default=RegistryKind.CERTIFIED.value,
    )
    additional_registry_kinds = MultiCheckboxField(
        L["additional_registry_kinds"], choices=options(RegistryKind.choices())
    )
    modules = FieldList(FormField(ModuleForm), min_entries=MODULES_MAX, max_entries=MODULES_MAX)

    def filled_modules(self) -> list:
        """The module rows that are not blank."""
        return [entry.form for entry in self.modules if not entry.form.is_blank()]

    def to_data(self) -> dict:
        """The form's values as program data (enums, ints, bools)."""
        data = {}
        for name in (
            "title",
            "age_min",
            "age_max",
            "total_hours",
            "duration_months",
            "group_min",
            "group_max",
            "municipality_id",
            "uses_distance_learning",
            "network_form",
            "adapted_for_disabilities",
            "multi_level",
        ):
            data[name] = getattr(self, name).data
        data["annotation"] = self.annotation.data or ""
        for name, enum_cls in ENUM_FIELDS.items():
            value = getattr(self, name).data
            # An unknown value is the select's own error; the data has none then.
            known = {member.value for member in enum_cls}
            data[name] = enum_cls(value) if value in known else None
        main = data["requested_registry_kind"]
        data["additional_registry_kinds"] = additional_kinds(
            main or RegistryKind.CERTIFIED, self.additional_registry_kinds.data
        )
        data["modules"] = [row.to_module() for row in self.filled_modules()]
        if data["modules"] and not any(module_row_errors(module) for module in data["modules"]):
            data["total_hours"] = sum(m["hours"] for m in data["modules"])
            data["duration_months"] = max(m["months"] for m in data["modules"])
        return data

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for row in self.filled_modules():
            for name, message in module_row_errors(row.to_module()).items():
                field = getattr(row, name)
                if not field.errors:
                    field.errors = [*field.errors, message]
                    valid = False
        errors = program_data_errors(self.to_data())
        for name, message in errors.items():
            if name == "modules":
                valid = False  # shown at the rows above
                continue
            if "modules" in errors and name in ("total_hours", "duration_months"):
                continue  # derived from the modules once their rows are right
            field = getattr(self, name)
            if not field.errors:
                field.errors = [*field.errors, message]
                valid = False
        return valid

    @classmethod
    def from_program(cls, program, **kwargs) -> ProgramForm:
        data = {name: getattr(program, name) for name in program.DATA_FIELDS}
        for name in ENUM_FIELDS:
            data[name] = data[name].value if data[name] else ""
        data["modules"] = list(program.modules or [])
        data["additional_registry_kinds"] = list(program.additional_registry_kinds or [])
        return cls(data=data, **kwargs)


class ReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(REQUIRED)], filters=[strip])


class OptionalReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason (optional)"), validators=[Optional()], filters=[strip])


class ActionForm(FlaskForm):
    """Only the CSRF token, for POST buttons."""


class ProgramFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional()], filters=[strip])
    state = SelectField(_l("State"), validators=[Optional()], validate_choice=False)
    direction = SelectField(
        _l("Direction"),
        choices=options([("", _l("All"))] + Direction.choices()),
        validators=[Optional()],
    )
    municipality_id = SelectField(
        _l("Municipality"), validators=[Optional()], validate_choice=False
    )
    organization = StringField(
        _l("Organization (name or INN)"), validators=[Optional()], filters=[strip]
    )
    submitted_from = DateField(_l("Submitted from"), validators=[Optional()])
    submitted_to = DateField(_l("Submitted to"), validators=[Optional()])
