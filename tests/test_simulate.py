"""The ``simulate`` command: a whole season through the portal's services, on each database,
with the summary it prints checked against the rows it left behind."""

from __future__ import annotations

import collections
import io
import json
import re
from decimal import Decimal

from sqlalchemy import func, select

from review_portal.assignment.models import Assignment
from review_portal.audit.verification import verify_chain
from review_portal.cli import PHASE_LABELS
from review_portal.conclusions.models import Conclusion
from review_portal.enums import (
    AssignmentStatus,
    ConclusionStatus,
    RegistryEntryStatus,
    SheetStatus,
)
from review_portal.extensions import db
from review_portal.programs.models import Program
from review_portal.registry.models import RegistryEntry, RegistrySnapshot
from review_portal.reviews.models import Review
from review_portal.scoring.models import ScoreSheet
from review_portal.scoring.summary import rebuild
from review_portal.simulation.season import DOMAIN, PHASES
from review_portal.workflow import ReviewState
from tests.test_agreement_units import all_rows, assert_same_rows

ARGS = ["simulate", "--programs", "30", "--experts", "24", "--seed", "17"]
CONTRACT_KEYS = {
    "appeals",
    "appeals_upheld",
    "appeals_dismissed",
    "renewals",
    "expired",
    "programs",
    "returned",
    "resubmitted",
    "reviews",
    "third_experts",
    "discussions",
    "overrides",
    "conclusions",
    "registry_entries",
    "states",
    "modules",
    "floor_refusals",
    "registry_entries_by_kind",
}
DECIDED = {ReviewState.ADMITTED, ReviewState.REVISION_REQUIRED, ReviewState.REJECTED}


def run(app, args=ARGS) -> tuple[dict, str]:
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    return json.loads(last), result.output


def season_programs() -> list[Program]:
    """The programs of the simulated providers, newest season last."""
    from review_portal.accounts.models import User

    organizations = select(User.organization_id).where(User.email.like(f"%@{DOMAIN}"))
    return list(
        db.session.execute(
            select(Program).where(Program.organization_id.in_(organizations)).order_by(Program.id)
        ).scalars()
    )


def experts_of_any(review) -> set[int]:
    """Everyone who sat on ``review`` (any live assignment)."""
    return {
        a.expert_id for a in review.assignments if a.status in ("offered", "accepted", "completed")
    }


def test_simulated_season_matches_its_rows_and_repeats_itself(scratch_app):
    first, output = run(scratch_app)

    assert set(first) >= CONTRACT_KEYS
    assert first["programs"] == 30
    assert sum(first["states"].values()) == 30
    # This seed's season takes every path of the workflow at least once.
    for key in ("returned", "resubmitted", "third_experts", "discussions", "overrides"):
        assert first[key] > 0, key
    assert first["registry_entries"] > 0
    assert "screening:" in output and "registry:" in output

    with scratch_app.app_context():
        programs = season_programs()
        assert len(programs) == 30
        reviews = [r for p in programs for r in p.reviews]
        assert len(reviews) == first["reviews"]
        states = {}
        for program in programs:
            states[program.current_review.state.value] = (
                states.get(program.current_review.state.value, 0) + 1
            )
        assert states == first["states"]
        # The season ends settled: no open offer or work, nothing waiting for a decision.
        review_ids = [r.id for r in reviews]
        assert not db.session.execute(
            select(Assignment.id).where(
                Assignment.review_id.in_(review_ids),
                Assignment.status.in_([AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED]),
            )
        ).all()
        assert not [
            r
            for r in reviews
            if r.state in (ReviewState.RECONCILIATION, ReviewState.AWAITING_DECISION)
        ]
        # Appeals: filed, upheld, dismissed as the summary says; each panel of experts who
        # never sat on the program's earlier reviews.
        from review_portal.appeals.models import Appeal

        appeals = list(
            db.session.execute(
                select(Appeal).where(Appeal.program_id.in_([p.id for p in programs]))
            ).scalars()
        )
        assert len(appeals) == first["appeals"]
        by_state = collections.Counter(a.state.value for a in appeals)
        assert by_state["upheld"] == first["appeals_upheld"]
        assert by_state["dismissed"] == first["appeals_dismissed"]
        for appeal in appeals:
            if appeal.panel_review is None:
                continue
            earlier = set().union(
                *(
                    experts_of_any(r)
                    for r in appeal.program.reviews
                    if r.round < appeal.panel_review.round
                )
            )
            assert not experts_of_any(appeal.panel_review) & earlier
        dismissed_panels = {a.panel_review_id for a in appeals if a.state.value == "dismissed"}
        assert all(a.number for a in appeals if a.state.value == "dismissed")
        # Every decided review has exactly one valid conclusion (a dismissed appeal's panel
        # none: the appealed one stands), and only those have one; an upheld appeal's panel
        # superseded the appealed conclusion.
        conclusions = db.session.execute(
            select(Conclusion).where(Conclusion.review_id.in_(review_ids))
        ).scalars()
        valid_by_review = {}
        superseded = 0
        for conclusion in conclusions:
            if conclusion.status == ConclusionStatus.SUPERSEDED:
                superseded += 1
                continue
            assert conclusion.status == ConclusionStatus.VALID
            valid_by_review.setdefault(conclusion.review_id, []).append(conclusion.number)
        assert superseded == first["appeals_upheld"]
        upheld_originals = {a.review_id for a in appeals if a.state.value == "upheld"}
        decided = {r.id for r in reviews if r.state in DECIDED}
        decided -= dismissed_panels | upheld_originals
        assert set(valid_by_review) == decided
        assert all(len(numbers) == 1 for numbers in valid_by_review.values())
        assert len(valid_by_review) + superseded == first["conclusions"]
        # Every admitted program is in the published registry, on its own conclusion, but
        # those whose entry reached its end date without an admitted renewal.
        from review_portal.registry.queries import excludable_review
        from review_portal.registry.services import admitted_kinds
        from review_portal.registry.validity import EXPIRED_REASON

        def entries_with(*conditions) -> set:
            return set(
                db.session.execute(
                    select(RegistryEntry.program_id, RegistryEntry.kind).where(
                        RegistryEntry.program_id.in_([p.id for p in programs]), *conditions
                    )
                ).all()
            )

        expired = entries_with(
            RegistryEntry.status == RegistryEntryStatus.REMOVED,
            RegistryEntry.removal_reason == EXPIRED_REASON,
        )
        assert len(expired) == first["expired"]
        # (program, kind): every kind the admission a program's registry place rests on
        # includes it in (its current review, or during a renewal the admitted one before).
        admitted = {
            (p.id, kind)
            for p in programs
            if (review := excludable_review(p)) is not None
            for kind in admitted_kinds(review)
        }
        included = entries_with(RegistryEntry.status == RegistryEntryStatus.INCLUDED)
        assert included == admitted - expired
        assert db.session.execute(select(func.count(RegistrySnapshot.id))).scalar_one() >= 1
        # Third experts scored, and their sheets are in.
        third_sheets = db.session.execute(
            select(func.count(func.distinct(Assignment.review_id)))
            .join(ScoreSheet, ScoreSheet.assignment_id == Assignment.id)
            .where(
                Assignment.review_id.in_(review_ids),
                Assignment.role == "third",
                ScoreSheet.status == SheetStatus.SUBMITTED,
            )
        ).scalar_one()
        assert third_sheets == first["third_experts"]
        overrides = [r for r in reviews if r.override_reason]
        assert len(overrides) == first["overrides"]
        assert all(r.decision != r.computed_decision for r in overrides)

        # A revised program goes back to its previous experts where they are still eligible.
        def experts_of(review):
            return {a.expert_id for a in review.assignments if a.status == "completed"}

        rereviews = [
            r
            for r in reviews
            if r.round == 2
            and r.kind.value == "regular"
            and next(p for p in r.program.reviews if p.round == 1).state
            == ReviewState.REVISION_REQUIRED
        ]
        assert rereviews
        for review in rereviews:
            previous = next(r for r in review.program.reviews if r.round == 1)
            assert experts_of(review) & experts_of(previous)
        assert_regional_variants(first, programs)
        # Everything went through the audited services: the chain is whole.
        assert verify_chain().ok
        # The agreement sums the services kept through every path of the season (reopened
        # sheets, discussion revisions, third experts) equal those rebuilt from the scores.
        kept = all_rows()
        assert len(kept[0]) > 10 * len(reviews) * 0.8
        rebuild(db.session.connection())
        assert_same_rows(kept, all_rows())
        db.session.rollback()
        db.session.remove()

    second, _ = run(scratch_app)
    assert second == first
    with scratch_app.app_context():
        assert len(season_programs()) == 60
        # The people of the region were made once.
        from review_portal.accounts.models import User

        people = db.session.execute(
            select(func.count(User.id)).where(User.email.like(f"%@{DOMAIN}"))
        ).scalar_one()
        assert people == first["organizations"] + first["experts"] + 1
        db.session.remove()


def assert_regional_variants(summary: dict, programs: list[Program]) -> None:
    """The regional variants of the season, against its rows: programs with modules and
    totals derived from them; reviews on the 1–5 regional sheet and the short-term sheet
    (chosen through ``/rubrics``' service, the choice in force restored), their conditional
    criteria scored exactly where they apply; and the programs refused only by the floor."""
    from review_portal.audit.models import AuditEvent
    from review_portal.enums import ProgramType
    from review_portal.reconciliation.rules import thresholds
    from review_portal.reviews.queries import rubric_of
    from review_portal.rubrics.registry import active_rubric

    with_modules = [p for p in programs if p.modules]
    assert summary["modules"] == len(with_modules) > 0
    for program in with_modules:
        assert 2 <= len(program.modules) <= 4
        assert program.total_hours == sum(m["hours"] for m in program.modules)
        assert program.duration_months == max(m["months"] for m in program.modules)
        assert program.versions[-1].modules == program.modules

    reviews = [r for p in programs for r in p.reviews]
    on_sheet = collections.defaultdict(list)
    for review in reviews:
        on_sheet[review.rubric_id].append(review)
    assert on_sheet["dop-regional-invariant"] and on_sheet["dop-short-term"]
    assert on_sheet["dop-general"], "the default sheet is still in use"
    for review in on_sheet["dop-short-term"]:
        facts = (review.version.total_hours, review.version.duration_months)
        assert facts[0] <= 36 or facts[1] <= 3, facts
    scored_v2 = 0
    for review in on_sheet["dop-regional-invariant"]:
        adapted = review.version.adapted_for_disabilities
        for assignment in review.assignments:
            if assignment.sheet is None or assignment.sheet.status != SheetStatus.SUBMITTED:
                continue
            # An appeal panel scores the contested criteria only.
            values = {s.criterion_id: s.value for s in assignment.sheet.scores}
            scored = {c: v for c, v in values.items() if v is not None}
            assert scored and all(1 <= v <= 5 for v in scored.values()), values
            # The ОВЗ criterion is on the sheet of an adapted program only.
            assert "V2" not in values or adapted
            if review.kind.value == "regular":
                assert ("V2" in scored) == adapted
                scored_v2 += "V2" in scored
    assert scored_v2 > 0
    # The sheets were chosen through the rubric service, and the choice in force when the
    # season began is in force again.
    assert db.session.execute(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "rubric.activate")
    ).scalar_one()
    assert active_rubric(ProgramType.GENERAL_DEVELOPMENTAL).id == "dop-general"
    # Short-term programs had no sheet of their own when the season began: none again.
    assert active_rubric(ProgramType.GENERAL_DEVELOPMENTAL, short_term=True).id == "dop-general"

    # Refused only by the floor, straight from the conclusions: not an admission, the
    # computed decision, counted sheets below the floor, and nothing else holding it back
    # (no blocking criterion or section failed, the percentage in the admission band).
    refused_by_floor = set()
    for review in reviews:
        final = review.final_result or {}
        if not review.conclusions or not final.get("floor_failed"):
            continue
        if review.decision.value == "admitted" or review.decision != review.computed_decision:
            continue
        assert all(c.decision == review.decision for c in review.conclusions)
        limits = thresholds(rubric_of(review))
        if (
            not final["blocking_failed"]
            and not final["sections_failed"]
            and Decimal(final["percent"]) >= limits.admit_percent
        ):
            refused_by_floor.add(review.program_id)
    assert summary["floor_refusals"] == len(refused_by_floor) > 0

    # Several registries: the entries included per kind, straight from the rows; some
    # program is in two kinds at once.
    from review_portal.registry.models import RegistryEntry

    ids = [p.id for p in programs]
    included = db.session.execute(
        select(RegistryEntry.kind, RegistryEntry.program_id).where(
            RegistryEntry.program_id.in_(ids), RegistryEntry.status == "included"
        )
    ).all()
    by_kind = collections.Counter(kind.value for kind, _ in included)
    assert summary["registry_entries_by_kind"] == dict(by_kind)
    assert sum(by_kind.values()) == summary["registry_entries"]
    assert len(by_kind) >= 2, by_kind
    per_program = collections.Counter(program_id for _, program_id in included)
    assert max(per_program.values()) >= 2
    asked = [p for p in programs if p.additional_registry_kinds]
    assert asked and all(
        p.registry_kinds[0].value not in p.additional_registry_kinds for p in asked
    )


def test_simulated_coordinator_who_is_an_expert_never_staffs_their_own_reviews(scratch_app):
    """With ``--coordinator-expert`` the first expert is a coordinator too and the season
    asks them first for every staff action: the services refuse them on the reviews they sit
    on (counted) and the second coordinator acts there."""
    summary, output = run(scratch_app, [*ARGS, "--coordinator-expert"])

    assert summary["staff_refusals"] > 0
    assert "coordinator who is also an expert" in output
    with scratch_app.app_context():
        from review_portal.accounts.models import User

        dual = db.session.execute(
            select(User).where(User.email == f"s17-expert001@{DOMAIN}")
        ).scalar_one()
        seats = dict(
            db.session.execute(
                select(Assignment.review_id, Assignment.assigned_at).where(
                    Assignment.expert_id == dual.id,
                    Assignment.status.in_(
                        [
                            AssignmentStatus.OFFERED,
                            AssignmentStatus.ACCEPTED,
                            AssignmentStatus.COMPLETED,
                        ]
                    ),
                )
            )
            .tuples()
            .all()
        )
        assert seats, "the coordinator who is an expert scored nothing"
        staffed = set(
            db.session.execute(
                select(Review.id).where(
                    (Review.decided_by_id == dual.id) | (Review.resolved_by_id == dual.id)
                )
            ).scalars()
        )
        issued = set(
            db.session.execute(
                select(Conclusion.review_id).where(Conclusion.issued_by_id == dual.id)
            ).scalars()
        )
        # They did the staff's work elsewhere, and none of it on a review they sit on: no
        # decision, resolution or conclusion, and no assignment made once seated there.
        assert staffed and issued
        assert not (staffed | issued) & set(seats)
        assigned_while_seated = db.session.execute(
            select(Assignment.id).where(
                Assignment.assigned_by_id == dual.id,
                Assignment.review_id.in_(seats),
            )
        ).scalars()
        for assignment_id in assigned_while_seated:
            assignment = db.session.get(Assignment, assignment_id)
            assert assignment.expert_id != dual.id
            assert assignment.assigned_at < seats[assignment.review_id]
        db.session.remove()


def test_simulate_unless_done_does_nothing_for_a_simulated_seed(scratch_app):
    small = ["simulate", "--programs", "3", "--experts", "6", "--seed", "3"]
    run(scratch_app, small)
    with scratch_app.app_context():
        before = db.session.execute(select(func.count(Review.id))).scalar_one()
        db.session.remove()

    result = scratch_app.test_cli_runner().invoke(args=[*small, "--unless-done"])

    assert result.exit_code == 0, result.output
    assert "already simulated" in result.output
    with scratch_app.app_context():
        assert db.session.execute(select(func.count(Review.id))).scalar_one() == before
        db.session.remove()


def test_simulate_refuses_bad_counts(scratch_app):
    result = scratch_app.test_cli_runner().invoke(args=["simulate", "--programs", "0"])
    assert result.exit_code == 2
    assert "--programs" in result.output


def test_simulate_under_production_config_refuses(app, monkeypatch):
    from tests.test_demo import _production_app

    production = _production_app(app, monkeypatch)
    try:
        result = production.test_cli_runner().invoke(args=["simulate", "--programs", "2"])
        assert result.exit_code == 1
        assert "simulate refuses to run under the production configuration" in result.output
        with production.app_context():
            from review_portal.accounts.models import User

            assert not db.session.execute(
                select(User.id).where(User.email.like(f"%@{DOMAIN}"))
            ).first()
            db.session.remove()
    finally:
        with production.app_context():
            db.engine.dispose()


def test_seed_demo_with_a_season_prints_its_accounts_once(scratch_app):
    from review_portal.accounts.models import User
    from review_portal.cli import DEMO_SEASON_SEED
    from review_portal.simulation.season import season_accounts

    first = scratch_app.test_cli_runner().invoke(args=["seed-demo", "--season", "4"])

    assert first.exit_code == 0, first.output
    assert "Simulating a season of 4 programs" in first.stderr
    # No terminal: the progress bar writes one line per phase, in the season's order, to
    # standard error; the season's own lines go to standard output beside them.
    phases = [line for line in first.stderr.splitlines() if line.startswith("Season: ")]
    assert phases == [f"Season: {PHASE_LABELS[phase]}" for phase in PHASES]
    assert "  programs: 4 created and submitted" in first.stdout
    assert "  registry: " in first.stdout
    assert re.search(r"^Season simulated in \d+ s\.$", first.stderr, re.MULTILINE)
    for _role, email in season_accounts(DEMO_SEASON_SEED):
        assert email in first.output
    with scratch_app.app_context():
        assert len(season_programs()) == 4
        for _role, email in season_accounts(DEMO_SEASON_SEED):
            user = db.session.execute(select(User).where(User.email == email)).scalar_one()
            assert user.status.value == "approved"
        db.session.remove()

    again = scratch_app.test_cli_runner().invoke(args=["seed-demo", "--season", "4"])

    assert again.exit_code == 0, again.output
    assert "Simulating" not in again.output
    assert season_accounts(DEMO_SEASON_SEED)[0][1] in again.output
    with scratch_app.app_context():
        assert len(season_programs()) == 4
        db.session.remove()

    # Another seed adds another season (make demo-season); both seasons' accounts printed,
    # the coordinator they share once.
    more = scratch_app.test_cli_runner().invoke(
        args=["seed-demo", "--season", "2", "--season-seed", "5"]
    )

    assert more.exit_code == 0, more.output
    assert "Simulating a season of 2 programs" in more.stderr
    for seed in (DEMO_SEASON_SEED, 5):
        for _role, email in season_accounts(seed):
            assert email in more.stdout
    assert more.stdout.count(season_accounts(5)[0][1]) == 1
    with scratch_app.app_context():
        assert len(season_programs()) == 6
        db.session.remove()


def test_season_bar_draws_on_a_terminal_and_holds_the_season_lines_back():
    from review_portal.cli import SeasonBar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    printed = []
    with SeasonBar(48, file=terminal) as bar:
        bar.progress("region", 0, 1)
        bar.progress("region", 1, 1)
        bar.progress("programs", 24, 48)
        bar.echo("programs: 48 created and submitted")
        printed.append(terminal.getvalue())
        bar.progress("programs", 48, 48)
        bar.progress("decisions", 0, 10)
        bar.progress("screening", 1, 1)  # never back
        for phase in PHASES:
            bar.progress(phase, 1, 1)
    drawn = terminal.getvalue()
    frames = [frame for frame in drawn.split("\r") if "%" in frame]
    # Half of the programs: 8 % for the region and 11 of the programs' 22.
    assert any("Season: programs written and submitted" in f and " 19%" in f for f in frames)
    assert any("Season: decisions and conclusions" in f and " 49%" in f for f in frames)
    percents = [int(re.search(r"(\d+)%", frame).group(1)) for frame in frames]
    assert percents == sorted(percents) and percents[-1] == 100
    assert "[" + "#" * 30 + "]" in frames[-1]
    # The season's line waited for the bar to finish (it went to standard output).
    assert "created and submitted" not in printed[0] and "created and submitted" not in drawn
