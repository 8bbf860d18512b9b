"""Imports every model so the mapper registry and Alembic see the whole schema."""

from review_portal.accounts.models import PasswordResetToken, User, UserRole
from review_portal.appeals.models import Appeal, AppealCounter, AppealFile
from review_portal.assignment.models import Assignment
from review_portal.audit.models import (
    AuditAnchor,
    AuditChainHead,
    AuditEvent,
    AuditLink,
    AuditPending,
)
from review_portal.conclusions.models import Conclusion, ConclusionCounter
from review_portal.experts.models import ExpertDirection, ExpertProfile, ExpertUnavailability
from review_portal.imports.models import ImportMapping
from review_portal.jobs.models import Job
from review_portal.notifications.models import Notification, NotificationSettings, OutboxMessage
from review_portal.organizations.models import Invitation, Municipality, Organization
from review_portal.programs.models import (
    Program,
    ProgramDocument,
    ProgramVersion,
    StoredFile,
    VersionDocument,
)
from review_portal.registry.models import RegistryEntry, RegistrySnapshot, RegistrySnapshotItem
from review_portal.reviews.models import Review, ReviewTransition
from review_portal.rubrics.models import ActiveRubric, RubricRecord
from review_portal.scoring.models import Score, ScoreRevision, ScoreSheet
from review_portal.settings.models import Setting

__all__ = [
    "ActiveRubric",
    "Appeal",
    "AppealCounter",
    "AppealFile",
    "Assignment",
    "AuditAnchor",
    "AuditChainHead",
    "AuditEvent",
    "AuditLink",
    "AuditPending",
    "Conclusion",
    "ConclusionCounter",
    "ExpertDirection",
    "ExpertProfile",
    "ExpertUnavailability",
    "ImportMapping",
    "Invitation",
    "Job",
    "Municipality",
    "Notification",
    "NotificationSettings",
    "Organization",
    "OutboxMessage",
    "PasswordResetToken",
    "Program",
    "ProgramDocument",
    "ProgramVersion",
    "RegistryEntry",
    "RegistrySnapshot",
    "RegistrySnapshotItem",
    "Review",
    "ReviewTransition",
    "RubricRecord",
    "Score",
    "ScoreRevision",
    "ScoreSheet",
    "Setting",
    "StoredFile",
    "User",
    "UserRole",
    "VersionDocument",
]
