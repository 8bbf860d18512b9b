"""Reading the registry: one selection for the page, the exports and the API, and diffs.

:class:`RegistryFilters` is the one description of a selection (search words, filters,
sorting); :func:`select_items` turns it into the one SQL statement that the page (a page of
it), the CSV and XLSX exports (all of it, streamed) and the API (a page of it) run, so they
always return the same entries in the same order. Rows are plain mappings with the columns
of :class:`~review_portal.registry.models.RegistrySnapshotItem`.

:func:`compare` is the one rule of what changed between two versions of the registry; it
serves both the difference between two snapshots and the pending changes (latest snapshot
against the working registry).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import unicodedata
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from operator import itemgetter
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import bindparam, func, select

from review_portal.conclusions.models import Conclusion
from review_portal.enums import Direction, Level, RegistryEntryStatus, RegistryKind, StudyForm
from review_portal.extensions import db
from review_portal.i18n import local_date  # noqa: F401 - the exports import it from here
from review_portal.input_guard import DB_INT_MAX
from review_portal.organizations.models import Municipality, Organization
from review_portal.programs.models import ProgramVersion
from review_portal.registry.models import RegistryEntry, RegistrySnapshot, RegistrySnapshotItem
from review_portal.reviews.models import Review
from review_portal.workflow import ReviewState

E = RegistryEntryStatus
#: Entries that are, or are about to be, in the registry.
WORKING_STATUSES = (E.PENDING_INCLUSION, E.INCLUDED)
#: Rows fetched at a time when a whole registry is read (exports, comparisons, copies).
CHUNK = 1000


def fold(text: str) -> str:
    """What search compares: composed (NFC), case-folded, ё as е, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFC", text or "").casefold().replace("ё", "е").split())


# --- the working registry ---------------------------------------------------------------

#: What makes an entry "changed" between two versions of the registry (its number, its
#: inclusion date and its status are the registry's own and never change while it is in).
COMPARED_FIELDS = (
    "title",
    "organization_name",
    "organization_inn",
    "municipality_id",
    "municipality_name",
    "direction",
    "level",
    "age_min",
    "age_max",
    "total_hours",
    "modules",
    "study_form",
    "adapted_for_disabilities",
    "conclusion_number",
    "conclusion_date",
    "final_percent",
)


def _working_select(kind: RegistryKind, municipality_id: int | None, statuses):
    stmt = (
        select(
            RegistryEntry.id.label("entry_id"),
            RegistryEntry.program_id,
            RegistryEntry.registry_number,
            RegistryEntry.status,
            RegistryEntry.included_on,
            RegistryEntry.valid_until,
            ProgramVersion.title,
            ProgramVersion.direction,
            ProgramVersion.level,
            ProgramVersion.age_min,
            ProgramVersion.age_max,
            ProgramVersion.total_hours,
            ProgramVersion.modules,
            ProgramVersion.study_form,
            ProgramVersion.adapted_for_disabilities,
            Organization.short_name,
            Organization.full_name,
            Organization.inn,
            Municipality.id.label("municipality_id"),
            Municipality.name.label("municipality_name"),
            Conclusion.number.label("conclusion_number"),
            Conclusion.issued_at,
            Conclusion.percent,
        )
        .join(Conclusion, Conclusion.id == RegistryEntry.conclusion_id)
        .join(Review, Review.id == Conclusion.review_id)
        .join(ProgramVersion, ProgramVersion.id == Review.version_id)
        .join(Organization, Organization.id == ProgramVersion.organization_id)
        .join(Municipality, Municipality.id == ProgramVersion.municipality_id)
        .where(RegistryEntry.kind == kind, RegistryEntry.status.in_(statuses))
        .order_by(RegistryEntry.id)
    )
    if municipality_id is not None:
        stmt = stmt.where(ProgramVersion.municipality_id == municipality_id)
    return stmt


def iter_working_rows(
    kind: RegistryKind, municipality_id: int | None = None, statuses=WORKING_STATUSES
) -> Iterator[dict]:
    """The registry as the next publication would freeze it: one dict per entry, with the
    keys of a snapshot item (``registry_number`` and ``included_on`` are ``None`` for an
    entry not yet published), in entry order, fetched in chunks (memory bounded)."""
    from review_portal.settings.services import get_setting

    zone = ZoneInfo(get_setting("timezone"))
    stmt = _working_select(kind, municipality_id, statuses)
    # Plain rows through the session's connection (the ORM's loading adds nothing to
    # columns but time: a third of the pass).
    db.session.flush()
    rows = db.session.connection().execute(stmt, execution_options={"yield_per": CHUNK})
    for r in rows:
        issued = r.issued_at if r.issued_at.tzinfo else r.issued_at.replace(tzinfo=UTC)
        yield (
            {
                "entry_id": r.entry_id,
                "program_id": r.program_id,
                "registry_number": r.registry_number,
                "title": r.title,
                "organization_name": r.short_name,
                "organization_inn": r.inn,
                "municipality_id": r.municipality_id,
                "municipality_name": r.municipality_name,
                "direction": r.direction,
                "level": r.level,
                "age_min": r.age_min,
                "age_max": r.age_max,
                "total_hours": r.total_hours,
                "modules": r.modules or [],
                "study_form": r.study_form,
                "adapted_for_disabilities": r.adapted_for_disabilities,
                "conclusion_number": r.conclusion_number,
                # review_portal.i18n.local_date, the zone read once
                "conclusion_date": issued.astimezone(zone).date(),
                "final_percent": r.percent,
                "included_on": r.included_on,
                "valid_until": r.valid_until,
                "status": E.INCLUDED,
                "search_text": fold(f"{r.title} {r.short_name} {r.full_name}"),
            }
        )


def latest_snapshot(kind: RegistryKind) -> RegistrySnapshot | None:
    return db.session.execute(_latest_snapshot(), {"kind": kind}).scalar_one_or_none()


@functools.cache
def _latest_snapshot():
    # Built once per process: the registry's every page runs it.
    return (
        select(RegistrySnapshot)
        .where(RegistrySnapshot.kind == sa.bindparam("kind"))
        .order_by(RegistrySnapshot.number.desc())
        .limit(1)
    )


# --- published snapshots ----------------------------------------------------------------

I = RegistrySnapshotItem  # noqa: E741 - short alias for column expressions
ITEM_COLUMNS = tuple(c for c in I.__table__.c if c.name not in ("search_text",))

#: Sort keys accepted in URLs (``sort=``) and the columns they order by; the item id
#: breaks ties so that pages never overlap.
SORTS = {
    "number": (I.registry_number,),
    "title": (I.title,),
    "organization": (I.organization_name, I.title),
    "municipality": (I.municipality_name, I.title),
    "percent": (I.final_percent.desc(),),
    "included": (I.included_on.desc(), I.registry_number),
}
DEFAULT_SORT = "number"
MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
#: Bounds of numbers read from URLs, so that none overflows a database integer.
MAX_PAGE = 1_000_000
MAX_ID = DB_INT_MAX


#: SQLite's full-text index of ``search_text`` (FTS5, trigram tokenizer; migration 0021),
#: kept in step with the items by triggers. Absent on PostgreSQL (``pg_trgm`` serves the
#: LIKE there) and on a SQLite without FTS5's trigram tokenizer (3.34+).
SEARCH_INDEX = "registry_snapshot_items_fts"
#: The trigram index finds words of three characters or more; shorter ones are scanned.
SEARCH_INDEX_MIN = 3
_FTS = sa.table(SEARCH_INDEX, sa.column("rowid"), sa.column("search_text"))
_search_index_ready: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def search_index_ready() -> bool:
    """Whether this database has the SQLite search index (looked up once per engine,
    outside the session, so a page's statements stay the same)."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return False
    ready = _search_index_ready.get(engine)
    if ready is None:
        connection = engine.raw_connection()
        try:
            found = connection.cursor().execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SEARCH_INDEX,)
            )
            ready = found.fetchone() is not None
        finally:
            connection.close()
        _search_index_ready[engine] = ready
    return ready


def search_conditions(words: list[str]) -> list:
    """The conditions of folded search ``words``: each a substring of ``search_text``.

    ``LIKE '%word%'`` everywhere; on SQLite with the search index, the words of three
    characters or more are found in it instead (the same rows: a phrase of the word's
    trigrams is the word as a substring), the others still by ``LIKE``."""
    conditions = []
    indexed = []
    use_index = bool(words) and search_index_ready()
    for word in words:
        if use_index and len(word) >= SEARCH_INDEX_MIN:
            indexed.append('"' + word.replace('"', '""') + '"')
            continue
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(I.search_text.like(f"%{escaped}%", escape="\\"))
    if indexed:
        matches = select(_FTS.c.rowid).where(_FTS.c.search_text.op("MATCH")(" AND ".join(indexed)))
        conditions.insert(0, I.id.in_(matches))
    return conditions


@dataclass(frozen=True)
class RegistryFilters:
    """A selection of a snapshot: every field empty means "everything"."""

    q: str = ""
    municipality_id: int | None = None
    direction: Direction | None = None
    level: Level | None = None
    #: The age a child has: programs whose range contains it.
    age: int | None = None
    study_form: StudyForm | None = None
    #: ``True``: only programs adapted for children with disabilities (ОВЗ); ``False``: only
    #: the others; ``None``: both.
    ovz: bool | None = None
    sort: str = DEFAULT_SORT

    def conditions(self) -> list:
        conditions = search_conditions(fold(self.q).split())
        if self.municipality_id is not None:
            conditions.append(I.municipality_id == self.municipality_id)
        if self.direction is not None:
            conditions.append(I.direction == self.direction)
        if self.level is not None:
            conditions.append(I.level == self.level)
        if self.age is not None:
            conditions.append(I.age_min <= self.age)
            conditions.append(I.age_max >= self.age)
        if self.study_form is not None:
            conditions.append(I.study_form == self.study_form)
        if self.ovz is not None:
            conditions.append(I.adapted_for_disabilities.is_(self.ovz))
        return conditions

    def args(self) -> dict:
        """The selection as URL query arguments (empty ones left out), for links."""
        args = {
            "q": self.q.strip(),
            "municipality": self.municipality_id,
            "direction": self.direction.value if self.direction else None,
            "level": self.level.value if self.level else None,
            "age": self.age,
            "form": self.study_form.value if self.study_form else None,
            "ovz": None if self.ovz is None else ("1" if self.ovz else "0"),
            "sort": None if self.sort == DEFAULT_SORT else self.sort,
        }
        return {k: v for k, v in args.items() if v not in (None, "")}


def select_items(snapshot_id: int, filters: RegistryFilters):
    """The statement of the selection, ordered; the page, the exports and the API run it."""
    return (
        select(*ITEM_COLUMNS)
        .where(I.snapshot_id == snapshot_id, *filters.conditions())
        .order_by(*SORTS.get(filters.sort, SORTS[DEFAULT_SORT]), I.id)
    )


def count_items(snapshot_id: int, filters: RegistryFilters) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(I)
        .where(I.snapshot_id == snapshot_id, *filters.conditions())
    ).scalar_one()


#: Counts of selections of published snapshots, kept by the process: a snapshot never
#: changes once written, so neither does the size of a selection of it (and every page of
#: a selection shows it). Keyed by the snapshot's id with what identifies its publication
#: (its moment, size and signed audit link: another database's snapshot with the same id
#: differs) and the selection without its sort.
_COUNTS: dict[tuple, int] = {}
_COUNTS_LOCK = threading.Lock()
#: The most counts kept (a few hundred bytes each); the oldest half is dropped beyond it.
COUNT_CACHE_SIZE = 4096


#: Pages of published snapshots (their rows), kept by the process as the counts are.
_PAGES: dict[tuple, list] = {}
#: The most pages kept (50 rows each by default: ~100 KB of rows).
PAGE_CACHE_SIZE = 256


def _count_key(snapshot: RegistrySnapshot, filters: RegistryFilters) -> tuple:
    selection = dataclasses.replace(filters, q=" ".join(fold(filters.q).split()), sort="")
    published = (snapshot.published_at, snapshot.entry_count, snapshot.audit_link)
    return (snapshot.id, published, selection)


def cached_count(snapshot: RegistrySnapshot, filters: RegistryFilters) -> int:
    """:func:`count_items` of a published snapshot, read once per process and selection."""
    key = _count_key(snapshot, filters)
    found = _COUNTS.get(key)
    if found is None:
        found = count_items(snapshot.id, filters)
        with _COUNTS_LOCK:
            if len(_COUNTS) >= COUNT_CACHE_SIZE:
                for old in list(_COUNTS)[: COUNT_CACHE_SIZE // 2]:
                    _COUNTS.pop(old, None)
            _COUNTS[key] = found
    return found


@dataclass
class Page:
    items: list[Mapping]
    total: int
    page: int
    per_page: int
    #: What identifies this page of a published snapshot (its rows never change), for
    #: keeping what is made of it (the rendered table); ``None``: not to be kept.
    key: tuple | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def links(self, edge: int = 2, around: int = 2) -> list[int | None]:
        """Page numbers to link: the first and last ``edge``, ``around`` on either side of
        this one, ``None`` for a gap — a few numbers, however many pages there are."""
        wanted = {
            *range(1, edge + 1),
            *range(self.pages - edge + 1, self.pages + 1),
            *range(self.page - around, self.page + around + 1),
        }
        numbers = sorted(n for n in wanted if 1 <= n <= self.pages)
        links: list[int | None] = []
        for n in numbers:
            if links and n - links[-1] > 1:
                links.append(None)
            links.append(n)
        return links


def page_items(
    snapshot: int | RegistrySnapshot,
    filters: RegistryFilters,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> Page:
    """One page of the selection and the size of the whole selection (two statements; one
    when ``snapshot`` is the published snapshot itself and the size of this selection was
    read before: :func:`cached_count`)."""
    snapshot_id = snapshot if isinstance(snapshot, int) else snapshot.id
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    key = None
    if not isinstance(snapshot, int):
        key = (_count_key(snapshot, filters), filters.sort, page, per_page)
        rows = _PAGES.get(key)
        if rows is not None:
            return Page(rows, cached_count(snapshot, filters), page, per_page, key)
    order = (*SORTS.get(filters.sort, SORTS[DEFAULT_SORT]), I.id)
    # The page's ids first, from the sort index alone, then their rows: a deep page does not
    # fetch every row it skips. The numbers inline: with bound ones PostgreSQL plans for an
    # unknown offset and reads the rows instead of the index.
    ids = (
        select(I.id)
        .where(I.snapshot_id == snapshot_id, *filters.conditions())
        .order_by(*order)
        .limit(bindparam("page_limit", per_page, literal_execute=True))
        .offset(bindparam("page_offset", (page - 1) * per_page, literal_execute=True))
        .subquery()
    )
    rows = (
        db.session.execute(select(*ITEM_COLUMNS).join(ids, ids.c.id == I.id).order_by(*order))
        .mappings()
        .all()
    )
    if key is None:
        return Page(rows, count_items(snapshot_id, filters), page, per_page)
    with _COUNTS_LOCK:
        if len(_PAGES) >= PAGE_CACHE_SIZE:
            for old in list(_PAGES)[: PAGE_CACHE_SIZE // 2]:
                _PAGES.pop(old, None)
        _PAGES[key] = rows
    return Page(rows, cached_count(snapshot, filters), page, per_page, key)


def iter_items(snapshot_id: int, filters: RegistryFilters, chunk: int = CHUNK) -> Iterator[Mapping]:
    """All of the selection, fetched ``chunk`` rows at a time (a server-side cursor on
    PostgreSQL), so an export's memory does not grow with the registry."""
    result = db.session.execute(
        select_items(snapshot_id, filters).execution_options(yield_per=chunk)
    ).mappings()
    yield from result


def iter_snapshot_rows(snapshot_id: int, municipality_id: int | None = None) -> Iterator[dict]:
    """A snapshot's rows in entry order, fetched in chunks (memory bounded)."""
    stmt = select(*ITEM_COLUMNS).where(I.snapshot_id == snapshot_id)
    if municipality_id is not None:
        stmt = stmt.where(I.municipality_id == municipality_id)
    stmt = stmt.order_by(I.entry_id)
    # Plain rows, as :func:`iter_working_rows` reads them.
    db.session.flush()
    rows = db.session.connection().execute(stmt, execution_options={"yield_per": CHUNK})
    for row in rows.mappings():
        yield dict(row)


def list_snapshots(kind: RegistryKind | None = None) -> list[RegistrySnapshot]:
    """Every published snapshot (of ``kind``), newest first."""
    stmt = select(RegistrySnapshot).order_by(RegistrySnapshot.kind, RegistrySnapshot.number.desc())
    if kind is not None:
        stmt = stmt.where(RegistrySnapshot.kind == kind)
    return list(db.session.execute(stmt).scalars())


# --- one published entry ----------------------------------------------------------------

#: The longest registry number looked up (the column's length); longer is not a number.
MAX_NUMBER_LENGTH = 32


@dataclass(frozen=True)
class PublishedEntry:
    """An entry of the latest publication of its registry, as its public page shows it.

    ``item`` is the published row (a snapshot item). ``program`` is the version of the
    program its published conclusion certifies: versions never change, so it is what was
    published. ``provider`` holds the organization's contacts as they are now (a parent
    calls today's number, see docs/design/contracts.md)."""

    item: Mapping
    snapshot: RegistrySnapshot
    program: Mapping
    provider: Mapping


def published_entry(number: str) -> PublishedEntry | None:
    """The entry of registry number ``number`` in the latest publication of its registry,
    or ``None``: an unknown or malformed number, an entry not (or no longer) published."""
    if not number or len(number) > MAX_NUMBER_LENGTH or not number.isprintable():
        return None
    latest = (
        select(RegistrySnapshot.kind, func.max(RegistrySnapshot.number).label("number"))
        .group_by(RegistrySnapshot.kind)
        .subquery()
    )
    found = db.session.execute(
        select(I.id, RegistrySnapshot)
        .join(RegistrySnapshot, RegistrySnapshot.id == I.snapshot_id)
        .join(
            latest,
            (latest.c.kind == RegistrySnapshot.kind) & (latest.c.number == RegistrySnapshot.number),
        )
        .where(I.registry_number == number)
        .limit(1)
    ).first()
    if found is None:
        return None
    item_id, snapshot = found
    item = db.session.execute(select(*ITEM_COLUMNS).where(I.id == item_id)).mappings().one()
    details = (
        db.session.execute(
            select(
                ProgramVersion.annotation,
                ProgramVersion.duration_months,
                ProgramVersion.group_min,
                ProgramVersion.group_max,
                ProgramVersion.uses_distance_learning,
                ProgramVersion.network_form,
                Organization.full_name,
                Organization.address,
                Organization.phone,
                Organization.website,
            )
            .select_from(Conclusion)
            .join(Review, Review.id == Conclusion.review_id)
            .join(ProgramVersion, ProgramVersion.id == Review.version_id)
            .join(Organization, Organization.id == ProgramVersion.organization_id)
            .where(Conclusion.number == item["conclusion_number"])
        )
        .mappings()
        .one()
    )
    program = {
        key: details[key]
        for key in (
            "annotation",
            "duration_months",
            "group_min",
            "group_max",
            "uses_distance_learning",
            "network_form",
        )
    }
    provider = {
        "full_name": details["full_name"],
        "address": details["address"],
        "phone": details["phone"],
        "website": details["website"],
    }
    return PublishedEntry(item=item, snapshot=snapshot, program=program, provider=provider)


def web_address(text: str | None) -> str | None:
    """``text`` as a link target when it is a web address (``http``/``https``, or a bare
    host name, given ``https://``); otherwise ``None`` and the page shows it as text."""
    text = (text or "").strip()
    if not text or any(c.isspace() for c in text) or not text.isprintable():
        return None
    if "://" not in text:
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError:  # an unbalanced bracket ("site.ru]") is no address
        return None
    if parts.scheme not in ("http", "https") or not hostname or "." not in hostname:
        return None
    return text


# --- differences ------------------------------------------------------------------------


@dataclass
class Change:
    """An entry present on both sides whose data differ: ``fields`` are the names of the
    differing columns (of :data:`COMPARED_FIELDS`)."""

    old: Mapping
    new: Mapping
    fields: tuple[str, ...]


@dataclass
class Diff:
    added: list[Mapping] = field(default_factory=list)
    removed: list[Mapping] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def compare(old_rows, new_rows) -> Diff:
    """What changed from ``old_rows`` to ``new_rows`` (entries matched by ``entry_id``):
    added and removed entries and entries whose :data:`COMPARED_FIELDS` differ.

    One pass over both sides in ``entry_id`` order — lists are sorted here, iterators must
    come sorted — so two large registries are compared holding only their differences.
    """
    diff = Diff()
    for what, change in iter_compare(old_rows, new_rows):
        getattr(diff, what).append(change)
    return diff


def iter_compare(old_rows, new_rows) -> Iterator[tuple[str, Mapping | Change]]:
    """:func:`compare` one difference at a time: ``("added", row)``, ``("removed", row)``
    or ``("changed", Change)``, in ``entry_id`` order (nothing held but the current rows)."""
    key = itemgetter("entry_id")
    if isinstance(old_rows, list | tuple):
        old_rows = sorted(old_rows, key=key)
    if isinstance(new_rows, list | tuple):
        new_rows = sorted(new_rows, key=key)
    olds, news = iter(old_rows), iter(new_rows)
    old, new = next(olds, None), next(news, None)
    while old is not None or new is not None:
        if new is None or (old is not None and key(old) < key(new)):
            yield "removed", old
            old = next(olds, None)
        elif old is None or key(new) < key(old):
            yield "added", new
            new = next(news, None)
        else:
            fields = tuple(f for f in COMPARED_FIELDS if old[f] != new[f])
            if fields:
                yield "changed", Change(old, new, fields)
            old, new = next(olds, None), next(news, None)


def _facts(row) -> list:
    return [row["entry_id"], *(str(row[f]) for f in COMPARED_FIELDS)]


def fingerprint(diff: Diff) -> str:
    """A digest of ``diff`` (which entries, what they hold), so a publication can check that
    the changes a coordinator reviewed are still the ones pending."""
    import hashlib

    parts = [
        ["added", *map(_facts, diff.added)],
        ["removed", *map(_facts, diff.removed)],
        ["changed", *(_facts(change.new) for change in diff.changed)],
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass
class ChangeSummary:
    """What a publication needs of the pending changes without holding them: how many of
    each, and their :func:`fingerprint`."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    fingerprint: str = ""

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def summarize(changes: Iterator[tuple[str, Mapping | Change]]) -> ChangeSummary:
    """Count the differences of :func:`iter_compare` and digest them as :func:`fingerprint`
    does (the same text hashed piece by piece: only the removed and changed entries' facts
    are kept until the end, the added ones — a first publication's whole registry — not)."""
    import hashlib

    digest = hashlib.sha256(b"[['added'")
    later: dict[str, list[str]] = {"removed": [], "changed": []}
    summary = ChangeSummary()
    for what, change in changes:
        setattr(summary, what, getattr(summary, what) + 1)
        if what == "added":
            digest.update(f", {_facts(change)!r}".encode())
        elif what == "removed":
            later["removed"].append(f", {_facts(change)!r}")
        else:
            later["changed"].append(f", {_facts(change.new)!r}")
    digest.update(("], ['removed'" + "".join(later["removed"])).encode())
    digest.update(("], ['changed'" + "".join(later["changed"]) + "]]").encode())
    summary.fingerprint = digest.hexdigest()
    return summary


def diff_snapshots(
    old: RegistrySnapshot, new: RegistrySnapshot, municipality_id: int | None = None
) -> Diff:
    return compare(
        iter_snapshot_rows(old.id, municipality_id), iter_snapshot_rows(new.id, municipality_id)
    )


def pending_changes(kind: RegistryKind, municipality_id: int | None = None) -> Diff:
    """What the next publication of ``kind`` would change (in one municipality, if given):
    the latest snapshot against the working registry. A first publication adds everything."""
    latest = latest_snapshot(kind)
    old = iter_snapshot_rows(latest.id, municipality_id) if latest else iter(())
    return compare(old, iter_working_rows(kind, municipality_id))


def entries_of_program(program_id: int) -> list[RegistryEntry]:
    """The program's published entries still in the registry (included, or leaving at the
    next publication), for its page: number, end date, removal reason."""
    return list(
        db.session.execute(
            select(RegistryEntry)
            .where(
                RegistryEntry.program_id == program_id,
                RegistryEntry.status.in_((E.INCLUDED, E.PENDING_REMOVAL)),
            )
            .order_by(RegistryEntry.id)
        ).scalars()
    )


def excludable_review(program) -> Review | None:
    """The admitted review a coordinator would exclude the program on: its current review
    when admitted, else — while a renewal is under way — the admitted review its live
    registry entry rests on (``None``: nothing to exclude)."""
    current = program.current_review
    if current is not None and current.state == ReviewState.ADMITTED:
        return current
    return db.session.execute(
        select(Review)
        .join(Conclusion, Conclusion.review_id == Review.id)
        .join(RegistryEntry, RegistryEntry.conclusion_id == Conclusion.id)
        .where(
            RegistryEntry.program_id == program.id,
            RegistryEntry.status.in_(WORKING_STATUSES),
            Review.state == ReviewState.ADMITTED,
        )
        .order_by(Review.round.desc())
        .limit(1)
    ).scalar_one_or_none()
