"""The analytics dashboard: its figures on constructed seasons, severity, the equality of
every chart with its table and its CSV, the municipal view and the statement count."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from review_portal.analytics import services
from review_portal.analytics.services import Scope
from review_portal.assignment.models import Assignment
from review_portal.assignment.services import local_today
from review_portal.enums import AssignmentRole, AssignmentStatus, Direction
from review_portal.extensions import db
from review_portal.reviews.services import decide_review
from review_portal.scoring.services import SheetInput, reopen_sheet, save_sheet
from review_portal.workflow import ReviewState
from tests.factories import (
    CoordinatorFactory,
    MunicipalityFactory,
    MunicipalViewerFactory,
    OrganizationFactory,
    add_assignment,
    admitted_program,
    expert,
    program_in_review,
    submit_scores,
    with_total,
)


def season() -> Scope:
    return Scope.for_season(local_today().year)


def review_with(coordinator, sheets, *, decide=False, **program_fields):
    """A program in expertise whose given experts submitted sheets of the given totals (a
    third one as a third expert)."""
    program = program_in_review(coordinator, **program_fields)
    review = program.current_review
    assignments = [
        add_assignment(review, user, seat, role=AssignmentRole.THIRD if seat == 3 else None)
        for seat, (user, _) in enumerate(sheets, 1)
    ]
    for assignment, (_, total) in zip(assignments, sheets, strict=True):
        submit_scores(assignment, with_total(total))
    if decide and review.state == ReviewState.AWAITING_DECISION:
        decide_review(review, coordinator, review.computed_decision, issue=False)
    return review


@pytest.fixture
def coordinator(session):
    return CoordinatorFactory()


# --- severity --------------------------------------------------------------------------------


def test_severity_is_the_mean_difference_from_the_other_experts(coordinator):
    strict, lenient, fair = (
        expert(full_name="Строгий"),
        expert(full_name="Мягкий"),
        expert(full_name="Ровный"),
    )
    # Totals out of 20 (1 point = 5 percentage points of the maximum).
    first = review_with(coordinator, [(strict, 12), (lenient, 16)])
    review_with(coordinator, [(strict, 14), (fair, 15)])
    review_with(coordinator, [(strict, 10), (lenient, 16), (fair, 14)])
    assert first.divergent is True  # 4 points = 20 % of the maximum
    rows = {
        name: (reviews, round(severity, 6), divergent)
        for name, reviews, severity, divergent in services.calibration_rows(season())
    }
    # strict: 12−16 = −4; 14−15 = −1; 10 − (16+14)/2 = −5 → mean −10/3 points = −16.67 pp.
    # lenient: +4; 16 − (10+14)/2 = +4 → +20 pp.  fair: +1; 14 − (10+16)/2 = +1 → +5 pp.
    # Divergent pairs: the first review (4 points apart) and the third (10 and 16, before
    # the third expert came); the third expert is in no pair.
    assert rows["Строгий"] == (3, round(-50 / 3, 6), 2)
    assert rows["Мягкий"] == (2, 20.0, 2)
    assert rows["Ровный"] == (2, 5.0, 0)
    table = services.calibration_table(services.calibration_rows(season()))
    assert [(r[0], r[2], r[5]) for r in table.rows] == [
        ("Мягкий", 20.0, False),
        ("Строгий", -16.7, False),
        ("Ровный", 5.0, False),
    ]


def test_an_expert_far_from_zero_on_enough_reviews_is_flagged():
    assert services.is_flagged(-10.0, services.MIN_REVIEWS)
    assert services.is_flagged(12.5, 40)
    assert not services.is_flagged(-9.9, 40)
    assert not services.is_flagged(25.0, services.MIN_REVIEWS - 1)
    table = services.calibration_table([("Эксперт", 9, -12.34, 3), ("Другой", 9, 4.0, 0)])
    assert table.rows[0] == ("Эксперт", 9, -12.3, 3, 33.3, True)
    assert table.highlighted == frozenset({0})


# --- agreement over the season ------------------------------------------------------------------


def test_agreement_on_sheets_in_full_agreement_is_one_for_the_total(coordinator):
    for total in (8, 12, 17):
        review_with(coordinator, [(expert(), total), (expert(), total)])
    table = services.agreement_table(season(), services.RubricWeights.load())
    total_row = table.rows[0]
    assert total_row[3:6] == (3, 6, 1.0)
    criteria = {row[0].split(" ")[0]: row for row in table.rows[1:]}
    assert set(criteria) == {"A1", "A2", "B1", "B2", "B3", "B4", "C1", "D1", "D2", "D3"}
    # with_total scores the criteria in order: A1 gets 2 in every sheet (no variation at
    # all: alpha undefined), D3 gets 0 in every sheet below 20.
    assert criteria["A1"][5] is None
    assert criteria["B3"][5] == 1.0


def test_agreement_of_the_season_equals_alpha_of_the_sheets(coordinator):
    from review_portal.analytics.agreement import alpha_of_units

    pairs = [(10, 12), (15, 14), (6, 9), (18, 18), (13, 8)]
    for a, b in pairs:
        review_with(coordinator, [(expert(), a), (expert(), b)])
    table = services.agreement_table(season(), services.RubricWeights.load())
    expected = alpha_of_units([(a * 5, b * 5) for a, b in pairs])
    assert table.rows[0][5] == round(expected, 3)
    assert table.rows[0][6] <= table.rows[0][5] <= table.rows[0][7]
    low = [row[0] for i, row in enumerate(table.rows) if i in table.highlighted]
    assert all(row[5] is not None and row[5] < 0.667 for row in table.rows if row[0] in low)


# --- programs and timing -------------------------------------------------------------------------


def test_programs_by_state_municipality_and_direction(coordinator):
    north, south = (
        MunicipalityFactory(name="Северный район"),
        MunicipalityFactory(name="Южный район"),
    )
    for _ in range(2):
        admitted_program(
            coordinator=coordinator, organization=OrganizationFactory(municipality=north)
        )
    admitted_program(
        coordinator=coordinator,
        organization=OrganizationFactory(municipality=south),
        direction=Direction.ARTS,
    )
    review_with(
        coordinator,
        [(expert(), 11), (expert(), 10)],
        decide=True,
        organization=OrganizationFactory(municipality=south),
        direction=Direction.ARTS,
    )
    program_in_review(coordinator, organization=OrganizationFactory(municipality=south))
    states, municipalities, directions, summary = services.program_tables(
        services.program_counts(season())
    )
    assert summary == {"programs": 5, "decided": 4, "admitted": 3, "rate": 75.0}
    assert dict(states.rows) == {
        str(ReviewState.IN_REVIEW.label): 1,
        str(ReviewState.ADMITTED.label): 3,
        str(ReviewState.REVISION_REQUIRED.label): 1,
    }
    assert municipalities.rows == [
        ("Южный район", 3, 2, 1, 50.0),
        ("Северный район", 2, 2, 2, 100.0),
    ]
    assert directions.rows == [
        (str(Direction.TECHNICAL.label), 3, 2, 2, 100.0),
        (str(Direction.ARTS.label), 2, 2, 1, 50.0),
    ]
    # The municipal scope sees its own municipality only.
    mine = Scope(season().start, season().end, municipality_id=north.id)
    assert services.program_tables(services.program_counts(mine))[3]["programs"] == 2


def test_time_to_decision_median_and_90th_percentile_by_week(coordinator):
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
    for days, week in ((1, 0), (2, 0), (3, 0), (4, 0), (10, 0), (5, 1)):
        program = admitted_program(coordinator=coordinator)[0]
        review = program.current_review
        decided = monday + timedelta(weeks=week, hours=1)
        review.version.created_at = decided - timedelta(days=days)
        review.decided_at = decided
    db.session.flush()
    march = Scope(datetime(2026, 3, 1).date(), datetime(2026, 3, 31).date())
    table, summary = services.timing_table(services.weekly_timing(march))
    assert table.rows == [("02.03.2026", 5, 3.0, 7.6), ("09.03.2026", 1, 5.0, 5.0)]
    assert summary == {"decisions": 6, "median": 3.5, "p90": 7.5}


# --- the page, its charts, tables and CSV files ------------------------------------------------


def small_season(coordinator):
    north = MunicipalityFactory(name="Северный район")
    experts = [expert(full_name=f"Эксперт {n}", capacity=3) for n in range(4)]
    review_with(
        coordinator,
        [(experts[0], 14), (experts[1], 15)],
        decide=True,
        organization=OrganizationFactory(municipality=north),
    )
    review_with(coordinator, [(experts[1], 9), (experts[2], 10)], decide=True)
    review_with(coordinator, [(experts[2], 17), (experts[3], 12)])
    review_with(coordinator, [(experts[0], 18), (experts[3], 19), (experts[2], 17)])
    admitted_program(coordinator=coordinator, direction=Direction.ARTS)
    overdue = program_in_review(coordinator, direction=Direction.NATURAL_SCIENCE)
    late = add_assignment(overdue.current_review, experts[0], 1)
    late.due_on = local_today() - timedelta(days=3)
    db.session.flush()
    return north


MARK = re.compile(r'<(g|circle) class="(?:bar|point)[^"]*"([^>]*)>')
ATTR = re.compile(r'data-([a-z]+)="([^"]*)"')


def charts_of(page: str) -> dict[str, list[dict]]:
    charts = {}
    for name, body in re.findall(
        r'<svg class="chart"[^>]*data-table="([^"]+)"[^>]*>(.*?)</svg>', page, re.S
    ):
        marks = []
        for _, attributes in MARK.findall(body):
            marks.append({k: html.unescape(v) for k, v in ATTR.findall(attributes)})
        charts[name] = marks
    return charts


def tables_of(page: str) -> dict[str, list[dict]]:
    tables = {}
    for name, body in re.findall(r'<table[^>]*data-table="([^"]+)"[^>]*>(.*?)</table>', page, re.S):
        rows = []
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
            cells = re.findall(r'<td data-key="([^"]+)">(.*?)</td>', row, re.S)
            rows.append({k: html.unescape(re.sub("<[^>]+>", "", v)).strip() for k, v in cells})
        tables[name] = rows
    return tables


def number(text: str) -> str:
    """A page cell in the CSV's spelling (decimal comma, empty for a dash, 1/0 for flags)."""
    return {"—": "", "да": "1", "yes": "1", "нет": "0", "no": "0"}.get(text, text)


def charted(text: str) -> str:
    """A CSV cell in a chart's spelling (``data-value``: a decimal point)."""
    if re.fullmatch(r"-?\d+,\d+", text):
        return text.replace(",", ".")
    return text


#: What each chart draws: (label column, value column).
CHARTS = {
    "programs_by_state": ("state", "programs"),
    "programs_by_municipality": ("municipality", "programs"),
    "programs_by_direction": ("direction", "rate"),
    "overdue_by_direction": ("direction", "overdue"),
    "expert_workload": ("expert", "load"),
    "capacity_by_direction": ("direction", "demand"),
    "agreement": ("measure", "alpha"),
    "calibration": ("expert", "severity"),
}


def csv_of(client, name: str, query: str = "") -> list[dict]:
    response = client.get(f"/analytics/{name}.csv{query}")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    return rows


def both_pages(client, query: str = "") -> str:
    pages = [client.get(f"/analytics{path}{query}") for path in ("", "/agreement")]
    assert [p.status_code for p in pages] == [200, 200]
    return "".join(p.get_data(as_text=True) for p in pages)


def test_every_chart_equals_its_table_and_its_csv(client, auth, coordinator):
    small_season(coordinator)
    auth.login(coordinator)
    page = both_pages(client)
    charts, tables = charts_of(page), tables_of(page)
    assert set(tables) == set(services.TABLES)
    assert set(charts) == set(services.TABLES)
    for name in services.TABLES:
        keys = list(tables[name][0]) if tables[name] else []
        header, *rows = csv_of(client, name)
        assert len(header) == len(keys), name
        page_rows = [[number(row[k]) for k in keys] for row in tables[name]]
        assert page_rows == rows[: len(page_rows)], name
        by_key = [dict(zip(keys, map(charted, row), strict=True)) for row in rows]
        if name == "decision_time_by_week":
            points = {(m["series"], m["label"]): m["value"] for m in charts[name]}
            expected = {
                (series, row["week"]): row[series]
                for row in by_key
                for series in ("median", "p90")
                if row[series]
            }
            assert points == expected
            continue
        label, value = CHARTS[name]
        drawn = [(m["label"], m["value"]) for m in charts[name]]
        assert drawn == [(row[label], row[value]) for row in by_key[: len(drawn)]], name
        assert drawn, name
        if name == "agreement":
            assert [(m["low"], m["high"]) for m in charts[name]] == [
                (row["low"], row["high"]) for row in by_key
            ]


def experts_named(name: str):
    from review_portal.accounts.models import User

    return db.session.execute(select(User).where(User.full_name == name)).scalars()


def test_dashboard_shows_the_season_in_numbers(client, auth, coordinator):
    small_season(coordinator)
    auth.login(coordinator)
    page = both_pages(client)
    assert 'id="summary-programs">6<' in page
    tables = tables_of(page)
    assert {r["direction"]: r["overdue"] for r in tables["overdue_by_direction"]} == {
        "Естественнонаучная": "1"
    }
    workload = {r["expert"]: r for r in tables["expert_workload"]}
    # Expert 0's overdue assignment, and the third expert's offer of the divergent review
    # if the solver gave it to them (experts 0 and 1 tie for it).
    first = experts_named("Эксперт 0").one()
    open_now = db.session.execute(
        select(func.count(Assignment.id)).where(
            Assignment.expert_id == first.id,
            Assignment.status.in_([AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED]),
        )
    ).scalar_one()
    assert open_now in (1, 2)
    assert (workload["Эксперт 0"]["open"], workload["Эксперт 0"]["overdue"]) == (
        str(open_now),
        "1",
    )
    assert workload["Эксперт 2"]["submitted"] == "3"
    assert "Krippendorff" in page or "Криппендорфа" in page
    assert "Калибровка экспертов" in page


def test_municipal_viewer_sees_their_municipality_without_calibration(client, auth, coordinator):
    north = small_season(coordinator)
    viewer = MunicipalViewerFactory(municipality=north)
    auth.login(viewer)
    page = both_pages(client)
    tables = tables_of(page)
    assert set(re.findall(r'id="figure-([a-z_]+)"', page)) == services.MUNICIPAL_TABLES
    assert tables["programs_by_municipality"] == [
        {
            "municipality": "Северный район",
            "programs": "1",
            "decided": "1",
            "admitted": "1",
            "rate": "100",
        }
    ]
    assert "Эксперт 0" not in page
    for name in ("calibration", "expert_workload", "capacity_by_direction"):
        assert client.get(f"/analytics/{name}.csv").status_code == 403
    assert client.get("/analytics/programs_by_state.csv").status_code == 200
    assert client.get("/analytics/no_such_table.csv").status_code == 404


def test_a_chosen_period_narrows_the_figures(client, auth, coordinator):
    small_season(coordinator)
    auth.login(coordinator)
    page = client.get("/analytics?start=2001-01-01&end=2001-12-31").get_data(as_text=True)
    assert 'id="summary-programs">0<' in page
    assert "01.01.2001" in page and "31.12.2001" in page
    wrong = client.get("/analytics?start=2026-05-01&end=2026-04-01").get_data(as_text=True)
    assert "The end of the period is before its start." in wrong or "раньше" in wrong


# --- a fixed number of statements ------------------------------------------------------------------


def statements_of(client, url: str) -> int:
    count = [0]

    def before(conn, cursor, statement, *args):
        if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            count[0] += 1

    engine = db.session.get_bind().engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        response = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", before)
    assert response.status_code == 200
    return count[0]


def test_dashboard_statements_do_not_grow_with_the_data(client, auth, coordinator):
    north = small_season(coordinator)
    viewer = MunicipalViewerFactory(municipality=north)
    auth.login(coordinator)
    both_pages(client)
    small = statements_of(client, "/analytics")
    small_agreement = statements_of(client, "/analytics/agreement")
    more = [expert(full_name=f"Ещё эксперт {n}") for n in range(6)]
    for n in range(8):
        review_with(
            coordinator,
            [(more[n % 6], 10 + n % 5), (more[(n + 1) % 6], 12), (more[(n + 2) % 6], 9)],
            decide=True,
            organization=OrganizationFactory(municipality=north),
        )
        admitted_program(coordinator=coordinator, direction=Direction.ARTS)
    # Not more: fewer may come when the test's own session has the user loaded already.
    assert statements_of(client, "/analytics") <= small
    assert statements_of(client, "/analytics/agreement") <= small_agreement
    auth.logout()
    auth.login(viewer)
    client.get("/analytics")
    municipal = statements_of(client, "/analytics")
    assert municipal < small
    review_with(
        coordinator,
        [(more[0], 5), (more[1], 6)],
        organization=OrganizationFactory(municipality=north),
    )
    assert statements_of(client, "/analytics") <= municipal


def test_agreement_page_follows_every_submission_and_reopening(client, auth, coordinator):
    small_season(coordinator)
    auth.login(coordinator)

    def agreement_reviews() -> int:
        page = client.get("/analytics/agreement").get_data(as_text=True)
        return int(tables_of(page)["agreement"][0]["reviews"])

    before = agreement_reviews()
    # A draft changes nothing the figures read.
    program = program_in_review(coordinator)
    draft = add_assignment(program.current_review, expert(), 1)
    save_sheet(
        draft,
        draft.expert,
        SheetInput(revision=0, scores={"A1": 2}, comments={}, recommendations="", confirmed=False),
    )
    assert agreement_reviews() == before
    review = review_with(coordinator, [(expert(), 7), (expert(), 8)])
    assert agreement_reviews() == before + 1
    reopen_sheet(review.assignments[0].sheet, coordinator, "Уточнить оценки.")
    assert agreement_reviews() == before
    # Another period has figures of its own.
    other = tables_of(client.get("/analytics/agreement?season=2001").get_data(as_text=True))
    assert "agreement" not in other or other["agreement"][0]["reviews"] == "0"
