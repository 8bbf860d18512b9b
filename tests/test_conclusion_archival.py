"""The numbered documents as archival PDFs: a new conclusion (several pages, after an
override) and a decision on an appeal, issued through the real services and read back.

Each is PDF/A-3b (XMP ``pdfaid``), tagged (structure tree, ``MarkInfo``, ``/Lang ru``), titled,
its XMP naming the number and the issuing center, every font embedded, an sRGB output
intent and a file identifier; the decision, its reasons, the head's name and the seal's
place share one page; the verification QR code is in the foot of every page; and the same
content renders to the same bytes.
"""

from __future__ import annotations

import io
from xml.etree.ElementTree import fromstring

import pypdf
import pytest

from review_portal.appeals import services as appeals
from review_portal.conclusions import render
from review_portal.enums import Decision
from tests import factories
from tests.test_appeals import REASONS, accepted, score_panel
from tests.test_conclusion_pdf import (  # noqa: F401 - fixtures
    CENTER,
    HEAD_NAME,
    center,
    contents,
    issue,
    page_qr_codes,
    page_texts,
    squeeze,
)

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
}


def xmp_packet(reader: pypdf.PdfReader):
    """The catalog's XMP packet, parsed (its ``rdf:RDF`` element)."""
    data = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert data.startswith(b"<?xpacket begin=") and data.rstrip().endswith(b'<?xpacket end="r"?>')
    packet = fromstring(data[data.index(b"<x:xmpmeta") : data.rindex(b"</x:xmpmeta>") + 12])
    (rdf,) = packet.findall("rdf:RDF", NS)
    return rdf


def xmp_property(rdf, path: str) -> list[str]:
    """The texts of an XMP property: ``dc:title`` gives its ``rdf:li`` items, a simple one its
    text, an attribute-form one (``pdfaid:part``) its attribute."""
    prefix, name = path.split(":")
    found = []
    for description in rdf.findall("rdf:Description", NS):
        attribute = description.get(f"{{{NS[prefix]}}}{name}")
        if attribute is not None:
            found.append(attribute)
        for element in description.findall(path, NS):
            items = element.findall(".//rdf:li", NS)
            found += [item.text for item in items] if items else [element.text]
    return found


def structure_types(node, seen: set[str] | None = None) -> set[str]:
    """The structure types (``/H1``, ``/Table``...) under a structure element."""
    seen = set() if seen is None else seen
    node = node.get_object()
    if isinstance(node, pypdf.generic.ArrayObject):
        for child in node:
            structure_types(child, seen)
        return seen
    if not isinstance(node, pypdf.generic.DictionaryObject):
        return seen
    if "/S" in node:
        seen.add(str(node["/S"]))
    if "/K" in node:
        structure_types(node["/K"], seen)
    return seen


def assert_archival(pdf: bytes, *, title: str, number: str, issued_on: str) -> None:
    """Every archival property of a numbered document of the portal."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    catalog = reader.trailer["/Root"]
    # PDF/A-3b, in the XMP packet.
    rdf = xmp_packet(reader)
    assert xmp_property(rdf, "pdfaid:part") == ["3"]
    assert xmp_property(rdf, "pdfaid:conformance") == ["B"]
    # An sRGB output intent for PDF/A and a file identifier.
    (intent,) = catalog["/OutputIntents"]
    intent = intent.get_object()
    assert intent["/S"] == "/GTS_PDFA1" and "/DestOutputProfile" in intent
    identifier = reader.trailer["/ID"]
    assert len(identifier) == 2 and all(len(part) == 32 for part in identifier)
    # Tagged: language, structure tree with the document's headings and tables.
    assert catalog["/Lang"] == "ru"
    true = pypdf.generic.BooleanObject(True)
    assert catalog["/MarkInfo"]["/Marked"] == true
    assert catalog["/ViewerPreferences"]["/DisplayDocTitle"] == true
    types = structure_types(catalog["/StructTreeRoot"])
    assert {"/Document", "/H1", "/H2", "/P", "/Table", "/TR", "/TD"} <= types, types
    # Title, number, issuing center and date, the same in the info dictionary and XMP.
    assert reader.metadata.title == title
    assert xmp_property(rdf, "dc:title") == [title]
    assert xmp_property(rdf, "dc:identifier") == [number]
    assert xmp_property(rdf, "dc:publisher") == [CENTER]
    assert xmp_property(rdf, "dc:creator") == [CENTER] and reader.metadata.author == CENTER
    assert xmp_property(rdf, "dc:language") == ["ru"]
    day, month, year = issued_on.split(".")
    assert xmp_property(rdf, "xmp:CreateDate") == [f"{year}-{month}-{day}"]
    assert reader.metadata["/CreationDate"] == f"D:{year}{month}{day}"
    # Every font of every page embedded.
    fonts = 0
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor or "/FontFile3" in descriptor, descriptor
            fonts += 1
    assert fonts


def page_with(pages: list[str], *parts: str) -> int:
    """The index of the one page holding every part (compared without whitespace)."""
    holding = [i for i, page in enumerate(pages) if all(squeeze(p) in squeeze(page) for p in parts)]
    assert len(holding) == 1, (parts, [squeeze(page)[-600:] for page in pages])
    return holding[0]


@pytest.mark.usefixtures("center")
def test_a_new_conclusion_is_a_tagged_pdf_a_3b_with_its_decision_signed_on_one_page(
    session,
    contents,  # noqa: F811 (fixtures imported above)
):
    recommendation = (
        "Рекомендуется расширить практическую часть программы и проектную работу. " * 30
    )
    scores = [factories.with_total(17), factories.with_total(16)]
    review, assignments = factories.scored_review(*scores, submit=False)
    for assignment, values in zip(assignments, scores, strict=True):
        factories.submit_scores(assignment, values, recommendations=recommendation)
    session.refresh(review)
    assert review.computed_decision == Decision.ADMITTED
    justification = "Не приложен учебный план, на который ссылается раздел 3 программы."
    conclusion, pdf = issue(session, review, Decision.REVISION_REQUIRED, justification)
    content = contents[-1]

    assert_archival(
        pdf,
        title=f"Экспертное заключение № {conclusion.number}",
        number=conclusion.number,
        issued_on=content["issued_on"],
    )
    pages = page_texts(pdf)
    assert len(pages) >= 3
    # The computed result, the override with its justification, the decision, the signature
    # with the head's name, the date and the seal's place: together on the last page.
    last = page_with(
        pages,
        "Расчётное решение по итоговой сумме баллов и пороговым значениям: программа "
        "рекомендована к включению в реестр.",
        f"Обоснование: {justification}",
        "Решение: программа направлена на доработку",
        HEAD_NAME,
        f"Дата: {content['issued_on']}",
        "М.П.",
    )
    assert last == len(pages) - 1
    # The verification QR code in the foot of every page.
    assert page_qr_codes(pdf) == [[content["verify_url"]]] * len(pages)
    # Deterministic: the same content gives the same bytes.
    assert render.render_pdf(content) == pdf


@pytest.mark.usefixtures("center")
def test_a_decision_on_an_appeal_is_a_tagged_pdf_a_3b_signed_with_its_reasons(
    session,
    contents,  # noqa: F811 (fixtures imported above)
):
    _review, _conclusion, coordinator, _provider, appeal, panel = accepted(total=8)
    score_panel(panel, {c: v for c, v in factories.with_total(8).items() if c in REASONS})
    answer = "Новая коллегия подтвердила оценки по критериям C1 и D1."
    appeals.decide_appeal(appeal, coordinator, Decision.REJECTED, answer)
    pdf = appeals.stored_decision_pdf(appeal)
    content = contents[-1]
    assert content["number"] == appeal.number

    assert_archival(
        pdf,
        title=f"Решение по апелляции № {appeal.number}",
        number=appeal.number,
        issued_on=content["issued_on"],
    )
    pages = page_texts(pdf)
    page_with(
        pages,
        f"Обоснование: {answer}",
        "Решение: апелляция отклонена.",
        HEAD_NAME,
        f"Дата: {content['issued_on']}",
        "М.П.",
    )
    assert content["verify_url"].endswith(f"/verify/appeal/{appeal.number}")
    assert page_qr_codes(pdf) == [[content["verify_url"]]] * len(pages)
    assert render.render_pdf(content, template="appeals/document.html") == pdf


@pytest.mark.usefixtures("center")
def test_a_conclusion_issued_before_keeps_its_bytes_and_still_verifies(
    session,
    english,
    auth,
    contents,  # noqa: F811 (fixtures imported above)
):
    """The stored bytes are the document: a conclusion issued as a plain PDF before this
    layout is served and verified as it is, while a new one comes out archival."""
    from weasyprint import HTML

    from review_portal import storage
    from review_portal.conclusions.services import stored_pdf
    from review_portal.extensions import db

    old_review, _ = factories.scored_review(factories.with_total(16), factories.with_total(15))
    old, _ = issue(session, old_review)
    # Its file as the renderer wrote it before: no PDF/A, no tags, no XMP.
    with render._lock:
        plain = HTML(
            string=render.conclusion_html(contents[-1]),
            base_url=render.BASE_URL,
            url_fetcher=render._fetcher_class()(),
        ).write_pdf(font_config=render.font_configuration())
    old.sha256, old.size = storage.save_bytes(plain)
    old.storage_key = old.sha256
    db.session.commit()
    assert "/Metadata" not in pypdf.PdfReader(io.BytesIO(plain)).trailer["/Root"]

    new_review, _ = factories.scored_review(factories.with_total(16), factories.with_total(15))
    new, new_pdf = issue(session, new_review)
    db.session.commit()
    assert xmp_property(xmp_packet(pypdf.PdfReader(io.BytesIO(new_pdf))), "pdfaid:part") == ["3"]

    assert stored_pdf(old) == plain
    coordinator = factories.CoordinatorFactory()
    auth.login(coordinator)
    assert auth.client.get(f"/verify/{old.number}.pdf").data == plain
    for number, pdf in ((old.number, plain), (new.number, new_pdf)):
        response = auth.post(
            "/verify",
            data={"file": (io.BytesIO(pdf), "conclusion.pdf")},
            token_from="/verify",
            content_type="multipart/form-data",
        )
        page = response.get_data(as_text=True)
        assert "The file is an authentic, unaltered copy of the expert conclusion" in page
        assert f"№ {number}" in page
