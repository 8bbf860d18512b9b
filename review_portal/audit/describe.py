"""The audit log in words: each kind of event as a Russian sentence with its object linked,
and the fields it changed as a readable list.

The sentence is "<who> — <what was done, as a noun phrase>": «Ковалёва И. П. — решение по
программе «Робототехника»: рекомендована к включению в реестр». The noun phrase needs no
gendered verb (the portal does not know its users' gender) and reads the same for a person,
the portal itself («Портал — …») or a visitor who is not signed in («Посетитель — …»).

:data:`KINDS` maps every action name the code writes (``record_event``) to its group (the
page's "kind of event" filter) and its phrase; ``tests/test_audit_words.py`` collects the
names from the source and fails for one without a description. An unknown action (an old
record, a new one not described yet) still reads: «… — событие «x.y»: программа «…»».

The objects, actors and the people and organizations named in the records are loaded for a
whole page at once (:func:`describe_page`: a fixed number of statements, whatever the page
size). The audit package sits below the domains that write it, so their tables are read
through the shared metadata, never through their packages. Links go only to pages every
coordinator may open, or are checked for the viewer in the same batch (appeals).

The raw record (JSON, hash) stays on the page under "Подробности" and in the CSV export:
the log is evidence.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from flask import url_for
from flask_babel import format_date, format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from review_portal.enums import (
    AccountStatus,
    AppealState,
    AssignmentStatus,
    ConclusionStatus,
    Decision,
    Direction,
    Level,
    OrganizationType,
    ProgramType,
    RegistryEntryStatus,
    RegistryKind,
    Role,
    SheetStatus,
    StudyForm,
)
from review_portal.extensions import db
from review_portal.jobs.models import JobStatus
from review_portal.permissions import seated_reviews
from review_portal.quotes import quote_in

#: Longest value shown in the list of changes (the full one is under "Подробности").
MAX_VALUE = 120
#: Changes shown per record at most.
MAX_CHANGES = 8


# --- kinds of events ------------------------------------------------------------------------

GROUPS: dict[str, Any] = {
    "accounts": _l("Accounts and sign-ins"),
    "organizations": _l("Organizations"),
    "programs": _l("Programs and documents"),
    "expertise": _l("Expertise and scores"),
    "decisions": _l("Decisions and conclusions"),
    "appeals": _l("Appeals"),
    "registry": _l("Registry"),
    "experts": _l("Experts"),
    "settings": _l("Settings and rubrics"),
    "system": _l("Background work"),
}


@dataclass(frozen=True)
class Kind:
    group: str
    #: A noun phrase with ``%(object)s`` and the other names of :func:`_context`.
    phrase: Any
    #: Without an actor, the record was made by a visitor not signed in (not the portal).
    visitor: bool = False


def _k(group: str, phrase, visitor: bool = False) -> Kind:
    return Kind(group, phrase, visitor)


KINDS: dict[str, Kind] = {
    # accounts
    "account.login": _k("accounts", _l("signing in")),
    "account.login_failed": _k("accounts", _l("a failed sign-in attempt"), visitor=True),
    "account.logout": _k("accounts", _l("signing out")),
    "account.register_provider": _k("accounts", _l("registration as a provider's user")),
    "account.register_expert": _k("accounts", _l("registration as an expert")),
    "account.approve": _k("accounts", _l("approval of the registration of %(object)s")),
    "account.reject": _k("accounts", _l("rejection of the registration of %(object)s")),
    "account.change_password": _k("accounts", _l("a password change")),
    "account.request_reset": _k(
        "accounts", _l("a password reset request for %(object)s"), visitor=True
    ),
    "account.reset_password": _k("accounts", _l("a password reset")),
    "account.create": _k("accounts", _l("creation of the account of %(object)s")),
    "account.accept_invitation": _k(
        "accounts", _l("acceptance of an invitation to the organization %(organization)s")
    ),
    "account.update": _k("accounts", _l("a change of the account of %(object)s")),
    "notification.choices": _k(
        "accounts", _l("a change of the notification choices of %(object)s")
    ),
    # organizations
    "organization.create": _k("organizations", _l("creation of the organization %(object)s")),
    "organization.approve": _k("organizations", _l("approval of the organization %(object)s")),
    "organization.update": _k("organizations", _l("a change of the details of %(object)s")),
    "organization.invite": _k("organizations", _l("an invitation of a colleague to %(object)s")),
    "organization.inn_transfer": _k(
        "organizations", _l("transfer of the INN of %(object)s to another registration")
    ),
    "import.organizations": _k("organizations", _l("an import of organizations from a file")),
    # programs
    "program.create": _k("programs", _l("creation of the program %(object)s")),
    "program.update": _k("programs", _l("a change of the program %(object)s")),
    "program.submit": _k("programs", _l("submission of the program %(object)s for review")),
    "program.renewal_start": _k("programs", _l("start of a renewal of the program %(object)s")),
    "document.add": _k("programs", _l("a document added to the program %(object)s")),
    "document.remove": _k("programs", _l("a document removed from the program %(object)s")),
    "import.programs": _k("programs", _l("an import of programs from a file")),
    "import.mapping_saved": _k(
        "programs", _l("the columns of an import file's layout mapped to the portal's fields")
    ),
    "review.submit": _k("programs", _l("the program %(object)s submitted")),
    "review.edit": _k("programs", _l("the program %(object)s taken back to a draft for fixes")),
    "review.withdraw": _k("programs", _l("withdrawal of the program %(object)s")),
    "review.screen_ok": _k("programs", _l("admission of the program %(object)s to expert review")),
    "review.return_for_fixes": _k("programs", _l("return of the program %(object)s for fixes")),
    # expertise
    "assignment.run": _k("expertise", _l("an automatic assignment of experts")),
    "assignment.create": _k(
        "expertise", _l("assignment of the expert %(expert)s to the program %(program)s")
    ),
    "assignment.accept": _k("expertise", _l("acceptance of the assignment to %(program)s")),
    "assignment.decline": _k("expertise", _l("refusal of the assignment to %(program)s")),
    "assignment.remove": _k(
        "expertise", _l("removal of the expert %(expert)s from the program %(program)s")
    ),
    "assignment.withdraw": _k(
        "expertise", _l("withdrawal of the offer to %(expert)s for the program %(program)s")
    ),
    "assignment.reminder": _k(
        "expertise", _l("a deadline reminder to %(expert)s for the program %(program)s")
    ),
    "assignment.overdue": _k(
        "expertise", _l("an overdue score sheet of %(expert)s for the program %(program)s")
    ),
    "review.experts_wanted": _k("expertise", _l("not enough experts for the program %(object)s")),
    "expert.conflict_declare": _k(
        "expertise", _l("a conflict of interest declared for the expert %(expert)s")
    ),
    "sheet.submit": _k("expertise", _l("a score sheet submitted for the program %(program)s")),
    "sheet.reopen": _k("expertise", _l("the score sheet of %(expert)s for %(program)s reopened")),
    "sheet.revise": _k("expertise", _l("scores of %(expert)s for the program %(program)s changed")),
    "review.divergence_check": _k(
        "expertise", _l("a check of divergent scores for the program %(object)s")
    ),
    "review.diverge": _k(
        "expertise", _l("divergent scores: the program %(object)s goes to reconciliation")
    ),
    "review.all_sheets_in": _k("expertise", _l("all score sheets in for the program %(object)s")),
    "review.third_expert_requested": _k(
        "expertise", _l("a third expert requested for the program %(object)s")
    ),
    "review.discussion_start": _k(
        "expertise", _l("a discussion of the scores for the program %(object)s opened")
    ),
    "review.discussion_closed": _k(
        "expertise", _l("the discussion of the scores for the program %(object)s closed")
    ),
    "review.resolve": _k("expertise", _l("reconciliation of the program %(object)s settled")),
    "review.reopen": _k("expertise", _l("the review of the program %(object)s reopened")),
    "review.final_result": _k(
        "expertise", _l("the final scores of the program %(object)s computed")
    ),
    # decisions and conclusions
    "review.decide": _k("decisions", _l("decision on the program %(object)s: %(decision)s")),
    "review.admit": _k("decisions", _l("the program %(object)s admitted")),
    "review.require_revision": _k("decisions", _l("the program %(object)s sent for revision")),
    "review.reject": _k("decisions", _l("the program %(object)s not recommended")),
    "review.exclude": _k("decisions", _l("exclusion of the program %(object)s from the registry")),
    "review.revoke": _k(
        "decisions", _l("the decision on the program %(object)s opened again after a revocation")
    ),
    "conclusion.issue": _k(
        "decisions", _l("issue of the conclusion %(object)s on the program %(program)s")
    ),
    "conclusion.revoke": _k(
        "decisions", _l("revocation of the conclusion %(object)s on the program %(program)s")
    ),
    # appeals
    "appeal.file": _k("appeals", _l("an appeal %(object)s filed on the program %(program)s")),
    "appeal.accept": _k("appeals", _l("the appeal %(object)s on %(program)s accepted")),
    "appeal.refuse": _k("appeals", _l("the appeal %(object)s on %(program)s refused")),
    "appeal.uphold": _k("appeals", _l("the appeal %(object)s on %(program)s upheld")),
    "appeal.dismiss": _k("appeals", _l("the appeal %(object)s on %(program)s dismissed")),
    "appeal.decision_issue": _k(
        "appeals", _l("the decision on the appeal %(object)s on %(program)s issued")
    ),
    "review.open_appeal": _k(
        "appeals", _l("the appeal panel's review of the program %(object)s opened")
    ),
    # registry
    "registry.entry_pending": _k(
        "registry", _l("the program %(program)s made ready for inclusion in the registry")
    ),
    "registry.entry_removal": _k(
        "registry", _l("the program %(program)s made ready for removal from the registry")
    ),
    "registry.entry_expired": _k(
        "registry", _l("the registry entry of the program %(program)s expired")
    ),
    "registry.entry_reminder": _k(
        "registry", _l("a reminder of the end of validity of the program %(program)s")
    ),
    "registry.publish": _k("registry", _l("publication of the registry: %(object)s")),
    # experts
    "expert.create_profile": _k("experts", _l("creation of the expert profile of %(object)s")),
    "expert.update_profile": _k("experts", _l("a change of the expert profile of %(object)s")),
    "expert.add_unavailability": _k("experts", _l("a period away of the expert %(object)s added")),
    "expert.remove_unavailability": _k(
        "experts", _l("a period away of the expert %(object)s removed")
    ),
    "expert.suspend": _k("experts", _l("suspension of the expert %(object)s")),
    "expert.reactivate": _k("experts", _l("reactivation of the expert %(object)s")),
    # settings and rubrics
    "settings.change": _k("settings", _l("a change of the setting %(object)s")),
    "rubric.activate": _k("settings", _l("a new rubric for the programs of type %(object)s")),
    # background work
    "job.create": _k("system", _l("start of the background job %(object)s")),
    "job.requeue": _k("system", _l("the background job %(object)s queued again")),
    "notification.digest": _k("system", _l("a daily digest sent to %(object)s")),
    "storage.cleanup": _k("system", _l("unused files removed from the storage")),
}

#: What an action nobody described yet reads as.
UNKNOWN = _l("an event “%(action)s”: %(object)s")


def group_actions(group: str) -> list[str]:
    """The actions of a group of the filter."""
    return sorted(action for action, kind in KINDS.items() if kind.group == group)


# --- fields ---------------------------------------------------------------------------------

FIELD_LABELS: dict[str, Any] = {
    "state": _l("State"),
    "status": _l("Status"),
    "reason": _l("Reason"),
    "decision": _l("Decision"),
    "computed_decision": _l("Computed decision"),
    "override": _l("Decision differs from the computed one"),
    "justification": _l("Justification"),
    "email": _l("E-mail"),
    "roles": _l("Roles"),
    "full_name": _l("Full name"),
    "phone": _l("Phone"),
    "active": _l("Active"),
    "inn": _l("INN"),
    "ogrn": _l("OGRN"),
    "kind": _l("Kind"),
    "short_name": _l("Short name"),
    "address": _l("Address"),
    "website": _l("Website"),
    "title": _l("Title"),
    "direction": _l("Direction"),
    "directions": _l("Directions"),
    "level": _l("Level"),
    "program_type": _l("Program type"),
    "organization_id": _l("Organization"),
    "municipality_id": _l("Municipality"),
    "expert_id": _l("Expert"),
    "inn_lost_to_id": _l("INN transferred to"),
    "inn_transferred_from": _l("INN transferred from"),
    "number": _l("Number"),
    "version": _l("Version"),
    "round": _l("Round"),
    "seat": _l("Seat"),
    "due_on": _l("Due"),
    "deadline": _l("Deadline"),
    "automatic": _l("Automatically"),
    "conflict": _l("Conflict of interest"),
    "text": _l("Text"),
    "source": _l("Source"),
    "starts_on": _l("From"),
    "ends_on": _l("To"),
    "suspended": _l("Suspended"),
    "value": _l("Value"),
    "total": _l("Total"),
    "percent": _l("Percent"),
    "supersedes": _l("Supersedes"),
    "conclusion": _l("Conclusion"),
    "contested": _l("Contested"),
    "registry_number": _l("Registry number"),
    "valid_until": _l("Valid until"),
    "days_left": _l("Days left"),
    "entries": _l("Entries"),
    "added": _l("Added"),
    "removed": _l("Removed"),
    "changed": _l("Changed"),
    "file": _l("File"),
    "rows": _l("Rows"),
    "created": _l("Created"),
    "missing": _l("Experts missing"),
    "divergent": _l("Divergent"),
    "rules": _l("Rules"),
    "extra_experts": _l("Extra experts"),
    "filled": _l("Seats filled"),
    "demand": _l("Seats wanted"),
    "reviews": _l("Reviews"),
    "files": _l("Files"),
    "bytes": _l("Bytes"),
    "interruptions": _l("Interruptions"),
    "done": _l("Units done"),
    "day": _l("Day"),
    "counts": _l("Counts"),
    "rubric_version": _l("Rubric version"),
    "short_term": _l("Short-term programs"),
    "max_total": _l("Maximum total"),
    "counted": _l("Counted experts"),
    "blocking_failed": _l("Blocking criteria failed"),
    "floor_failed": _l("Sheets below the experts' floor"),
    "sections_failed": _l("Sections below their minimum"),
    "tie_broken": _l("Tie broken"),
    "assignment_status": _l("Assignment status"),
}

#: Fields left out of the readable list (ids the sentence already links, digests, internal
#: counters): they are in the raw record.
HIDDEN_FIELDS = frozenset(
    {
        "id",
        "review_id",
        "program_id",
        "version_id",
        "assignment_id",
        "invitation_id",
        "rubric_id",
        "sha256",
        "content_sha256",
        "scores",
        "changes",
        "heartbeat_at",
        "older_than_hours",
        "seed",
        "method",
        "counted_assignments",
    }
)


def _review_states():
    """The review's states: their enum lives with the state machine, above this package."""
    return db.metadata.tables["reviews"].c.state.type.enum_class


def _enum_for(object_type: str, name: str):
    """The enum of a field's values, by (object type, field) first, then by field."""
    by_object = {
        ("review", "state"): _review_states,
        ("appeal", "state"): lambda: AppealState,
        ("user", "status"): lambda: AccountStatus,
        ("organization", "status"): lambda: AccountStatus,
        ("assignment", "status"): lambda: AssignmentStatus,
        ("score_sheet", "status"): lambda: SheetStatus,
        ("score_sheet", "assignment_status"): lambda: AssignmentStatus,
        ("conclusion", "status"): lambda: ConclusionStatus,
        ("registry_entry", "status"): lambda: RegistryEntryStatus,
        ("registry_entry", "kind"): lambda: RegistryKind,
        ("registry_snapshot", "kind"): lambda: RegistryKind,
        ("organization", "kind"): lambda: OrganizationType,
        ("job", "status"): lambda: JobStatus,
    }
    by_field = {
        "decision": Decision,
        "computed_decision": Decision,
        "direction": Direction,
        "directions": Direction,
        "program_type": ProgramType,
        "level": Level,
        "study_form": StudyForm,
        "roles": Role,
        "requested_registry_kind": RegistryKind,
        "additional_registry_kinds": RegistryKind,
        "registry_kinds": RegistryKind,
    }
    found = by_object.get((object_type, name))
    return found() if found is not None else by_field.get(name)


def cut(text: str, limit: int = MAX_VALUE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _label_of(enum_cls, value) -> str:
    try:
        return str(enum_cls(value).label)
    except (ValueError, TypeError):
        return str(value)


def _date_value(text: str):
    """A date or a moment written by :func:`~review_portal.audit.services.jsonable`."""
    if len(text) == 10:
        try:
            return format_date(date.fromisoformat(text))
        except ValueError:
            return None
    if 19 <= len(text) <= 32 and text[4:5] == "-" and text[10:11] == "T":
        try:
            return format_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


# --- one page of records ------------------------------------------------------------------


@dataclass
class Change:
    label: str
    before: Any = None
    after: Any = None
    has_before: bool = False
    has_after: bool = False


@dataclass
class Described:
    """One record in words, for the page."""

    event: Any
    actor: Markup
    sentence: Markup
    group: Any
    changes: list[Change] = field(default_factory=list)
    more_changes: int = 0
    before_json: str = ""
    after_json: str = ""


@dataclass
class _Names:
    """What one page's records name, loaded in batches."""

    users: dict[int, tuple] = field(default_factory=dict)  # id: (full_name, email, is_expert)
    organizations: dict[int, str] = field(default_factory=dict)
    programs: dict[int, str] = field(default_factory=dict)
    #: (object_type, object_id): {"program_id": .., "expert_id": .., "number": ..}
    objects: dict[tuple[str, str], dict] = field(default_factory=dict)
    #: Appeal ids the viewer may not open (they sit on its review or panel).
    closed_appeals: set[int] = field(default_factory=set)


def short_name(full_name: str | None) -> str:
    """A full name "Фамилия Имя Отчество" as "Фамилия И. О."; a name that does not look
    like one (a single word, a number in it) as it is."""
    words = (full_name or "").split()
    if len(words) < 2 or not all(word[0].isalpha() for word in words[1:3]):
        return full_name or ""
    return " ".join([words[0], *(f"{word[0]}." for word in words[1:3])])


def _int(value) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _ids(events, object_type: str) -> set[int]:
    return {
        number
        for event in events
        if event.object_type == object_type and (number := _int(event.object_id)) is not None
    }


def _payload_ids(events, names: Iterable[str]) -> set[int]:
    found = set()
    for event in events:
        for payload in (event.before, event.after):
            if isinstance(payload, dict):
                for name in names:
                    if (number := _int(payload.get(name))) is not None:
                        found.add(number)
    return found


USER_FIELDS = ("expert_id",)
ORGANIZATION_FIELDS = ("organization_id", "inn_lost_to_id", "inn_transferred_from")


def _load(events: list, viewer) -> _Names:
    """Everything the records of a page name, in at most one statement per kind of object."""
    t = db.metadata.tables
    names = _Names()
    programs, reviews, assignments = t["programs"], t["reviews"], t["assignments"]
    user_ids = {e.actor_id for e in events if e.actor_id is not None}
    user_ids |= _ids(events, "user") | _payload_ids(events, USER_FIELDS)
    organization_ids = _ids(events, "organization") | _payload_ids(events, ORGANIZATION_FIELDS)
    program_ids = _ids(events, "program")

    def objects(object_type: str, stmt_for: Callable[[set[int]], sa.Select]) -> None:
        ids = _ids(events, object_type)
        if not ids:
            return
        for row in db.session.execute(stmt_for(ids)).mappings():
            facts = dict(row)
            names.objects[(object_type, str(facts.pop("id")))] = facts
            if facts.get("program_id") is not None:
                program_ids.add(facts["program_id"])
            if facts.get("expert_id") is not None:
                user_ids.add(facts["expert_id"])

    objects(
        "review",
        lambda ids: sa.select(reviews.c.id, reviews.c.program_id).where(reviews.c.id.in_(ids)),
    )
    on_review = assignments.join(reviews, reviews.c.id == assignments.c.review_id)
    objects(
        "assignment",
        lambda ids: (
            sa.select(assignments.c.id, reviews.c.program_id, assignments.c.expert_id)
            .select_from(on_review)
            .where(assignments.c.id.in_(ids))
        ),
    )
    sheets = t["score_sheets"]
    objects(
        "score_sheet",
        lambda ids: (
            sa.select(sheets.c.id, reviews.c.program_id, assignments.c.expert_id)
            .select_from(sheets.join(on_review, assignments.c.id == sheets.c.assignment_id))
            .where(sheets.c.id.in_(ids))
        ),
    )
    conclusions = t["conclusions"]
    objects(
        "conclusion",
        lambda ids: (
            sa.select(conclusions.c.id, conclusions.c.number, reviews.c.program_id)
            .select_from(conclusions.join(reviews, reviews.c.id == conclusions.c.review_id))
            .where(conclusions.c.id.in_(ids))
        ),
    )
    appeals = t["appeals"]
    objects(
        "appeal",
        lambda ids: sa.select(
            appeals.c.id,
            appeals.c.program_id,
            appeals.c.review_id,
            appeals.c.panel_review_id,
        ).where(appeals.c.id.in_(ids)),
    )
    entries = t["registry_entries"]
    objects(
        "registry_entry",
        lambda ids: sa.select(entries.c.id, entries.c.program_id, entries.c.registry_number).where(
            entries.c.id.in_(ids)
        ),
    )
    snapshots = t["registry_snapshots"]
    objects(
        "registry_snapshot",
        lambda ids: sa.select(snapshots.c.id, snapshots.c.number, snapshots.c.kind).where(
            snapshots.c.id.in_(ids)
        ),
    )
    conflicts = t["expert_conflicts"]
    objects(
        "expert_conflict",
        lambda ids: sa.select(conflicts.c.id, conflicts.c.expert_id, conflicts.c.program_id).where(
            conflicts.c.id.in_(ids)
        ),
    )

    # An appeal's page is closed to staff who sit on its review or its panel's (one query).
    appeal_reviews = {
        review_id
        for (object_type, _id), facts in names.objects.items()
        if object_type == "appeal"
        for review_id in (facts["review_id"], facts["panel_review_id"])
        if review_id is not None
    }
    if appeal_reviews:
        seated = seated_reviews(viewer, sorted(appeal_reviews))
        names.closed_appeals = {
            int(object_id)
            for (object_type, object_id), facts in names.objects.items()
            if object_type == "appeal" and {facts["review_id"], facts["panel_review_id"]} & seated
        }

    if program_ids:
        names.programs = dict(
            db.session.execute(
                sa.select(programs.c.id, programs.c.title).where(programs.c.id.in_(program_ids))
            ).all()
        )
    if user_ids:
        users, profiles = t["users"], t["expert_profiles"]
        rows = db.session.execute(
            sa.select(users.c.id, users.c.full_name, users.c.email, profiles.c.id.is_not(None))
            .select_from(users.outerjoin(profiles, profiles.c.user_id == users.c.id))
            .where(users.c.id.in_(user_ids))
        )
        names.users = {row[0]: tuple(row[1:]) for row in rows}
    if organization_ids:
        organizations = t["organizations"]
        names.organizations = {
            row.id: row.short_name or row.full_name
            for row in db.session.execute(
                sa.select(
                    organizations.c.id, organizations.c.short_name, organizations.c.full_name
                ).where(organizations.c.id.in_(organization_ids))
            )
        }
    return names


def _link(text: str, href: str | None) -> Markup:
    if href is None:
        return escape(text)
    return Markup('<a href="{}">{}</a>').format(href, text)


def _person(names: _Names, user_id) -> Markup | None:
    user_id = _int(user_id)
    found = names.users.get(user_id) if user_id is not None else None
    if found is None:
        return None if user_id is None else escape(_("user no. %(id)s", id=user_id))
    full_name, _email, is_expert = found
    href = (
        url_for("experts.view", user_id=user_id)
        if is_expert
        else url_for("accounts.registration", user_id=user_id)
    )
    return _link(short_name(full_name), href)


def _organization(names: _Names, organization_id) -> Markup | None:
    organization_id = _int(organization_id)
    if organization_id is None:
        return None
    title = names.organizations.get(organization_id)
    if title is None:
        return escape(_("organization no. %(id)s", id=organization_id))
    return _link(title, url_for("organizations.view", organization_id=organization_id))


def _program(names: _Names, program_id) -> Markup | None:
    program_id = _int(program_id)
    if program_id is None:
        return None
    title = names.programs.get(program_id)
    if title is None:
        return escape(_("program no. %(id)s", id=program_id))
    return _link(quote_in("ru", cut(title, 80)), url_for("programs.view", program_id=program_id))


def _object(event, names: _Names, facts: dict) -> Markup:
    """The record's object as a link (or plain words when no page of it may be opened)."""
    object_type, object_id = event.object_type, event.object_id
    if object_type == "user":
        return _person(names, object_id) or escape(_("an unknown account"))
    if object_type == "organization":
        return _organization(names, object_id) or escape("—")
    if object_type == "program":
        return _program(names, object_id) or escape("—")
    if object_type == "review" and "program_id" in facts:
        return _program(names, facts["program_id"])
    if object_type == "conclusion" and facts.get("number"):
        return _link(f"№ {facts['number']}", url_for("conclusions.verify", number=facts["number"]))
    if object_type == "appeal" and _int(object_id) is not None:
        appeal_id = _int(object_id)
        href = (
            None
            if appeal_id in names.closed_appeals or not facts
            else url_for("appeals.show", appeal_id=appeal_id)
        )
        return _link(_("no. %(id)s", id=appeal_id), href)
    if object_type == "registry_snapshot" and facts.get("number") is not None:
        kind = _label_of(RegistryKind, facts.get("kind"))
        return _link(
            _("%(kind)s, issue no. %(number)s", kind=kind, number=facts["number"]),
            url_for("registry.snapshots"),
        )
    if object_type == "job" and _int(object_id) is not None:
        return _link(_("no. %(id)s", id=object_id), url_for("jobs.view", job_id=_int(object_id)))
    if object_type == "setting" and object_id:
        label = SETTING_LABELS.get(object_id, object_id)
        return _link(quote_in("ru", label), url_for("settings.index"))
    if object_type == "program_type" and object_id:
        label = quote_in("ru", _label_of(ProgramType, object_id))
        after = event.after if isinstance(event.after, dict) else {}
        if after.get("short_term") is True:
            # The choice for the type's short-term programs (``rubric.activate``).
            label = _("%(type)s, short-term programs", type=label)
        return _link(label, url_for("rubrics.index"))
    if object_id is None:
        return escape(object_type)
    return escape(f"{object_type} {object_id}")


#: Labels of the settings by key, and of the fields of a kind of object, registered by the
#: packages that own them (they write the audit log, so this package may not import them).
SETTING_LABELS: dict[str, Any] = {}
OBJECT_FIELD_LABELS: dict[str, dict[str, Any]] = {}


def register_setting_labels(labels: dict[str, Any]) -> None:
    SETTING_LABELS.update(labels)


def register_field_labels(object_type: str, labels: dict[str, Any]) -> None:
    OBJECT_FIELD_LABELS.setdefault(object_type, {}).update(labels)


class _Words(dict):
    """The names a phrase may use; a name the record does not have reads as a dash."""

    def __missing__(self, key):
        return "—"


def _context(event, names: _Names) -> _Words:
    facts = names.objects.get((event.object_type, event.object_id or ""), {})
    after = event.after if isinstance(event.after, dict) else {}
    before = event.before if isinstance(event.before, dict) else {}
    words = _Words(object=_object(event, names, facts), action=event.action)
    program = _program(names, facts.get("program_id"))
    if program is not None:
        words["program"] = program
    expert = _person(names, facts.get("expert_id") or after.get("expert_id"))
    if expert is not None:
        words["expert"] = expert
    organization = _organization(names, after.get("organization_id"))
    if organization is not None:
        words["organization"] = organization
    decision = after.get("decision") or before.get("decision")
    if decision:
        words["decision"] = _label_of(Decision, decision).lower()
    return words


def _value(event, name: str, value, names: _Names) -> Markup:
    """A value of a field as words: enums by their labels, dates formatted, long text cut;
    the people and organizations named linked."""
    if value is None or value == "" or value == []:
        return escape("—")
    if name in USER_FIELDS:
        return _person(names, value) or escape(cut(str(value)))
    if name in ORGANIZATION_FIELDS:
        return _organization(names, value) or escape(cut(str(value)))
    if isinstance(value, bool):
        return escape(_("yes") if value else _("no"))
    enum_cls = _enum_for(event.object_type, name)
    if isinstance(value, list):
        words = (
            _label_of(enum_cls, v)
            if enum_cls
            # A list of titled records (a program's modules) by their titles.
            else str(v["title"])
            if isinstance(v, dict) and "title" in v
            else (_date_value(str(v)) or str(v))
            for v in value
        )
        return escape(cut(", ".join(words)))
    if isinstance(value, dict):
        return escape(cut(json.dumps(value, ensure_ascii=False, sort_keys=True)))
    if enum_cls is not None:
        return escape(_label_of(enum_cls, value))
    if isinstance(value, str):
        return escape(cut(_date_value(value) or value))
    return escape(cut(str(value)))


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _changes(event, names: _Names) -> list[Change]:
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    changes = []
    for name in [*before, *(k for k in after if k not in before)]:
        if name in HIDDEN_FIELDS:
            continue
        label = OBJECT_FIELD_LABELS.get(event.object_type, {}).get(name) or FIELD_LABELS.get(name)
        if event.object_type == "setting" and name == "value":
            label = SETTING_LABELS.get(event.object_id or "", label)
        if (name in before) != (name in after) and _empty(before.get(name, after.get(name))):
            continue  # nothing to tell: an empty value on one side only
        change = Change(str(label) if label is not None else name)
        if name in before:
            change.has_before = True
            change.before = _value(event, name, before[name], names)
        if name in after:
            change.has_after = True
            change.after = _value(event, name, after[name], names)
        if change.has_before and change.has_after and change.before == change.after:
            continue
        changes.append(change)
    return changes


def _raw(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1)


def describe(event, names: _Names) -> Described:
    kind = KINDS.get(event.action)
    phrase = kind.phrase if kind is not None else UNKNOWN
    # The actor's name is plain: the page links it to the log filtered by them.
    found = names.users.get(event.actor_id) if event.actor_id is not None else None
    if found is not None:
        actor = escape(short_name(found[0]) or event.actor_label)
    elif event.actor_id is not None:
        actor = escape(event.actor_label)
    elif kind is not None and kind.visitor:
        actor = escape(_("A visitor"))
    else:
        actor = escape(_("The portal"))
    sentence = Markup(str(phrase)) % _context(event, names)
    changes = _changes(event, names)
    return Described(
        event=event,
        actor=actor,
        sentence=sentence,
        group=GROUPS[kind.group] if kind is not None else None,
        changes=changes[:MAX_CHANGES],
        more_changes=max(0, len(changes) - MAX_CHANGES),
        before_json=_raw(event.before),
        after_json=_raw(event.after),
    )


def describe_page(events: list, viewer) -> list[Described]:
    """The records of a page in words; the names they use loaded in a fixed number of
    statements."""
    names = _load(events, viewer)
    return [describe(event, names) for event in events]
