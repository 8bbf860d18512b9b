"""Forms of the center's settings page. Each field is checked by the setting's own rule
(:func:`review_portal.settings.services.clean_setting`), so the page and the service give
the same messages."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField, ValidationError

from review_portal.enums import MunicipalityPolicy
from review_portal.forms import IntegerField, options, strip
from review_portal.settings.services import (
    FORM_KEYS,
    SETTING_LABELS,
    SettingError,
    check_calendar_day,
    clean_setting,
    time_zones,
)

#: The time zones of Russia (IANA), west to east; the page offers these and the stored one.
RUSSIAN_TIME_ZONES = (
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Kirov",
    "Europe/Volgograd",
    "Europe/Astrakhan",
    "Europe/Saratov",
    "Europe/Ulyanovsk",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Barnaul",
    "Asia/Tomsk",
    "Asia/Novokuznetsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Chita",
    "Asia/Yakutsk",
    "Asia/Khandyga",
    "Asia/Vladivostok",
    "Asia/Ust-Nera",
    "Asia/Magadan",
    "Asia/Sakhalin",
    "Asia/Srednekolymsk",
    "Asia/Kamchatka",
    "Asia/Anadyr",
)
#: The longest ``seen`` snapshot read (the page's values as JSON are far shorter).
MAX_SEEN_CHARS = 20_000


def by_rule(key: str):
    """A validator: the setting's rule accepts the field's value."""

    def validate(form, field):
        try:
            clean_setting(key, field.data)
        except SettingError as error:
            raise ValidationError(str(error.message)) from None

    return validate


def time_zone_choices(current: str) -> list:
    """The zones of Russia known to this system, each with its offset now, and ``current``."""
    now = datetime.now().astimezone()
    known = time_zones()
    zones = [zone for zone in RUSSIAN_TIME_ZONES if zone in known]
    if current not in zones:
        zones.insert(0, current)
    pairs = []
    for zone in zones:
        offset = now.astimezone(ZoneInfo(zone)).strftime("%z") if zone in known else ""
        label = f"{zone} (UTC{offset[:3]}:{offset[3:]})" if offset else zone
        pairs.append((zone, label))
    return options(pairs)


class SettingsForm(FlaskForm):
    region_code = StringField(
        SETTING_LABELS["region_code"], validators=[by_rule("region_code")], filters=[strip]
    )
    region_name = StringField(
        SETTING_LABELS["region_name"], validators=[by_rule("region_name")], filters=[strip]
    )
    center_name = StringField(
        SETTING_LABELS["center_name"], validators=[by_rule("center_name")], filters=[strip]
    )
    center_address = StringField(
        SETTING_LABELS["center_address"], validators=[by_rule("center_address")], filters=[strip]
    )
    center_phone = StringField(
        SETTING_LABELS["center_phone"], validators=[by_rule("center_phone")], filters=[strip]
    )
    center_email = StringField(
        SETTING_LABELS["center_email"], validators=[by_rule("center_email")], filters=[strip]
    )
    head_name = StringField(
        SETTING_LABELS["head_name"], validators=[by_rule("head_name")], filters=[strip]
    )
    head_position = StringField(
        SETTING_LABELS["head_position"], validators=[by_rule("head_position")], filters=[strip]
    )
    municipality_policy = SelectField(
        SETTING_LABELS["municipality_policy"],
        choices=options((p.value, p.label) for p in MunicipalityPolicy),
        validators=[by_rule("municipality_policy")],
    )
    deadline_working_days = IntegerField(
        SETTING_LABELS["deadline_working_days"], validators=[by_rule("deadline_working_days")]
    )
    discussion_working_days = IntegerField(
        SETTING_LABELS["discussion_working_days"], validators=[by_rule("discussion_working_days")]
    )
    reminder_days_before = IntegerField(
        SETTING_LABELS["reminder_days_before"], validators=[by_rule("reminder_days_before")]
    )
    appeal_working_days = IntegerField(
        SETTING_LABELS["appeal_working_days"], validators=[by_rule("appeal_working_days")]
    )
    validity_months_certified = IntegerField(
        SETTING_LABELS["validity_months_certified"],
        validators=[by_rule("validity_months_certified")],
    )
    validity_months_significant = IntegerField(
        SETTING_LABELS["validity_months_significant"],
        validators=[by_rule("validity_months_significant")],
    )
    validity_months_general = IntegerField(
        SETTING_LABELS["validity_months_general"],
        validators=[by_rule("validity_months_general")],
    )
    validity_months_pre_professional = IntegerField(
        SETTING_LABELS["validity_months_pre_professional"],
        validators=[by_rule("validity_months_pre_professional")],
    )
    timezone = SelectField(SETTING_LABELS["timezone"], validators=[by_rule("timezone")])
    mail_sender_name = StringField(
        SETTING_LABELS["mail_sender_name"],
        validators=[by_rule("mail_sender_name")],
        filters=[strip],
    )
    mail_signature = TextAreaField(
        SETTING_LABELS["mail_signature"],
        validators=[by_rule("mail_signature")],
        filters=[strip],
        render_kw={"rows": 4},
    )
    #: The values the page showed when it was opened (JSON): what the user changed is what
    #: differs from them, and a setting someone else changed meanwhile is not overwritten.
    seen = HiddenField()

    def validate_seen(self, field):
        self.seen_values = None
        text = field.data or ""
        try:
            if len(text) > MAX_SEEN_CHARS:
                raise ValueError
            values = json.loads(text)
            if not isinstance(values, dict) or set(values) != set(FORM_KEYS):
                raise ValueError
        except (ValueError, RecursionError):
            raise ValidationError(
                _l("The page is out of date. Reload it and enter the changes again.")
            ) from None
        self.seen_values = values

    def values(self) -> dict:
        return {key: self[key].data for key in FORM_KEYS}


class CalendarDayForm(FlaskForm):
    day = StringField(_l("Date"), render_kw={"type": "date"}, filters=[strip])

    def validate_day(self, field):
        try:
            field.data = check_calendar_day("day", field.data)
        except SettingError as error:
            raise ValidationError(str(error.message)) from None
