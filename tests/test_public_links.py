"""Absolute links never come from the request: every link the public answers print (the
registry API, a snapshot diff, the verification JSON, the CSV/XLSX exports, the OpenAPI
document) is built on ``PUBLIC_URL``, so a forged ``Host`` (or ``X-Forwarded-Host``) header
changes neither an answer nor its ``ETag``, and a shared cache cannot be made to hand out
verification links to another site."""

from __future__ import annotations

import io
import re
import zipfile
from types import SimpleNamespace

import pytest

from review_portal.enums import RegistryKind
from review_portal.registry.services import publish_registry
from tests.test_registry_exports import changes, later, registry  # noqa: F401 (fixtures)

#: The portal's configured public address: with a path, so that the links must carry it.
PUBLIC = "https://nok.rmc67.example/portal"
FOREIGN = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>;]+", re.IGNORECASE)


@pytest.fixture(autouse=True)
def public_url(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", PUBLIC)


@pytest.fixture
def published(registry, changes):  # noqa: F811 (fixtures imported above)
    """Two certified snapshots: the second adds, removes and changes entries."""
    second = later(publish_registry(RegistryKind.CERTIFIED, registry.coordinator))
    return SimpleNamespace(first=registry.snapshot, second=second)


#: The XML namespaces and relationship types of the file format: identifiers, not links.
FORMAT_IDS = re.compile(r'\s(?:xmlns(?::\w+)?|Type|xsi:schemaLocation)="[^"]*"')


#: When the workbook was written (its document properties): differs between two fetches
#: a second apart, and is no link.
WRITTEN_AT = re.compile(r"<dcterms:(created|modified)[^>]*>[^<]*</dcterms:\1>")


def xlsx_text(data: bytes) -> str:
    """Every part of the workbook, as text (cells, hyperlinks, relationship targets), but
    the moments it was written."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "\n".join(
            WRITTEN_AT.sub("", FORMAT_IDS.sub("", archive.read(name).decode("utf-8", "replace")))
            for name in archive.namelist()
            if name.endswith((".xml", ".rels"))
        )


def fetch(client, path: str, headers: dict):
    """An answer read to its end at once (exports are streamed: reading one later, after
    another request, would run it in the wrong request context)."""
    response = client.get(path, headers=headers)
    data = response.get_data()
    response.close()
    return SimpleNamespace(
        status=response.status_code,
        data=data,
        etag=response.headers.get("ETag"),
        cache_control=response.headers.get("Cache-Control"),
    )


def links(answer, path: str) -> list[str]:
    """The absolute URLs in an answer (in every part of an XLSX); the format's own
    identifiers are not links the portal prints."""
    text = xlsx_text(answer.data) if ".xlsx" in path else answer.data.decode("utf-8-sig")
    found = URL.findall(text)
    if "openapi.json" in path:
        found = [u for u in found if not u.startswith("https://json-schema.org/")]
    return found


def comparable(answer, path: str):
    """What must not depend on the Host: the body (an XLSX by its parts' text, as the zip's
    timestamps may differ) and the validators."""
    body = xlsx_text(answer.data) if ".xlsx" in path else answer.data
    return body, answer.etag, answer.cache_control


def paths(published, conclusion_number: str) -> list[tuple[str, dict]]:
    first, second = published.first, published.second
    return [
        ("/api/v1/registry?per_page=100", {}),
        ("/api/v1/registry?per_page=1", {}),
        (f"/api/v1/registry?snapshot={first.id}", {}),
        (f"/api/v1/registry/diff?from={first.id}&to={second.id}", {}),
        ("/api/v1/registry/snapshots", {}),
        ("/api/v1/openapi.json", {}),
        (f"/verify/{conclusion_number}", {"Accept": "application/json"}),
        ("/registry.csv", {}),
        ("/registry.xlsx", {}),
    ]


def test_links_and_validators_ignore_a_foreign_host(client, published):
    listed = client.get("/api/v1/registry?per_page=1").get_json()
    conclusion_number = listed["items"][0]["conclusion"]["number"]
    seen = []
    for path, headers in paths(published, conclusion_number):
        normal = fetch(client, path, headers)
        forged = fetch(client, path, headers | FOREIGN)
        assert normal.status == forged.status == 200, path
        for url in links(normal, path) + links(forged, path):
            assert url.startswith(PUBLIC + "/"), (path, url)
            assert "evil.example" not in url and "localhost" not in url, (path, url)
        seen += links(forged, path)
        assert comparable(forged, path) == comparable(normal, path), path
    # The answers do print links: the registry's verification and PDF links, the servers.
    assert f"{PUBLIC}/verify/{conclusion_number}" in seen
    assert f"{PUBLIC}/verify/{conclusion_number}.pdf" in seen
    assert f"{PUBLIC}/api/v1" in seen


def test_a_conditional_request_from_a_foreign_host_gets_the_real_links(client, published):
    """A shared cache keys the answer by its URL and revalidates it by its ETag: the answer
    to a foreign Host must be the real one, since the cache hands it to everyone."""
    forged = client.get("/api/v1/registry?per_page=1", headers=FOREIGN)
    item = forged.get_json()["items"][0]
    number = item["conclusion"]["number"]
    assert item["conclusion"]["verify_url"] == f"{PUBLIC}/verify/{number}"
    assert item["conclusion"]["pdf_url"] == f"{PUBLIC}/verify/{number}.pdf"
    etag = forged.headers["ETag"]
    again = client.get("/api/v1/registry?per_page=1", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_the_api_links_open_the_pages_they_name(client, published):
    """Under the configured address's path (``/portal``) the links name the portal's own
    verification page and PDF."""
    body = client.get("/api/v1/registry?per_page=1").get_json()
    conclusion = body["items"][0]["conclusion"]
    assert conclusion["verify_url"].startswith(PUBLIC + "/")
    assert client.get(conclusion["verify_url"].removeprefix(PUBLIC)).status_code == 200
    # The PDF link names the PDF route (the test's cheap conclusions have no stored PDF).
    assert conclusion["pdf_url"].startswith(PUBLIC + "/")
    adapter = client.application.url_map.bind("localhost")
    assert adapter.match(conclusion["pdf_url"].removeprefix(PUBLIC)) == (
        "conclusions.pdf",
        {"number": conclusion["number"]},
    )


def test_openapi_servers_are_the_public_address(client):
    document = client.get("/api/v1/openapi.json", headers=FOREIGN).get_json()
    assert document["servers"] == [{"url": f"{PUBLIC}/api/v1"}]
