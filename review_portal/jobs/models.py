"""A background job: what to do (kind and payload), how far it got and how it ended."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_pgettext as _lp
from sqlalchemy.orm import Mapped, mapped_column

from review_portal.db import enum_column, utcnow
from review_portal.enums import LabelledEnum
from review_portal.extensions import db


class JobStatus(LabelledEnum):
    QUEUED = "queued", _lp("job", "Queued")
    RUNNING = "running", _lp("job", "Running")
    DONE = "done", _lp("job", "Done")
    FAILED = "failed", _lp("job", "Failed")


class Job(db.Model):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Which handler runs the job (``review_portal.jobs.services.HANDLERS``).
    kind: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus), default=JobStatus.QUEUED, server_default="queued", index=True
    )
    #: The handler's input, e.g. ``{"review_ids": [...], "actor_id": 1}``.
    payload: Mapped[dict] = mapped_column(sa.JSON, default=dict, server_default=sa.text("'{}'"))
    #: Units of work in the job and units processed so far (by the current run).
    total: Mapped[int] = mapped_column(default=0, server_default="0")
    done: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Units that could not be done, each ``{"id": ..., "title": ..., "error": ...}``.
    failed_items: Mapped[list] = mapped_column(
        sa.JSON, default=list, server_default=sa.text("'[]'")
    )
    #: What the job produced, by kind: e.g. ``{"created": 12, "filled": 12, "demand": 14}``
    #: for an assignment run.
    result: Mapped[dict | None] = mapped_column(sa.JSON)
    #: Why the job stopped (status ``failed``): the job itself broke, not one of its units.
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=sa.func.now())
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=sa.func.now()
    )
    #: When the runner of the running job last said it was alive: at every committed unit
    #: and every ``JOB_HEARTBEAT_SECONDS``. A running job whose heartbeat is older than
    #: ``JOB_STALE_AFTER_SECONDS`` has lost its runner (``review_portal.jobs.sweeper``).
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    #: Times the job was found running with nobody running it (its worker killed) and was
    #: started again; it resumed each time without repeating what it had committed.
    interruptions: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Why the job could not be handed to the job queue (the broker unreachable); cleared
    #: once it is. The sweeper sends such a job again.
    dispatch_error: Mapped[str | None] = mapped_column(sa.Text)

    @property
    def active(self) -> bool:
        """Queued or running: its page keeps refreshing."""
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def waiting_for_queue(self) -> bool:
        """Queued, but the job queue could not be reached to take it."""
        return self.status == JobStatus.QUEUED and self.dispatch_error is not None

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == JobStatus.DONE else 0
        return min(100, self.done * 100 // self.total)
