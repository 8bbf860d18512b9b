"""The whole snapshot's XLSX, built once per language by a job started at publication, is
what ``/registry.xlsx`` sends without a selection; a selection is still built on request."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook
from sqlalchemy import select

from review_portal.extensions import db
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import EXPORT_REGISTRY
from review_portal.registry.exports import HEADER_ROW, prebuilt_path
from review_portal.registry.models import RegistrySnapshot
from tests import factories


def publish_through_the_page(client, auth, coordinator) -> RegistrySnapshot:
    auth.login(coordinator)
    html = client.get("/registry/pending?kind=certified").get_data(as_text=True)
    changes = re.search(r'name="changes" type="hidden" value="([0-9a-f]+)"', html).group(1)
    response = auth.post(
        "/registry/publish",
        {"kind": "certified", "changes": changes},
        token_from="/registry/pending",
    )
    assert response.status_code == 302
    auth.logout()
    return db.session.execute(select(RegistrySnapshot)).scalar_one()


def sheet_rows(data: bytes) -> list[tuple]:
    """The header and the data rows (below the title rows)."""
    sheet = load_workbook(io.BytesIO(data), read_only=True).active
    return list(sheet.iter_rows(min_row=HEADER_ROW, values_only=True))


def test_publication_builds_the_snapshot_files_and_the_export_sends_them(
    app, session, client, auth
):
    coordinator = factories.CoordinatorFactory()
    factories.admitted_program(coordinator=coordinator, title="Робототехника")
    factories.admitted_program(coordinator=coordinator, title="Вокальная студия")

    snapshot = publish_through_the_page(client, auth, coordinator)

    job = session.execute(select(Job).where(Job.kind == EXPORT_REGISTRY)).scalar_one()
    assert job.status == JobStatus.DONE, job.error
    assert job.result["snapshot_id"] == snapshot.id
    assert {lang: f["rows"] for lang, f in job.result["files"].items()} == {"ru": 2, "en": 2}
    with app.test_request_context():
        russian = prebuilt_path(snapshot, "ru").read_bytes()
        english = prebuilt_path(snapshot, "en").read_bytes()

    whole = client.get("/registry.xlsx")
    assert whole.status_code == 200
    assert whole.data == russian
    header, *rows = sheet_rows(whole.data)
    assert header[0] == "Реестровый номер"
    assert sorted(row[1] for row in rows) == ["Вокальная студия", "Робототехника"]

    with client.session_transaction() as browser_session:
        browser_session["locale"] = "en"
    assert client.get("/registry.xlsx").data == english
    assert sheet_rows(english)[0][0] == "Registry number"


def test_a_selection_is_built_on_request(app, session, client, auth):
    coordinator = factories.CoordinatorFactory()
    factories.admitted_program(coordinator=coordinator, title="Робототехника")
    factories.admitted_program(coordinator=coordinator, title="Вокальная студия")
    snapshot = publish_through_the_page(client, auth, coordinator)

    selected = client.get("/registry.xlsx?q=Вокальная")

    assert selected.status_code == 200
    with app.test_request_context():
        assert selected.data != prebuilt_path(snapshot, "ru").read_bytes()
    assert [row[1] for row in sheet_rows(selected.data)[1:]] == ["Вокальная студия"]


def test_without_the_built_file_the_whole_export_is_built_on_request(app, session, client):
    coordinator = factories.CoordinatorFactory()
    factories.admitted_program(coordinator=coordinator, title="Робототехника")
    from review_portal.registry.services import publish_registry

    snapshot = publish_registry("certified", coordinator)
    with app.test_request_context():
        assert not prebuilt_path(snapshot, "ru").exists()

    response = client.get("/registry.xlsx")

    assert [row[1] for row in sheet_rows(response.data)[1:]] == ["Робототехника"]


def test_the_command_builds_the_files_an_upgrade_retired(app, session, client, auth):
    """After an upgrade that changed the layout the files of the latest publications are
    missing: ``flask registry-exports`` builds them (and only those), the export sends them."""
    coordinator = factories.CoordinatorFactory()
    factories.admitted_program(coordinator=coordinator, title="Робототехника")
    snapshot = publish_through_the_page(client, auth, coordinator)
    with app.test_request_context():
        russian, english = prebuilt_path(snapshot, "ru"), prebuilt_path(snapshot, "en")
    russian.unlink()
    kept = english.stat().st_mtime_ns
    result = app.test_cli_runner().invoke(args=["registry-exports"])
    assert result.exit_code == 0, result.output
    assert "Registry XLSX files built: 1." in result.output
    assert english.stat().st_mtime_ns == kept
    assert client.get("/registry.xlsx").data == russian.read_bytes()
    assert sheet_rows(russian.read_bytes())[1][1] == "Робототехника"
