"""``flask storage-cleanup`` (issue 21, item 3): the dry run lists exactly the files nothing
references, with sizes and a total, and changes nothing; the real run deletes only those
older than the grace period, and audits it; a referenced file is never touched, nor a file
that is not the storage's. Every column that may reference a file is known to the clean-up.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from review_portal import storage
from review_portal.audit.models import AuditEvent
from review_portal.enums import RegistryKind
from review_portal.extensions import db
from review_portal.jobs.models import Job
from review_portal.programs.documents import remove_document
from review_portal.registry.exports import prebuilt_path
from review_portal.registry.models import RegistrySnapshot
from review_portal.storage_cleanup import NOT_REFERENCES, REFERENCES
from tests import factories

DAY = 24 * 3600


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look last changed ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def stored(data: bytes) -> Path:
    sha256, _ = storage.save_bytes(data)
    return storage.path_for(sha256)


@pytest.fixture
def world(app, session, tmp_path, monkeypatch):
    """A storage of this test with a referenced file of every kind, unreferenced files of
    every kind and files that are not the storage's; returns ``(referenced, unreferenced,
    foreign)`` paths."""
    monkeypatch.setitem(app.config, "STORAGE_DIR", str(tmp_path / "storage"))
    coordinator = factories.CoordinatorFactory()
    # A submitted version's document (and the working copy of it).
    program = factories.program_in_review(coordinator)
    version_file = storage.path_for(program.documents[0].file.sha256)
    # A working attachment, and a replaced draft whose stored_files row nobody uses.
    draft = factories.ProgramFactory()
    attachment = factories.attach_document(draft, factories.MINIMAL_PDF + b"% attachment\n")
    replaced = factories.attach_document(draft, factories.MINIMAL_PDF + b"% replaced\n")
    replaced_file = storage.path_for(replaced.file.sha256)
    remove_document(draft, replaced, session.get(type(coordinator), draft.created_by_id))
    # A conclusion's PDF (cheap_conclusion's key is the SHA-256 of its number's bytes).
    review = program.current_review
    conclusion, _entry = factories.cheap_conclusion(review, coordinator)
    conclusion_file = stored(conclusion.number.encode())
    assert conclusion_file.name == conclusion.storage_key
    # Files named by jobs: an import's upload, and a produced file deep in a result.
    upload = stored(b"title;hours\nRobotics;72\n")
    produced = stored(b"a produced file\n")
    session.add(Job(kind="import_programs", payload={"storage_key": upload.name}))
    session.add(
        Job(kind="export", payload={}, result={"files": [{"storage_keys": [produced.name]}]})
    )
    # A snapshot's built export in both languages.
    snapshot = RegistrySnapshot(kind=RegistryKind.GENERAL, number=1, published_by_id=coordinator.id)
    session.add(snapshot)
    session.flush()
    exports = []
    for locale in app.config["LANGUAGES"]:
        path = prebuilt_path(snapshot, locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK xlsx " + locale.encode())
        exports.append(path)
    session.commit()

    # Unreferenced: content written by a transaction that committed no row for it...
    orphan = stored(b"content of an upload whose row never came\n")
    session.commit()
    root = Path(app.config["STORAGE_DIR"])
    # ...an unfinished write, a file left aside by an interrupted discard, an export of no
    # snapshot, and an unfinished export.
    unfinished = root / "files" / "incoming" / "tmpab12cd34"
    unfinished.write_bytes(b"half an upload")
    aside = orphan.parent / f".{orphan.name}.0123abcd{storage.DISCARDING}"
    aside.write_bytes(b"moved aside")
    stale_export = root / "exports" / "registry-999-0123456789abcdef-ru.xlsx"
    stale_export.write_bytes(b"PK an export of no snapshot")
    part = root / "exports" / f"{exports[0].name}.4242.part"
    part.write_bytes(b"PK half")
    # Not the storage's: never listed, never touched.
    foreign = [root / "README.txt", root / "files" / "notes.txt", root / "exports" / "x.csv"]
    (root / "files" / "ab" / "cd").mkdir(parents=True, exist_ok=True)
    foreign.append(root / "files" / "ab" / "cd" / "not-a-key")
    for path in foreign:
        path.write_bytes(b"someone else's file")

    referenced = [
        version_file,
        storage.path_for(attachment.file.sha256),
        conclusion_file,
        upload,
        produced,
        *exports,
    ]
    unreferenced = [replaced_file, orphan, unfinished, aside, stale_export, part]
    for path in referenced + unreferenced + foreign:
        assert path.is_file(), path
        age(path, 3 * DAY)
    return referenced, unreferenced, foreign


def run(app, *args: str):
    result = app.test_cli_runner().invoke(args=["storage-cleanup", *args])
    assert result.exit_code == 0, result.output
    return result.output


LINE = re.compile(r"^  (\S+)\t(\d+) bytes\t", re.MULTILINE)


def listed(app, output: str) -> dict[Path, int]:
    root = Path(app.config["STORAGE_DIR"])
    return {root / name: int(size) for name, size in LINE.findall(output)}


def test_dry_run_lists_exactly_the_unreferenced_files_and_changes_nothing(app, world):
    referenced, unreferenced, foreign = world
    everything = {p: p.read_bytes() for p in referenced + unreferenced + foreign}

    output = run(app, "--dry-run")

    assert listed(app, output) == {p: p.stat().st_size for p in unreferenced}
    total = sum(p.stat().st_size for p in unreferenced)
    assert f"Total: {len(unreferenced)} files, {total} bytes" in output
    assert {p: p.read_bytes() for p in everything} == everything
    assert (
        db.session.execute(select(AuditEvent).where(AuditEvent.action == "storage.cleanup")).first()
        is None
    )


def test_dry_run_sets_young_files_apart(app, world):
    _referenced, unreferenced, _foreign = world
    young = unreferenced[:2]
    for path in young:
        age(path, 3600)

    output = run(app, "--dry-run")

    old_part, _, young_part = output.partition("younger than 24 h (kept)")
    assert set(listed(app, old_part)) == set(unreferenced) - set(young)
    assert set(listed(app, young_part)) == set(young)


def test_real_run_deletes_only_old_unreferenced_files_and_audits_it(app, world):
    referenced, unreferenced, foreign = world
    young = unreferenced[0]
    age(young, 2 * 3600)
    kept = {p: p.read_bytes() for p in referenced + foreign + [young]}
    gone = unreferenced[1:]
    size = sum(p.stat().st_size for p in gone)

    output = run(app)

    assert f"Deleted: {len(gone)} files, {size} bytes" in output
    assert [p for p in gone if p.exists()] == []
    assert {p: p.read_bytes() for p in kept} == kept
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "storage.cleanup")
    ).scalar_one()
    assert event.actor_label == "system"
    assert event.after == {"files": len(gone), "bytes": size, "older_than_hours": 24.0}

    # A grace period shorter than an hour is refused (it would delete the file of an
    # upload or an issue in progress); with one hour the two-hour-old one goes too; then
    # nothing is left to do, and a run that deletes nothing writes no audit record.
    refused = app.test_cli_runner().invoke(args=["storage-cleanup", "--older-than", "0"])
    assert refused.exit_code == 2 and "--older-than" in refused.output
    assert young.exists()
    assert "Deleted: 1 files" in run(app, "--older-than", "1")
    assert not young.exists()
    assert "Deleted: 0 files, 0 bytes" in run(app, "--older-than", "1")
    assert [p for p in referenced + foreign if not p.exists()] == []
    assert (
        db.session.execute(
            select(sa.func.count()).where(AuditEvent.action == "storage.cleanup")
        ).scalar_one()
        == 2
    )


def test_a_file_used_again_before_it_goes_is_kept(app, world):
    """A transaction that stores the same bytes touches the file: the clean-up, checking
    the time again after moving it aside, keeps it."""
    _referenced, unreferenced, _foreign = world
    orphan = unreferenced[1]
    real_discard = storage.discard

    def discard(path, written_ns=None, *, older_than_ns=None):
        if path == orphan:
            storage.save_bytes(orphan.read_bytes())  # another upload of the same content
        return real_discard(path, written_ns, older_than_ns=older_than_ns)

    storage.discard = discard
    try:
        output = run(app)
    finally:
        storage.discard = real_discard
    assert orphan.exists()
    assert "1 in use again, kept" in output


def test_every_column_that_may_name_a_file_is_known_to_the_cleanup(app):
    """A column named like a storage key, pointing at stored_files, or holding JSON (which
    may carry ``storage_key``) must be collected by a query of REFERENCES or said not to be
    a reference in NOT_REFERENCES: a new reference cannot be forgotten silently."""
    known = {column for reference in REFERENCES for column in reference.columns}
    suspects = set()
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            named = re.search(r"sha256|storage|file", column.name)
            points = any(fk.column.table.name == "stored_files" for fk in column.foreign_keys)
            if named or points or isinstance(column.type, sa.JSON):
                suspects.add(f"{table.name}.{column.name}")
    assert suspects - known - set(NOT_REFERENCES) == set()
    assert (known | set(NOT_REFERENCES)) - suspects == set(), "listed but no such column"
    assert known.isdisjoint(NOT_REFERENCES)
