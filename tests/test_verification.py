"""Public verification of conclusions: the page and its JSON by number, the stored PDF and who
may download it, the check of an uploaded copy, revocation by a coordinator, and the
conclusion block of the decision and result pages.

Every conclusion here is issued through the real decision service (a WeasyPrint render of
about 0.3 s), so the file keeps the number of decided reviews small.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from review_portal.audit.models import AuditEvent
from review_portal.conclusions.models import Conclusion
from review_portal.conclusions.permissions import (
    can_download_conclusion,
    can_revoke_conclusion,
    is_in_published_registry,
)
from review_portal.conclusions.services import stored_pdf
from review_portal.enums import ConclusionStatus, Decision, RegistryKind
from review_portal.extensions import db
from review_portal.registry.services import exclude_program, publish_registry
from review_portal.reviews.services import decide_review
from review_portal.workflow import ReviewState
from tests import factories

JSON = {"Accept": "application/json"}


@pytest.fixture(autouse=True)
def _english(english):
    pass


@pytest.fixture
def coordinator(session):
    return factories.CoordinatorFactory(full_name="Координатор Выдавший Заключение")


def decide(review, coordinator) -> Conclusion:
    """Confirm the computed decision of ``review``; its new conclusion, committed (a route
    that rolls back must not take the test's rows with it)."""
    decide_review(review, coordinator, review.computed_decision)
    db.session.commit()
    # issue_conclusion adds the row by its review id: the loaded collection is stale.
    db.session.expire(review, ["conclusions"])
    return review.conclusions[-1]


def decided(coordinator, **program_fields):
    """A review scored 16 and 15 of 20 (admitted) and decided: ``(review, assignments,
    conclusion)``."""
    review, assignments = factories.scored_review(
        factories.with_total(16), factories.with_total(15), **program_fields
    )
    assert review.state == ReviewState.AWAITING_DECISION
    return review, assignments, decide(review, coordinator)


def revoke(conclusion, coordinator, reason="Ошибка в данных программы.") -> None:
    from review_portal.conclusions.services import revoke_conclusion

    revoke_conclusion(conclusion, coordinator, reason)
    db.session.commit()


def local_date(moment) -> date:
    """The date of ``moment`` in the portal's default time zone (as documents print it)."""
    return moment.astimezone(ZoneInfo("Europe/Moscow")).date()


def part(page: str, element_id: str, end: str = "</section>") -> str:
    """The HTML from the element with ``element_id`` to the next ``end``."""
    return page.split(f'id="{element_id}"', 1)[1].split(end, 1)[0]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def fresh(conclusion) -> Conclusion:
    db.session.expire_all()
    return db.session.get(Conclusion, conclusion.id)


def publish(coordinator):
    """Publish the certified registry through the real service."""
    snapshot = publish_registry(RegistryKind.CERTIFIED, coordinator)
    db.session.commit()
    return snapshot


# --- the verification page -----------------------------------------------------------------


def test_verify_page_valid_conclusion_shows_public_facts_only(client, session, coordinator):
    review, assignments, conclusion = decided(coordinator, title="Юные конструкторы")
    organization = review.program.organization

    response = client.get(f"/verify/{conclusion.number}")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "<" not in title and f"Verification of conclusion № {conclusion.number}" in title
    assert "The conclusion is valid: it is in force." in part(page, "status")
    assert "conclusion-status-valid" in part(page, "status")
    assert part(page, "program-title", "</dd>") == ">Юные конструкторы"
    assert organization.full_name in part(page, "organization", "</dd>")
    assert "Recommended for inclusion in the registry" in part(page, "decision", "</dd>")
    issued = local_date(conclusion.issued_at)
    assert part(page, "issued-on", "</dd>").endswith(issued.strftime("%d.%m.%Y"))
    assert f">{conclusion.content_sha256}</code>" in page
    assert f">{conclusion.sha256}</code>" in page
    assert len(conclusion.content_sha256) == 64 and conclusion.content_sha256 != conclusion.sha256
    # Anonymous: no download link, a word on who may download and a way to log in.
    assert 'id="download"' not in page
    assert "available only to the provider organization" in part(page, "document")
    assert f'href="/login?next=/verify/{conclusion.number}"' in page
    # Nothing private: neither the experts' nor the issuing coordinator's names.
    for assignment in assignments:
        assert assignment.expert.full_name not in page
        assert assignment.expert.email not in page
    assert coordinator.full_name not in page
    assert "Эксперт-Тайный" not in page


def test_verify_page_revoked_then_superseded_says_both(client, session, coordinator):
    review, _, first = decided(coordinator)
    revoke(first, coordinator, reason="Неверно указан объём часов.")

    page = client.get(f"/verify/{first.number}").get_data(as_text=True)
    status = part(page, "status")
    assert "conclusion-status-revoked" in status
    assert "The conclusion was revoked on" in status
    assert "Неверно указан объём часов." in status
    assert "Superseded by" not in status
    data = client.get(f"/verify/{first.number}", headers=JSON).get_json()
    assert data["status"] == "revoked" and data["valid"] is False
    assert data["revoke_reason"] == "Неверно указан объём часов."
    assert data["revoked_at"] is not None and data["superseded_by"] is None

    second = decide(review, coordinator)
    assert second.number != first.number

    page = client.get(f"/verify/{first.number}").get_data(as_text=True)
    status = part(page, "status")
    assert "The conclusion was revoked on" in status
    assert "Неверно указан объём часов." in status
    assert "Superseded by conclusion" in status
    assert f'href="/verify/{second.number}" id="newer-link">№ {second.number}</a>' in status
    data = client.get(f"/verify/{first.number}", headers=JSON).get_json()
    assert data["status"] == "revoked" and data["superseded_by"] == second.number

    page = client.get(f"/verify/{second.number}").get_data(as_text=True)
    assert "The conclusion is valid: it is in force." in part(page, "status")


def test_verify_page_superseded_shows_the_newer_number(client, session, coordinator):
    """A conclusion replaced without a revocation (the service supersedes every earlier
    conclusion of the review that is still standing when it issues a new one)."""
    from review_portal.conclusions.services import issue_conclusion

    review, _, first = decided(coordinator)
    second = issue_conclusion(review, coordinator)
    db.session.commit()
    assert fresh(first).status == ConclusionStatus.SUPERSEDED

    page = client.get(f"/verify/{first.number}").get_data(as_text=True)
    status = part(page, "status")
    assert "conclusion-status-superseded" in status
    assert f'href="/verify/{second.number}" id="newer-link">№ {second.number}</a>' in status
    assert "revoked" not in text_of(status)
    data = client.get(f"/verify/{first.number}", headers=JSON).get_json()
    assert data["status"] == "superseded"
    assert data["valid"] is False
    assert data["superseded_by"] == second.number


def test_verify_json_has_exactly_the_public_fields(client, session, coordinator):
    review, _, conclusion = decided(coordinator, title="Шахматы")

    response = client.get(f"/verify/{conclusion.number}", headers=JSON)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    issued = local_date(conclusion.issued_at).isoformat()
    assert response.get_json() == {
        "number": conclusion.number,
        "status": "valid",
        "valid": True,
        "program": {"title": "Шахматы", "organization": review.program.organization.full_name},
        "decision": "admitted",
        "decision_words": "рекомендована к включению в реестр",
        "issued_on": issued,
        "sha256": conclusion.sha256,
        "content_sha256": conclusion.content_sha256,
        "superseded_by": None,
        "revoked_at": None,
        "revoke_reason": None,
    }
    # A browser's usual Accept header still gets the page.
    html = client.get(
        f"/verify/{conclusion.number}",
        headers={"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
    )
    assert html.mimetype == "text/html"


def test_verify_unknown_number_is_404(client, session):
    response = client.get("/verify/67-2026-99999")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "The portal has not issued any conclusion with the number 67-2026-99999." in page
    assert "<title>Conclusion not found" in page

    response = client.get("/verify/67-2026-99999", headers=JSON)
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found"}

    assert client.get("/verify/67-2026-99999.pdf").status_code == 404
    # User text is escaped, never markup.
    page = client.get("/verify/<b>x</b>").get_data(as_text=True)
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


# --- the PDF -------------------------------------------------------------------------------


def test_pdf_download_returns_the_stored_bytes(client, auth, session, coordinator):
    review, _, conclusion = decided(coordinator)
    auth.login(coordinator)

    first = client.get(f"/verify/{conclusion.number}.pdf")
    second = client.get(f"/verify/{conclusion.number}.pdf")

    assert first.status_code == second.status_code == 200
    assert first.data == second.data == stored_pdf(conclusion)
    assert first.data.startswith(b"%PDF-")
    assert hashlib.sha256(first.data).hexdigest() == conclusion.sha256
    assert len(first.data) == conclusion.size
    assert first.mimetype == "application/pdf"
    assert (
        first.headers["Content-Disposition"]
        == f'inline; filename="conclusion-{conclusion.number}.pdf"'
    )
    assert first.headers["ETag"] == f'"{conclusion.sha256}"'
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    # The browser's cached copy is confirmed by its hash.
    cached = client.get(
        f"/verify/{conclusion.number}.pdf", headers={"If-None-Match": f'"{conclusion.sha256}"'}
    )
    assert cached.status_code == 304 and cached.data == b""


def test_pdf_download_only_for_those_entitled(client, auth, session, coordinator):
    review, assignments, conclusion = decided(coordinator)
    program = review.program
    other_municipality = factories.MunicipalityFactory()
    users = {
        "provider": factories.ApplicantFactory(organization=program.organization),
        "applicant of another organization": factories.ApplicantFactory(),
        "municipal viewer of the municipality": factories.MunicipalViewerFactory(
            municipality=program.municipality
        ),
        "municipal viewer of another municipality": factories.MunicipalViewerFactory(
            municipality=other_municipality
        ),
        "expert of the review": assignments[0].expert,
        "another expert": factories.expert(),
        "coordinator": coordinator,
        "admin": factories.AdminFactory(),
    }
    db.session.commit()
    url = f"/verify/{conclusion.number}.pdf"

    outcomes = {"anonymous": client.get(url).status_code}
    for who, user in users.items():
        auth.login(user)
        outcomes[who] = client.get(url).status_code
        auth.logout()

    assert outcomes == {
        "anonymous": 403,
        "provider": 200,
        "applicant of another organization": 403,
        "municipal viewer of the municipality": 200,
        "municipal viewer of another municipality": 403,
        "expert of the review": 200,
        "another expert": 403,
        "coordinator": 200,
        "admin": 200,
    }
    page = client.get(url).get_data(as_text=True)
    assert "available only to the provider organization and the regional model center" in page
    assert f'href="/login?next=/verify/{conclusion.number}.pdf"' in page
    assert f'href="/verify/{conclusion.number}"' in page


def test_pdf_public_when_the_program_is_in_the_published_registry(client, session, coordinator):
    review, _, conclusion = decided(coordinator)
    program = review.program
    url = f"/verify/{conclusion.number}.pdf"
    assert not is_in_published_registry(program)
    assert client.get(url).status_code == 403

    publish(coordinator)

    assert is_in_published_registry(program)
    response = client.get(url)
    assert response.status_code == 200
    assert response.data == stored_pdf(conclusion)
    page = client.get(f"/verify/{conclusion.number}").get_data(as_text=True)
    assert f'id="download" href="/verify/{conclusion.number}.pdf"' in page

    # A newer snapshot without the program (excluded): it is no longer published.
    exclude_program(review, coordinator, "Программа больше не реализуется.")
    publish(coordinator)
    assert not is_in_published_registry(program)
    assert client.get(url).status_code == 403


# --- checking an uploaded copy -------------------------------------------------------------


def upload(auth, content: bytes | None, name: str = "conclusion.pdf"):
    data = {} if content is None else {"file": (io.BytesIO(content), name)}
    return auth.post("/verify", data=data, token_from="/verify", content_type="multipart/form-data")


def test_upload_of_the_stored_pdf_is_authentic(client, auth, session, coordinator):
    review, _, conclusion = decided(coordinator)
    pdf = stored_pdf(conclusion)

    response = upload(auth, pdf)
    assert response.status_code == 200
    result = part(response.get_data(as_text=True), "result")
    assert "Authentic" in result
    assert "The file is an authentic, unaltered copy of the expert conclusion" in result
    assert f'href="/verify/{conclusion.number}" id="result-link">№ {conclusion.number}' in result
    assert "The conclusion is valid: it is in force." in result

    altered = bytearray(pdf)
    altered[len(altered) // 2] ^= 0x01
    response = upload(auth, bytes(altered))
    assert response.status_code == 200
    result = part(response.get_data(as_text=True), "result")
    assert "Not authentic" in result
    assert "not an authentic copy of any conclusion issued by the portal" in result
    assert conclusion.number not in result

    response = upload(auth, b"%PDF-1.4 something else entirely", name="other.pdf")
    assert "Not authentic" in part(response.get_data(as_text=True), "result")

    # A revoked conclusion's file is authentic, but not in force.
    revoke(conclusion, coordinator, reason="Отозвано для проверки.")
    result = part(upload(auth, pdf).get_data(as_text=True), "result")
    assert "The document is authentic, but the conclusion is no longer in force." in result
    assert "Отозвано для проверки." in result


def test_upload_without_a_file_is_refused(client, auth, session):
    response = upload(auth, None)
    assert response.status_code == 422
    assert "Choose the PDF file to check." in response.get_data(as_text=True)
    assert 'id="result"' not in response.get_data(as_text=True)

    response = upload(auth, b"", name="empty.pdf")
    assert response.status_code == 422
    assert "The file is empty." in response.get_data(as_text=True)


def test_upload_larger_than_the_limit_is_refused(app, client, auth, session, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_UPLOAD_MB", 1)
    # Encoded here: the test client would spool a body this large to a temporary file it
    # never closes.
    boundary, body = encode_multipart(
        {
            "csrf_token": auth.token("/verify"),
            "file": FileStorage(io.BytesIO(b"%PDF-" + b"0" * (1024 * 1024)), "big.pdf"),
        }
    )
    response = client.post(
        "/verify", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 413
    assert "The file is larger than 1 MB." in response.get_data(as_text=True)


def test_upload_over_the_request_limit_is_refused_with_a_message(
    app, client, auth, session, monkeypatch
):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    response = upload(auth, b"%PDF-" + b"0" * 4096)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "The file is larger than 20 MB." in part(page, "upload-form", "</form>")


def test_check_page_finds_a_number(client, session):
    response = client.get("/verify")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<label class="form-label" for="number">' in page
    assert '<label class="form-label" for="file">' in page
    assert 'enctype="multipart/form-data"' in page

    response = client.get("/verify", query_string={"number": " № 67-2026-00012 "})
    assert response.status_code == 302
    assert response.headers["Location"] == "/verify/67-2026-00012"


# --- revocation ----------------------------------------------------------------------------


def test_revoke_without_a_reason_changes_nothing(client, auth, session, coordinator):
    review, _, conclusion = decided(coordinator)
    auth.login(coordinator)

    response = auth.post(
        f"/conclusions/{conclusion.id}/revoke",
        data={"reason": "   "},
        token_from=f"/reviews/{review.id}/decision",
    )

    assert response.status_code == 422
    assert "A reason is required for this action." in part(
        response.get_data(as_text=True), f"revoke-form-{conclusion.id}", "</form>"
    )
    conclusion = fresh(conclusion)
    assert conclusion.status == ConclusionStatus.VALID
    assert conclusion.revoke_reason is None
    assert conclusion.review.state == ReviewState.ADMITTED
    assert conclusion.review.decision == Decision.ADMITTED
    assert (
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "conclusion.revoke")
        ).first()
        is None
    )


def test_revoke_with_a_reason_reopens_the_decision(client, auth, session, coordinator):
    review, _, conclusion = decided(coordinator)
    auth.login(coordinator)
    page = client.get(f"/reviews/{review.id}/decision").get_data(as_text=True)
    block = part(page, "conclusions")
    assert f'href="/verify/{conclusion.number}">№ {conclusion.number}</a>' in block
    assert f'href="/verify/{conclusion.number}.pdf"' in block
    assert f'action="/conclusions/{conclusion.id}/revoke"' in block

    response = auth.post(
        f"/conclusions/{conclusion.id}/revoke",
        data={"reason": "Программа подана не той организацией."},
        token_from=f"/reviews/{review.id}/decision",
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"/reviews/{review.id}/decision"
    conclusion = fresh(conclusion)
    assert conclusion.status == ConclusionStatus.REVOKED
    assert conclusion.revoke_reason == "Программа подана не той организацией."
    assert conclusion.revoked_by_id == coordinator.id
    assert conclusion.review.state == ReviewState.AWAITING_DECISION
    assert conclusion.review.decision is None
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "conclusion.revoke")
    ).scalar_one()
    assert event.object_id == str(conclusion.id)
    assert event.actor_id == coordinator.id
    assert event.after == {"status": "revoked", "reason": "Программа подана не той организацией."}

    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Conclusion № {conclusion.number} is revoked." in page
    block = part(page, "conclusions")
    assert "conclusion-status-revoked" in block
    assert "/revoke" not in block  # nothing left to revoke
    assert 'id="decision-form"' in page  # a new decision can be made
    assert not can_revoke_conclusion(coordinator, conclusion)
    # Revoking it again is refused.
    again = auth.post(
        f"/conclusions/{conclusion.id}/revoke",
        data={"reason": "Ещё раз."},
        token_from=f"/reviews/{review.id}/decision",
    )
    assert again.status_code == 403


def test_revoke_by_others_is_forbidden(client, auth, session, coordinator):
    review, assignments, conclusion = decided(coordinator)
    provider = factories.ApplicantFactory(organization=review.program.organization)
    db.session.commit()

    anonymous = auth.post(f"/conclusions/{conclusion.id}/revoke", data={"reason": "x"})
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/login")
    for user in (provider, assignments[0].expert):
        auth.login(user)
        response = auth.post(f"/conclusions/{conclusion.id}/revoke", data={"reason": "Причина."})
        assert response.status_code == 403
        auth.logout()
    assert fresh(conclusion).status == ConclusionStatus.VALID


# --- the conclusion block on the result page -----------------------------------------------


def test_result_page_lists_the_conclusions_for_the_provider(client, auth, session, coordinator):
    review, _, first = decided(coordinator)
    revoke(first, coordinator)
    second = decide(review, coordinator)
    provider = factories.ApplicantFactory(organization=review.program.organization)
    db.session.commit()
    auth.login(provider)

    page = client.get(f"/reviews/{review.id}/result").get_data(as_text=True)

    block = part(page, "conclusions")
    rows = re.findall(r'<tr id="conclusion-(\d+)"', block)
    assert rows == [str(second.id), str(first.id)]  # newest first
    assert f'href="/verify/{second.number}">№ {second.number}</a>' in block
    assert f'href="/verify/{second.number}.pdf"' in block
    assert f'href="/verify/{first.number}.pdf"' in block
    assert "conclusion-status-valid" in part(block, f"conclusion-{second.id}", "</tr>")
    first_row = part(block, f"conclusion-{first.id}", "</tr>")
    assert "conclusion-status-revoked" in first_row
    assert f"№ {second.number}" in first_row
    assert "/revoke" not in page  # the provider cannot revoke
    assert can_download_conclusion(provider, second)
