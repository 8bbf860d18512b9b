"""Imports as background jobs: no request does work that grows with the rows of a file.

* :func:`start_import` is what the upload request does, in time bounded by the file's size
  (at most ``MAX_UPLOAD_MB``): it checks the head of the file (its encoding, the header and
  that a row follows, so a wrong file is refused at once), stores the file
  (:mod:`review_portal.storage`, content-addressed) and queues an ``import_file`` job.
* :func:`import_file_job` is that job: it runs the import of
  :mod:`review_portal.imports.services` as the acting user — every row checked first, with
  the progress recorded (rows checked of the file's rows), then every row written in one
  transaction, or nothing when any row failed — and keeps the outcome in the job's result:
  the report by row and column, or the number created.

Resuming. The writing, the job's result and a copy of that result in the job's payload are
one transaction: a crash leaves either no row of the file or all of them. :func:`run_job`
clears the result when it runs a job again; a run that finds the copy in the payload (the
rows were committed, the job not yet marked done) records it again and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadData, URLSafeTimedSerializer

from review_portal import storage
from review_portal.accounts.models import User
from review_portal.extensions import db
from review_portal.imports.mapping import (
    Candidate,
    build_mapping,
    save_mapping,
    saved_mapping,
    value_candidates,
)
from review_portal.imports.services import (
    CHECKING,
    KINDS,
    WRITING,
    ImportReport,
    Mapping,
    check_head,
    import_file,
    normalize,
    report_from_json,
    report_json,
)
from review_portal.jobs.models import Job
from review_portal.jobs.services import IMPORT_FILE, JobStop, create_job, progress
from review_portal.permissions import authorize
from review_portal.programs.permissions import can_import

if TYPE_CHECKING:
    from review_portal.imports.services import Progress

#: The phase of a finished import in the job's result (the others are the services').
DONE = "done"
#: Characters of the uploaded file's name kept (it is shown and audited, never opened).
FILENAME_MAX = 255


def start_import(
    kind: str,
    stream: IO[bytes],
    actor: User,
    filename: str | None = None,
    mapping: Mapping | None = None,
) -> tuple[ImportReport, Job | None]:
    """Queue the import of the CSV or XLSX file in ``stream``: the file is stored and a
    job created (flushed and audited; the caller commits, then starts it).

    A file whose titles are not the portal's is read through ``mapping`` or, without one,
    through the mapping saved for its layout (:mod:`review_portal.imports.mapping`); with
    neither, the report says it ``needs_mapping`` (and no job is created).

    Returns the report of the file's head and the job — ``None`` when the head already
    shows the file cannot be imported (then nothing is stored). The center's staff only.
    """
    authorize(can_import(actor))
    if kind not in KINDS:
        raise ValueError(f"no import of {kind!r}")
    report = check_head(kind, stream, mapping)
    if report.needs_mapping and mapping is None:
        mapping = saved_mapping(kind, report.header)
        if mapping is not None:
            report = check_head(kind, stream, mapping)
            report.saved_mapping_used = True
    if not report.ok:
        return report, None
    stored = store_upload(stream, report)
    if stored is None:
        return report, None
    sha256, size = stored
    payload = {
        "kind": kind,
        # Named so that `flask storage-cleanup` keeps the file while the job exists.
        "storage_key": sha256,
        "size": size,
        "filename": filename[:FILENAME_MAX] if filename else None,
        "actor_id": actor.id,
    }
    if mapping is not None:
        payload["mapping"] = mapping.json()
    return report, create_job(IMPORT_FILE, payload, actor, total=0)


#: Seconds a file waits for its mapping: well under the grace period of
#: ``flask storage-cleanup``, which may delete it afterwards (nothing references it).
MAPPING_MAX_AGE = 12 * 3600


@dataclass(frozen=True)
class PendingUpload:
    """A stored file waiting for its column mapping (named by a signed token)."""

    kind: str
    storage_key: str
    filename: str | None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="import-mapping")


def hold_for_mapping(
    kind: str, stream: IO[bytes], actor: User, report: ImportReport, filename: str | None
) -> str | None:
    """Store a file that needs a mapping: the token of its mapping page (for ``actor``
    only), or ``None`` when it could not be stored (the problem in ``report``)."""
    authorize(can_import(actor))
    stream.seek(0)
    stored = store_upload(stream, report)
    if stored is None:
        return None
    data = [kind, stored[0], filename[:FILENAME_MAX] if filename else None, actor.id]
    return _serializer().dumps(data)


def pending_upload(token: str, actor: User) -> PendingUpload | None:
    """The file of a mapping page's token, if the token is ``actor``'s, not expired and
    the file still stored."""
    try:
        kind, key, filename, actor_id = _serializer().loads(token, max_age=MAPPING_MAX_AGE)
    except (BadData, ValueError, TypeError):
        return None
    if actor_id != actor.id or kind not in KINDS or not storage.is_key(str(key)):
        return None
    if not storage.path_for(key).exists():
        return None
    return PendingUpload(kind, key, filename)


def pending_header(pending: PendingUpload) -> list[str] | None:
    """The titles of the pending file, or ``None`` when it no longer needs a mapping."""
    with storage.path_for(pending.storage_key).open("rb") as stream:
        report = check_head(pending.kind, stream)
    return report.header


def pending_candidates(pending: PendingUpload, columns: dict[int, str]) -> list[Candidate]:
    """The words to map of the pending file, its columns mapped as ``columns``."""
    with storage.path_for(pending.storage_key).open("rb") as stream:
        return value_candidates(pending.kind, stream, columns)


def candidates_digest(candidates: list[Candidate]) -> str:
    """Which words a mapping page asked about (compared when it is posted)."""
    words = [[candidate.field, normalize(candidate.value)] for candidate in candidates]
    return hashlib.sha256(json.dumps(words, ensure_ascii=False).encode()).hexdigest()


def start_mapped_import(
    pending: PendingUpload,
    actor: User,
    header: list[str],
    columns: dict[int, str],
    values: dict[tuple[str, str], str],
) -> tuple[ImportReport, Job | None]:
    """Queue the import of the pending file through the mapping chosen (a field by
    column position, a word by (field, word of the file)); the mapping is saved for the
    file's layout once the file's head passes with it."""
    mapping = build_mapping(header, columns, values)
    with storage.path_for(pending.storage_key).open("rb") as stream:
        report, job = start_import(pending.kind, stream, actor, pending.filename, mapping)
    if job is not None:
        save_mapping(pending.kind, header, mapping, actor)
    return report, job


def store_upload(stream: IO[bytes], report: ImportReport) -> tuple[str, int] | None:
    """Store the uploaded file: its key and size, or ``None`` (the problem in ``report``)
    when it is over ``MAX_UPLOAD_MB``."""
    limit_mb = int(current_app.config["MAX_UPLOAD_MB"])
    try:
        return storage.save_stream(storage.iter_chunks(stream), max_size=limit_mb * 1024 * 1024)
    except storage.TooLarge:
        report.file_errors.append(_l("The file is larger than %(n)s MB.", n=limit_mb))
        return None


def import_file_job(job_id: int) -> None:
    """Job handler (``import_file``): import the stored file as the job's author, who must
    still be allowed to import; the rows are written, with the job's result, in the
    transaction :func:`~review_portal.jobs.services.run_job` commits after this returns."""
    job = db.session.get(Job, job_id)
    payload = dict(job.payload)
    if payload.get("written") is not None:
        # An earlier run committed the rows and stopped before the job was marked done.
        _finish(job, report_from_json(payload["written"]))
        return
    actor = db.session.get(User, payload.get("actor_id"))
    if actor is None or not can_import(actor):
        raise JobStop(_l("The author of this import may no longer import files."))
    try:
        stream = storage.path_for(payload["storage_key"]).open("rb")
    except FileNotFoundError:
        raise JobStop(_l("The uploaded file is no longer stored.")) from None
    with stream:
        report = import_file(
            payload["kind"],
            stream,
            actor,
            filename=payload.get("filename"),
            progress=_recorder(job_id),
            mapping=Mapping.from_json(payload["mapping"]) if payload.get("mapping") else None,
        )
    job = db.session.get(Job, job_id)
    _finish(job, report)
    if report.created:
        job.payload = {**payload, "written": report_json(report)}


def _recorder(job_id: int) -> Progress:
    """The ``progress`` of an import run by job ``job_id``: the phase, the rows checked and
    the file's rows, committed at once (nothing of the import is written yet then)."""

    def record(phase: str, done: int, total: int) -> None:
        job = db.session.get(Job, job_id)
        job.total = total
        job.result = {"phase": phase}
        progress(job, done)

    return record


def _finish(job: Job, report: ImportReport) -> None:
    job.total = job.done = report.rows
    job.result = {"phase": DONE, "report": report_json(report)}


@dataclass(frozen=True)
class ImportState:
    """What the import page shows of an import job."""

    kind: str
    filename: str | None
    #: :data:`~review_portal.imports.services.CHECKING`, ``WRITING`` or :data:`DONE`;
    #: ``None`` while the job waits for a runner.
    phase: str | None
    #: The outcome, once the job ran the import to its end.
    report: ImportReport | None

    @property
    def checking(self) -> bool:
        return self.phase == CHECKING

    @property
    def writing(self) -> bool:
        return self.phase == WRITING


def import_job(job_id: int) -> tuple[Job, ImportState] | None:
    """The import job ``job_id`` and its state; ``None`` when no import job has that id."""
    job = db.session.get(Job, job_id)
    if job is None or job.kind != IMPORT_FILE:
        return None
    result = job.result or {}
    report = result.get("report")
    return job, ImportState(
        kind=job.payload.get("kind"),
        filename=job.payload.get("filename"),
        phase=result.get("phase"),
        report=report_from_json(report) if report is not None else None,
    )
