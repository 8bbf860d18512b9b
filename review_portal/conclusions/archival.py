"""What makes a rendered document of the portal an archival PDF: PDF/A-3b, tagged.

Every numbered document the portal issues (a conclusion, a decision on an appeal) decides
public money and is kept for years, so it is written as PDF/A-3b (ISO 19005-3, level B:
the look is preserved — fonts embedded, sRGB output intent, XMP metadata, file identifier)
and tagged as WeasyPrint does for PDF/UA (structure tree, ``MarkInfo``, ``/Lang`` from the
``<html lang>``, the title shown as the window's title). PDF/UA conformance itself is not
declared in the metadata: no PDF/UA checker validates the output here.

The XMP packet is WeasyPrint's (``pdfaid:part``/``conformance``, ``dc:title``,
``dc:description``, ``dc:creator``, ``xmp:CreateDate``, ``xmp:CreatorTool``) plus, from the
document's ``<meta>`` elements, three Dublin Core properties PDF/A knows without an
extension schema: ``dc:identifier`` (``<meta name="dc.identifier">``: the document's number),
``dc:publisher`` (``<meta name="dc.publisher">``: the issuing center) and ``dc:language``.

Deterministic: nothing depends on the clock or on chance. The dates are the document's own
(``<meta name="dcterms.created">``), and the file identifier is the MD5 of the file's body,
so the same content gives the same bytes.

The extra properties are added by ``ArchivalMetadata``, a subclass of WeasyPrint's
``DocumentMetadata`` overriding ``generate_rdf_metadata`` (WeasyPrint's own hook for the XMP
packet): WeasyPrint only appends whole XML fragments after its ``rdf:RDF`` element, and an
XMP packet holds a single ``rdf:RDF``.
"""

from __future__ import annotations

import functools
import io
from xml.etree.ElementTree import SubElement, fromstring, tostring

#: The key of the output intent's colour profile (sRGB, the one WeasyPrint ships).
OUTPUT_INTENT = "portal-srgb"

#: The options of ``HTML.render`` and ``Document.write_pdf`` for every numbered document.
#: The output intent is named here, not left to the variant's default ``srgb``: WeasyPrint
#: opens its profile file for that default and never closes it (a ResourceWarning, and a
#: file handle left to the garbage collector, at every render).
PDF_OPTIONS = {"pdf_variant": "pdf/a-3b", "pdf_tags": True, "output_intent": OUTPUT_INTENT}

#: ``<meta name>`` → the Dublin Core property of the XMP packet it fills.
META_TO_DUBLIN_CORE = {"dc.identifier": "identifier", "dc.publisher": "publisher"}

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_DC = "http://purl.org/dc/elements/1.1/"


@functools.cache
def _srgb_profile_bytes() -> bytes:
    from importlib.resources import files

    return (files("weasyprint.pdf") / "sRGB2014.icc").read_bytes()


def color_profiles() -> dict:
    """The colour profiles of one rendering: the sRGB profile of the output intent (a new
    object each time: WeasyPrint writes the PDF object's reference into it)."""
    from weasyprint.css import ColorProfile

    profile = ColorProfile(
        io.BytesIO(_srgb_profile_bytes()),
        "sRGB2014.icc",
        "relative-colorimetric",
        (["r"], ["g"], ["b"]),
    )
    return {OUTPUT_INTENT: profile}


def _description(rdf):
    element = SubElement(rdf, f"{{{_RDF}}}Description")
    element.attrib[f"{{{_RDF}}}about"] = ""
    return element


@functools.cache
def _metadata_class():
    from weasyprint.pdf.metadata import DocumentMetadata

    class ArchivalMetadata(DocumentMetadata):
        """WeasyPrint's XMP packet with ``dc:identifier``, ``dc:publisher``, ``dc:language``."""

        def generate_rdf_metadata(self, variant, version, conformance):
            rdf = fromstring(super().generate_rdf_metadata(variant, version, conformance))
            for meta, name in META_TO_DUBLIN_CORE.items():
                value = (self.custom.get(meta) or "").strip()
                if not value:
                    continue
                element = SubElement(_description(rdf), f"{{{_DC}}}{name}")
                if name == "publisher":  # XMP: an unordered array of names
                    element = SubElement(SubElement(element, f"{{{_RDF}}}Bag"), f"{{{_RDF}}}li")
                element.text = value
            if self.lang:
                language = SubElement(_description(rdf), f"{{{_DC}}}language")
                SubElement(SubElement(language, f"{{{_RDF}}}Bag"), f"{{{_RDF}}}li").text = self.lang
            return tostring(rdf, encoding="utf-8")

    return ArchivalMetadata


def archival_metadata(metadata):
    """``metadata`` (WeasyPrint's ``DocumentMetadata`` of a rendered document) as an
    ``ArchivalMetadata`` holding the same values."""
    archival = _metadata_class()()
    archival.__dict__.update(vars(metadata))
    return archival
