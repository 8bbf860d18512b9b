"""The issue's journey, all of it through the web interface, as the people involved do it:
a provider registers and is approved, creates a program, uploads its PDF and submits; the
coordinator returns it with a reason; the provider fixes and resubmits; the coordinator
accepts it into expertise. Every step shows on the program's timeline."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from review_portal.accounts.models import User
from review_portal.enums import AccountStatus
from review_portal.extensions import db
from review_portal.programs.models import Program, ProgramVersion
from review_portal.workflow import ReviewState
from tests.factories import MINIMAL_PDF, CoordinatorFactory, MunicipalityFactory, make_inn

PASSWORD = "Provider-pass-2026"


@pytest.fixture(autouse=True)
def _english(english):
    pass


def upload_pdf(auth, program_id: int, content: bytes, name: str):
    boundary, body = encode_multipart(
        {
            "csrf_token": auth.token(f"/programs/{program_id}"),
            "kind": "program",
            "file": FileStorage(io.BytesIO(content), filename=name, content_type="application/pdf"),
        }
    )
    return auth.client.post(
        f"/programs/{program_id}/documents",
        data=body,
        content_type=f'multipart/form-data; boundary="{boundary}"',
    )


def program_card(municipality_id: int, **changes) -> dict:
    card = {
        "title": "Робототехника: первые шаги",
        "direction": "technical",
        "level": "introductory",
        "program_type": "general_developmental",
        "requested_registry_kind": "certified",
        "age_min": "7",
        "age_max": "10",
        "total_hours": "72",
        "duration_months": "9",
        "study_form": "full_time",
        "group_min": "8",
        "group_max": "12",
        "municipality_id": str(municipality_id),
        "annotation": "Конструирование и программирование роботов.",
    }
    card.update(changes)
    return card


def timeline_steps(client, program_id: int) -> list[str]:
    page = client.get(f"/programs/{program_id}").get_data(as_text=True)
    timeline = page.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    return re.findall(r"→ <strong>([^<]+)</strong>", timeline)


def test_provider_journey_from_registration_to_expertise(client, auth, session):
    municipality = MunicipalityFactory(name="Сафоновский район")
    coordinator = CoordinatorFactory()

    # 1. The provider registers their organization.
    registered = auth.post(
        "/register/provider",
        {
            "org_kind": "private",
            "org_full_name": "Автономная некоммерческая организация ДО «Роботех»",
            "org_short_name": "АНО ДО «Роботех»",
            "inn": make_inn(10),
            "municipality_id": str(municipality.id),
            "full_name": "Орлова Анна Викторовна",
            "email": "orlova@robotech.example",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "consent": "y",
        },
        token_from="/register/provider",
    )
    assert registered.headers["Location"].endswith("/pending")
    assert client.get("/programs/new").status_code == 403  # not approved yet
    auth.logout()

    # 2. The coordinator approves the registration.
    provider = db.session.execute(
        select(User).where(User.email == "orlova@robotech.example")
    ).scalar_one()
    auth.login(coordinator)
    assert auth.post(f"/registrations/{provider.id}/approve").status_code == 302
    auth.logout()
    assert provider.status == AccountStatus.APPROVED

    # 3. The provider creates the program, uploads the PDF and submits.
    assert auth.login("orlova@robotech.example", PASSWORD).headers["Location"].endswith("/provider")
    created = auth.post("/programs/new", program_card(municipality.id), token_from="/programs/new")
    program_id = int(created.headers["Location"].rsplit("/", 1)[1])
    assert upload_pdf(auth, program_id, MINIMAL_PDF, "Программа.pdf").status_code == 302
    assert auth.post(f"/programs/{program_id}/submit").status_code == 302
    program = db.session.get(Program, program_id)
    assert program.state == ReviewState.SUBMITTED
    auth.logout()

    # 4. The coordinator returns it with a reason.
    auth.login(coordinator)
    assert "Робототехника: первые шаги" in client.get("/screening").get_data(as_text=True)
    reason = "Учебный план не согласован по часам"
    assert auth.post(f"/programs/{program_id}/return", {"reason": reason}).status_code == 302
    auth.logout()

    # 5. The provider reads the reason, fixes the card and the document, resubmits.
    auth.login("orlova@robotech.example", PASSWORD)
    assert reason in client.get(f"/programs/{program_id}").get_data(as_text=True)
    fixed = auth.post(
        f"/programs/{program_id}/edit",
        program_card(municipality.id, total_hours="108"),
        token_from=f"/programs/{program_id}/edit",
    )
    assert fixed.status_code == 302
    revised_pdf = MINIMAL_PDF.replace(b"(Program text)", b"(Program text v2)").replace(
        b"/Length 44", b"/Length 47"
    )
    assert upload_pdf(auth, program_id, revised_pdf, "Программа v2.pdf").status_code == 302
    assert auth.post(f"/programs/{program_id}/submit").status_code == 302
    auth.logout()

    # 6. The coordinator accepts it into expertise.
    auth.login(coordinator)
    assert auth.post(f"/programs/{program_id}/accept").status_code == 302
    db.session.refresh(program)
    assert program.state == ReviewState.IN_REVIEW

    versions = (
        db.session.execute(
            select(ProgramVersion)
            .where(ProgramVersion.program_id == program_id)
            .order_by(ProgramVersion.number)
        )
        .scalars()
        .all()
    )
    assert [(v.number, v.total_hours) for v in versions] == [(1, 72), (2, 108)]
    assert [v.documents[0].original_name for v in versions] == ["Программа.pdf", "Программа v2.pdf"]
    assert timeline_steps(client, program_id) == [
        "Submitted",
        "Returned for fixes",
        "Draft",
        "Submitted",
        "Under expert review",
    ]
