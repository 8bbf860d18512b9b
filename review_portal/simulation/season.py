"""A whole assessment season, end to end, through the portal's own services
(``flask --app review_portal.wsgi simulate``).

Providers register and are approved, create programs with real PDF documents and submit
them; the coordinator screens them (some are returned with a reason, fixed and submitted
again; a few are withdrawn); the automatic assignment runs in waves as experts free up; the
experts accept or decline (a decline, sometimes a declared conflict of interest, brings an
automatic replacement), save drafts and submit score sheets with realistic disagreement;
the rubric's rules send divergent reviews to a third expert or to a discussion (the
pre-professional rubric); the coordinator resolves what no expert can take, confirms
decisions — the plain ones as one bulk issuing job — and overrides a few with a written
justification; programs sent for revision are revised and re-reviewed (the same experts
preferred); the registry is published.

The regional variants, for part of the programs: modules (the card's totals derived from
them), several registry kinds asked for (``registry_entries_by_kind``), short-term
intensives, and the regional expert sheets that ship with ``default:
false`` (the 1–5 sheet with an experts' floor and section minimums, the short-term sheet),
each chosen as the active rubric for a batch of acceptances through the rubric service and
the rubric in force restored afterwards; divergent reviews with a sheet below a floor are
resolved by the coordinator counting both sheets, so some programs are refused only by the
floor (``floor_refusals``).

Nothing is written to a table directly: every step is the service a user's request would
call, so the audit log, the notifications and the numbering tell the same story as a real
season. Like a job handler (and unlike a service), the season owns its transactions: it
commits after each step of each wave, as the users' requests would.

A coordinator who is also an expert (``--coordinator-expert``): the season's first expert is
given the coordinator's role by an administrator and acts as the season's first coordinator,
while sitting as an expert on the reviews the solver gives them. The assignment runs are the
second coordinator's (nobody is a candidate of their own run); every other staff action on
a review goes to the first coordinator, and where the service refuses it (``Forbidden``: a
role never widens a relation) it is counted (``staff_refusals``) and done by the second one.
The bulk confirmation's refusals are counted and confirmed by the second coordinator.

Determinism: every random choice comes from a generator seeded by the season's seed and the
object's place in the season (never a database id), the solver gets the same seed, and
objects are visited in id order. The same seed on the same starting database gives the
same counts; a second run on the database of the first creates the region's people only
once (they are found by e-mail) and adds a new season of programs.
"""

from __future__ import annotations

import collections
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from itertools import pairwise
from types import SimpleNamespace

from sqlalchemy import func, select

from review_portal.accounts.models import User
from review_portal.accounts.services import (
    NewUser,
    approve_registration,
    create_approved_user,
    find_user_by_email,
    published_password,
    register_expert,
    register_provider,
    update_user,
)
from review_portal.assignment.models import Assignment
from review_portal.assignment.services import (
    accept_assignment,
    decline_assignment,
    run_assignment,
)
from review_portal.conclusions.bulk import start_bulk_issue
from review_portal.conclusions.models import Conclusion
from review_portal.demo import (
    DEMO_PASSWORD,
    MUNICIPALITIES,
    SETTINGS,
    attach_program_document,
    make_inn,
    make_ogrn,
)
from review_portal.enums import (
    AppealState,
    AssignmentRole,
    AssignmentStatus,
    Decision,
    OrganizationType,
    ProgramType,
    RefusalGround,
    RegistryEntryStatus,
    RegistryKind,
    ReviewKind,
    Role,
    SheetStatus,
    StudyForm,
)
from review_portal.errors import Forbidden
from review_portal.extensions import db
from review_portal.jobs.services import run_job
from review_portal.organizations.models import Municipality, Organization
from review_portal.programs.models import Program
from review_portal.programs.modules import with_module_totals
from review_portal.programs.services import (
    accept_submission,
    create_program,
    return_submission,
    submit_program,
    update_program,
    withdraw_program,
)
from review_portal.programs.validation import program_data_errors
from review_portal.reconciliation import rules
from review_portal.reconciliation.services import (
    ScoreChange,
    close_expired_discussions,
    is_discussion_open,
    resolve_review,
    revise_scores,
)
from review_portal.registry.models import RegistryEntry
from review_portal.registry.queries import pending_changes
from review_portal.registry.services import publish_registry
from review_portal.reviews.models import Review
from review_portal.reviews.queries import fixed_scores_of, review_sheets, rubric_of
from review_portal.reviews.services import decide_review
from review_portal.rubrics.registry import (
    ActiveChoice,
    RubricFile,
    active_choices,
    active_rubric,
    choose_active_rubric,
    get_rubric,
    rubric_files,
)
from review_portal.scoring.compute import is_short_term, program_facts
from review_portal.scoring.models import ScoreSheet
from review_portal.scoring.services import SheetInput, save_sheet, submit_sheet
from review_portal.settings.services import get_setting, set_setting
from review_portal.simulation import data
from review_portal.unit_of_work import unit_of_work
from review_portal.workflow import ReviewState

#: Domain of the simulated people's e-mail addresses.
DOMAIN = "sim.rmc67.ru"
COORDINATOR_EMAIL = f"coordinator@{DOMAIN}"
ADMIN_EMAIL = f"admin@{DOMAIN}"

#: Shares of the season (probabilities of the seeded choices).
WITHDRAW_SHARE = 0.02
RETURN_SHARE = 0.09
RESUBMIT_AFTER_RETURN = 0.8
DECLINE_SHARE = 0.07
CONFLICT_SHARE_OF_DECLINES = 0.35
PRE_PROFESSIONAL_SHARE = 0.3  # of arts and sports programs
AGREEMENT_IN_DISCUSSION = 0.6
OVERRIDE_SHARE = 0.06
REVISE_AFTER_DECISION = 0.75
#: Of the programs sent for revision or rejected: the share whose provider appeals; of
#: those, the share who come after the window (the portal refuses), the share the center
#: refuses as unfounded, and the share whose contested criteria deserved more.
APPEAL_SHARE = 0.35
LATE_APPEAL_SHARE = 0.15
REFUSED_APPEAL_SHARE = 0.2
APPEAL_MERIT_SHARE = 0.5
#: Of the entries that reach their end date: the share whose provider submits for renewal.
RENEW_SHARE = 0.5
#: The regional variants (docs: README, "A simulated season"). Of all programs, the share
#: certified with 2–4 modules; of the general developmental ones, the share made short-term
#: (a holiday intensive of at most 36 hours and 3 months).
MODULES_SHARE = 0.25
INTENSIVE_SHARE = 0.12
#: The regional expert sheets (``default: false``): of the general developmental programs
#: that are not short-term, the share assessed on the 1–5 regional sheet; of the short-term
#: ones, the share assessed on the short-term sheet. Of the programs on these sheets, the
#: share adapted for children with disabilities (beside the 10 % of every program), so their
#: conditional criteria are scored.
REGIONAL_SHEET_SHARE = 0.4
SHORT_TERM_SHEET_SHARE = 0.6
ADAPTED_ON_REGIONAL_SHEETS = 0.35
#: Several registries: of the general developmental programs, the share that also asks for
#: the socially significant registry; of the pre-professional ones, the share that also asks
#: for the certified one (an admission includes them in each kind whose policy they meet).
ALSO_SIGNIFICANT_SHARE = 0.25
ALSO_CERTIFIED_SHARE = 0.5
REGIONAL_RUBRIC = "dop-regional-invariant"
SHORT_TERM_RUBRIC = "dop-short-term"
#: On a wide scale (1–5) an expert now and then reads a program far more strictly than the
#: other one (a flaw only they weigh): the share of such sheets and how much lower they see
#: the program's quality (0..1). This is what an expert's floor catches.
DOUBT_SHARE = 0.15
DOUBT_SHIFT = 0.45
#: Largest number of assignment waves before the season gives up waiting (a safeguard).
MAX_WAVES = 200

#: The phases of a season in order, as ``progress`` reports them, each with its rough share
#: of the season's time (measured on a 48-program season; a progress bar's weights).
PHASES = {
    "region": 8,
    "programs": 22,
    "screening": 6,
    "expertise": 13,
    "decisions": 25,
    "appeals": 10,
    "revision": 10,
    "registry": 1,
    "validity": 5,
}


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


@dataclass
class Season:
    """What a season has made so far, as ids and its own counters."""

    seed: int
    coordinator: User
    echo: Callable[[str], None]
    #: The staff in the order they are asked to act on a review (the first coordinator, and
    #: with ``coordinator_expert`` the plain one after the coordinator who is an expert).
    staff: list[User] = field(default_factory=list)
    program_ids: list[int] = field(default_factory=list)
    #: program id → its place in the season (the key of its random choices)
    index_of: dict[int, int] = field(default_factory=dict)
    #: program id → latent quality per criterion id (0..1)
    quality: dict[int, dict[str, float]] = field(default_factory=dict)
    counts: collections.Counter = field(default_factory=collections.Counter)
    #: reviews whose discussion the experts have already had (they speak once)
    discussed: set[int] = field(default_factory=set)
    #: program id → the id of the regional rubric its reviews are accepted under (absent:
    #: the rubric in force for its type when the season began)
    sheet_of: dict[int, str] = field(default_factory=dict)
    #: the rubric in force for each program type when the season began
    #: What was in force when the season began, by (program type, short-term).
    in_force: dict[tuple[ProgramType, bool], ActiveChoice] = field(default_factory=dict)
    #: reviews in reconciliation the commission has looked at (once each)
    commission_seen: set[int] = field(default_factory=set)
    #: ``progress(phase, done, total)``: ``done`` of ``total`` steps of a phase of
    #: :data:`PHASES` are behind (0 when the phase begins).
    progress: Callable[[str, int, int], None] = _no_progress

    def rng(self, *key) -> random.Random:
        return random.Random(":".join(str(k) for k in (self.seed, *key)))


def run_season(
    programs: int,
    experts: int,
    seed: int,
    echo: Callable[[str], None] = print,
    *,
    coordinator_expert: bool = False,
    progress: Callable[[str, int, int], None] = _no_progress,
) -> dict:
    """Run a whole season and return its summary (the ``simulate`` command's JSON);
    ``progress(phase, done, total)`` hears how far it is (:data:`PHASES`)."""
    # Every account of the season gets the published demo password.
    with published_password(DEMO_PASSWORD):
        return _run_season(
            programs, experts, seed, echo, coordinator_expert=coordinator_expert, progress=progress
        )


def _run_season(
    programs: int,
    experts: int,
    seed: int,
    echo: Callable[[str], None],
    *,
    coordinator_expert: bool,
    progress: Callable[[str, int, int], None],
) -> dict:
    progress("region", 0, 1)
    with unit_of_work():
        coordinator = _coordinator()
        municipalities = _ensure_region(coordinator)
        in_force = {(c.program_type, c.short_term): c for c in active_choices()}
    season = Season(
        seed=seed,
        coordinator=coordinator,
        echo=echo,
        staff=[coordinator],
        progress=progress,
        in_force=in_force,
    )

    with unit_of_work():
        organizations = _providers(season, municipalities, max(3, math.ceil(programs / 6)))
        experts_made = _experts(season, municipalities, organizations, experts)
    if coordinator_expert:
        with unit_of_work():
            dual = _make_coordinator(experts_made[0])
        season.coordinator = dual
        season.staff = [dual, coordinator]
        echo(f"coordinator who is also an expert: {dual.email}")
    echo(f"region: {len(organizations)} providers, {len(experts_made)} experts")
    progress("region", 1, 1)

    _create_and_submit(season, organizations, programs)
    _screen(season)
    _expert_work(season)
    _decide(season)
    _appeals(season)
    _revise(season)
    _publish(season)
    _validity(season)
    with unit_of_work():
        summary = _summary(season, len(organizations), len(experts_made))
    return summary


def provider_email(seed: int, number: int) -> str:
    return f"s{seed}-provider{number:03d}@{DOMAIN}"


def expert_email(seed: int, number: int) -> str:
    return f"s{seed}-expert{number:03d}@{DOMAIN}"


def season_done(seed: int) -> bool:
    """A season with ``seed`` has made its providers (``--unless-done``)."""
    return find_user_by_email(provider_email(seed, 1)) is not None


def season_accounts(seed: int) -> list[tuple[str, str]]:
    """Accounts to try a simulated season with (role, e-mail); all share the demo password."""
    return [
        ("coordinator", COORDINATOR_EMAIL),
        ("provider", provider_email(seed, 1)),
        ("expert", expert_email(seed, 1)),
    ]


# --- the region -----------------------------------------------------------------------------


def _coordinator() -> User:
    user = find_user_by_email(COORDINATOR_EMAIL)
    if user is None:
        user = create_approved_user(
            COORDINATOR_EMAIL,
            DEMO_PASSWORD,
            "Орлова Марина Викторовна",
            [Role.COORDINATOR],
            actor=None,
        )
    return user


def _make_coordinator(expert: User) -> User:
    """``expert`` gets the coordinator's role too, from the region's administrator (made
    once), through the same service as the users page."""
    admin = find_user_by_email(ADMIN_EMAIL)
    if admin is None:
        admin = create_approved_user(
            ADMIN_EMAIL, DEMO_PASSWORD, "Администратор Симуляции", [Role.ADMIN], actor=None
        )
    if not expert.has_role(Role.COORDINATOR):
        update_user(
            expert,
            admin,
            full_name=expert.full_name,
            roles=sorted({*expert.roles, Role.COORDINATOR}, key=lambda r: r.value),
            active=True,
            municipality_id=expert.municipality_id,
            organization_id=expert.organization_id,
        )
    return expert


def as_staff(season: Season, action: Callable[[User], object]) -> object:
    """``action(coordinator)`` by the first of the season's staff whom the service lets act
    (each attempt in a savepoint of the caller's unit of work); each refusal (``Forbidden``)
    is counted."""
    for number, user in enumerate(season.staff, start=1):
        try:
            with db.session.begin_nested():
                return action(user)
        except Forbidden:
            if number == len(season.staff):
                raise
            season.counts["staff_refusals"] += 1
    raise AssertionError("no staff")


def _ensure_region(actor: User) -> list[Municipality]:
    """The region's settings and municipalities (the demo region's, when none exist)."""
    if not get_setting("region_name"):
        for key, value in SETTINGS.items():
            set_setting(key, value, actor=actor)
    municipalities = list(
        db.session.execute(select(Municipality).order_by(Municipality.id)).scalars()
    )
    if not municipalities:
        for name in MUNICIPALITIES:
            db.session.add(Municipality(name=name))
        db.session.flush()
        return _ensure_region(actor)
    return municipalities


def _municipality(rng: random.Random, municipalities: list[Municipality]) -> Municipality:
    """The first municipality (the regional capital) holds a third of everything."""
    if rng.random() < 0.35:
        return municipalities[0]
    return rng.choice(municipalities)


def _fresh_inn(rng: random.Random, length: int) -> str:
    while True:
        inn = make_inn(rng, length)
        taken = db.session.execute(
            select(func.count()).select_from(Organization).where(Organization.inn == inn)
        ).scalar()
        if not taken:
            return inn


def _providers(season: Season, municipalities: list[Municipality], count: int) -> list:
    """``count`` approved provider organizations, each with its applicant user."""
    organizations = []
    for number in range(1, count + 1):
        email = provider_email(season.seed, number)
        user = find_user_by_email(email)
        if user is None:
            rng = season.rng("provider", number)
            municipality = _municipality(rng, municipalities)
            contact = data.person_name(rng)
            if rng.random() < 0.12:
                kind = OrganizationType.INDIVIDUAL_ENTREPRENEUR
                surname, first, middle = contact.split()
                full_name = f"Индивидуальный предприниматель {contact}"
                short_name = f"ИП {surname} {first[0]}. {middle[0]}."
            else:
                pattern = rng.choice(data.ORGANIZATION_PATTERNS)
                kind = pattern.kind
                values = {
                    "name": rng.choice(data.ORGANIZATION_NAMES),
                    "place": data.place_of(municipality.name),
                }
                full_name = pattern.full.format(**values)
                short_name = pattern.short.format(**values)
            individual = kind == OrganizationType.INDIVIDUAL_ENTREPRENEUR
            user = register_provider(
                NewUser(email, DEMO_PASSWORD, contact),
                full_name=full_name,
                short_name=short_name,
                inn=_fresh_inn(rng, 12 if individual else 10),
                ogrn=make_ogrn(rng, individual),
                kind=kind,
                municipality_id=municipality.id,
                address=f"{municipality.name}, ул. Школьная, д. {rng.randint(1, 60)}",
                consent=True,
            )
            approve_registration(user, season.coordinator)
        organizations.append(user.organization)
    return organizations


def _experts(
    season: Season, municipalities: list[Municipality], organizations: list, count: int
) -> list[User]:
    """``count`` approved experts; a quarter work at one of the providers (so conflicts of
    interest and the home-organization rule come into play)."""
    directions = list(data.DIRECTION_WEIGHTS)
    weights = list(data.DIRECTION_WEIGHTS.values())
    experts = []
    for number in range(1, count + 1):
        email = expert_email(season.seed, number)
        user = find_user_by_email(email)
        if user is None:
            rng = season.rng("expert", number)
            # The first experts cover every direction three times over (two experts and a
            # third one for a divergent review); the rest follow the programs' shares.
            if number <= 3 * len(directions):
                own = {directions[(number - 1) % len(directions)]}
            else:
                own = {rng.choices(directions, weights)[0]}
            if rng.random() < 0.3:
                own.add(rng.choices(directions, weights)[0])
            municipality = _municipality(rng, municipalities)
            if organizations and rng.random() < 0.25:
                home = rng.choice(organizations)
                home_name, home_inn = home.short_name, home.inn
            else:
                home_name = rng.choice(data.SCHOOL_NAMES).format(
                    n=rng.randint(1, 40), place=data.place_of(municipality.name)
                )
                home_inn = make_inn(rng, 10)
            user = register_expert(
                NewUser(email, DEMO_PASSWORD, data.person_name(rng)),
                municipality_id=municipality.id,
                home_organization_name=home_name,
                home_organization_inn=home_inn,
                position=rng.choice(data.POSITIONS[sorted(own)[0]]),
                directions=sorted(own),
                qualification=data.QUALIFICATION,
                experience_years=rng.randint(5, 30),
                capacity=rng.randint(4, 8),
                consent=True,
            )
            approve_registration(user, season.coordinator)
        experts.append(user)
    return experts


# --- programs -------------------------------------------------------------------------------


def _create_and_submit(season: Season, organizations: list, count: int) -> None:
    directions = list(data.DIRECTION_WEIGHTS)
    weights = list(data.DIRECTION_WEIGHTS.values())
    # Every criterion the season's sheets may ask for has a latent quality (the default
    # sheet's first, so its draws are those of a season without the regional sheets).
    criteria = [c.id for c in get_rubric("dop-general", 1).criteria]
    for rubric_id in (REGIONAL_RUBRIC, SHORT_TERM_RUBRIC):
        criteria += [c.id for c in _newest(rubric_id).criteria if c.id not in criteria]
    season.progress("programs", 0, count)
    for index in range(count):
        with unit_of_work():
            rng = season.rng("program", index)
            organization = organizations[rng.randrange(len(organizations))]
            applicant = _applicant(organization)
            direction = rng.choices(directions, weights)[0]
            idea = rng.choice(data.PROGRAM_IDEAS[direction])
            pre_professional = (
                direction in (data.A, data.SP) and rng.random() < PRE_PROFESSIONAL_SHARE
            )
            group_min = rng.randint(5, 10)
            card = {
                "title": data.program_title(idea, rng),
                "direction": direction,
                "level": idea.level,
                "program_type": ProgramType.PRE_PROFESSIONAL
                if pre_professional
                else ProgramType.GENERAL_DEVELOPMENTAL,
                "requested_registry_kind": RegistryKind.PRE_PROFESSIONAL
                if pre_professional
                else RegistryKind.CERTIFIED,
                "age_min": idea.ages[0],
                "age_max": idea.ages[1],
                "total_hours": idea.hours,
                "duration_months": idea.months,
                "study_form": rng.choices(list(StudyForm), (85, 12, 3))[0],
                "uses_distance_learning": rng.random() < 0.15,
                "network_form": rng.random() < 0.05,
                "group_min": group_min,
                "group_max": group_min + rng.randint(4, 10),
                "adapted_for_disabilities": rng.random() < 0.1,
                "annotation": idea.annotation,
            }
            card = _regional_variant(season, index, card)
            program = _create_program(organization, applicant, card)
            attach_program_document(program, applicant)
            submit_program(program, applicant)
            season.program_ids.append(program.id)
            season.index_of[program.id] = index
            if "sheet" in card:
                season.sheet_of[program.id] = card["sheet"]
            season.counts["with_modules"] += bool(program.modules)
            # A program's quality: most are sound, some weak; each criterion varies around it.
            base = rng.choices((0.88, 0.72, 0.5), (62, 26, 12))[0]
            season.quality[program.id] = {
                c: min(1.0, max(0.0, rng.gauss(base, 0.12))) for c in criteria
            }
        season.progress("programs", index + 1, count)
    season.echo(
        f"programs: {count} created and submitted, {season.counts['with_modules']} with "
        f"modules, {len(season.sheet_of)} on the regional sheets"
    )


def _newest(rubric_id: str) -> RubricFile:
    """The newest version of a rubric file."""
    return max((r for r in rubric_files().values() if r.id == rubric_id), key=lambda r: r.version)


def _regional_variant(season: Season, index: int, card: dict) -> dict:
    """The program's card with the season's regional variants (keyed choices of their own,
    so every other choice of the season stays what it was): 2–4 modules for some programs;
    some general developmental ones made a short-term holiday intensive; and the regional
    sheet some general developmental programs are to be assessed on (``card["sheet"]``, a
    rubric id: the short-term sheet for short-term programs, the 1–5 sheet for the others),
    with more of those adapted for children with disabilities."""
    rng = season.rng("regional", index)
    card = dict(card)
    general = card["program_type"] == ProgramType.GENERAL_DEVELOPMENTAL
    if general and rng.random() < INTENSIVE_SHARE:
        card["title"] += data.INTENSIVE_SUFFIX
        card["total_hours"] = rng.choice((16, 24, 30, 36))
        card["duration_months"] = rng.randint(1, 3)
    elif rng.random() < MODULES_SHARE:
        card["modules"] = _modules(rng, card)
    # Short-term by the scoring module's own rule, on the totals the modules give.
    short_term = program_facts(SimpleNamespace(**_with_totals(card)))["short_term"]
    if general:
        if short_term and rng.random() < SHORT_TERM_SHEET_SHARE:
            card["sheet"] = SHORT_TERM_RUBRIC
        elif not short_term and rng.random() < REGIONAL_SHEET_SHARE:
            card["sheet"] = REGIONAL_RUBRIC
    if "sheet" in card and rng.random() < ADAPTED_ON_REGIONAL_SHEETS:
        card["adapted_for_disabilities"] = True
    kinds = season.rng("kinds", index)
    if general and kinds.random() < ALSO_SIGNIFICANT_SHARE:
        card["additional_registry_kinds"] = [RegistryKind.SIGNIFICANT.value]
    elif not general and kinds.random() < ALSO_CERTIFIED_SHARE:
        card["additional_registry_kinds"] = [RegistryKind.CERTIFIED.value]
    return card


def _with_totals(card: dict) -> dict:
    return with_module_totals({k: v for k, v in card.items() if k != "sheet"})


def _modules(rng: random.Random, card: dict) -> list[dict]:
    """2–4 modules sharing the card's hours (each at least 8, even numbers) whose longest
    lasts as long as the program, each with its group size and teacher requirements."""
    count = rng.randint(2, 4)
    hours = card["total_hours"]
    if hours < 8 * count:
        count = 2
    spare = max(0, hours - 8 * count)
    cuts = sorted(rng.randint(0, spare // 2) for _ in range(count - 1))
    parts = [8 + 2 * (b - a) for a, b in pairwise([0, *cuts, spare // 2])]
    parts[-1] = hours - sum(parts[:-1])
    months = card["duration_months"]
    modules = []
    for number, (title, part) in enumerate(zip(data.MODULE_TITLES[count], parts, strict=True)):
        low = card["group_min"]
        modules.append(
            {
                "title": title,
                "hours": part,
                "months": months if number == 0 else rng.randint(min(months, 4), months),
                "group_min": low,
                "group_max": max(low, card["group_max"] - rng.randint(0, 3)),
                "teacher_requirements": rng.choice(data.TEACHER_REQUIREMENTS),
            }
        )
    return modules


def _create_program(organization: Organization, applicant: User, card: dict) -> Program:
    """The program as the program form creates it: the card checked by the form's own rules
    (the totals derived from the modules first, as the form does), then the service."""
    fields = _with_totals(card)
    errors = program_data_errors({**fields, "municipality_id": organization.municipality_id})
    if errors:
        raise RuntimeError(f"the simulated card breaks the program rules: {errors}")
    return create_program(organization, applicant, **fields)


def _applicant(organization: Organization) -> User:
    return db.session.execute(
        select(User).where(User.organization_id == organization.id).order_by(User.id).limit(1)
    ).scalar_one()


# --- screening ------------------------------------------------------------------------------


def _screen(season: Season) -> None:
    """The coordinator's screening of everything submitted: withdrawals first (the
    provider's own), then returns with a reason, fixes and resubmissions, acceptance."""
    coordinator = season.coordinator
    returned, accepted = [], []
    season.progress("screening", 0, 1)
    with unit_of_work():
        for program in _programs(season, ReviewState.SUBMITTED):
            rng = season.rng("screening", season.index_of[program.id])
            roll = rng.random()
            if roll < WITHDRAW_SHARE:
                withdraw_program(
                    program,
                    _applicant(program.organization),
                    "Педагог, реализующий программу, уволился; набор не будет проводиться.",
                )
                season.counts["withdrawn"] += 1
            elif roll < WITHDRAW_SHARE + RETURN_SHARE:
                return_submission(program, coordinator, rng.choice(data.RETURN_REASONS))
                season.counts["returned"] += 1
                if rng.random() < RESUBMIT_AFTER_RETURN:
                    returned.append(program)
            else:
                accepted.append(program)
        _accept(season, accepted)
    with unit_of_work():
        for program in returned:
            applicant = _applicant(program.organization)
            rng = season.rng("fix", season.index_of[program.id])
            update_program(
                program,
                applicant,
                annotation=f"{program.annotation} {rng.choice(data.FIXES)}",
            )
            attach_program_document(program, applicant, plan=rng.choice(data.FIXES))
            submit_program(program, applicant)
            season.counts["resubmitted"] += 1
        _accept(season, returned)
    season.echo(
        f"screening: {season.counts['returned']} returned, "
        f"{season.counts['resubmitted']} resubmitted, {season.counts['withdrawn']} withdrawn"
    )
    season.progress("screening", 1, 1)


def _accept(season: Season, programs: list[Program]) -> None:
    """The coordinator accepts ``programs`` into expertise, each on its sheet: the programs
    on the rubric in force for their type first, then those of each regional sheet as a
    batch, the sheet chosen as the active one for their type before the batch (the real
    choice of ``/rubrics``: the regional sheets are not defaults); afterwards the rubric in
    force when the season began is chosen again. Accepting freezes the active rubric on the
    review, so each program's reviews keep its sheet whatever is chosen later."""
    targets = {program.id: _sheet(season, program) for program in programs}
    for program in sorted(
        programs,
        key=lambda p: (p.id in season.sheet_of, season.sheet_of.get(p.id, ""), p.id),
    ):
        _make_active(season, program.program_type, is_short_term(program), targets[program.id])
        accept_submission(program, season.coordinator)
    now = {(c.program_type, c.short_term): c for c in active_choices()}
    for (program_type, short_term), choice in season.in_force.items():
        if choice.chosen or not short_term:
            if choice.rubric is not None:
                _make_active(season, program_type, short_term, choice.rubric)
        elif now[(program_type, short_term)].chosen:
            # Short-term programs of the type had no sheet of their own: none again.
            choose_active_rubric(program_type, None, season.coordinator, short_term=True)
            season.counts["rubric_choices"] += 1


def _sheet(season: Season, program: Program) -> RubricFile | None:
    """The rubric ``program`` is to be assessed on."""
    if program.id in season.sheet_of:
        return _newest(season.sheet_of[program.id])
    choice = season.in_force.get((ProgramType(program.program_type), is_short_term(program)))
    return choice.rubric if choice is not None else None


def _make_active(
    season: Season, program_type: ProgramType, short_term: bool, rubric: RubricFile | None
) -> None:
    """Choose ``rubric`` for the type's programs (its short-term ones with ``short_term``)
    unless it is already in force for them (the one place the season chooses a rubric)."""
    current = active_rubric(program_type, short_term)
    if rubric is None or (
        current is not None and current.id == rubric.id and current.version == rubric.version
    ):
        return
    choose_active_rubric(program_type, rubric, season.coordinator, short_term=short_term)
    season.counts["rubric_choices"] += 1


def _programs(season: Season, *states: ReviewState) -> list[Program]:
    """The season's programs whose current review is in one of ``states``, in id order."""
    return list(
        db.session.execute(
            select(Program)
            .join(Review, Program.current_review_id == Review.id)
            .where(Program.id.in_(season.program_ids), Review.state.in_(states))
            .order_by(Program.id)
        ).scalars()
    )


# --- the experts' work ----------------------------------------------------------------------


def _assignments(season: Season, *statuses: AssignmentStatus) -> list[Assignment]:
    return list(
        db.session.execute(
            select(Assignment)
            .join(Review, Assignment.review_id == Review.id)
            .where(Review.program_id.in_(season.program_ids), Assignment.status.in_(statuses))
            .order_by(Assignment.id)
        ).scalars()
    )


def _key(season: Season, assignment: Assignment) -> tuple:
    """The place of an assignment in the season, independent of database ids."""
    review = assignment.review
    return (season.index_of[review.program_id], review.round, assignment.seat)


def _expert_work(season: Season, phase: str | None = "expertise") -> None:
    """Waves until nothing moves: the automatic assignment fills what it can, experts
    answer their offers and score what they accepted, discussions run their course, and
    a review no expert can take is resolved by the coordinator. Progress is reported as
    ``phase`` (none when ``None``): each wave halves what is left, as the number of waves
    is not known in advance."""
    waves = 0
    while True:
        if phase:
            halvings = min(waves, 10)
            season.progress(phase, 2**halvings - 1, 2**halvings)
        waves += 1
        if waves > MAX_WAVES:
            raise RuntimeError(f"the season did not settle in {MAX_WAVES} waves")
        with unit_of_work():
            moved = _assign_wave(season)
            moved += _answer_offers(season)
            moved += _score_accepted(season)
            moved += _commission(season)
            moved += _discuss(season)
        if not moved:
            with unit_of_work():
                moved = _close_discussions(season) or _resolve_stuck(season)
            if not moved:
                break
    waiting = len(_programs(season, ReviewState.IN_REVIEW))
    season.echo(
        f"expertise: {waves} waves, {season.counts['sheets']} sheets, "
        f"{season.counts['declined']} declined"
        + (f"; {waiting} reviews wait for eligible experts" if waiting else "")
        + (
            f"; {season.counts['resolved_by_commission']} settled by the commission (a sheet "
            "below the floor)"
            if season.counts["resolved_by_commission"]
            else ""
        )
    )
    if phase:
        season.progress(phase, 1, 1)


def _assign_wave(season: Season) -> int:
    open_ids = [
        p.current_review_id
        for p in _programs(season, ReviewState.IN_REVIEW, ReviewState.RECONCILIATION)
    ]
    if not open_ids:
        return 0
    # The runs are the plain coordinator's: a coordinator is never a candidate of their own
    # run, and the coordinator who is an expert should get seats to be refused on.
    result = run_assignment(season.staff[-1], apply=True, seed=season.seed, review_ids=open_ids)
    return len(result.created)


def _answer_offers(season: Season) -> int:
    answered = 0
    # Replacements after a decline are offered at once; they are answered in the next wave.
    for assignment in _assignments(season, AssignmentStatus.OFFERED):
        rng = season.rng("answer", *_key(season, assignment))
        expert = assignment.expert
        if rng.random() < DECLINE_SHARE:
            conflict = rng.random() < CONFLICT_SHARE_OF_DECLINES
            reason = data.CONFLICT_REASON if conflict else rng.choice(data.DECLINE_REASONS)
            decline_assignment(assignment, expert, reason, conflict=conflict)
            season.counts["declined"] += 1
            season.counts["conflicts"] += conflict
        else:
            accept_assignment(assignment, expert)
        answered += 1
    return answered


def _severity(season: Season, expert: User) -> float:
    """How strict an expert is (subtracted from a program's quality), fixed per person."""
    return season.rng("severity", expert.email).gauss(0.0, 0.07)


def _scores(season: Season, assignment: Assignment) -> tuple[dict, dict]:
    """An expert's scores and comments: the program's quality per criterion as this expert
    sees it (their severity and noise). On the 0–2 scale a criterion is "not expressed"
    below 0.3 and fully expressed from 0.7; on a wider scale (the regional 1–5 sheet) the
    quality is spread evenly over the scale, and now and then an expert reads the whole
    program far more strictly than the others (:data:`DOUBT_SHARE`)."""
    rng = season.rng("scores", *_key(season, assignment))
    severity = _severity(season, assignment.expert)
    quality = season.quality[assignment.review.program_id]
    rubric = rubric_of(assignment.review)
    span = rubric.scale_max - rubric.scale_min
    if span > 2 and season.rng("doubt", *_key(season, assignment)).random() < DOUBT_SHARE:
        severity += DOUBT_SHIFT
    scores, comments = {}, {}
    for criterion in rubric.criteria:
        value = quality.get(criterion.id, sum(quality.values()) / len(quality))
        seen = value - severity + rng.gauss(0.0, 0.12)
        if span > 2:
            score = rubric.scale_min + math.floor(seen * span + 0.5)
        else:
            score = 0 if seen < 0.3 else 1 if seen < 0.7 else 2
        score = max(rubric.scale_min, min(rubric.scale_max, score))
        scores[criterion.id] = score
        if rubric.comment_required(score):
            comments[criterion.id] = rng.choice(data.COMMENTS)
    return scores, comments


def _score_accepted(season: Season) -> int:
    """Each accepted assignment: a first draft (half the criteria), the full draft, submit."""
    scored = 0
    for assignment in _assignments(season, AssignmentStatus.ACCEPTED):
        expert = assignment.expert
        scores, comments = _scores(season, assignment)
        rng = season.rng("sheet", *_key(season, assignment))
        half = dict(list(scores.items())[: len(scores) // 2])
        sheet = save_sheet(
            assignment,
            expert,
            SheetInput(revision=_revision(assignment), scores=half, comments=comments),
        )
        save_sheet(
            assignment,
            expert,
            SheetInput(
                revision=sheet.revision,
                scores=scores,
                comments=comments,
                recommendations=rng.choice(data.RECOMMENDATIONS),
                confirmed=True,
            ),
        )
        submit_sheet(assignment, expert)
        season.counts["sheets"] += 1
        scored += 1
    return scored


def _revision(assignment: Assignment) -> int:
    return assignment.sheet.revision if assignment.sheet is not None else 0


def _commission(season: Season) -> int:
    """A divergent review on a rubric with an experts' floor where an initial sheet is
    below the floor: the commission does not wait for a third expert (the rule asks the
    minimum of every expert, so a third sheet could only hide the low one) and the
    coordinator resolves it at once counting both initial sheets; the third expert's offer
    is withdrawn by the service. Each review is looked at once, when it enters
    reconciliation."""
    settled = 0
    for program in _programs(season, ReviewState.RECONCILIATION):
        review = program.current_review
        if review.id in season.commission_seen or review.kind != ReviewKind.REGULAR:
            continue
        season.commission_seen.add(review.id)
        rubric = rubric_of(review)
        if rules.thresholds(rubric).floor_percent is None:
            continue
        sheets = review_sheets(review)
        initial = [s for s in sheets if s.role == AssignmentRole.INITIAL and s.submitted]
        if any(s.submitted for s in sheets if s.role != AssignmentRole.INITIAL):
            continue
        if not rules.below_floor(rubric, [s.scores for s in initial], range(len(initial))):
            continue
        counted = [s.assignment.id for s in initial]
        as_staff(
            season,
            lambda user, review=review, counted=counted: resolve_review(
                review, user, data.COMMISSION_NOTE, counted
            ),
        )
        season.counts["resolved_by_coordinator"] += 1
        season.counts["resolved_by_commission"] += 1
        settled += 1
    return settled


def _discuss(season: Season) -> int:
    """In an open discussion one expert may come round to the other's scores (agreement);
    otherwise the discussion waits for its deadline."""
    moved = 0
    for program in _programs(season, ReviewState.RECONCILIATION):
        review = program.current_review
        if not is_discussion_open(review) or review.id in season.discussed:
            continue
        season.discussed.add(review.id)
        rng = season.rng("discussion", season.index_of[program.id], review.round)
        if rng.random() >= AGREEMENT_IN_DISCUSSION:
            continue
        sheets = [s for s in review_sheets(review) if s.role == AssignmentRole.INITIAL]
        mover, other = sheets if rng.random() < 0.5 else reversed(sheets)
        changes = {}
        for criterion_id, value in other.scores.items():
            mine = next(s for s in mover.sheet.scores if s.criterion_id == criterion_id)
            if mine.value != value:
                comment = mine.comment or (rng.choice(data.COMMENTS) if value < 2 else "")
                changes[criterion_id] = ScoreChange(value, comment, data.DISCUSSION_REASON)
        if changes:
            revise_scores(mover.assignment, mover.assignment.expert, changes)
            season.counts["agreements"] += 1
            moved += 1
    return moved


def _close_discussions(season: Season) -> int:
    """The deadline of every discussion still open passes: each goes to a third expert (the
    same as the hourly ``close-discussions`` run on the day after the deadline)."""
    deadlines = [
        p.current_review.discussion_deadline
        for p in _programs(season, ReviewState.RECONCILIATION)
        if is_discussion_open(p.current_review)
    ]
    if not deadlines:
        return 0
    return len(close_expired_discussions(now=max(deadlines) + timedelta(seconds=1)))


def _resolve_stuck(season: Season) -> int:
    """Reviews waiting for a third expert that nobody eligible can take: the coordinator
    resolves them with a written justification, counting the submitted sheets."""
    resolved = 0
    for program in _programs(season, ReviewState.RECONCILIATION):
        review = program.current_review
        sheets = review_sheets(review)
        if any(not s.submitted for s in sheets) or is_discussion_open(review):
            continue
        counted = [s.assignment.id for s in sheets if s.submitted]
        as_staff(
            season,
            lambda user, review=review, counted=counted: resolve_review(
                review, user, data.RESOLUTION_NOTE, counted
            ),
        )
        season.counts["resolved_by_coordinator"] += 1
        resolved += 1
    return resolved


# --- decisions and revision -----------------------------------------------------------------


def _decide(season: Season, phase: str | None = "decisions") -> None:
    """The coordinator's decisions: overrides with a justification and the divergent
    reviews one by one, every plain confirmation as one bulk issuing job (progress
    reported as ``phase``, none when ``None``)."""
    plain = []
    # An open appeal's panel is decided through its appeal (:func:`_decide_appeals`).
    _decide_appeals(season)
    awaiting = _programs(season, ReviewState.AWAITING_DECISION)
    one_by_one = 0
    for program in awaiting:
        if phase:  # a decision is a step, whether made here or by the bulk job at the end
            season.progress(phase, one_by_one, len(awaiting))
        review = program.current_review
        rng = season.rng("decision", season.index_of[program.id], review.round)
        computed = Decision(review.computed_decision)
        if rng.random() < OVERRIDE_SHARE:
            other, justification = data.OVERRIDES[computed.value]
            with unit_of_work():
                as_staff(
                    season,
                    lambda user, review=review, other=other, why=justification: decide_review(
                        review, user, Decision(other), why
                    ),
                )
            season.counts["overrides"] += 1
            one_by_one += 1
        elif review.divergent:
            with unit_of_work():
                as_staff(
                    season,
                    lambda user, review=review, computed=computed: decide_review(
                        review, user, computed
                    ),
                )
            one_by_one += 1
        else:
            plain.append(review.id)
    confirmed_together = len(plain)
    for staff in season.staff:
        if not plain:
            break
        with unit_of_work():
            job, refused = start_bulk_issue(plain, staff)
        # A review refused to this coordinator (one of its experts) goes to the next one.
        plain = [item.review.id for item in refused]
        if job is None:
            season.counts["staff_refusals"] += len(plain)
            continue
        job = run_job(job.id)
        season.counts["bulk_jobs"] += 1
        season.counts["staff_refusals"] += len(plain)
        if job.failed_items:
            raise RuntimeError(f"bulk issuing left reviews behind: {job.failed_items}")
    if plain:
        raise RuntimeError(f"bulk confirmation refused reviews to every coordinator: {plain}")
    season.echo(f"decisions: {confirmed_together} confirmed by a bulk job, the rest one by one")
    if phase:
        season.progress(phase, 1, 1)


def _appeals(season: Season) -> None:
    """Some providers appeal a revision or rejection (a few too late: the portal refuses
    them); the center refuses some as unfounded and accepts the rest; the panels (fresh
    experts) score the contested criteria, and each appeal is decided on its panel's
    computed decision: upheld when it is better, dismissed with the reasoned answer."""
    from review_portal.appeals.services import (
        AppealError,
        accept_appeal,
        file_appeal,
        refuse_appeal,
        window_ends_on,
    )
    from review_portal.conclusions.services import current_conclusion

    season.progress("appeals", 0, 1)
    filed = []
    with unit_of_work():
        for program in _programs(season, ReviewState.REVISION_REQUIRED, ReviewState.REJECTED):
            review = program.current_review
            rng = season.rng("appeal", season.index_of[program.id])
            if review.round > 1 or rng.random() >= APPEAL_SHARE:
                continue
            conclusion = current_conclusion(review)
            final = review.final_result["scores"]
            # The provider contests the one to three criteria scored lowest.
            lowest = sorted(final, key=lambda c: (float(final[c]), c))[: rng.randint(1, 3)]
            reasons = {c: rng.choice(data.APPEAL_REASONS) for c in lowest}
            applicant = _applicant(program.organization)
            if rng.random() < LATE_APPEAL_SHARE:
                late = window_ends_on(conclusion) + timedelta(days=1)
                try:
                    with db.session.begin_nested():
                        file_appeal(conclusion, applicant, reasons, today=late)
                except AppealError:
                    season.counts["appeals_late"] += 1
                    continue
                raise RuntimeError("a late appeal was accepted")
            appeal = file_appeal(conclusion, applicant, reasons)
            season.counts["appeals"] += 1
            if rng.random() < APPEAL_MERIT_SHARE:
                quality = season.quality[program.id]
                for criterion in lowest:
                    quality[criterion] = min(1.0, quality.get(criterion, 0.5) + 0.6)
            filed.append((appeal.id, rng.random() < REFUSED_APPEAL_SHARE))
    from review_portal.appeals.models import Appeal

    with unit_of_work():
        for appeal_id, refuse in filed:
            appeal = db.session.get(Appeal, appeal_id)
            if refuse:
                as_staff(
                    season,
                    lambda user, appeal=appeal: refuse_appeal(
                        appeal, user, RefusalGround.UNFOUNDED, data.APPEAL_REFUSAL
                    ),
                )
                season.counts["appeals_refused"] += 1
            else:
                as_staff(season, lambda user, appeal=appeal: accept_appeal(appeal, user))
    if filed:
        _expert_work(season, phase=None)
    _decide_appeals(season)
    season.echo(
        f"appeals: {season.counts['appeals']} filed ({season.counts['appeals_late']} more too "
        f"late), {season.counts['appeals_upheld']} upheld, "
        f"{season.counts['appeals_dismissed']} dismissed, "
        f"{season.counts['appeals_refused']} refused"
    )
    season.progress("appeals", 1, 1)


def _decide_appeals(season: Season) -> None:
    """Every accepted appeal of the season whose panel's result is in is decided on the
    panel's computed decision (through the appeals service: the ordinary decision paths
    leave open panels out)."""
    from review_portal.appeals.models import Appeal
    from review_portal.appeals.services import decide_appeal

    with unit_of_work():
        appeals = db.session.execute(
            select(Appeal)
            .join(Review, Review.id == Appeal.panel_review_id)
            .where(
                Appeal.program_id.in_(season.program_ids),
                Appeal.state == AppealState.ACCEPTED,
                Review.state == ReviewState.AWAITING_DECISION,
            )
            .order_by(Appeal.id)
        ).scalars()
        for appeal in list(appeals):
            computed = Decision(appeal.panel_review.computed_decision)
            as_staff(
                season,
                lambda user, appeal=appeal, computed=computed: decide_appeal(
                    appeal, user, computed, data.APPEAL_ANSWER
                ),
            )
            season.counts[f"appeals_{appeal.state.value}"] += 1


def _revise(season: Season) -> None:
    """Most programs sent for revision are revised and submitted again (once), screened and
    re-reviewed by the same experts where they are still eligible, and decided."""
    revised = []
    season.progress("revision", 0, 1)
    with unit_of_work():
        for program in _programs(season, ReviewState.REVISION_REQUIRED):
            if program.current_review.round > 1:
                continue
            rng = season.rng("revision", season.index_of[program.id])
            if rng.random() >= REVISE_AFTER_DECISION:
                continue
            applicant = _applicant(program.organization)
            fix = rng.choice(data.FIXES)
            update_program(program, applicant, annotation=f"{program.annotation} {fix}")
            attach_program_document(program, applicant, plan=fix)
            submit_program(program, applicant)
            # The experts' remarks were taken into account.
            season.quality[program.id] = {
                c: min(1.0, q + 0.25) for c, q in season.quality[program.id].items()
            }
            season.counts["revised"] += 1
            season.counts["resubmitted"] += 1
            revised.append(program.id)
        _accept(season, [db.session.get(Program, program_id) for program_id in revised])
    season.echo(f"revision: {len(revised)} programs revised and resubmitted")
    if revised:
        _expert_work(season, phase=None)
        _decide(season, phase=None)
    season.progress("revision", 1, 1)


def _publish(season: Season, phase: str | None = "registry") -> None:
    if phase:
        season.progress(phase, 0, 1)
    for kind in RegistryKind:
        with unit_of_work():
            if not pending_changes(kind):
                continue
            publish_registry(kind, season.coordinator)
        season.counts["publications"] += 1
    season.echo(f"registry: {season.counts['publications']} publications")
    if phase:
        season.progress(phase, 1, 1)


def _validity(season: Season) -> None:
    """Years later, as far as the registry is concerned: the season's entries with an end
    date reach it (the days are passed to the validity services; everything else happens
    now). The providers are reminded 90 and 30 days before; about half submit for renewal
    60 days before, their programs are assessed again (the previous experts preferred) and
    decided; the day after the end date the entries without an admitted renewal expire,
    and the next publication removes them (a renewal keeps its number)."""
    from review_portal.programs.services import start_renewal
    from review_portal.registry.validity import EXPIRED_REASON, send_validity_notices

    season.progress("validity", 0, 1)
    entries = list(
        db.session.execute(
            select(RegistryEntry).where(
                RegistryEntry.program_id.in_(season.program_ids),
                RegistryEntry.status == RegistryEntryStatus.INCLUDED,
                RegistryEntry.valid_until.is_not(None),
            )
        ).scalars()
    )
    if not entries:
        season.progress("validity", 1, 1)
        return
    end = min(entry.valid_until for entry in entries)
    with unit_of_work():
        for days in (90, 30):
            season.counts["validity_reminders"] += send_validity_notices(
                end - timedelta(days=days)
            )["reminders"]
    renewing = []
    with unit_of_work():
        for entry in sorted(entries, key=lambda e: season.index_of[e.program_id]):
            # A program in several kinds renews once (its renewal decides every kind).
            if entry.valid_until != end or entry.program_id in renewing:
                continue
            program = db.session.get(Program, entry.program_id)
            rng = season.rng("renewal", season.index_of[program.id])
            if rng.random() >= RENEW_SHARE:
                continue
            applicant = _applicant(program.organization)
            start_renewal(program, applicant, today=end - timedelta(days=60))
            fix = rng.choice(data.FIXES)
            update_program(program, applicant, annotation=f"{program.annotation} {fix}")
            attach_program_document(program, applicant, plan=fix)
            submit_program(program, applicant)
            renewing.append(program.id)
        _accept(season, [db.session.get(Program, program_id) for program_id in renewing])
    if renewing:
        _expert_work(season, phase=None)
        _decide(season, phase=None)
    with unit_of_work():
        season.counts["renewals"] = sum(
            1
            for program_id in renewing
            if db.session.get(Program, program_id).state == ReviewState.ADMITTED
        )
        send_validity_notices(end + timedelta(days=1))
        # This season's entries (a region's earlier seasons may expire on the same day).
        season.counts["expired"] = db.session.execute(
            select(func.count(RegistryEntry.id)).where(
                RegistryEntry.program_id.in_(season.program_ids),
                RegistryEntry.status == RegistryEntryStatus.PENDING_REMOVAL,
                RegistryEntry.removal_reason == EXPIRED_REASON,
            )
        ).scalar_one()
    season.echo(
        f"validity: {len(renewing)} submitted for renewal, {season.counts['renewals']} "
        f"renewed, {season.counts['expired']} expired"
    )
    _publish(season, phase=None)
    season.progress("validity", 1, 1)


# --- the summary ----------------------------------------------------------------------------


def _summary(season: Season, organizations: int, experts: int) -> dict:
    ids = season.program_ids
    reviews = select(Review.id).where(Review.program_id.in_(ids))

    def count(stmt) -> int:
        return db.session.execute(stmt).scalar_one()

    states = collections.Counter(
        ReviewState(state).value
        for state in db.session.execute(
            select(Review.state)
            .join(Program, Program.current_review_id == Review.id)
            .where(Program.id.in_(ids))
        ).scalars()
    )
    third = (
        select(func.count(func.distinct(Assignment.review_id)))
        .join(ScoreSheet, ScoreSheet.assignment_id == Assignment.id)
        .where(
            Assignment.review_id.in_(reviews),
            Assignment.role == AssignmentRole.THIRD,
            ScoreSheet.status == SheetStatus.SUBMITTED,
        )
    )
    return {
        "programs": len(ids),
        "returned": season.counts["returned"],
        "resubmitted": season.counts["resubmitted"],
        "reviews": count(select(func.count()).select_from(reviews.subquery())),
        "third_experts": count(third),
        "discussions": count(
            select(func.count())
            .select_from(Review)
            .where(Review.program_id.in_(ids), Review.discussion_deadline.is_not(None))
        ),
        "overrides": count(
            select(func.count())
            .select_from(Review)
            .where(Review.program_id.in_(ids), Review.override_reason.is_not(None))
        ),
        "conclusions": count(
            select(func.count()).select_from(Conclusion).where(Conclusion.review_id.in_(reviews))
        ),
        "appeals": season.counts["appeals"],
        "appeals_upheld": season.counts["appeals_upheld"],
        "appeals_dismissed": season.counts["appeals_dismissed"],
        "renewals": season.counts["renewals"],
        "expired": season.counts["expired"],
        "registry_entries": count(
            select(func.count())
            .select_from(RegistryEntry)
            .where(
                RegistryEntry.program_id.in_(ids),
                RegistryEntry.status == RegistryEntryStatus.INCLUDED,
            )
        ),
        "registry_entries_by_kind": {
            kind.value: number
            for kind in RegistryKind
            if (
                number := count(
                    select(func.count())
                    .select_from(RegistryEntry)
                    .where(
                        RegistryEntry.program_id.in_(ids),
                        RegistryEntry.kind == kind,
                        RegistryEntry.status == RegistryEntryStatus.INCLUDED,
                    )
                )
            )
        },
        "modules": sum(
            1
            for modules in db.session.execute(
                select(Program.modules).where(Program.id.in_(ids))
            ).scalars()
            if modules
        ),
        "floor_refusals": _floor_refusals(ids),
        "states": dict(sorted(states.items())),
        "organizations": organizations,
        "experts": experts,
        "withdrawn_at_screening": season.counts["withdrawn"],
        "declined": season.counts["declined"],
        "conflicts_declared": season.counts["conflicts"],
        "agreements_in_discussion": season.counts["agreements"],
        "resolved_by_coordinator": season.counts["resolved_by_coordinator"],
        "staff_refusals": season.counts["staff_refusals"],
        "revised": season.counts["revised"],
        "appeals_late": season.counts["appeals_late"],
        "appeals_refused": season.counts["appeals_refused"],
        "sheets": season.counts["sheets"],
        "seed": season.seed,
    }


def _floor_refusals(program_ids: list[int]) -> int:
    """The programs with a conclusion that is not an admission only because of an experts'
    floor: the review's decision is the computed one, its final result lists counted sheets
    below the floor, and the same counted sheets would be admitted by the same computation
    were the rubric without a floor."""
    refused = set()
    reviews = db.session.execute(
        select(Review)
        .where(
            Review.program_id.in_(program_ids),
            Review.id.in_(select(Conclusion.review_id)),
            Review.decision != Decision.ADMITTED,
        )
        .order_by(Review.id)
    ).scalars()
    for review in reviews:
        final = review.final_result or {}
        if not final.get("floor_failed") or review.decision != review.computed_decision:
            continue
        counted = set(final["counted_assignments"])
        sheets = [s.scores for s in review_sheets(review) if s.assignment.id in counted]
        rubric = rubric_of(review)
        without_floor = replace(rubric, decision=replace(rubric.decision, floor_percent=None))
        # The mean of the counted sheets is the final score whichever way they were counted.
        result = rules.final_result(without_floor, sheets, rules.MEAN, fixed_scores_of(review))
        if result.decision == Decision.ADMITTED:
            refused.add(review.program_id)
    return len(refused)
