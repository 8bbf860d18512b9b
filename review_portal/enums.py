"""Dictionaries of the domain (directions, levels, forms, roles ...) as Python enums.

A leaf module: it imports nothing of the application but the leaf
:mod:`review_portal.lazy_text` (lazy labels translated without walking Flask's context
proxies). Every enum is stored by its value; ``label`` gives the interface text (translated
through Flask-Babel).
"""

from __future__ import annotations

import enum

from review_portal.lazy_text import lazy_gettext as _l
from review_portal.lazy_text import lazy_pgettext as _lp


class LabelledEnum(enum.StrEnum):
    """A string enum whose members carry a human label in the interface language."""

    def __new__(cls, value: str, label):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    def __str__(self) -> str:
        return self.value

    @classmethod
    def choices(cls) -> list[tuple[str, object]]:
        return [(m.value, m.label) for m in cls]


class Role(LabelledEnum):
    APPLICANT = "applicant", _l("Provider organization")
    EXPERT = "expert", _l("Expert")
    COORDINATOR = "coordinator", _l("Coordinator")
    MUNICIPAL = "municipal", _l("Municipal viewer")
    ADMIN = "admin", _l("Administrator")


class AccountStatus(LabelledEnum):
    PENDING = "pending", _l("Awaiting approval")
    APPROVED = "approved", _l("Approved")
    REJECTED = "rejected", _l("Rejected")


class OrganizationType(LabelledEnum):
    STATE = "state", _l("State organization")
    MUNICIPAL = "municipal", _l("Municipal organization")
    PRIVATE = "private", _l("Private organization")
    INDIVIDUAL_ENTREPRENEUR = "individual_entrepreneur", _l("Individual entrepreneur")


class Direction(LabelledEnum):
    TECHNICAL = "technical", _l("Technical")
    NATURAL_SCIENCE = "natural_science", _l("Natural science")
    PHYSICAL_SPORTS = "physical_sports", _l("Physical culture and sports")
    ARTS = "arts", _l("Arts")
    TOURISM_LOCAL_HISTORY = "tourism_local_history", _l("Tourism and local history")
    SOCIAL_HUMANITARIAN = "social_humanitarian", _l("Social and humanitarian")


class Level(LabelledEnum):
    INTRODUCTORY = "introductory", _l("Introductory")
    BASIC = "basic", _l("Basic")
    ADVANCED = "advanced", _l("Advanced")


class ProgramType(LabelledEnum):
    GENERAL_DEVELOPMENTAL = "general_developmental", _l("General developmental")
    PRE_PROFESSIONAL = "pre_professional", _l("Pre-professional")


class StudyForm(LabelledEnum):
    FULL_TIME = "full_time", _l("In person (full-time)")
    PART_TIME = "part_time", _l("Mixed: in person and by correspondence")
    DISTANCE = "distance", _l("By correspondence")


class RegistryKind(LabelledEnum):
    CERTIFIED = "certified", _l("Certified programs")
    SIGNIFICANT = "significant", _l("Socially significant programs")
    GENERAL = "general", _l("General developmental programs")
    PRE_PROFESSIONAL = "pre_professional", _l("Pre-professional programs")


class DocumentKind(LabelledEnum):
    PROGRAM = "program", _l("Program document")
    ATTACHMENT = "attachment", _l("Attachment")


class AssignmentStatus(LabelledEnum):
    OFFERED = "offered", _l("Offered")
    ACCEPTED = "accepted", _l("Accepted")
    DECLINED = "declined", _l("Declined")
    COMPLETED = "completed", _l("Completed")
    WITHDRAWN = "withdrawn", _lp("assignment", "Withdrawn")


class AssignmentRole(LabelledEnum):
    INITIAL = "initial", _l("Initial expert")
    THIRD = "third", _l("Third expert")


class SheetStatus(LabelledEnum):
    DRAFT = "draft", _lp("score sheet", "Draft")
    SUBMITTED = "submitted", _lp("score sheet", "Submitted")


class Decision(LabelledEnum):
    ADMITTED = "admitted", _l("Recommended for inclusion in the registry")
    REVISION_REQUIRED = "revision_required", _l("Sent for revision")
    REJECTED = "rejected", _l("Not recommended")


class Resolution(LabelledEnum):
    """How a divergent review was settled."""

    AGREEMENT = "agreement", _l("Agreement reached in discussion")
    THIRD_EXPERT = "third_expert", _l("A third expert was brought in")
    COORDINATOR = "coordinator", _l("Resolved by the coordinator")


class RevisionKind(LabelledEnum):
    """Why a submitted score was changed."""

    DISCUSSION = "discussion", _l("Discussion")
    REOPEN = "reopen", _l("Reopened by the coordinator")


class ConclusionStatus(LabelledEnum):
    VALID = "valid", _l("Valid")
    REVOKED = "revoked", _l("Revoked")
    SUPERSEDED = "superseded", _l("Superseded")


class RegistryEntryStatus(LabelledEnum):
    PENDING_INCLUSION = "pending_inclusion", _l("Pending inclusion")
    INCLUDED = "included", _l("Included")
    PENDING_REMOVAL = "pending_removal", _l("Pending removal")
    REMOVED = "removed", _l("Removed")


class OutboxStatus(LabelledEnum):
    PENDING = "pending", _l("Pending")
    SENT = "sent", _l("Sent")
    FAILED = "failed", _l("Failed")


class MunicipalityPolicy(LabelledEnum):
    DIFFERENT = "different", _l("Never from the expert's own municipality")
    PREFER_DIFFERENT = "prefer_different", _l("Prefer another municipality")
    ANY = "any", _l("Any municipality")


class ReviewKind(LabelledEnum):
    """Why a review case exists: a program submitted (or resubmitted), or an appeal panel
    re-scoring a decided review."""

    REGULAR = "regular", _l("Expertise")
    APPEAL = "appeal", _l("Appeal panel")


class AppealState(LabelledEnum):
    FILED = "filed", _l("Filed, awaiting the center")
    ACCEPTED = "accepted", _l("Accepted: under review by a new panel")
    REFUSED = "refused", _l("Refused")
    UPHELD = "upheld", _l("Upheld")
    DISMISSED = "dismissed", _l("Dismissed")


class RefusalGround(LabelledEnum):
    LATE = "late", _l("Filed after the appeal window")
    UNFOUNDED = "unfounded", _l("Unfounded")


class NotificationKind(LabelledEnum):
    """What a notification is about; each user chooses which kinds also come by e-mail,
    except ``ACCOUNT`` (their account and organization: always mailed)."""

    ASSIGNMENTS = "assignments", _l("Assignments: offered, taken off, closed, sheets reopened")
    REMINDERS = "reminders", _l("Deadline reminders and overdue reviews")
    DISCUSSIONS = "discussions", _l("Discussions of divergent scores")
    PROGRAMS = "programs", _l("Your organization's programs: screening, decisions, conclusions")
    WORK_QUEUE = (
        "work_queue",
        _l("The center's work: overdue assignments, programs without experts"),
    )
    ACCOUNT = "account", _l("Your account and organization")
