"""The registry's web pages: the public registry (filters, paging, past publications, bad
input, conditional requests), the history and differences, pending changes and publication,
the municipal registry and the exclusion of a program."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from review_portal.enums import (
    Direction,
    RegistryEntryStatus,
    RegistryKind,
)
from review_portal.extensions import db
from review_portal.registry import routes as registry_routes
from review_portal.registry.models import RegistrySnapshot, RegistrySnapshotItem
from review_portal.registry.services import exclude_program, publish_registry
from review_portal.workflow import ReviewState
from tests import factories

CERTIFIED = RegistryKind.CERTIFIED


@pytest.fixture(autouse=True)
def _english(english):
    pass


@pytest.fixture
def coordinator(session):
    return factories.CoordinatorFactory()


def admit(coordinator, **fields):
    """An admitted program with its pending entry (see ``factories.admitted_program``)."""
    return factories.admitted_program(coordinator=coordinator, **fields)


def publish(coordinator, kind=CERTIFIED) -> RegistrySnapshot:
    return publish_registry(kind, coordinator)


def page_of(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def snapshot_count(kind=CERTIFIED) -> int:
    return db.session.execute(
        select(func.count()).select_from(RegistrySnapshot).where(RegistrySnapshot.kind == kind)
    ).scalar_one()


@contextmanager
def counting_statements():
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


# --- the public registry ----------------------------------------------------------------


def test_registry_unpublished_says_so_and_hides_pending(client, coordinator):
    program, _, _ = admit(coordinator, title="Юный программист")
    html = page_of(client, "/registry")
    assert "The registry has not been published yet" in html
    assert "Юный программист" not in html
    assert 'id="entries"' not in html
    publish(coordinator)
    assert "Юный программист" in page_of(client, "/registry")
    html = page_of(client, "/registry?kind=significant")
    assert "The registry has not been published yet" in html
    assert "Юный программист" not in html


def test_registry_nav_link_for_everyone(client):
    html = page_of(client, "/")
    assert 'id="nav-registry"' in html
    assert 'href="/registry"' in html


def test_registry_lists_the_published_entries(client, coordinator):
    first, first_conclusion, first_entry = admit(coordinator, title="Шахматная школа")
    second, second_conclusion, second_entry = admit(coordinator, title="Юные астрономы")
    snapshot = publish(coordinator)
    html = page_of(client, "/registry")
    assert "Publication № 1 of" in html
    assert "2 programs found" in html
    for program, conclusion, entry in (
        (first, first_conclusion, first_entry),
        (second, second_conclusion, second_entry),
    ):
        assert program.title in html
        assert entry.registry_number in html
        assert program.organization.short_name in html
        assert f'href="/verify/{conclusion.number}"' in html
    assert "85&nbsp;%" in html
    assert snapshot.entry_count == 2
    # The exports of the same selection.
    assert 'href="/registry.csv?kind=certified"' in html
    assert 'href="/registry.xlsx?kind=certified"' in html


def test_registry_pending_entries_never_public(client, coordinator):
    admit(coordinator, title="Опубликованная программа")
    snapshot = publish(coordinator)
    admit(coordinator, title="Ещё не опубликованная")
    for url in ("/registry", f"/registry?snapshot={snapshot.id}", "/registry?q=опубликованная"):
        html = page_of(client, url)
        assert "Опубликованная программа" in html
        assert "Ещё не опубликованная" not in html


def test_registry_filters_combine(client, coordinator):
    here, there = factories.MunicipalityFactory(), factories.MunicipalityFactory()
    org_here = factories.OrganizationFactory(municipality=here)
    org_there = factories.OrganizationFactory(municipality=there)
    common = {"age_min": 7, "age_max": 11, "adapted_for_disabilities": True}
    admit(coordinator, title="Шахматы для всех", organization=org_here, **common)
    admit(coordinator, title="Шахматы в другом округе", organization=org_there, **common)
    admit(
        coordinator,
        title="Шахматы для старших",
        organization=org_here,
        age_min=12,
        age_max=17,
        adapted_for_disabilities=True,
    )
    admit(
        coordinator,
        title="Шахматы без адаптации",
        organization=org_here,
        age_min=7,
        age_max=11,
        adapted_for_disabilities=False,
    )
    admit(coordinator, title="Рисование", organization=org_here, **common)
    publish(coordinator)
    html = page_of(client, f"/registry?q=ШАХМАТЫ&municipality={here.id}&age=9&ovz=1")
    assert "1 program found" in html
    assert "Шахматы для всех" in html
    for other in ("другом округе", "для старших", "без адаптации", "Рисование"):
        assert other not in html
    # The age bounds are inclusive.
    html = page_of(client, f"/registry?municipality={here.id}&age=11&ovz=1&q=шахматы")
    assert "Шахматы для всех" in html and "для старших" not in html
    # Export links carry the same selection.
    assert (
        f"/registry.csv?q=%D0%A8%D0%90%D0%A5%D0%9C%D0%90%D0%A2%D0%AB&amp;municipality={here.id}"
        in (page_of(client, f"/registry?q=ШАХМАТЫ&municipality={here.id}"))
    )


def test_registry_pagination_keeps_the_filters(client, coordinator):
    for n in range(3):
        admit(coordinator, title=f"Живопись {n}", direction=Direction.ARTS)
    admit(coordinator, title="Робототехника", direction=Direction.TECHNICAL)
    publish(coordinator)
    html = page_of(client, "/registry?direction=arts&per_page=2&sort=title")
    assert "3 programs found" in html
    assert "Живопись 0" in html and "Живопись 1" in html and "Живопись 2" not in html
    assert re.search(
        r'<li class="page-item active" aria-current="page"><span class="page-link">1<', html
    )
    links = re.findall(r'href="(/registry\?[^"]*(?:\?|&amp;)page=2[^"]*)"', html)
    assert links
    following = links[0].replace("&amp;", "&")
    for arg in ("direction=arts", "per_page=2", "sort=title", "kind=certified"):
        assert arg in following
    html = page_of(client, following)
    assert "Живопись 2" in html
    assert "Живопись 0" not in html and "Робототехника" not in html


def test_registry_past_snapshot(client, coordinator):
    admit(coordinator, title="Первая программа")
    old = publish(coordinator)
    admit(coordinator, title="Вторая программа")
    new = publish(coordinator)
    # A publication of another registry than the one asked for: none (as in the exports).
    page_of(client, f"/registry?snapshot={old.id}&kind=significant", status=404)
    html = page_of(client, f"/registry?snapshot={old.id}")
    assert "You are viewing publication № 1 of" in html
    assert "Первая программа" in html and "Вторая программа" not in html
    assert re.search(r'class="nav-link active" aria-current="page"\s+id="kind-certified"', html)
    html = page_of(client, "/registry")
    assert f"Publication № {new.number} of" in html
    assert "Первая программа" in html and "Вторая программа" in html
    assert 'id="past-notice"' not in html
    page_of(client, "/registry?snapshot=987654", status=404)


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("age=abc", "age", "Not a valid integer value."),
        ("age=40", "age", "Enter an age from 3 to 18 years."),
        ("direction=bogus", "direction", "Not a valid choice."),
    ],
)
def test_registry_bad_input_is_400(client, coordinator, query, field, message):
    admit(coordinator, title="Программа на месте")
    publish(coordinator)
    html = page_of(client, f"/registry?{query}", status=400)
    error = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', html)
    assert error and message in error.group(1)
    assert 'id="entries"' not in html
    assert "Программа на месте" not in html


def test_registry_conditional_requests(client, coordinator):
    admit(coordinator, title="Кешируемая программа")
    publish(coordinator)
    first = client.get("/registry?sort=title")
    assert first.status_code == 200
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert "no-cache" in first.headers["Cache-Control"]
    again = client.get("/registry?sort=title", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert "private" in first.headers["Cache-Control"]
    # The page also carries the session's form token: a date alone cannot tell it is current.
    since = client.get("/registry?sort=title", headers={"If-Modified-Since": modified})
    assert since.status_code == 200
    # Another selection, another language or a new publication: the page again.
    other = client.get("/registry?sort=number", headers={"If-None-Match": etag})
    assert other.status_code == 200
    with client.session_transaction() as browser_session:
        browser_session["locale"] = "ru"
    assert client.get("/registry?sort=title", headers={"If-None-Match": etag}).status_code == 200
    with client.session_transaction() as browser_session:
        browser_session["locale"] = "en"
    admit(coordinator, title="Новая программа")
    publish(coordinator)
    fresh = client.get("/registry?sort=title", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert "Новая программа" in fresh.get_data(as_text=True)


def test_registry_page_reads_a_fixed_number_of_statements(client, coordinator):
    for n in range(6):
        admit(coordinator, title=f"Программа {n}")
    publish(coordinator)

    def statements(url):
        assert client.get(url).status_code == 200
        db.session.expire_all()
        with counting_statements() as seen:
            html = page_of(client, url)
        return len(seen), html.count('class="conclusion-link"')

    few = statements("/registry?per_page=2")
    many = statements("/registry?per_page=6")
    assert few[1] == 2 and many[1] == 6
    assert few[0] == many[0]


# --- history and differences ------------------------------------------------------------


def test_snapshots_history_and_diff(client, coordinator, monkeypatch):
    _, _, kept_entry = admit(coordinator, title="Остаётся")
    gone, _, _ = admit(coordinator, title="Уходит")
    old = publish(coordinator)
    exclude_program(gone.current_review, coordinator, "Нарушены условия")
    admit(coordinator, title="Приходит")
    new = publish(coordinator)
    # A changed row, as a newer conclusion would make it.
    db.session.execute(
        sa.update(RegistrySnapshotItem)
        .where(
            RegistrySnapshotItem.snapshot_id == new.id,
            RegistrySnapshotItem.entry_id == kept_entry.id,
        )
        .values(title="Остаётся (новая редакция)", total_hours=144)
    )
    html = page_of(client, "/registry/snapshots")
    assert f'href="/registry?snapshot={old.id}"' in html
    assert f'href="/registry/diff?from={old.id}&amp;to={new.id}"' in html
    assert "First publication" in html

    html = page_of(client, f"/registry/diff?from={old.id}&to={new.id}")
    added = re.search(r'id="added".*?</section>', html, re.S).group(0)
    removed = re.search(r'id="removed".*?</section>', html, re.S).group(0)
    changed = re.search(r'id="changed".*?</section>', html, re.S).group(0)
    assert "Приходит" in added and "Уходит" not in added
    assert "Уходит" in removed
    assert "Остаётся (новая редакция)" in changed
    assert "<del>Остаётся</del> → <ins>Остаётся (новая редакция)</ins>" in changed
    assert "Hours" in changed and "<del>72</del> → <ins>144</ins>" in changed
    assert kept_entry.registry_number in changed

    # Each list is cut at the limit, with a note.
    monkeypatch.setattr(registry_routes, "DIFF_LIMIT", 1)
    reverse = page_of(client, f"/registry/diff?from={new.id}&to={old.id}")
    assert "Уходит" in reverse and 'id="added-cut"' not in reverse
    admit(coordinator, title="Ещё одна")
    newest = publish(coordinator)
    cut = page_of(client, f"/registry/diff?from={old.id}&to={newest.id}")
    assert "Only the first 1 of 2 are shown." in cut


def test_diff_refuses_bad_requests(client, coordinator):
    admit(coordinator)
    certified = publish(coordinator)
    other = RegistrySnapshot(
        kind=RegistryKind.SIGNIFICANT, number=1, published_by_id=coordinator.id
    )
    db.session.add(other)
    db.session.flush()
    html = page_of(client, "/registry/diff", status=400)
    assert "Choose both publications to compare." in html
    html = page_of(client, f"/registry/diff?from=abc&to={certified.id}", status=400)
    assert "A publication is identified by its number in the history." in html
    html = page_of(client, f"/registry/diff?from={certified.id}&to={other.id}", status=400)
    assert "Only publications of the same registry can be compared." in html
    page_of(client, f"/registry/diff?from={certified.id}&to=987654", status=404)


# --- pending changes and publication ----------------------------------------------------


def test_pending_changes_by_role(client, auth, coordinator):
    here = factories.MunicipalityFactory()
    org_here = factories.OrganizationFactory(municipality=here)
    admit(coordinator, title="Здешняя программа", organization=org_here)
    admit(coordinator, title="Чужая программа")
    assert client.get("/registry/pending").status_code == 302

    for user in (factories.CoordinatorFactory(), factories.AdminFactory()):
        auth.login(user)
        html = page_of(client, "/registry/pending?kind=certified")
        assert "Здешняя программа" in html and "Чужая программа" in html
        assert 'id="publish-form"' in html
        assert "assigned at publication" in html
        auth.logout()

    auth.login(factories.MunicipalViewerFactory(municipality=here))
    html = page_of(client, "/registry/pending")
    assert "Здешняя программа" in html and "Чужая программа" not in html
    assert 'id="publish-form"' not in html
    auth.logout()

    for user in (factories.ApplicantFactory(organization=org_here), factories.ExpertUserFactory()):
        auth.login(user)
        assert client.get("/registry/pending").status_code == 403
        auth.logout()


def publish_form_data(client) -> dict:
    """What the publish button of the (already open) pending page sends."""
    html = page_of(client, "/registry/pending?kind=certified")
    changes = re.search(r'name="changes" type="hidden" value="([0-9a-f]+)"', html)
    return {"kind": "certified", "changes": changes.group(1)}


def test_publish_creates_the_next_snapshot(client, auth, coordinator):
    admit(coordinator, title="Первая")
    publish(coordinator)
    admit(coordinator, title="Вторая")
    auth.login(coordinator)
    data = publish_form_data(client)
    response = auth.post("/registry/publish", data, token_from="/registry/pending")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/registry/pending?kind=certified")
    snapshot = db.session.execute(
        select(RegistrySnapshot).where(
            RegistrySnapshot.kind == CERTIFIED, RegistrySnapshot.number == 2
        )
    ).scalar_one()
    assert snapshot.entry_count == 2
    html = page_of(client, "/registry/pending?kind=certified")
    assert "Publication № 2 of the registry “Certified programs” is out: 2 entries." in html
    assert "Nothing awaits publication." in html
    assert "Вторая" in page_of(client, "/registry")

    response = auth.post("/registry/publish", data, token_from="/registry/pending")
    assert response.status_code == 302
    assert snapshot_count() == 2
    html = page_of(client, "/registry/pending?kind=certified")
    assert "Nothing has changed since the last publication." in html


def test_publish_refuses_changes_that_were_not_reviewed(client, auth, coordinator):
    admit(coordinator, title="Прочитанная")
    auth.login(coordinator)
    data = publish_form_data(client)
    admit(coordinator, title="Появилась после прочтения")

    response = auth.post("/registry/publish", data, token_from="/registry/pending")

    assert response.status_code == 302
    assert snapshot_count() == 0
    html = page_of(client, "/registry/pending?kind=certified")
    assert "The pending changes have changed since you opened the page" in html
    # Without the fingerprint of what was read, nothing is published either.
    response = auth.post("/registry/publish", {"kind": "certified"}, token_from="/registry/pending")
    assert response.status_code == 302 and snapshot_count() == 0
    assert "Read the pending changes, then publish them" in page_of(client, "/registry/pending")

    response = auth.post("/registry/publish", publish_form_data(client), token_from="/registry")
    assert response.status_code == 302 and snapshot_count() == 1


def test_publish_is_for_staff_only(client, auth, coordinator):
    admit(coordinator)
    viewer = factories.MunicipalViewerFactory()
    auth.login(viewer)
    response = auth.post("/registry/publish", {"kind": "certified"}, token_from="/registry")
    assert response.status_code == 403
    auth.logout()
    response = auth.post("/registry/publish", {"kind": "certified"}, token_from="/registry")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert snapshot_count() == 0


# --- the municipal registry -------------------------------------------------------------


def test_municipal_registry_shows_only_the_own_municipality(client, auth, coordinator):
    here, there = factories.MunicipalityFactory(), factories.MunicipalityFactory()
    org_here = factories.OrganizationFactory(municipality=here)
    org_there = factories.OrganizationFactory(municipality=there)
    admit(coordinator, title="Наша опубликованная", organization=org_here)
    admit(coordinator, title="Их опубликованная", organization=org_there)
    publish(coordinator)
    admit(coordinator, title="Наша ожидающая", organization=org_here)
    admit(coordinator, title="Их ожидающая", organization=org_there)
    admit(coordinator, title="Их вторая ожидающая", organization=org_there)

    assert client.get("/registry/municipal").status_code == 302
    auth.login(factories.MunicipalViewerFactory(municipality=here))
    page_of(client, "/registry/municipal?municipality=bogus")  # ignored, not refused
    html = page_of(client, f"/registry/municipal?municipality={there.id}")
    assert "Наша опубликованная" in html
    assert "Их опубликованная" not in html
    assert "ожидающая" not in html.split('id="entries"')[1]
    assert re.search(r'id="pending-added">1<', html)
    assert 'href="/registry/pending?kind=certified"' in html
    assert 'href="/registry/municipal.csv?kind=certified"' in html
    first = client.get("/registry/municipal")
    assert "private" in first.headers["Cache-Control"]
    again = client.get("/registry/municipal", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert "private" in again.headers["Cache-Control"]
    assert "public" not in again.headers["Cache-Control"]
    # A new pending change in the municipality changes the page (its summary).
    admit(coordinator, title="Наша вторая ожидающая", organization=org_here)
    changed = client.get("/registry/municipal", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert re.search(r'id="pending-added">2<', changed.get_data(as_text=True))
    auth.logout()

    auth.login(coordinator)
    assert client.get("/registry/municipal").status_code == 403


# --- exclusion --------------------------------------------------------------------------


def test_exclusion_needs_a_reason_then_leaves_at_the_next_publication(client, auth, coordinator):
    program, _, entry = admit(coordinator, title="Исключаемая программа")
    publish(coordinator)
    url = f"/programs/{program.id}/exclude"
    auth.login(coordinator)
    assert 'id="exclude-link"' in page_of(client, f"/programs/{program.id}")
    assert "Исключаемая программа" in page_of(client, url)

    response = auth.post(url, {"reason": "  "}, token_from=url)
    assert response.status_code == 400
    assert "This field is required." in response.get_data(as_text=True)
    db.session.expire_all()
    assert program.current_review.state == ReviewState.ADMITTED

    response = auth.post(url, {"reason": "Организация прекратила деятельность"}, token_from=url)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/programs/{program.id}")
    db.session.expire_all()
    assert program.current_review.state == ReviewState.EXCLUDED
    assert entry.status == RegistryEntryStatus.PENDING_REMOVAL
    assert 'id="exclude-link"' not in page_of(client, f"/programs/{program.id}")
    assert client.get(url).status_code == 403
    auth.logout()

    assert "Исключаемая программа" in page_of(client, "/registry")
    publish(coordinator)
    assert "Исключаемая программа" not in page_of(client, "/registry")


def test_exclusion_is_for_staff_only(client, auth, coordinator):
    program, _, _ = admit(coordinator)
    url = f"/programs/{program.id}/exclude"
    assert client.get(url).status_code == 302
    for user in (
        factories.ApplicantFactory(organization=program.organization),
        factories.MunicipalViewerFactory(municipality=program.municipality),
        factories.ExpertUserFactory(),
    ):
        auth.login(user)
        assert client.get(url).status_code == 403
        auth.logout()
    auth.login(factories.AdminFactory())
    assert client.get(url).status_code == 200
    assert client.get("/programs/987654/exclude").status_code == 404
