"""Finding and deleting the files in ``STORAGE_DIR`` that nothing references
(``flask storage-cleanup``).

What references a file is listed once, here: :data:`REFERENCES` names every column that
holds a storage key (or points at a row that holds one) and the domain query that
collects its keys; :data:`NOT_REFERENCES` names the columns that look like one but are not,
with the reason. A test scans the models and fails on a column that is in neither list, so
a new kind of reference cannot be forgotten silently. Jobs name their files in their JSON
under ``storage_key`` / ``storage_keys`` (:data:`review_portal.jobs.queries.STORAGE_KEY_FIELDS`).

The files considered are the storage's own, by their names: content-addressed files
``files/ab/cd/<sha256>``, unfinished writes in ``files/incoming/`` and files moved aside by
an interrupted discard (``*.discard``), built snapshot exports ``exports/registry-*.xlsx`` and
their unfinished ``*.part`` files. Anything else in the folder is not the storage's and is
never listed nor touched.

**The grace period.** A file is written before the row that references it is committed:
an upload in progress, a conclusion being issued, an export being built, a transaction
that reuses an existing file (it touches the file, see :mod:`review_portal.storage`). At
that moment the file looks unreferenced, and deleting it would leave the row that is about
to commit pointing at nothing. The clean-up therefore deletes only files whose
modification time is older than ``--older-than`` hours (24 by default, far longer than
any request or job step), and checks that time again after moving the file aside, so a
transaction that touches the file meanwhile keeps it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import current_app

from review_portal import storage
from review_portal.appeals.queries import referenced_file_keys as appeal_keys
from review_portal.conclusions.queries import referenced_file_keys as conclusion_keys
from review_portal.jobs.queries import referenced_storage_keys as job_keys
from review_portal.programs.queries import referenced_file_keys as program_file_keys
from review_portal.registry.exports import exports_folder, referenced_export_files

#: The grace period of ``flask storage-cleanup`` unless ``--older-than`` says otherwise.
DEFAULT_GRACE = timedelta(hours=24)


@dataclass(frozen=True)
class Reference:
    """Columns whose values keep files, and the query that collects those storage keys."""

    columns: tuple[str, ...]
    collect: Callable[[], set[str]]
    what: str


#: Every column that references a file of the storage ("table.column").
REFERENCES: tuple[Reference, ...] = (
    Reference(
        ("stored_files.sha256", "program_documents.file_id", "version_documents.file_id"),
        program_file_keys,
        "program documents and the documents of submitted versions",
    ),
    Reference(
        ("conclusions.storage_key", "conclusions.sha256"),
        conclusion_keys,
        "conclusions' PDF files",
    ),
    Reference(
        ("appeals.storage_key", "appeals.sha256", "appeal_files.file_id"),
        appeal_keys,
        "decisions on appeals (PDF) and the files attached to appeals",
    ),
    Reference(
        ("jobs.payload", "jobs.result"),
        job_keys,
        "files named by a job (storage_key / storage_keys in its payload or result)",
    ),
)

#: Columns that look like a storage reference but are none, and why.
NOT_REFERENCES: dict[str, str] = {
    "conclusions.content_sha256": "the fingerprint of the conclusion's content, not a file",
    "rubric_records.sha256": "the fingerprint of a rubric file of the package",
    "audit_events.before": "history: names files (hashes) without keeping them",
    "audit_events.after": "history: names files (hashes) without keeping them",
    "jobs.failed_items": "the units a job could not do and why",
    "settings.value": "the center's settings",
    "import_mappings.titles": "the column titles of an import layout",
    "import_mappings.mapping": "the fields and words of an import layout",
    "programs.modules": "the program's modules (titles, hours, texts)",
    "program_versions.modules": "a version's modules (titles, hours, texts)",
    "registry_snapshot_items.modules": "a published entry's modules (titles, hours, texts)",
    "programs.additional_registry_kinds": "the other registry kinds asked for (names)",
    "program_versions.additional_registry_kinds": "a version's other registry kinds (names)",
    "reviews.divergence_rules": "the rubric's divergence rules, frozen on the review",
    "reviews.final_result": "the settled scores of a review",
    "notification_settings.muted_kinds": "the kinds of notifications a user has not mailed",
    "appeals.content_sha256": "the fingerprint of a decision's content, not a file",
    "appeals.arguments": "the provider's reasons per contested criterion",
    "appeals.filed_at": "when an appeal was filed (named so, not a file)",
    "appeals.filed_by_id": "who filed an appeal (named so, not a file)",
    "reviews.scope_criteria": "the criteria an appeal panel scores",
    "reviews.fixed_scores": "the appealed final scores an appeal panel keeps",
}

#: Snapshot exports are files of their own (referenced by the snapshot, see
#: :func:`review_portal.registry.exports.referenced_export_files`).
EXPORT_NAME = re.compile(r"registry-\d+-[0-9a-f]{16}-[A-Za-z_]+\.xlsx")
PART_NAME = re.compile(r"registry-\d+-[0-9a-f]{16}-[A-Za-z_]+\.xlsx\.\d+\.part")


def referenced_keys() -> set[str]:
    """Every storage key some row references (one query per kind of reference)."""
    keys: set[str] = set()
    for reference in REFERENCES:
        keys |= reference.collect()
    return keys


@dataclass(frozen=True)
class Unreferenced:
    """A file of the storage nothing references."""

    path: Path
    size: int
    modified: datetime
    #: Why it is there: ``file`` (content no row references), ``unfinished`` (a write or
    #: a discard that never ended), ``export`` (the export of no snapshot).
    kind: str

    def relative(self) -> str:
        return str(self.path.relative_to(current_app.config["STORAGE_DIR"]))


@dataclass
class Survey:
    """The unreferenced files, split at the grace period's edge."""

    old: list[Unreferenced] = field(default_factory=list)
    recent: list[Unreferenced] = field(default_factory=list)
    #: Referenced content-addressed files that are not on disk (e.g. a restored database).
    missing: int = 0

    @staticmethod
    def size(files: list[Unreferenced]) -> int:
        return sum(f.size for f in files)


def _item(path: Path, kind: str) -> Unreferenced | None:
    try:
        stat = path.stat()
    except FileNotFoundError:  # gone meanwhile
        return None
    return Unreferenced(path, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC), kind)


def _content_files(root: Path, keys: set[str]):
    """The storage's files under ``files/`` nothing references, with their kind."""
    incoming = storage.incoming()
    for folder, _dirs, names in os.walk(root):
        here = Path(folder)
        for name in names:
            path = here / name
            if here == incoming or name.endswith(storage.DISCARDING):
                yield path, "unfinished"
            elif storage.is_key(name) and path == storage.path_for(name) and name not in keys:
                yield path, "file"


def survey(grace: timedelta = DEFAULT_GRACE, now: datetime | None = None) -> Survey:
    """Every file of the storage that nothing references, older or younger than ``grace``."""
    now = now or datetime.now(UTC)
    keys = referenced_keys()
    exports = referenced_export_files()
    found: list[Unreferenced] = []
    on_disk: set[str] = set()
    root = storage.root()
    if root.is_dir():
        for path, kind in _content_files(root, keys):
            if (item := _item(path, kind)) is not None:
                found.append(item)
        on_disk = {
            path.name
            for path in root.glob("??/??/*")
            if storage.is_key(path.name) and path.name in keys
        }
    folder = exports_folder()
    if folder.is_dir():
        for path in folder.iterdir():
            if not path.is_file():
                continue
            if PART_NAME.fullmatch(path.name) or path.name.endswith(storage.DISCARDING):
                kind = "unfinished"
            elif EXPORT_NAME.fullmatch(path.name) and path not in exports:
                kind = "export"
            else:
                continue
            if (item := _item(path, kind)) is not None:
                found.append(item)
    result = Survey(missing=len(keys - on_disk))
    for item in sorted(found, key=lambda f: str(f.path)):
        (result.old if now - item.modified >= grace else result.recent).append(item)
    return result


@dataclass
class Deleted:
    files: list[Unreferenced] = field(default_factory=list)
    #: Files that were in use again by the time they were to go (kept).
    kept: int = 0

    @property
    def size(self) -> int:
        return Survey.size(self.files)


def delete_unreferenced(grace: timedelta = DEFAULT_GRACE) -> Deleted:
    """Delete the unreferenced files older than ``grace`` and audit how many went (one
    record, only when some did; the caller commits). Each file is moved aside and its
    modification time checked again before it goes (see the module's docstring)."""
    from review_portal.audit.services import record_event

    threshold = time.time_ns() - int(grace.total_seconds() * 1e9)
    report = Deleted()
    for item in survey(grace).old:
        if storage.discard(item.path, older_than_ns=threshold):
            report.files.append(item)
        else:
            report.kept += 1
    if report.files:
        record_event(
            "storage.cleanup",
            object_type="storage",
            after={
                "files": len(report.files),
                "bytes": report.size,
                "older_than_hours": grace.total_seconds() / 3600,
            },
        )
    return report
