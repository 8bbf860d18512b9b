"""The figures of the analytics dashboard, each read in one statement that the database
aggregates (so the page costs a fixed number of statements at any size).

The population is the reviews whose version under review was submitted in the period (the
version is frozen by the transition to ``submitted``, so its ``created_at`` is that
transition's time): programs by the state of their current review; the time from that
submission to the decision, for decisions taken in the period; open assignments of the
period's reviews past their deadline; each expert's assignments on them; the agreement
between the submitted sheets and each expert's severity. Municipality and direction are
the reviewed version's. A municipal viewer's scope adds their municipality.

Agreement and calibration read the sums that scoring keeps for every review with two
submitted sheets or more (:mod:`review_portal.scoring.summary`: ~10 rows per review, not
every score): each sheet's total is a percentage of its rubric's maximum, so sheets of
different rubrics are comparable.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select

from review_portal.accounts.models import User
from review_portal.analytics.agreement import LOW_AGREEMENT, estimate_many
from review_portal.analytics.tables import Column, Table, bar_chart, line_chart, rounded
from review_portal.assignment.models import Assignment
from review_portal.enums import AssignmentRole, AssignmentStatus, Direction, SheetStatus
from review_portal.experts.models import ExpertProfile
from review_portal.extensions import db
from review_portal.organizations.models import Municipality
from review_portal.programs.models import Program, ProgramVersion
from review_portal.reviews.models import Review
from review_portal.scoring.models import AgreementUnit, ScoreSheet
from review_portal.scoring.summary import TOTAL, RubricWeights
from review_portal.settings.services import get_setting
from review_portal.workflow import DECISION_STATES, ReviewState

if TYPE_CHECKING:
    import numpy as np

#: Units are added up per block (review id modulo this) for the bootstrap; up to this many
#: reviews each block is one review, beyond it blocks of reviews are resampled.
BLOCKS = 1000
#: Calibration: an expert is flagged when their severity is at least this far from zero
#: (percentage points of the maximum total) over at least this many reviews.
SEVERITY_FLAG = 10.0
MIN_REVIEWS = 8
#: How many rows the bar charts of long lists show (the table and CSV have them all).
CHART_ROWS = 25
#: How many experts the workload and calibration tables show on the page (the CSV has
#: them all).
WORKLOAD_ROWS = 50

OPEN = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED)
SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class Scope:
    """What the dashboard counts: a period of local dates (inclusive) and, for a municipal
    viewer, one municipality."""

    start: date
    end: date
    municipality_id: int | None = None
    #: The season (year) when the period is a whole season.
    season: int | None = None
    #: The reviews on which the viewer holds an open seat
    #: (:func:`~review_portal.permissions.open_seat_review_ids`): left out of every figure,
    #: so a coordinator who is also an expert there learns nothing of their co-experts.
    hidden_review_ids: tuple[int, ...] = ()

    @classmethod
    def for_season(
        cls, year: int, municipality_id: int | None = None, hidden_review_ids=()
    ) -> Scope:
        return cls(
            date(year, 1, 1),
            date(year, 12, 31),
            municipality_id,
            season=year,
            hidden_review_ids=tuple(hidden_review_ids),
        )

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as UTC moments: local midnight of the start to that after the end."""
        zone = ZoneInfo(get_setting("timezone"))
        since = datetime.combine(self.start, time.min, tzinfo=zone)
        until = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone)
        return since.astimezone(UTC), until.astimezone(UTC)


def _in_scope(
    scope: Scope,
    moment=ProgramVersion.created_at,
    municipality=ProgramVersion.municipality_id,
    review=Review.id,
) -> list:
    """The conditions of ``scope``: ``moment`` in the period (by default the submission of
    the version under review), for a municipal scope ``municipality`` its one, and
    ``review`` none of the viewer's open seats (roles never widen relations)."""
    since, until = scope.bounds()
    conditions = [moment >= since, moment < until]
    if scope.municipality_id is not None:
        conditions.append(municipality == scope.municipality_id)
    if scope.hidden_review_ids:
        conditions.append(review.not_in(scope.hidden_review_ids))
    return conditions


# --- programs by state, municipality and direction ----------------------------------------

DECIDED = tuple(sorted(DECISION_STATES))


def program_counts(scope: Scope) -> list[tuple[ReviewState, str, Direction, int]]:
    """Programs of the period by (state of the current review, municipality, direction)."""
    stmt = (
        select(Review.state, Municipality.name, ProgramVersion.direction, func.count(Program.id))
        .select_from(Program)
        .join(Review, Program.current_review_id == Review.id)
        .join(ProgramVersion, Review.version_id == ProgramVersion.id)
        .join(Municipality, ProgramVersion.municipality_id == Municipality.id)
        .where(*_in_scope(scope))
        .group_by(Review.state, Municipality.name, ProgramVersion.direction)
    )
    return [(ReviewState(s), m, Direction(d), n) for s, m, d, n in db.session.execute(stmt)]


def admission_rate(admitted: int, decided: int) -> float | None:
    """Admitted programs as a percentage of decided ones (admitted, revision, rejected)."""
    return rounded(100.0 * admitted / decided, 1) if decided else None


def program_tables(counts) -> tuple[Table, Table, Table, dict]:
    by_state: dict[ReviewState, int] = defaultdict(int)
    groups = {
        "municipality": defaultdict(lambda: [0, 0, 0]),
        "direction": defaultdict(lambda: [0, 0, 0]),
    }
    for state, municipality, direction, n in counts:
        by_state[state] += n
        for key, name in (("municipality", municipality), ("direction", direction)):
            cell = groups[key][name]
            cell[0] += n
            if state in DECISION_STATES:
                cell[1] += n
            if state == ReviewState.ADMITTED:
                cell[2] += n
    states = Table(
        "programs_by_state",
        _l("Programs by state"),
        (Column("state", _l("State")), Column("programs", _l("Programs"))),
        [(str(s.label), by_state[s]) for s in ReviewState if by_state[s]],
    )
    columns = (
        Column("programs", _l("Programs")),
        Column("decided", _l("Programs decided")),
        Column("admitted", _l("Programs admitted")),
        Column("rate", _l("Admission rate, %"), digits=1),
    )
    municipalities = Table(
        "programs_by_municipality",
        _l("Programs by municipality"),
        (Column("municipality", _l("Municipality")), *columns),
        sorted(
            (
                (name, n, d, a, admission_rate(a, d))
                for name, (n, d, a) in groups["municipality"].items()
            ),
            key=lambda row: (-row[1], row[0]),
        ),
    )
    directions = Table(
        "programs_by_direction",
        _l("Programs by direction"),
        (Column("direction", _l("Direction")), *columns),
        [
            (str(d.label), n, decided, admitted, admission_rate(admitted, decided))
            for d in Direction
            if d in groups["direction"]
            for n, decided, admitted in [groups["direction"][d]]
        ],
    )
    total = sum(by_state.values())
    decided = sum(by_state[s] for s in DECISION_STATES)
    admitted = by_state[ReviewState.ADMITTED]
    summary = {
        "programs": total,
        "decided": decided,
        "admitted": admitted,
        "rate": admission_rate(admitted, decided),
    }
    return states, municipalities, directions, summary


# --- time from submission to decision -------------------------------------------------------


def _epoch(column):
    """Seconds since 1970 of a timestamp column, as a float, on either database."""
    if db.session.get_bind().dialect.name == "sqlite":
        return (func.julianday(column) - 2440587.5) * SECONDS_PER_DAY
    return sa.cast(func.extract("epoch", column), sa.Float)


def decision_times(scope: Scope) -> tuple[np.ndarray, np.ndarray]:
    """``(decided at, days from submission to decision)`` of the reviews decided in the
    period, as epoch seconds and days."""
    import numpy as np

    decided = _epoch(Review.decided_at)
    stmt = (
        select(decided, decided - _epoch(ProgramVersion.created_at))
        .join(ProgramVersion, Review.version_id == ProgramVersion.id)
        .where(*_in_scope(scope, Review.decided_at))
    )
    rows = np.array(db.session.execute(stmt).tuples().all(), dtype=float).reshape(-1, 2)
    return rows[:, 0], rows[:, 1] / SECONDS_PER_DAY


def percentile(values: np.ndarray, q: float) -> float | None:
    """The ``q``-th percentile, interpolated linearly (PostgreSQL's ``percentile_cont``)."""
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else None


def local_weeks(moments: np.ndarray) -> np.ndarray:
    """The Monday (as an ordinal) of each epoch moment's local date; the zone is looked up
    once per distinct hour, not per moment."""
    import numpy as np

    zone = ZoneInfo(get_setting("timezone"))
    hours = (moments // 3600).astype(np.int64)
    distinct, inverse = np.unique(hours, return_inverse=True)
    mondays = np.empty(len(distinct), dtype=np.int64)
    for i, hour in enumerate(distinct):
        day = datetime.fromtimestamp(int(hour) * 3600, UTC).astimezone(zone).date()
        mondays[i] = day.toordinal() - day.weekday()
    return mondays[inverse.reshape(-1)] if len(distinct) else mondays


def weekly_timing(scope: Scope) -> list[tuple[date | None, int, float | None, float | None]]:
    """``(Monday of the week or None for the whole period, decisions, median, p90)`` in
    days. PostgreSQL computes the percentiles itself (one row per week); elsewhere the
    durations are read and the same linear interpolation is done here."""
    import numpy as np

    if db.session.get_bind().dialect.name != "postgresql":
        decided_at, days = decision_times(scope)
        rows: list = [(None, len(days), percentile(days, 50), percentile(days, 90))]
        if len(days):
            weeks = local_weeks(decided_at)
            for monday in np.unique(weeks):
                chosen = days[weeks == monday]
                rows.append(
                    (
                        date.fromordinal(int(monday)),
                        len(chosen),
                        percentile(chosen, 50),
                        percentile(chosen, 90),
                    )
                )
        return rows
    zone = get_setting("timezone")
    week = func.date_trunc("week", func.timezone(zone, Review.decided_at)).label("week")
    days = (_epoch(Review.decided_at) - _epoch(ProgramVersion.created_at)) / SECONDS_PER_DAY
    stmt = (
        select(
            week,
            func.count(),
            func.percentile_cont(0.5).within_group(days),
            func.percentile_cont(0.9).within_group(days),
        )
        .join(ProgramVersion, Review.version_id == ProgramVersion.id)
        .where(*_in_scope(scope, Review.decided_at))
        .group_by(sa.func.grouping_sets(sa.tuple_(week), sa.tuple_()))
        .order_by(week.nulls_first())
    )
    rows = [
        (None if monday is None else monday.date(), n, median_days, p90_days)
        for monday, n, median_days, p90_days in db.session.execute(stmt)
    ]
    return rows or [(None, 0, None, None)]


def timing_table(rows) -> tuple[Table, dict]:
    """The weekly table and the period's figures from :func:`weekly_timing`."""
    whole = next(r for r in rows if r[0] is None)
    table = Table(
        "decision_time_by_week",
        _l("Days from submission to decision, by week of the decision"),
        (
            Column("week", _l("Week from")),
            Column("decisions", _l("Decisions")),
            Column("median", _l("Median, days"), digits=2),
            Column("p90", _l("90th percentile, days"), digits=2),
        ),
        [
            (monday.strftime("%d.%m.%Y"), n, rounded(m, 2), rounded(p, 2))
            for monday, n, m, p in rows
            if monday is not None
        ],
    )
    summary = {"decisions": whole[1], "median": rounded(whole[2], 2), "p90": rounded(whole[3], 2)}
    return table, summary


# --- overdue assignments and the experts' workload -------------------------------------------


def overdue_table(scope: Scope, today: date) -> Table:
    stmt = (
        select(ProgramVersion.direction, func.count(Assignment.id))
        .select_from(Assignment)
        .join(Review, Assignment.review_id == Review.id)
        .join(ProgramVersion, Review.version_id == ProgramVersion.id)
        .where(Assignment.status.in_(OPEN), Assignment.due_on < today, *_in_scope(scope))
        .group_by(ProgramVersion.direction)
    )
    counts = {Direction(d): n for d, n in db.session.execute(stmt)}
    return Table(
        "overdue_by_direction",
        _l("Overdue assignments by direction"),
        (Column("direction", _l("Direction")), Column("overdue", _l("Overdue assignments"))),
        [(str(d.label), counts[d]) for d in Direction if counts.get(d)],
    )


def workload_table(scope: Scope, today: date) -> Table:
    """Every expert's assignments on the period's reviews: open, submitted, declined and
    overdue, against their capacity (open assignments at most); the most loaded first."""
    status = Assignment.status
    is_open = status.in_(OPEN)
    counts = (
        select(
            Assignment.expert_id.label("expert_id"),
            func.sum(case((is_open, 1), else_=0)).label("open"),
            func.sum(case((status == AssignmentStatus.COMPLETED, 1), else_=0)).label("submitted"),
            func.sum(case((status == AssignmentStatus.DECLINED, 1), else_=0)).label("declined"),
            func.sum(case((is_open & (Assignment.due_on < today), 1), else_=0)).label("overdue"),
        )
        .join(Review, Assignment.review_id == Review.id)
        .join(ProgramVersion, Review.version_id == ProgramVersion.id)
        .where(*_in_scope(scope))
        .group_by(Assignment.expert_id)
        .subquery()
    )
    stmt = (
        select(
            User.full_name,
            ExpertProfile.capacity,
            *(func.coalesce(counts.c[k], 0) for k in ("open", "submitted", "declined", "overdue")),
        )
        .select_from(ExpertProfile)
        .join(User, ExpertProfile.user_id == User.id)
        .outerjoin(counts, counts.c.expert_id == User.id)
    )
    rows = []
    for name, capacity, n_open, submitted, declined, overdue in db.session.execute(stmt):
        load = rounded(100.0 * n_open / capacity, 1) if capacity else None
        rows.append((name, n_open, submitted, declined, overdue, capacity, load))
    rows.sort(key=lambda r: (-(r[6] or 0), -r[1], -r[2], r[0]))
    return Table(
        "expert_workload",
        _l("Expert workload"),
        (
            Column("expert", _l("Expert")),
            Column("open", _l("Open assignments")),
            Column("submitted", _l("Sheets submitted")),
            Column("declined", _l("Assignments declined")),
            Column("overdue", _l("Assignments overdue")),
            Column("capacity", _l("Capacity")),
            Column("load", _l("Open of capacity, %"), digits=1),
        ),
        rows,
        highlighted=frozenset(i for i, r in enumerate(rows) if r[6] is not None and r[6] > 100),
        shown=WORKLOAD_ROWS,
    )


def capacity_table(capacity) -> Table:
    """The capacity check of the assignment (``assignment.capacity.capacity_check``)."""
    rows = [
        (str(c.direction.label), c.programs, c.demand, c.capacity, c.experts, c.shortfall)
        for c in capacity
    ]
    return Table(
        "capacity_by_direction",
        _l("Capacity check by direction"),
        (
            Column("direction", _l("Direction")),
            Column("programs", _l("Programs waiting")),
            Column("demand", _l("Places needed")),
            Column("capacity", _l("Free places of experts")),
            Column("experts", _l("Experts")),
            Column("shortfall", _l("Shortfall")),
        ),
        rows,
        highlighted=frozenset(i for i, r in enumerate(rows) if r[5]),
    )


# --- agreement and calibration --------------------------------------------------------------


def measure_blocks(scope: Scope) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """The sums of the period's units per block of reviews (rows ``[block, units, n, s, q,
    w]``): of the total, over every rubric, and of each ``(rubric, criterion)``; one
    statement over :class:`AgreementUnit` (kept by scoring, ~10 rows per review).

    The statement groups by exactly ``rubric_id, measure, review_id % 1000`` (the block
    written as a literal): PostgreSQL has extended statistics on those (migration 0008), so
    it expects ~11 × 1,000 groups, not one per review, and aggregates in a hash table
    instead of sorting every unit on disk (0.2 s instead of 0.8 s at national scale)."""
    import numpy as np

    unit = AgreementUnit
    m, s, q = unit.m, unit.s, unit.q
    block = (unit.review_id % sa.literal_column(str(BLOCKS))).label("block")
    number = sa.Float
    stmt = (
        select(
            unit.rubric_id,
            unit.measure,
            block,
            sa.cast(func.count(), number),
            sa.cast(func.sum(m), number),
            func.sum(s),
            func.sum(q),
            # (A float divisor: an integer one would make SQLAlchemy cast it to NUMERIC.)
            func.sum((m * q - s * s) / sa.cast(m - 1, number)),
        )
        .where(
            *_in_scope(
                scope,
                AgreementUnit.submitted_at,
                AgreementUnit.municipality_id,
                AgreementUnit.review_id,
            )
        )
        .group_by(unit.rubric_id, unit.measure, block)
    )
    rows: dict[tuple[str, str], list] = defaultdict(list)
    for rubric_id, measure, *sums in db.session.execute(stmt):
        rows[(TOTAL, TOTAL) if measure == TOTAL else (rubric_id, measure)].append(sums)
    arrays = {key: np.array(r, dtype=float).reshape(-1, 6) for key, r in rows.items()}
    totals = arrays.pop((TOTAL, TOTAL), np.zeros((0, 6)))
    # The total is one measure whatever the rubric: a block's rows of several rubrics add up.
    blocks, inverse = np.unique(totals[:, 0], return_inverse=True)
    merged = np.zeros((len(blocks), 6))
    np.add.at(merged, inverse.reshape(-1), totals)
    merged[:, 0] = blocks
    return merged, arrays


def calibration_rows(scope: Scope) -> list[tuple[str, int, float, int]]:
    """Per expert ``(name, reviews, severity, divergent)`` over the period's reviews with
    two submitted sheets or more: the reviews, the mean of (own total − mean of the
    others' totals) in percentage points of the maximum, and the reviews where they were
    one of the two initial experts of a divergent review. One statement: each submitted
    sheet's ``total_percent`` against its review's total unit."""
    unit = AgreementUnit
    pct = ScoreSheet.total_percent
    divergent_pair = (Review.divergent == sa.true()) & (Assignment.role == AssignmentRole.INITIAL)
    per_expert = (
        select(
            Assignment.expert_id.label("expert_id"),
            func.count().label("reviews"),
            func.avg(pct - (unit.s - pct) / sa.cast(unit.m - 1, sa.Float)).label("severity"),
            func.sum(case((divergent_pair, 1), else_=0)).label("divergent"),
        )
        .select_from(unit)
        .join(Assignment, Assignment.review_id == unit.review_id)
        .join(ScoreSheet, ScoreSheet.assignment_id == Assignment.id)
        .join(Review, Review.id == unit.review_id)
        .where(unit.measure == TOTAL, ScoreSheet.status == SheetStatus.SUBMITTED, pct.is_not(None))
        .where(
            *_in_scope(
                scope,
                AgreementUnit.submitted_at,
                AgreementUnit.municipality_id,
                AgreementUnit.review_id,
            )
        )
        .group_by(Assignment.expert_id)
        .subquery()
    )
    stmt = select(
        User.full_name, per_expert.c.reviews, per_expert.c.severity, per_expert.c.divergent
    ).join(per_expert, per_expert.c.expert_id == User.id)
    return [(name, int(n), float(sev), int(div)) for name, n, sev, div in db.session.execute(stmt)]


def agreement_table(scope: Scope, rubrics: RubricWeights) -> Table:
    """Alpha (interval) with its bootstrap interval, for the total (percent of the maximum)
    and for each criterion of each rubric in use; low agreement highlighted."""
    import numpy as np

    totals, criteria = measure_blocks(scope)
    measures = [(str(_l("Total, percent of the maximum")), "", "", totals)]
    for (rubric_id, criterion_id), blocks in sorted(criteria.items()):
        title = rubrics.titles.get((rubric_id, criterion_id), "")
        measures.append((f"{criterion_id} ({rubric_id})", rubric_id, title, blocks))
    # One matrix of measures × blocks (rows [block, units, n, s, q, w] become dense rows),
    # so one bootstrap of the blocks serves every measure.
    ids = np.unique(np.concatenate([m[-1][:, 0] for m in measures]))
    stack = np.zeros((len(measures), len(ids), 5))
    for m, (*_, blocks) in enumerate(measures):
        stack[m, np.searchsorted(ids, blocks[:, 0])] = blocks[:, 1:]
    estimates = estimate_many(stack)
    rows = [
        (
            label,
            rubric,
            title,
            e.units,
            e.values,
            rounded(e.alpha, 3),
            rounded(e.low, 3),
            rounded(e.high, 3),
        )
        for (label, rubric, title, _), e in zip(measures, estimates, strict=True)
    ]
    return Table(
        "agreement",
        _l("Agreement between experts (Krippendorff's alpha, interval)"),
        (
            Column("measure", _l("Total or criterion")),
            Column("rubric", _l("Rubric")),
            Column("criterion", _l("Criterion")),
            Column("reviews", _l("Reviews")),
            Column("sheets", _l("Scores")),
            Column("alpha", _l("Alpha"), digits=3),
            Column("low", _l("95-percent interval from"), digits=3),
            Column("high", _l("95-percent interval to"), digits=3),
        ),
        rows,
        highlighted=frozenset(
            i for i, r in enumerate(rows) if r[5] is not None and r[5] < LOW_AGREEMENT
        ),
    )


def is_flagged(severity: float | None, reviews: int) -> bool:
    return severity is not None and reviews >= MIN_REVIEWS and abs(severity) >= SEVERITY_FLAG


def calibration_table(rows) -> Table:
    built = []
    for name, reviews, severity, divergent in rows:
        severity = rounded(severity, 1)
        built.append(
            (
                name,
                reviews,
                severity,
                divergent,
                rounded(100.0 * divergent / reviews, 1) if reviews else None,
                is_flagged(severity, reviews),
            )
        )
    built.sort(key=lambda r: (-r[5], -abs(r[2] or 0), r[0]))
    return Table(
        "calibration",
        _l("Expert calibration"),
        (
            Column("expert", _l("Expert")),
            Column("reviews", _l("Reviews")),
            Column("severity", _l("Severity, percentage points"), digits=1),
            Column("divergent", _l("In a divergent pair")),
            Column("divergent_share", _l("In a divergent pair, %"), digits=1),
            Column("flagged", _l("Needs calibration")),
        ),
        built,
        highlighted=frozenset(i for i, r in enumerate(built) if r[5]),
        shown=WORKLOAD_ROWS,
    )


# --- the whole dashboard ----------------------------------------------------------------------


@dataclass
class Dashboard:
    scope: Scope
    tables: dict[str, Table]
    programs: dict
    timing: dict
    #: Staff only: workload, capacity and calibration are present.
    full: bool


def build_dashboard(scope: Scope, today: date, *, full: bool, page: str = "overview") -> Dashboard:
    """The figures of one page of the dashboard (``overview`` or ``agreement``) for
    ``scope``; ``full`` adds what only the center sees (experts' workload by name, the
    capacity check, calibration)."""
    names = [n for n in PAGES[page] if full or n in MUNICIPAL_TABLES]
    built = build_tables(names, scope, today)
    tables = {n: built[n] for n in names}
    return Dashboard(scope, tables, built.get("_programs"), built.get("_timing"), full)


def build_tables(names, scope: Scope, today: date) -> dict:
    """The tables ``names`` (and the summaries that come with them), each statement run
    once even when several tables share it."""
    built: dict = {}
    if {"programs_by_state", "programs_by_municipality", "programs_by_direction"} & set(names):
        states, municipalities, directions, summary = program_tables(program_counts(scope))
        built.update({t.name: t for t in (states, municipalities, directions)})
        built["_programs"] = summary
    if "decision_time_by_week" in names:
        built["decision_time_by_week"], built["_timing"] = timing_table(weekly_timing(scope))
    if "overdue_by_direction" in names:
        built["overdue_by_direction"] = overdue_table(scope, today)
    if "expert_workload" in names:
        built["expert_workload"] = workload_table(scope, today)
    if "capacity_by_direction" in names:
        from review_portal.assignment.capacity import load_capacity_check

        built["capacity_by_direction"] = capacity_table(load_capacity_check())
    if "agreement" in names:
        built["agreement"] = agreement_table(scope, RubricWeights.load())
    if "calibration" in names:
        built["calibration"] = calibration_table(calibration_rows(scope))
    return built


#: The tables of each page of the dashboard, in page order. Agreement and calibration
#: (with its 1,000-resample bootstrap) have a page of their own.
PAGES = {
    "overview": (
        "programs_by_state",
        "programs_by_municipality",
        "programs_by_direction",
        "decision_time_by_week",
        "overdue_by_direction",
        "expert_workload",
        "capacity_by_direction",
    ),
    "agreement": ("agreement", "calibration"),
}
TABLES = PAGES["overview"] + PAGES["agreement"]
#: The tables a municipal viewer may export (no names of experts, nothing region-wide).
MUNICIPAL_TABLES = frozenset(
    {
        "programs_by_state",
        "programs_by_municipality",
        "programs_by_direction",
        "decision_time_by_week",
        "overdue_by_direction",
        "agreement",
    }
)


def chart_of(table: Table):
    """The chart drawn from ``table`` (every table of the dashboard has one)."""
    marked = table.highlighted.__contains__
    if table.name == "programs_by_state":
        return bar_chart(table, "state", "programs")
    if table.name == "programs_by_municipality":
        return bar_chart(table, "municipality", "programs", limit=CHART_ROWS)
    if table.name == "programs_by_direction":
        return bar_chart(
            table, "direction", "rate", scale=(0, 100), title=_l("Admission rate by direction, %")
        )
    if table.name == "decision_time_by_week":
        return line_chart(table, "week", ("median", "p90"))
    if table.name == "overdue_by_direction":
        return bar_chart(table, "direction", "overdue")
    if table.name == "expert_workload":
        return bar_chart(
            table,
            "expert",
            "load",
            limit=CHART_ROWS,
            reference=100,
            highlight=marked,
            title=_l("Open assignments as a percentage of capacity"),
        )
    if table.name == "capacity_by_direction":
        return bar_chart(
            table,
            "direction",
            "demand",
            marker="capacity",
            highlight=marked,
            title=_l("Places needed (bars) against free places of experts (marks)"),
        )
    if table.name == "agreement":
        return bar_chart(
            table,
            "measure",
            "alpha",
            low="low",
            high="high",
            reference=LOW_AGREEMENT,
            highlight=marked,
        )
    if table.name == "calibration":
        return bar_chart(
            table,
            "expert",
            "severity",
            limit=CHART_ROWS,
            highlight=marked,
            title=_l("Severity: mean difference from the other experts, percentage points"),
        )
    raise KeyError(table.name)
