"""The registry's services on both databases: entries follow real decisions and conclusions,
publication freezes numbered snapshots that never change, revocation and exclusion take
entries out at the next publication, differences, and the public selection (search, filters,
sorting, pages).

Bulk data comes from ``factories.admitted_program`` (no PDF rendered); real decisions
(``decide_review`` with a rendered conclusion) only where the registry hooks themselves are
under test.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask_login import AnonymousUserMixin

from review_portal.audit.models import AuditEvent
from review_portal.conclusions.permissions import can_download_conclusion, is_in_published_registry
from review_portal.conclusions.services import revoke_conclusion
from review_portal.enums import (
    Decision,
    Direction,
    Level,
    RegistryEntryStatus,
    RegistryKind,
    StudyForm,
)
from review_portal.extensions import db
from review_portal.registry import services
from review_portal.registry.models import RegistryEntry, RegistrySnapshot, RegistrySnapshotItem
from review_portal.registry.queries import (
    COMPARED_FIELDS,
    SORTS,
    RegistryFilters,
    compare,
    count_items,
    diff_snapshots,
    fold,
    iter_items,
    list_snapshots,
    page_items,
    pending_changes,
    select_items,
)
from review_portal.registry.services import (
    RegistryError,
    exclude_program,
    format_registry_number,
    latest_snapshot,
    publish_registry,
)
from review_portal.reviews.services import decide_review
from review_portal.scoring.services import reopen_sheet
from review_portal.settings.services import set_setting
from review_portal.workflow import ReviewState
from tests import factories

E = RegistryEntryStatus
CERTIFIED = RegistryKind.CERTIFIED
SIGNIFICANT = RegistryKind.SIGNIFICANT
#: The letters of the registry numbers (Cyrillic), as printed.
LETTER_C = "\u0421"  # С: certified
LETTER_Z = "\u0417"  # З: socially significant


@pytest.fixture
def coordinator(session):
    return factories.CoordinatorFactory()


def moscow_today() -> date:
    """Today in the portal's default time zone, computed independently of the services."""
    return datetime.now(ZoneInfo("Europe/Moscow")).date()


def admitted(coordinator, **fields):
    """A cheaply admitted program: ``(program, conclusion, entry)``."""
    return factories.admitted_program(coordinator=coordinator, **fields)


def decided(session, coordinator, totals=(16, 15), decision=None, justification=None, **fields):
    """A real review scored by two experts, decided through ``decide_review`` (the PDF
    conclusion rendered and stored): ``(review, conclusion, assignments)``."""
    review, assignments = factories.scored_review(
        *(factories.with_total(t) for t in totals), **fields
    )
    assert review.state == ReviewState.AWAITING_DECISION
    decide_review(review, coordinator, decision or review.computed_decision, justification)
    session.expire(review, ["conclusions"])
    return review, review.conclusions[-1], assignments


def entries_of(program) -> list[RegistryEntry]:
    return list(
        db.session.execute(
            sa.select(RegistryEntry)
            .where(RegistryEntry.program_id == program.id)
            .order_by(RegistryEntry.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )


def all_entries() -> list[RegistryEntry]:
    return list(
        db.session.execute(
            sa.select(RegistryEntry)
            .order_by(RegistryEntry.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )


def snapshot_table(snapshot) -> list[dict]:
    """Every column of every row of ``snapshot``, read straight from the table."""
    table = RegistrySnapshotItem.__table__
    rows = db.session.execute(
        sa.select(table).where(table.c.snapshot_id == snapshot.id).order_by(table.c.id)
    ).mappings()
    return [dict(row) for row in rows]


def snapshot_header(snapshot) -> dict:
    table = RegistrySnapshot.__table__
    return dict(
        db.session.execute(sa.select(table).where(table.c.id == snapshot.id)).mappings().one()
    )


def snapshot_count() -> int:
    return db.session.execute(sa.select(sa.func.count(RegistrySnapshot.id))).scalar_one()


def ids(rows) -> set[int]:
    return {row["entry_id"] for row in rows}


# --- entries follow real decisions --------------------------------------------------------


@pytest.mark.parametrize(
    ("totals", "override", "kind", "decision"),
    [
        pytest.param((16, 16), None, SIGNIFICANT, Decision.ADMITTED, id="admitted-significant"),
        pytest.param(
            (12, 12), Decision.ADMITTED, CERTIFIED, Decision.ADMITTED, id="admitted-by-override"
        ),
        pytest.param((12, 12), None, CERTIFIED, Decision.REVISION_REQUIRED, id="revision"),
        pytest.param((8, 8), None, CERTIFIED, Decision.REJECTED, id="rejected"),
    ],
)
def test_a_real_decision_makes_one_pending_entry_only_when_admitted(
    session, coordinator, totals, override, kind, decision
):
    """(The certified admitted case: ``test_nothing_pending_is_public_until_published``.)"""
    justification = "Программа доработана на месте." if override else None
    review, conclusion, _ = decided(
        session, coordinator, totals, override, justification, requested_registry_kind=kind
    )
    assert conclusion.decision == decision
    entries = all_entries()
    if decision != Decision.ADMITTED:
        assert entries == []
        assert not pending_changes(kind)
        return
    assert len(entries) == 1
    (entry,) = entries
    assert entry.program_id == review.program_id
    assert entry.kind == kind
    assert entry.conclusion_id == conclusion.id
    assert entry.status == E.PENDING_INCLUSION
    assert entry.registry_number is None
    assert entry.included_on is None
    assert entry.removed_on is None
    # Nothing is published by a decision.
    assert snapshot_count() == 0


def test_nothing_pending_is_public_until_published(session, coordinator):
    review, conclusion, _ = decided(session, coordinator)
    program = review.program
    anonymous = AnonymousUserMixin()
    (entry,) = all_entries()
    assert (entry.program_id, entry.kind, entry.conclusion_id) == (
        program.id,
        CERTIFIED,
        conclusion.id,
    )
    assert (entry.status, entry.registry_number) == (E.PENDING_INCLUSION, None)
    assert latest_snapshot(CERTIFIED) is None
    assert list_snapshots() == []
    assert not is_in_published_registry(program)
    assert not can_download_conclusion(anonymous, conclusion)
    assert ids(pending_changes(CERTIFIED).added) == {entries_of(program)[0].id}

    snapshot = publish_registry(CERTIFIED, coordinator)

    assert latest_snapshot(CERTIFIED).id == snapshot.id
    assert is_in_published_registry(program)
    assert can_download_conclusion(anonymous, conclusion)
    assert not pending_changes(CERTIFIED)


# --- publication ----------------------------------------------------------------------------


def test_publication_numbers_entries_in_order_and_refuses_when_nothing_changed(
    session, coordinator
):
    set_setting("region_code", "67")
    session.flush()
    today = moscow_today()
    first = [admitted(coordinator) for _ in range(3)]

    snapshot = publish_registry(CERTIFIED, coordinator)

    assert (snapshot.kind, snapshot.number, snapshot.entry_count) == (CERTIFIED, 1, 3)
    assert snapshot.published_by_id == coordinator.id
    expected = [f"67-{LETTER_C}-{n:06d}" for n in (1, 2, 3)]
    assert [format_registry_number(CERTIFIED, n) for n in (1, 2, 3)] == expected
    for (_, _, entry), number in zip(first, expected, strict=True):
        session.refresh(entry)
        assert (entry.registry_number, entry.status, entry.included_on) == (
            number,
            E.INCLUDED,
            today,
        )
        assert entry.removed_on is None
    rows = snapshot_table(snapshot)
    assert [r["entry_id"] for r in rows] == [entry.id for _, _, entry in first]
    assert [r["registry_number"] for r in rows] == expected
    assert {(r["status"], r["included_on"]) for r in rows} == {(E.INCLUDED, today)}

    # Nothing changed: refused, and nothing is written (no snapshot, no audit record).
    events = db.session.execute(sa.select(sa.func.count(AuditEvent.id))).scalar_one()
    with pytest.raises(RegistryError):
        publish_registry(CERTIFIED, coordinator)
    assert snapshot_count() == 1
    assert db.session.execute(sa.select(sa.func.count(AuditEvent.id))).scalar_one() == events

    more = [admitted(coordinator) for _ in range(2)]
    second = publish_registry(CERTIFIED, coordinator)
    assert (second.number, second.entry_count) == (2, 5)
    expected += [f"67-{LETTER_C}-000004", f"67-{LETTER_C}-000005"]
    assert [r["registry_number"] for r in snapshot_table(second)] == expected
    assert [e.registry_number for e in all_entries()] == expected

    program = more[0][0]
    exclude_program(program.current_review, coordinator, "Программа больше не реализуется.")
    third = publish_registry(CERTIFIED, coordinator)
    assert (third.number, third.entry_count) == (3, 4)
    assert [s.number for s in list_snapshots(CERTIFIED)] == [3, 2, 1]
    with pytest.raises(RegistryError):
        publish_registry(CERTIFIED, coordinator)
    assert snapshot_count() == 3
    # A new entry after a removal continues the sequence (numbers are never reused).
    admitted(coordinator)
    fourth = publish_registry(CERTIFIED, coordinator)
    assert snapshot_table(fourth)[-1]["registry_number"] == f"67-{LETTER_C}-000006"


def test_numbering_continues_after_the_region_code_is_corrected(session, coordinator):
    """A region code entered wrongly ("76") and corrected ("67") after a publication: the
    sequence continues (numbers of a kind never repeat) and every later publication works."""
    set_setting("region_code", "76")
    admitted(coordinator)
    publish_registry(CERTIFIED, coordinator)
    set_setting("region_code", "67")
    for expected in (2, 3, 4):
        _, _, entry = admitted(coordinator)
        publish_registry(CERTIFIED, coordinator)
        session.refresh(entry)
        assert entry.registry_number == f"67-{LETTER_C}-{expected:06d}"
    assert [e.registry_number for e in all_entries()] == [
        f"76-{LETTER_C}-000001",
        f"67-{LETTER_C}-000002",
        f"67-{LETTER_C}-000003",
        f"67-{LETTER_C}-000004",
    ]


def test_a_first_publication_needs_an_entry(session, coordinator):
    with pytest.raises(RegistryError):
        publish_registry(CERTIFIED, coordinator)
    # An entry revoked before any publication is no entry at all.
    _, conclusion, entry = admitted(coordinator)
    revoke_conclusion(conclusion, coordinator, "Отозвано до публикации.")
    session.refresh(entry)
    assert (entry.status, entry.registry_number, entry.removed_on) == (E.REMOVED, None, None)
    assert not pending_changes(CERTIFIED)
    with pytest.raises(RegistryError):
        publish_registry(CERTIFIED, coordinator)
    assert snapshot_count() == 0


def test_kinds_are_published_and_numbered_independently(session, coordinator):
    _, _, c1 = admitted(coordinator)
    _, _, s1 = admitted(coordinator, requested_registry_kind=SIGNIFICANT)
    _, _, c2 = admitted(coordinator)
    assert s1.kind == SIGNIFICANT

    certified = publish_registry(CERTIFIED, coordinator)

    assert [r["entry_id"] for r in snapshot_table(certified)] == [c1.id, c2.id]
    assert [r["registry_number"] for r in snapshot_table(certified)] == [
        f"00-{LETTER_C}-000001",
        f"00-{LETTER_C}-000002",
    ]
    session.refresh(s1)
    assert (s1.status, s1.registry_number) == (E.PENDING_INCLUSION, None)
    assert latest_snapshot(SIGNIFICANT) is None
    assert ids(pending_changes(SIGNIFICANT).added) == {s1.id}
    with pytest.raises(RegistryError):
        publish_registry(RegistryKind.GENERAL, coordinator)

    significant = publish_registry(SIGNIFICANT, coordinator)

    assert (significant.kind, significant.number, significant.entry_count) == (SIGNIFICANT, 1, 1)
    assert [r["registry_number"] for r in snapshot_table(significant)] == [f"00-{LETTER_Z}-000001"]
    _, _, c3 = admitted(coordinator)
    again = publish_registry(CERTIFIED, coordinator)
    assert again.number == 2
    session.refresh(c3)
    assert c3.registry_number == f"00-{LETTER_C}-000003"
    assert latest_snapshot(SIGNIFICANT).id == significant.id
    assert [s.kind for s in list_snapshots()].count(SIGNIFICANT) == 1


# --- immutability -------------------------------------------------------------------------


def test_a_published_snapshot_never_changes(session, coordinator):
    made = [admitted(coordinator, title=f"Программа {i}") for i in range(4)]
    first = publish_registry(CERTIFIED, coordinator)
    session.flush()
    frozen_rows = snapshot_table(first)
    frozen_header = snapshot_header(first)
    assert len(frozen_rows) == 4
    (p0, _, _), (_, c1, _), (p2, _, _), (p3, _, _) = made

    # Everything that can happen afterwards:
    exclude_program(p0.current_review, coordinator, "Программа больше не реализуется.")
    revoke_conclusion(c1, coordinator, "Ошибка в заключении.")
    newcomer, _, _ = admitted(coordinator, title="Новая программа")
    organization = p2.organization
    organization.short_name = "Переименованная организация"
    organization.full_name = "Полностью переименованная организация"
    organization.inn = factories.make_inn()
    p3.title = "Изменённое название"
    p3.age_min, p3.age_max, p3.total_hours = 3, 18, 144
    p3.adapted_for_disabilities = True
    p3.municipality.name = "Переименованный округ"
    session.flush()
    second = publish_registry(CERTIFIED, coordinator)
    admitted(coordinator, title="Ещё одна программа")
    third = publish_registry(CERTIFIED, coordinator)
    session.flush()
    session.expire_all()

    assert snapshot_table(first) == frozen_rows
    assert snapshot_header(first) == frozen_header
    # The later snapshots show the changes (the reviewed version's data, current names).
    rows = {r["program_id"]: r for r in snapshot_table(second)}
    assert set(rows) == {p2.id, p3.id, newcomer.id}
    assert rows[p2.id]["organization_name"] == "Переименованная организация"
    assert rows[p3.id]["title"] == "Программа 3"
    assert rows[p3.id]["municipality_name"] == "Переименованный округ"
    assert snapshot_header(third)["number"] == 3
    assert snapshot_table(first) == frozen_rows


# --- revocation -----------------------------------------------------------------------------


def test_revoking_a_published_conclusion_removes_the_entry_at_the_next_publication(
    session, coordinator
):
    review, conclusion, _ = decided(session, coordinator)
    program = review.program
    first = publish_registry(CERTIFIED, coordinator)
    (entry,) = entries_of(program)
    number = entry.registry_number
    assert number is not None

    revoke_conclusion(conclusion, coordinator, "Выявлено несоответствие программы.")

    (entry,) = entries_of(program)
    assert (entry.status, entry.registry_number) == (E.PENDING_REMOVAL, number)
    assert entry.removed_on is None
    assert entry.removal_reason == "Выявлено несоответствие программы."
    # The public still sees it until the next publication.
    assert latest_snapshot(CERTIFIED).id == first.id
    assert ids(snapshot_table(first)) == {entry.id}
    assert is_in_published_registry(program)
    changes = pending_changes(CERTIFIED)
    assert (ids(changes.added), ids(changes.removed), changes.changed) == (set(), {entry.id}, [])

    second = publish_registry(CERTIFIED, coordinator)

    (entry,) = entries_of(program)
    assert (entry.status, entry.removed_on, entry.registry_number) == (
        E.REMOVED,
        moscow_today(),
        number,
    )
    assert snapshot_table(second) == []
    assert second.entry_count == 0
    assert not is_in_published_registry(program)
    assert ids(diff_snapshots(first, second).removed) == {entry.id}
    assert ids(snapshot_table(first)) == {entry.id}


def test_revoking_a_never_published_entry_drops_it_at_once(session, coordinator):
    admitted(coordinator)
    publish_registry(CERTIFIED, coordinator)
    review, conclusion, _ = decided(session, coordinator)
    program = review.program

    revoke_conclusion(conclusion, coordinator, "Заключение выдано по ошибке.")

    (entry,) = entries_of(program)
    assert entry.status == E.REMOVED
    assert (entry.registry_number, entry.included_on, entry.removed_on) == (None, None, None)
    changes = pending_changes(CERTIFIED)
    assert not changes
    assert entry.id not in ids(changes.removed)
    with pytest.raises(RegistryError):
        publish_registry(CERTIFIED, coordinator)
    (entry,) = entries_of(program)
    assert entry.registry_number is None
    assert not is_in_published_registry(program)


def test_a_revoked_then_readmitted_program_keeps_its_entry_and_number(session, coordinator):
    review, first_conclusion, assignments = decided(session, coordinator, (16, 15))
    program = review.program
    first = publish_registry(CERTIFIED, coordinator)
    (entry,) = entries_of(program)
    number, included_on = entry.registry_number, entry.included_on

    revoke_conclusion(first_conclusion, coordinator, "Пересмотр оценки.")
    # An expert rescores (sheet reopened by the coordinator); then the new decision.
    reopen_sheet(assignments[1].sheet, coordinator, "Пересмотр оценки.")
    factories.submit_scores(assignments[1], factories.with_total(17))
    assert review.state == ReviewState.AWAITING_DECISION
    decide_review(review, coordinator, review.computed_decision)
    session.expire(review, ["conclusions"])
    second_conclusion = review.conclusions[-1]
    assert second_conclusion.decision == Decision.ADMITTED
    assert second_conclusion.percent != first_conclusion.percent

    (again,) = entries_of(program)
    assert again.id == entry.id
    assert (again.status, again.registry_number, again.included_on) == (
        E.INCLUDED,
        number,
        included_on,
    )
    assert again.conclusion_id == second_conclusion.id
    assert again.removal_reason is None
    changes = pending_changes(CERTIFIED)
    assert changes.added == [] and changes.removed == []
    (change,) = changes.changed
    assert change.new["entry_id"] == entry.id
    assert {"conclusion_number", "final_percent"} <= set(change.fields)
    assert set(change.fields) <= {"conclusion_number", "conclusion_date", "final_percent"}
    assert change.new["conclusion_number"] == second_conclusion.number
    assert change.new["final_percent"] == second_conclusion.percent

    second = publish_registry(CERTIFIED, coordinator)

    (row,) = snapshot_table(second)
    assert (row["entry_id"], row["registry_number"], row["included_on"]) == (
        entry.id,
        number,
        included_on,
    )
    assert row["conclusion_number"] == second_conclusion.number
    diff = diff_snapshots(first, second)
    assert (diff.added, diff.removed, [c.new["entry_id"] for c in diff.changed]) == (
        [],
        [],
        [entry.id],
    )
    assert is_in_published_registry(program)
    # Only the conclusion the registry lists is public: not the revoked one.
    anonymous = AnonymousUserMixin()
    assert can_download_conclusion(anonymous, second_conclusion)
    assert not can_download_conclusion(anonymous, first_conclusion)


# --- exclusion ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   \n", None], ids=["empty", "blank", "none"])
def test_exclusion_needs_a_reason_and_changes_nothing_without_one(session, coordinator, reason):
    program, _, entry = admitted(coordinator)
    publish_registry(CERTIFIED, coordinator)
    session.refresh(entry)
    events = db.session.execute(sa.select(sa.func.count(AuditEvent.id))).scalar_one()

    with pytest.raises(RegistryError):
        exclude_program(program.current_review, coordinator, reason)

    session.expire_all()
    assert program.current_review.state == ReviewState.ADMITTED
    (entry,) = entries_of(program)
    assert (entry.status, entry.removal_reason) == (E.INCLUDED, None)
    assert db.session.execute(sa.select(sa.func.count(AuditEvent.id))).scalar_one() == events


@pytest.mark.parametrize(
    "state", ["draft", "in_review", "awaiting_decision", "revision_required", "excluded"]
)
def test_only_an_admitted_program_can_be_excluded(session, coordinator, state):
    from review_portal.workflow import advance

    if state == "draft":
        program = factories.ProgramFactory()
    elif state == "excluded":
        program, _, _ = admitted(coordinator)
        exclude_program(program.current_review, coordinator, "Первое исключение.")
    else:
        program = factories.program_in_review(coordinator)
        if state != "in_review":
            advance(program.current_review, ReviewState.AWAITING_DECISION, None)
        if state == "revision_required":
            advance(program.current_review, ReviewState.REVISION_REQUIRED, coordinator)
    before = program.current_review.state
    assert before.value == state

    with pytest.raises(RegistryError):
        exclude_program(program.current_review, coordinator, "Причина исключения.")

    assert program.current_review.state == before


@pytest.mark.parametrize("published", [True, False], ids=["published", "pending"])
def test_exclusion_takes_the_entry_out(session, coordinator, published):
    program, _, entry = admitted(coordinator)
    admitted(coordinator)  # another entry, so the registry is never empty
    if published:
        publish_registry(CERTIFIED, coordinator)
        session.refresh(entry)
    number = entry.registry_number

    review = exclude_program(program.current_review, coordinator, "Поставщик прекратил работу.")

    assert review.state == ReviewState.EXCLUDED
    assert program.state == ReviewState.EXCLUDED
    (entry,) = entries_of(program)
    assert entry.removal_reason == "Поставщик прекратил работу."
    if published:
        assert (entry.status, entry.removed_on) == (E.PENDING_REMOVAL, None)
        assert is_in_published_registry(program)
        assert ids(pending_changes(CERTIFIED).removed) == {entry.id}
    else:
        assert (entry.status, entry.registry_number, entry.removed_on) == (E.REMOVED, None, None)
        assert not pending_changes(CERTIFIED).removed

    snapshot = publish_registry(CERTIFIED, coordinator)

    (entry,) = entries_of(program)
    assert entry.status == E.REMOVED
    assert entry.registry_number == number
    assert entry.removed_on == (moscow_today() if published else None)
    assert entry.id not in ids(snapshot_table(snapshot))
    assert not is_in_published_registry(program)


# --- differences ----------------------------------------------------------------------------


def _diff_ids(diff) -> tuple[set[int], set[int], dict[int, tuple[str, ...]]]:
    return (
        ids(diff.added),
        ids(diff.removed),
        {c.new["entry_id"]: c.fields for c in diff.changed},
    )


def test_differences_between_snapshots_and_pending_changes(session, coordinator):
    m1 = factories.MunicipalityFactory(name="Город Ельня")
    m2 = factories.MunicipalityFactory(name="Вяземский район")
    org = {m: factories.OrganizationFactory(municipality=m) for m in (m1, m2)}
    renamed = factories.OrganizationFactory(municipality=m1)
    a = admitted(coordinator, organization=org[m1])
    b = admitted(coordinator, organization=renamed)
    c = admitted(coordinator, organization=org[m2])
    d = admitted(coordinator, organization=org[m2])
    first = publish_registry(CERTIFIED, coordinator)

    exclude_program(a[0].current_review, coordinator, "Исключена.")  # removed, m1
    revoke_conclusion(c[1], coordinator, "Отозвано.")  # removed, m2
    e = admitted(coordinator, organization=org[m1])  # added, m1
    f = admitted(coordinator, organization=org[m2])  # added, m2
    renamed.short_name = "Новое краткое имя"  # changed, m1
    session.flush()
    entry = {name: made[2].id for name, made in zip("abcdef", (a, b, c, d, e, f), strict=True)}

    expected_all = (
        {entry["e"], entry["f"]},
        {entry["a"], entry["c"]},
        {entry["b"]: ("organization_name",)},
    )
    expected_m1 = ({entry["e"]}, {entry["a"]}, {entry["b"]: ("organization_name",)})
    expected_m2 = ({entry["f"]}, {entry["c"]}, {})
    assert _diff_ids(pending_changes(CERTIFIED)) == expected_all
    assert _diff_ids(pending_changes(CERTIFIED, m1.id)) == expected_m1
    assert _diff_ids(pending_changes(CERTIFIED, m2.id)) == expected_m2
    (change,) = pending_changes(CERTIFIED).changed
    assert change.new["organization_name"] == "Новое краткое имя"
    assert change.old["organization_name"] != "Новое краткое имя"

    second = publish_registry(CERTIFIED, coordinator)

    assert _diff_ids(diff_snapshots(first, second)) == expected_all
    assert _diff_ids(diff_snapshots(first, second, m1.id)) == expected_m1
    assert _diff_ids(diff_snapshots(first, second, m2.id)) == expected_m2
    backwards = diff_snapshots(second, first)
    assert _diff_ids(backwards) == (
        {entry["a"], entry["c"]},
        {entry["e"], entry["f"]},
        {entry["b"]: ("organization_name",)},
    )
    assert not diff_snapshots(second, second)
    assert not pending_changes(CERTIFIED)
    assert not pending_changes(CERTIFIED, m1.id)
    assert entry["d"] in ids(snapshot_table(second))


def _row(entry_id, **changes):
    row = {
        "entry_id": entry_id,
        "registry_number": f"00-{LETTER_C}-{entry_id:06d}",
        "title": "Программа",
        "organization_name": "Организация",
        "organization_inn": "6731000000",
        "municipality_id": 1,
        "municipality_name": "Округ",
        "direction": Direction.TECHNICAL,
        "level": Level.BASIC,
        "age_min": 7,
        "age_max": 11,
        "total_hours": 72,
        "modules": [],
        "study_form": StudyForm.FULL_TIME,
        "adapted_for_disabilities": False,
        "conclusion_number": "00-2026-00001",
        "conclusion_date": date(2026, 3, 1),
        "final_percent": Decimal("85.00"),
        "included_on": date(2026, 3, 2),
        "status": E.INCLUDED,
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param([], [], ((), (), {}), id="empty"),
        pytest.param([], [_row(1), _row(2)], ((1, 2), (), {}), id="all-added"),
        pytest.param([_row(1), _row(2)], [], ((), (1, 2), {}), id="all-removed"),
        pytest.param([_row(1)], [_row(1)], ((), (), {}), id="same"),
        pytest.param(
            [_row(1), _row(2), _row(3)],
            [_row(3), _row(1, title="Другая", final_percent=Decimal("90.00")), _row(4)],
            ((4,), (2,), {1: ("title", "final_percent")}),
            id="mixed",
        ),
        pytest.param(
            [_row(1)],
            [_row(1, registry_number=None, included_on=None, status=E.PENDING_REMOVAL)],
            ((), (), {}),
            id="registry-own-columns-ignored",
        ),
        pytest.param(
            [_row(1)],
            [_row(1, **dict.fromkeys(COMPARED_FIELDS))],
            ((), (), {1: COMPARED_FIELDS}),
            id="every-compared-field",
        ),
    ],
)
def test_compare(old, new, expected):
    diff = compare(old, new)
    added, removed, changed = expected
    assert [r["entry_id"] for r in diff.added] == list(added)
    assert [r["entry_id"] for r in diff.removed] == list(removed)
    assert {c.new["entry_id"]: c.fields for c in diff.changed} == changed
    assert bool(diff) == bool(added or removed or changed)
    for change in diff.changed:
        assert change.old is next(r for r in old if r["entry_id"] == change.old["entry_id"])


# --- the public selection: search, filters, sorting, pages -----------------------------------

D, L, F = Direction, Level, StudyForm
#: key: (title, short name, full name, direction, level, ages, form, ОВЗ, municipality)
CATALOGUE = {
    "yolka": (
        "Ёлочные игрушки своими руками",
        "ДДТ «Радуга»",
        "Муниципальное бюджетное учреждение «Дом детского творчества»",
        D.ARTS,
        L.INTRODUCTORY,
        (5, 9),
        F.FULL_TIME,
        True,
        "m1",
    ),
    "robot": (
        "РОБОТОТЕХНИКА: СТАРТ",
        "Кванториум",
        "Государственное автономное учреждение «Детский технопарк»",
        D.TECHNICAL,
        L.BASIC,
        (10, 14),
        F.PART_TIME,
        False,
        "m2",
    ),
    "percent": (
        "Скидка 100% знаний",
        "ИП Ёжиков А. В.",
        "Индивидуальный предприниматель Ёжиков Алексей Викторович",
        D.SOCIAL_HUMANITARIAN,
        L.ADVANCED,
        (14, 18),
        F.DISTANCE,
        False,
        "m1",
    ),
    "thousand": (
        "1000 вопросов о природе",
        "Станция юннатов",
        "МБУ ДО «Станция юных натуралистов»",
        D.NATURAL_SCIENCE,
        L.INTRODUCTORY,
        (7, 11),
        F.FULL_TIME,
        True,
        "m2",
    ),
    "underscore": (
        "Программа a_b",
        "Клуб «Код»",
        "АНО «Клуб программистов»",
        D.TECHNICAL,
        L.ADVANCED,
        (12, 17),
        F.DISTANCE,
        False,
        "m1",
    ),
    "axb": (
        "Программа aXb",
        "Клуб «Байт»",
        "АНО «Байт»",
        D.TECHNICAL,
        L.INTRODUCTORY,
        (9, 12),
        F.FULL_TIME,
        True,
        "m2",
    ),
    "chess": (
        "Шахматы для всех",
        "Шахматный клуб «Ладья»",
        "МАУ ДО «Шахматный клуб Ладья»",
        D.PHYSICAL_SPORTS,
        L.BASIC,
        (6, 10),
        F.PART_TIME,
        True,
        "m1",
    ),
    "backslash": (
        "Рисунки C:\\Краски",
        "Студия «Палитра»",
        "ООО «Палитра»",
        D.ARTS,
        L.BASIC,
        (8, 12),
        F.FULL_TIME,
        False,
        "m2",
    ),
}
EVERYTHING = set(CATALOGUE)

#: (filters, the catalogue keys selected); "m1"/"m2" stand for the municipalities' ids.
FILTER_CASES = [
    # search: case and ё folded, title and both organization names, every word must match
    ({"q": "ёлочные"}, {"yolka"}),
    ({"q": "ЕЛОЧНЫЕ"}, {"yolka"}),
    ({"q": "  елочные   ИГРУШКИ "}, {"yolka"}),
    ({"q": "игрушки ёлочные"}, {"yolka"}),
    ({"q": "елочные шахматы"}, set()),
    ({"q": "радуга"}, {"yolka"}),
    ({"q": "ТВОРЧЕСТВА"}, {"yolka"}),
    ({"q": "ежиков"}, {"percent"}),
    ({"q": "ЁЖИКОВ"}, {"percent"}),
    ({"q": "робототехника старт"}, {"robot"}),
    ({"q": "шахматы ладья"}, {"chess"}),
    ({"q": "программа"}, {"underscore", "axb"}),
    ({"q": "программ"}, {"underscore", "axb"}),
    ({"q": "ельня"}, set()),  # the municipality is a filter, not searched
    ({"q": "   "}, EVERYTHING),
    # LIKE wildcards and the escape character are literal
    ({"q": "100%"}, {"percent"}),
    ({"q": "%"}, {"percent"}),
    ({"q": "a_b"}, {"underscore"}),
    ({"q": "_"}, {"underscore"}),
    ({"q": "c:\\краски"}, {"backslash"}),
    ({"q": "\\"}, {"backslash"}),
    ({"q": "\\%"}, set()),
    # age: inside the program's range, both ends included
    ({"age": 3}, set()),
    ({"age": 4}, set()),
    ({"age": 5}, {"yolka"}),
    ({"age": 9}, {"yolka", "thousand", "axb", "chess", "backslash"}),
    ({"age": 10}, {"robot", "thousand", "axb", "chess", "backslash"}),
    ({"age": 14}, {"robot", "percent", "underscore"}),
    ({"age": 18}, {"percent"}),
    # one filter at a time
    ({"municipality_id": "m1"}, {"yolka", "percent", "underscore", "chess"}),
    ({"municipality_id": "m2"}, {"robot", "thousand", "axb", "backslash"}),
    ({"direction": D.TECHNICAL}, {"robot", "underscore", "axb"}),
    ({"direction": D.ARTS}, {"yolka", "backslash"}),
    ({"direction": D.TOURISM_LOCAL_HISTORY}, set()),
    ({"level": L.INTRODUCTORY}, {"yolka", "thousand", "axb"}),
    ({"level": L.ADVANCED}, {"percent", "underscore"}),
    ({"study_form": F.FULL_TIME}, {"yolka", "thousand", "axb", "backslash"}),
    ({"study_form": F.PART_TIME}, {"robot", "chess"}),
    ({"study_form": F.DISTANCE}, {"percent", "underscore"}),
    ({"ovz": True}, {"yolka", "thousand", "axb", "chess"}),
    ({"ovz": False}, {"robot", "percent", "underscore", "backslash"}),
    ({"ovz": None}, EVERYTHING),
    # combined
    ({"municipality_id": "m1", "ovz": True}, {"yolka", "chess"}),
    ({"direction": D.TECHNICAL, "age": 13}, {"robot", "underscore"}),
    ({"direction": D.TECHNICAL, "age": 12}, {"robot", "underscore", "axb"}),
    ({"q": "программа", "level": L.ADVANCED}, {"underscore"}),
    ({"municipality_id": "m2", "study_form": F.FULL_TIME, "ovz": False}, {"backslash"}),
    ({"level": L.INTRODUCTORY, "age": 7, "ovz": True}, {"yolka", "thousand"}),
    ({"municipality_id": "m1", "direction": D.TECHNICAL, "ovz": False}, {"underscore"}),
    (
        {
            "q": "шахматы",
            "municipality_id": "m1",
            "direction": D.PHYSICAL_SPORTS,
            "level": L.BASIC,
            "age": 6,
            "study_form": F.PART_TIME,
            "ovz": True,
        },
        {"chess"},
    ),
    (
        {
            "q": "шахматы",
            "municipality_id": "m1",
            "direction": D.PHYSICAL_SPORTS,
            "level": L.BASIC,
            "age": 6,
            "study_form": F.PART_TIME,
            "ovz": False,
        },
        set(),
    ),
    ({"q": "шахматы", "municipality_id": "m2"}, set()),
]


def publish_catalogue(coordinator) -> tuple[RegistrySnapshot, dict[str, int], dict[str, int]]:
    """The catalogue admitted and published (with one program of another kind and one
    excluded before publication, neither of which may show): the snapshot, the
    municipalities' ids and each key's program id."""
    municipalities = {
        "m1": factories.MunicipalityFactory(name="Город Ельня"),
        "m2": factories.MunicipalityFactory(name="Вяземский район"),
    }
    programs = {}
    for key, (title, short, full, direction, level, ages, form, ovz, m) in CATALOGUE.items():
        organization = factories.OrganizationFactory(
            short_name=short, full_name=full, municipality=municipalities[m]
        )
        program, _, _ = admitted(
            coordinator,
            title=title,
            organization=organization,
            direction=direction,
            level=level,
            age_min=ages[0],
            age_max=ages[1],
            study_form=form,
            adapted_for_disabilities=ovz,
        )
        programs[key] = program.id
    admitted(coordinator, title="Ёлочные игрушки: значимая", requested_registry_kind=SIGNIFICANT)
    gone, _, _ = admitted(coordinator, title="Ёлочные игрушки: исключённая")
    exclude_program(gone.current_review, coordinator, "Исключена до публикации.")
    snapshot = publish_registry(CERTIFIED, coordinator)
    return snapshot, {k: m.id for k, m in municipalities.items()}, programs


def test_filters_select_the_right_programs(session, coordinator):
    snapshot, municipalities, programs = publish_catalogue(coordinator)
    key_of = {program_id: key for key, program_id in programs.items()}
    failures = []
    for fields, expected in FILTER_CASES:
        fields = dict(fields)
        if "municipality_id" in fields:
            fields["municipality_id"] = municipalities[fields["municipality_id"]]
        filters = RegistryFilters(**fields)
        page = page_items(snapshot.id, filters, per_page=100)
        selected = [key_of[row["program_id"]] for row in page.items]
        counted = count_items(snapshot.id, filters)
        if set(selected) != expected or len(selected) != len(expected) or counted != page.total:
            failures.append((fields, sorted(expected), sorted(selected), counted, page.total))
        elif page.total != len(expected):
            failures.append((fields, "total", page.total))
    assert failures == []


def search_index_rows(snapshot) -> set[int] | None:
    """The item ids of ``snapshot`` SQLite's search index holds (``None``: no index)."""
    from review_portal.registry.queries import SEARCH_INDEX, search_index_ready

    if not search_index_ready():
        return None
    items = {r["id"] for r in snapshot_table(snapshot)}
    found = db.session.execute(
        sa.text(f"SELECT rowid FROM {SEARCH_INDEX} WHERE {SEARCH_INDEX} MATCH :q"),
        {"q": '"мыш"'},
    ).scalars()
    return set(found) & items


def test_the_sqlite_search_index_finds_what_like_finds(session, coordinator, backend, monkeypatch):
    """Every search of the catalogue, with SQLite's trigram index and with the plain LIKE
    scan, selects the same rows; the index is there on SQLite (3.34+) and used for words of
    three characters or more."""
    from review_portal.registry import queries

    if backend == "sqlite":
        assert queries.search_index_ready()
    snapshot, _, _ = publish_catalogue(coordinator)
    words = sorted({fields["q"] for fields, _ in FILTER_CASES if "q" in fields})
    words += ["ёлоч", "ка", "ооо", 'а"б', "ладья клуб", "творч 100", "мбу до"]

    def selection(q):
        filters = RegistryFilters(q=q)
        return (
            [row["id"] for row in page_items(snapshot.id, filters, per_page=100).items],
            count_items(snapshot.id, filters),
        )

    indexed = {q: selection(q) for q in words}
    with monkeypatch.context() as patch:
        patch.setattr(queries, "search_index_ready", lambda: False)
        scanned = {q: selection(q) for q in words}
    assert indexed == scanned
    assert scanned["ладья клуб"][1] == 1 and scanned["ка"][1] > 1
    conditions = queries.search_conditions(["ёлоч", "ка"])
    compiled = " ".join(str(c.compile(db.engine)) for c in conditions)
    assert ("MATCH" in compiled) == (backend == "sqlite")
    assert "LIKE" in compiled


def test_the_search_index_follows_the_published_and_deleted_rows(session, coordinator, backend):
    """Triggers keep SQLite's index in step: a publication's rows are in it (same
    transaction), a deleted snapshot's rows leave it."""
    admitted(coordinator, title="Мышата и мышки")
    first = publish_registry(CERTIFIED, coordinator)
    admitted(coordinator, title="Летучие мыши")
    second = publish_registry(CERTIFIED, coordinator)
    session.flush()
    if backend != "sqlite":
        assert search_index_rows(first) is None
        return
    assert len(search_index_rows(first)) == 1
    assert len(search_index_rows(second)) == 2
    doomed = {r["id"] for r in snapshot_table(second)}
    db.session.execute(sa.delete(RegistrySnapshot).where(RegistrySnapshot.id == second.id))
    assert not snapshot_table(second)
    found = db.session.execute(
        sa.text("SELECT rowid FROM registry_snapshot_items_fts WHERE search_text MATCH :q"),
        {"q": '"мыш"'},
    ).scalars()
    assert doomed.isdisjoint(found)
    assert len(search_index_rows(first)) == 1


def test_the_publication_copies_what_the_working_registry_holds(session, coordinator):
    """The copy inside the database (``INSERT … SELECT``) writes exactly the rows the
    working registry reads in Python: folded search text, the conclusion's local date,
    modules, numbers and end dates."""
    from review_portal.registry.queries import iter_working_rows

    set_setting("timezone", "Asia/Vladivostok", coordinator)
    publish_catalogue(coordinator)
    admitted(coordinator, title="Второй выпуск: ЁЖ")
    snapshot = publish_registry(CERTIFIED, coordinator)
    expected = [dict(row) for row in iter_working_rows(CERTIFIED, statuses=(E.INCLUDED,))]
    copied = snapshot_table(snapshot)
    assert len(copied) == len(expected) == snapshot.entry_count == len(CATALOGUE) + 1
    for row, want in zip(copied, expected, strict=True):
        assert {k: row[k] for k in want} == want
        assert row["snapshot_id"] == snapshot.id
    assert copied[-1]["search_text"].startswith("второй выпуск: еж ")


def test_the_streamed_summary_digests_the_changes_as_fingerprint_does():
    from review_portal.registry.queries import fingerprint, iter_compare, summarize

    def row(entry_id, title, **other):
        return {"entry_id": entry_id, **dict.fromkeys(COMPARED_FIELDS, "x"), "title": title}

    old = [row(1, "a"), row(2, "b"), row(4, "d"), row(6, "f")]
    new = [row(2, "b"), row(3, "c"), row(4, "D"), row(5, "e"), row(7, "g")]
    summary = summarize(iter_compare(old, new))
    diff = compare(old, new)
    assert (summary.added, summary.removed, summary.changed) == (3, 2, 1)
    assert summary.fingerprint == fingerprint(diff)
    empty = summarize(iter_compare([], []))
    assert not empty and empty.fingerprint == fingerprint(compare([], []))


def test_search_folds_like_the_stored_search_text():
    assert fold("  ЁЛКА   Ёжик ") == "елка ежик"
    assert fold("Дом Детского ТВОРЧЕСТВА") == "дом детского творчества"
    assert fold(None) == ""


SORT_CATALOGUE = [
    # (title, organization, municipality, percent)
    ("Бета", "Орг Б", "Район Б", "85.00"),
    ("Альфа", "Орг Б", "Район А", "90.00"),
    ("Гамма", "Орг А", "Район Б", "72.50"),
    ("Бета", "Орг А", "Район А", "90.00"),
    ("Альфа", "Орг А", "Район Б", "85.00"),
    ("Бета", "Орг Б", "Район А", "85.00"),
    ("Гамма", "Орг Б", "Район А", "100.00"),
]


def expected_order(rows, sort):
    keys = {
        "number": lambda r: (r["registry_number"], r["id"]),
        "title": lambda r: (r["title"], r["id"]),
        "organization": lambda r: (r["organization_name"], r["title"], r["id"]),
        "municipality": lambda r: (r["municipality_name"], r["title"], r["id"]),
        "percent": lambda r: (-r["final_percent"], r["id"]),
        "included": lambda r: (-r["included_on"].toordinal(), r["registry_number"], r["id"]),
    }
    return [r["id"] for r in sorted(rows, key=keys[sort])]


def test_every_sort_is_stable_and_pages_cover_the_selection(session, coordinator, monkeypatch):
    municipalities = {n: factories.MunicipalityFactory(name=n) for n in ("Район А", "Район Б")}
    organizations = {}
    # Published on two days, so "included" has something to order by.
    monkeypatch.setattr(services, "local_today", lambda: date(2026, 3, 1))
    for i, (title, org, municipality, percent) in enumerate(SORT_CATALOGUE):
        if i == 4:
            publish_registry(CERTIFIED, coordinator)
            monkeypatch.setattr(services, "local_today", lambda: date(2026, 3, 2))
        key = (org, municipality)
        if key not in organizations:
            organizations[key] = factories.OrganizationFactory(
                short_name=org, municipality=municipalities[municipality]
            )
        admitted(coordinator, percent=percent, title=title, organization=organizations[key])
    snapshot = publish_registry(CERTIFIED, coordinator)
    everything = snapshot_table(snapshot)
    assert {r["included_on"] for r in everything} == {date(2026, 3, 1), date(2026, 3, 2)}
    assert set(SORTS) == {"number", "title", "organization", "municipality", "percent", "included"}
    selections = [
        (RegistryFilters(), everything),
        (
            RegistryFilters(municipality_id=municipalities["Район А"].id),
            [r for r in everything if r["municipality_name"] == "Район А"],
        ),
        (RegistryFilters(q="бета"), [r for r in everything if r["title"] == "Бета"]),
    ]
    for sort in SORTS:
        for base, rows in selections:
            filters = RegistryFilters(**{**base.__dict__, "sort": sort})
            expected = expected_order(rows, sort)
            full = [r.id for r in db.session.execute(select_items(snapshot.id, filters))]
            assert full == expected, sort
            assert [r["id"] for r in iter_items(snapshot.id, filters, chunk=2)] == expected
            for per_page in (2, 3):
                seen = []
                for number in range(1, len(expected) + 2):
                    page = page_items(snapshot.id, filters, page=number, per_page=per_page)
                    assert page.total == len(expected)
                    assert len(page.items) <= per_page
                    seen += [r["id"] for r in page.items]
                assert seen == expected, (sort, per_page)  # no overlap, no gap, same order
                assert page.pages == max(1, -(-len(expected) // per_page))
    # An unknown sort key falls back to the registry number.
    bogus = db.session.execute(select_items(snapshot.id, RegistryFilters(sort="x")))
    bogus = [r.id for r in bogus]
    assert bogus == expected_order(everything, "number")


def test_page_bounds_are_clamped(session, coordinator):
    for _ in range(3):
        admitted(coordinator)
    snapshot = publish_registry(CERTIFIED, coordinator)
    page = page_items(snapshot.id, RegistryFilters(), page=0, per_page=0)
    assert (page.page, page.per_page, len(page.items), page.total) == (1, 1, 1, 3)
    page = page_items(snapshot.id, RegistryFilters(), page=-5, per_page=10_000)
    assert (page.page, page.per_page, len(page.items)) == (1, 500, 3)
    page = page_items(snapshot.id, RegistryFilters(), page=9, per_page=2)
    assert (page.items, page.total, page.pages) == ([], 3, 2)
