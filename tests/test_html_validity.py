"""The main pages are valid HTML: the Nu HTML checker (``vnu.jar``) finds no error in them.

The pages are rendered by the test client over seeded data (a published registry, a scored
review, the home pages of each role), written to files and checked by one run of the checker
(one JVM start for all of them). The checker comes from npm (``tests/vnu``, installed by
``make test`` with ``npm ci``) and runs on the system's Java; without either the test skips
with the reason, unless ``REQUIRE_BROWSER=1`` (CI), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from review_portal.enums import RegistryKind
from review_portal.extensions import db
from review_portal.registry.models import RegistrySnapshotItem
from review_portal.registry.services import publish_registry
from review_portal.settings.services import set_setting
from tests import factories

VNU_JAR = Path(__file__).parent / "vnu" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


def checker_unavailable() -> str | None:
    if shutil.which("java") is None:
        return "no java on PATH (apt-get install default-jre-headless)"
    if not VNU_JAR.is_file():
        return f"no {VNU_JAR} (make vnu: npm ci in tests/vnu)"
    return None


@pytest.fixture
def checker() -> list[str]:
    reason = checker_unavailable()
    if reason is not None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but the HTML checker cannot run: {reason}")
        pytest.skip(f"HTML validity test skipped: {reason}")
    return ["java", "-Xss4m", "-jar", str(VNU_JAR), "--errors-only", "--format", "json"]


def seed():
    """What the pages show: a published registry, a review with its experts' sheets, the
    center's contacts, and one user of each role."""
    coordinator = factories.CoordinatorFactory()
    for key, value in {
        "center_name": "Региональный модельный центр",
        "center_address": "214000, г. Смоленск, ул. Ленина, д. 1",
        "center_phone": "+7 (4812) 00-00-00",
        "center_email": "rmc@rmc67.example",
    }.items():
        set_setting(key, value, coordinator)
    organization = factories.OrganizationFactory(
        address="214000, г. Смоленск, ул. Мира, д. 3",
        phone="+7 (4812) 11-22-33",
        website="https://center.example",
    )
    program, conclusion, entry = factories.admitted_program(
        coordinator=coordinator, organization=organization, adapted_for_disabilities=True
    )
    factories.admitted_program(coordinator=coordinator, title="Шахматы")
    snapshot = publish_registry(RegistryKind.CERTIFIED, coordinator)
    number = db.session.execute(
        select(RegistrySnapshotItem.registry_number).where(
            RegistrySnapshotItem.snapshot_id == snapshot.id,
            RegistrySnapshotItem.entry_id == entry.id,
        )
    ).scalar_one()
    review, assignments = factories.scored_review(
        factories.with_total(18), factories.with_total(17), submit=False
    )
    applicant = factories.ApplicantFactory(organization=organization)
    db.session.commit()
    return {
        "coordinator": coordinator,
        "expert": assignments[0].expert,
        "applicant": applicant,
        "registry_number": number,
        "conclusion_number": conclusion.number,
        "assignment_id": assignments[0].id,
        "program_id": program.id,
    }


def test_main_pages_have_no_html_errors(client, auth, checker, tmp_path):
    world = seed()
    pages = {
        "home": (None, "/"),
        "registry": (None, "/registry"),
        "registry-entry": (None, f"/registry/{quote(world['registry_number'])}"),
        "verify": (None, "/verify"),
        "verify-conclusion": (None, f"/verify/{world['conclusion_number']}"),
        "login": (None, "/login"),
        "coordinator-home": ("coordinator", "/coordinator"),
        "audit-log": ("coordinator", "/audit/"),
        "settings": ("coordinator", "/settings"),
        "registry-history": ("coordinator", "/registry/snapshots"),
        "expert-home": ("expert", "/expert"),
        "score-sheet": ("expert", f"/sheets/{world['assignment_id']}"),
        "provider-home": ("applicant", "/provider"),
        "program": ("applicant", f"/programs/{world['program_id']}"),
    }
    files: dict[str, str] = {}
    signed_in = None
    for name, (who, url) in pages.items():
        if who != signed_in:
            auth.logout()
            if who is not None:
                assert auth.login(world[who]).status_code == 302
            signed_in = who
        response = client.get(url)
        assert response.status_code == 200, (name, url, response.status_code)
        path = tmp_path / f"{name}.html"
        path.write_bytes(response.get_data())
        files[str(path)] = name

    result = subprocess.run(
        [*checker, *files], capture_output=True, text=True, timeout=300, check=False
    )
    # vnu writes its JSON report on stderr.
    report = json.loads(result.stderr or result.stdout)
    errors = [
        f"{files.get(m.get('url', '').removeprefix('file:'), m.get('url'))}:{m.get('lastLine')}: "
        f"{m.get('message')} [{m.get('extract', '').strip()}]"
        for m in report["messages"]
        if m.get("type") == "error" or m.get("subType") == "fatal"
    ]
    assert not errors, "\n".join(errors)
    assert result.returncode == 0, result.stderr[-2000:]
