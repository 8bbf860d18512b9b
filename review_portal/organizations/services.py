"""Operations on provider organizations and look-ups of municipalities.

Services flush and write the audit record; the caller commits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AccountStatus, OrganizationType
from review_portal.extensions import db
from review_portal.organizations.models import Municipality, Organization
from review_portal.organizations.validators import is_valid_inn, is_valid_ogrn


class OrganizationError(Exception):
    """An organization operation refused for a reason the user should read."""


def municipality_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Municipality.id, Municipality.name).order_by(Municipality.name)
    )
    return [(row.id, row.name) for row in rows]


@dataclass
class OrganizationData:
    """The organization's profile as entered (validated by the form or the importer)."""

    full_name: str
    short_name: str
    inn: str
    kind: OrganizationType
    municipality_id: int
    ogrn: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    website: str | None = None


def registration_number_errors(kind: OrganizationType, inn: str, ogrn: str | None) -> dict:
    """Field errors of an ИНН and ОГРН/ОГРНИП for a provider of ``kind`` (empty when valid).

    An individual entrepreneur has a 12-digit ИНН and a 15-digit ОГРНИП; an organization a
    10-digit ИНН and a 13-digit ОГРН; both are checked by their control digits.
    """
    entrepreneur = OrganizationType(kind) == OrganizationType.INDIVIDUAL_ENTREPRENEUR
    errors: dict[str, str] = {}
    inn_length, ogrn_length = (12, 15) if entrepreneur else (10, 13)
    if not inn.isdigit() or len(inn) != inn_length:
        errors["inn"] = _("The INN must have %(n)s digits for this type of provider.", n=inn_length)
    elif not is_valid_inn(inn):
        errors["inn"] = _("The INN control digits do not match: check the number.")
    if ogrn:
        if not ogrn.isdigit() or len(ogrn) != ogrn_length:
            errors["ogrn"] = _(
                "The OGRN must have %(n)s digits for this type of provider.", n=ogrn_length
            )
        elif not is_valid_ogrn(ogrn):
            errors["ogrn"] = _("The OGRN control digit does not match: check the number.")
    return errors


def find_organization_by_inn(inn: str) -> Organization | None:
    return db.session.execute(
        select(Organization).where(Organization.inn == inn.strip())
    ).scalar_one_or_none()


def create_organization(
    data: OrganizationData, actor, status: AccountStatus = AccountStatus.PENDING
) -> Organization:
    """Create a provider organization; the ИНН is unique (refused with a message otherwise)."""
    if find_organization_by_inn(data.inn) is not None:
        raise OrganizationError(
            _("An organization with this INN is already registered. Ask its users to invite you.")
        )
    organization = Organization(**asdict(data), status=status)
    organization.kind = OrganizationType(data.kind)
    if status == AccountStatus.APPROVED:
        organization.approved_at = utcnow()
    db.session.add(organization)
    db.session.flush()
    record_event(
        "organization.create",
        actor=actor,
        object_type="organization",
        object_id=organization.id,
        after={**asdict(data), "status": status},
    )
    return organization
