"""Bounded reading of uploaded documents: PDF, DOCX and ODT.

An upload's size says little about what it costs to read: a 600 KB DOCX can hold an XML part
that inflates to 180 MB, and a DOM of that takes gigabytes. Everything that opens a stored
document therefore goes through this module, which never holds more than it must:

- a ZIP's directory is checked first (number of entries, declared inflated sizes), so an
  archive that declares too much is refused without inflating a byte;
- parts are inflated in chunks with a running total (:class:`Budget`), so an archive whose
  sizes lie is stopped as soon as it goes past the limit;
- the XML of DOCX and ODT is parsed incrementally and each element is dropped once read, so
  memory stays at the size of one paragraph, and the paragraphs are counted;
- a PDF's pages are counted before any is read.

The limits come from the configuration (``DOCUMENT_MAX_XML_MB``,
``DOCUMENT_MAX_UNPACKED_MB``, ``DOCUMENT_MAX_PARAGRAPHS``, ``DOCUMENT_MAX_PAGES``); going
past one raises :class:`DocumentTooLarge`, which says which limit in plain words.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app, has_app_context

MB = 1024 * 1024

#: Defaults when there is no application (a script, a shell).
DEFAULTS = {
    "DOCUMENT_MAX_XML_MB": 20,
    "DOCUMENT_MAX_UNPACKED_MB": 100,
    "DOCUMENT_MAX_PARAGRAPHS": 50_000,
    "DOCUMENT_MAX_PAGES": 1_000,
}
#: More entries than this is no office document.
MAX_ENTRIES = 10_000
#: Inflated in pieces of this size.
CHUNK = 64 * 1024
#: A single paragraph keeps at most this many characters (the comparison reads less).
MAX_PARAGRAPH_CHARS = 2_000_000
#: ``<text:s text:c="…"/>`` stands for at most this many spaces.
MAX_SPACES = 1_000

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"


class DocumentTooLarge(ValueError):
    """The document goes past one of the reading limits; ``reason`` says which (English,
    for the log); the page shows its own translated message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    #: Inflated XML read from one document, in bytes.
    xml_bytes: int
    #: All entries of an archive together, inflated, in bytes.
    unpacked_bytes: int
    paragraphs: int
    pages: int
    entries: int = MAX_ENTRIES

    @classmethod
    def from_config(cls) -> Limits:
        config = current_app.config if has_app_context() else {}

        def value(name: str) -> int:
            return int(config.get(name) or DEFAULTS[name])

        return cls(
            xml_bytes=value("DOCUMENT_MAX_XML_MB") * MB,
            unpacked_bytes=value("DOCUMENT_MAX_UNPACKED_MB") * MB,
            paragraphs=value("DOCUMENT_MAX_PARAGRAPHS"),
            pages=value("DOCUMENT_MAX_PAGES"),
        )


# --- Archives ------------------------------------------------------------------------------


def _is_xml(name: str) -> bool:
    return name.lower().endswith((".xml", ".rels"))


def check_archive(archive: zipfile.ZipFile, limits: Limits) -> None:
    """Refuse, from the directory alone, an archive that declares too much.

    ``zipfile`` never returns more of an entry than its declared size (and then fails on the
    checksum), so declared sizes within the limits bound what reading can cost.
    """
    entries = archive.infolist()
    if len(entries) > limits.entries:
        raise DocumentTooLarge(f"{len(entries)} entries in the archive")
    total = sum(info.file_size for info in entries)
    if total > limits.unpacked_bytes:
        raise DocumentTooLarge(f"the archive inflates to {total} bytes")
    xml = sum(info.file_size for info in entries if _is_xml(info.filename))
    if xml > limits.xml_bytes:
        raise DocumentTooLarge(f"the archive holds {xml} bytes of XML")


#: A directory bigger than this lists more entries than any office document has.
MAX_DIRECTORY_BYTES = 4 * MB
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"


def check_directory(path: Path | str, limits: Limits) -> None:
    """Refuse an archive whose central directory is too big, before ``zipfile`` reads it
    (it keeps an object per entry: a few megabytes of directory would take hundreds).

    Reads the end-of-directory record (and its ZIP64 form) from the file's tail; a file
    without one is left for ``zipfile`` to refuse.
    """
    with open(path, "rb") as stream:
        stream.seek(0, io.SEEK_END)
        length = stream.tell()
        start = max(0, length - (22 + 65535 + 20))
        stream.seek(start)
        tail = stream.read()
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            return
        entries = int.from_bytes(tail[at + 10 : at + 12], "little")
        size = int.from_bytes(tail[at + 12 : at + 16], "little")
        locator = tail[at - 20 : at] if at >= 20 else b""
        if locator.startswith(_EOCD64_LOCATOR):
            offset = int.from_bytes(locator[8:16], "little")
            stream.seek(offset)
            record = stream.read(56)
            if len(record) == 56 and record.startswith(_EOCD64):
                entries = int.from_bytes(record[32:40], "little")
                size = int.from_bytes(record[40:48], "little")
    if entries > limits.entries or size > MAX_DIRECTORY_BYTES:
        raise DocumentTooLarge(f"an archive directory of {entries} entries, {size} bytes")


@contextlib.contextmanager
def open_archive(path: Path | str, limits: Limits) -> Iterator[zipfile.ZipFile]:
    """The archive at ``path``, its directory checked against the limits."""
    check_directory(path, limits)
    with zipfile.ZipFile(path) as archive:
        check_archive(archive, limits)
        yield archive


class Budget:
    """A running total of inflated bytes; going past ``limit`` raises."""

    def __init__(self, limit: int, what: str):
        self.limit, self.what, self.used = limit, what, 0

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise DocumentTooLarge(f"more than {self.limit} bytes of {self.what}")


class BoundedReader(io.RawIOBase):
    """A readable stream over an archive entry that charges every byte to a budget."""

    def __init__(self, raw: BinaryIO, budget: Budget):
        super().__init__()
        self._raw, self._budget = raw, budget

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > CHUNK:
            size = CHUNK
        data = self._raw.read(size)
        self._budget.take(len(data))
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def verify_archive(archive: zipfile.ZipFile, limits: Limits) -> None:
    """Inflate every entry of an opened archive in chunks (nothing kept) with running
    totals: the declared sizes first, then the actual bytes. Raises
    :class:`DocumentTooLarge` past a limit and ``zipfile.BadZipFile`` on a damaged entry."""
    check_archive(archive, limits)
    everything = Budget(limits.unpacked_bytes, "inflated data")
    xml = Budget(limits.xml_bytes, "XML")
    for info in archive.infolist():
        if info.is_dir():
            continue
        with archive.open(info) as entry:
            while data := entry.read(CHUNK):
                everything.take(len(data))
                if _is_xml(info.filename):
                    xml.take(len(data))


def read_small(archive: zipfile.ZipFile, name: str, limit: int = 256 * 1024) -> bytes | None:
    """An entry's content when it is at most ``limit`` bytes; ``None`` (and nothing
    inflated beyond the limit) otherwise or when the entry is absent."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > limit:
        return None
    with archive.open(info) as entry:
        data = entry.read(limit + 1)
    return data if len(data) <= limit else None


def _events(stream: BinaryIO):
    # No DTD is loaded and no entity expanded, so a "billion laughs" costs nothing.
    from lxml import etree

    return etree.iterparse(
        stream,
        events=("start", "end"),
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _drop(element) -> None:
    """Forget an element that has been read, and the siblings read before it."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


class _Paragraphs:
    """Counts paragraphs against the limit."""

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0

    def add(self) -> None:
        self.count += 1
        if self.count > self.limit:
            raise DocumentTooLarge(f"more than {self.limit} paragraphs")


def _append(buffer: list[str], size: list[int], text: str) -> None:
    if size[0] < MAX_PARAGRAPH_CHARS:
        text = text[: MAX_PARAGRAPH_CHARS - size[0]]
        buffer.append(text)
        size[0] += len(text)


# --- DOCX ----------------------------------------------------------------------------------

_DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_CONTENT_TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"


def _docx_main_part(archive: zipfile.ZipFile) -> str:
    from lxml import etree

    data = read_small(archive, "[Content_Types].xml")
    if data is not None and b"<!DOCTYPE" not in data and b"<!ENTITY" not in data:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
        by_lower = {name.lower(): name for name in archive.namelist()}
        for override in root.iter(f"{_CONTENT_TYPES_NS}Override"):
            part = override.get("PartName", "").lstrip("/").lower()
            if override.get("ContentType") == _DOCX_MAIN and part in by_lower:
                return by_lower[part]
    return "word/document.xml"


def docx_lines(path: Path | str, limits: Limits) -> Iterator[str]:
    """The paragraphs of a DOCX in order; a table row gives one line, its cells joined by
    `` | `` (a cell's own paragraphs and nested rows joined by spaces)."""
    with open_archive(path, limits) as archive:
        name = _docx_main_part(archive)
        budget = Budget(limits.xml_bytes, "XML")
        with archive.open(name) as raw:
            yield from _docx_stream(BoundedReader(raw, budget), limits)


_RUN_CHARS = {
    f"{W}tab": "\t",
    f"{W}ptab": "\t",
    f"{W}br": "\n",
    f"{W}cr": "\n",
    f"{W}noBreakHyphen": "-",
}


def _docx_stream(stream: BinaryIO, limits: Limits) -> Iterator[str]:
    """Paragraphs and table rows as python-docx reads them (a vertically merged cell gives
    its text in each row it spans), from the XML events; every element is dropped once
    read, so only the open paragraph's text is held."""
    paragraphs = _Paragraphs(limits.paragraphs)
    # Open containers, innermost last: ("p", buffer, size), ("cell", blocks, properties),
    # ("row", cells, [grid column]), ("table", {grid column: text of a vertical merge}).
    stack: list[tuple] = []

    def innermost(kind: str) -> tuple | None:
        for frame in reversed(stack):
            if frame[0] == kind:
                return frame
        return None

    def deliver(line: str) -> Iterator[str]:
        # To the innermost cell, else to the document (text boxes inside a paragraph
        # become lines of their own).
        cell = innermost("cell")
        if cell is not None:
            cell[1].append(line)
        else:
            yield line

    for event, element in _events(stream):
        tag = element.tag
        if event == "start":
            if tag == f"{W}p":
                paragraphs.add()
                stack.append(("p", [], [0]))
            elif tag == f"{W}tc":
                stack.append(("cell", [], {}))
            elif tag == f"{W}tr":
                stack.append(("row", [], [0]))
            elif tag == f"{W}tbl":
                stack.append(("table", {}))
            continue
        parent = element.getparent()
        in_run = parent is not None and parent.tag == f"{W}r"
        if tag == f"{W}t" and in_run:
            paragraph = innermost("p")
            if paragraph is not None:
                _append(paragraph[1], paragraph[2], element.text or "")
        elif tag in _RUN_CHARS and in_run:
            paragraph = innermost("p")
            if paragraph is not None:
                _append(paragraph[1], paragraph[2], _RUN_CHARS[tag])
        elif tag == f"{W}gridSpan" and stack and stack[-1][0] == "cell":
            with contextlib.suppress(ValueError):
                stack[-1][2]["span"] = max(1, int(element.get(f"{W}val") or 1))
        elif tag == f"{W}vMerge" and stack and stack[-1][0] == "cell":
            stack[-1][2]["merge"] = element.get(f"{W}val") or "continue"
        elif tag == f"{W}p" and stack and stack[-1][0] == "p":
            _, buffer, _size = stack.pop()
            yield from deliver("".join(buffer))
        elif tag == f"{W}tc" and stack and stack[-1][0] == "cell":
            _, blocks, properties = stack.pop()
            text = " ".join(blocks).strip()
            row, table = innermost("row"), innermost("table")
            if row is not None:
                column = row[2][0]
                if table is not None:
                    merge = properties.get("merge")
                    if merge == "continue":
                        text = table[1].get(column, text)
                    elif merge == "restart":
                        table[1][column] = text
                    else:
                        table[1].pop(column, None)
                row[1].append(text)
                row[2][0] = column + properties.get("span", 1)
        elif tag == f"{W}tr" and stack and stack[-1][0] == "row":
            _, cells, _column = stack.pop()
            if any(cells):
                yield from deliver(" | ".join(cells))
        elif tag == f"{W}tbl" and stack and stack[-1][0] == "table":
            stack.pop()
        _drop(element)


# --- ODT -----------------------------------------------------------------------------------


def odt_lines(path: Path | str, limits: Limits) -> Iterator[str]:
    """The paragraphs and headings of an ODT in order (those in tables and lists too)."""
    with open_archive(path, limits) as archive:
        budget = Budget(limits.xml_bytes, "XML")
        with archive.open("content.xml") as raw:
            yield from _odt_stream(BoundedReader(raw, budget), limits)


def _odt_stream(stream: BinaryIO, limits: Limits) -> Iterator[str]:
    paragraphs = _Paragraphs(limits.paragraphs)
    blocks = (f"{TEXT}p", f"{TEXT}h")
    body = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}text"
    # Open paragraphs and headings: the outermost one is read whole when it ends (text and
    # tails are complete only then) and dropped; a paragraph of a note or a frame belongs to
    # the paragraph that holds it.
    depth = 0
    in_body = False
    for event, element in _events(stream):
        tag = element.tag
        if event == "start":
            if tag == body:
                in_body = True
            elif tag in blocks and in_body:
                paragraphs.add()
                depth += 1
            continue
        if tag in blocks and depth:
            depth -= 1
            if not depth:
                buffer: list[str] = []
                _odt_text(element, buffer, [0])
                yield "".join(buffer)
        if tag == body:
            in_body = False
        if not depth:
            _drop(element)


def _odt_text(element, buffer: list[str], size: list[int]) -> None:
    """The text of an element as ``odf.teletype.extractText`` reads it (spaces, tabs and
    line breaks unwrapped), appended to ``buffer``."""
    _append(buffer, size, element.text or "")
    for child in element:
        tag = child.tag
        if tag == f"{TEXT}line-break":
            _append(buffer, size, "\n")
        elif tag == f"{TEXT}tab":
            _append(buffer, size, "\t")
        elif tag == f"{TEXT}s":
            try:
                count = int(child.get(f"{TEXT}c") or 1)
            except ValueError:
                count = 1
            _append(buffer, size, " " * max(0, min(count, MAX_SPACES)))
        elif isinstance(tag, str):
            _odt_text(child, buffer, size)
        _append(buffer, size, child.tail or "")


# --- PDF -----------------------------------------------------------------------------------


def pdf_pages(path: Path | str, limits: Limits) -> Iterator[str]:
    """The text of each page of a PDF; refused when it has more pages than the limit."""
    from pypdf import PdfReader

    with open(path, "rb") as stream:
        reader = PdfReader(stream)
        # Many PDFs are "encrypted" with an empty user password only to restrict printing.
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("encrypted PDF")
        count = len(reader.pages)
        if count > limits.pages:
            raise DocumentTooLarge(f"{count} pages")
        for page in reader.pages:
            yield page.extract_text() or ""
