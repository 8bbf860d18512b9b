"""The rubric files and the choice of the active rubric per program type.

A rubric is a YAML file of ``RUBRIC_DIR`` (the application's config, by default this
package's folder), validated by :mod:`review_portal.rubrics.schema` when it is read. The
typed model (:class:`RubricFile`, :class:`Section`, :class:`Criterion` ...) is what the rest
of the portal reads; ``data`` keeps the raw content, whose canonical JSON is fingerprinted.
A rubric version in use by a review never changes: :func:`check_rubrics` refuses to start
when a file's fingerprint differs from the one recorded when a review first used it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import yaml
from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import select

from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import Level, ProgramType
from review_portal.extensions import db
from review_portal.permissions import authorize, is_staff
from review_portal.rubrics.models import ActiveRubric, RubricRecord
from review_portal.rubrics.schema import RubricError, validate_rubric

RUBRIC_DIR = Path(__file__).resolve().parent

log = logging.getLogger(__name__)

Number = Decimal | int


@dataclass(frozen=True)
class Criterion:
    id: str
    title: str
    #: An ``int`` when the file gives a whole number, else a ``Decimal``.
    weight: Number
    #: A blocking criterion scored below ``decision.blocking_min`` caps the decision.
    blocking: bool
    section_id: str
    #: ``((program field, value or values), ...)``: the programs the criterion applies to
    #: (empty: every program); see :func:`review_portal.scoring.compute.applies`.
    applies_if: tuple = ()

    @property
    def condition_words(self) -> list[str]:
        """``applies_if`` in words, one phrase per field (empty: applies to every program)."""
        return [_condition_phrase(name, wanted) for name, wanted in self.applies_if]


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    criteria: tuple[Criterion, ...]
    #: The least percentage of the section's maximum its final scores must reach.
    min_percent: Number | None = None


@dataclass(frozen=True)
class Decision:
    admit_percent: Number
    revision_percent: Number
    blocking_min: int
    #: Admission also needs every counted expert's total at this percentage or above.
    floor_percent: Number | None = None


@dataclass(frozen=True)
class KindPolicy:
    """What an admitted program must also reach to be included in one registry kind."""

    #: A stricter admission threshold than the rubric's (``None``: the rubric's own).
    admit_percent: Number | None = None
    #: ``((section id, least percentage of the section's maximum), ...)``.
    sections: tuple = ()


@dataclass(frozen=True)
class Divergence:
    total_percent: Number
    decision_split: bool
    criterion_points: int
    #: ``third_expert`` or ``discussion``.
    resolution: str


@dataclass(frozen=True)
class RubricFile:
    id: str
    version: int
    title: str
    program_types: frozenset[ProgramType]
    #: SHA-256 of the canonical JSON of the file's content.
    sha256: str
    data: dict = field(compare=False)
    #: The file's name inside the rubric folder.
    filename: str = ""
    scale_min: int = 0
    scale_max: int = 0
    scale_labels: dict[int, str] = field(default_factory=dict, compare=False)
    experts_per_review: int = 2
    #: A score below this needs a written comment.
    comment_required_below: int = 0
    sections: tuple[Section, ...] = ()
    decision: Decision | None = None
    divergence: Divergence | None = None
    #: ``closest_pair_mean`` or ``mean``.
    final_score: str = "closest_pair_mean"
    #: What an appeal panel scores: ``contested`` criteria (the others keep the appealed
    #: final scores) or the ``whole`` sheet.
    appeal_scope: str = "contested"
    #: The heading of the sheet's per-criterion notes column (``None``: the default one).
    notes_title: str | None = None
    #: ``False``: in force for a program type only when a coordinator chooses it.
    default: bool = True
    #: ``{registry kind value: policy}``; a kind without a policy takes every admission.
    registry_kinds: dict = field(default_factory=dict, compare=False)

    @property
    def criteria(self) -> tuple[Criterion, ...]:
        """Every criterion in the order of the sheet."""
        return tuple(c for s in self.sections for c in s.criteria)

    @property
    def scale(self) -> range:
        """The scale's integers, lowest first."""
        return range(self.scale_min, self.scale_max + 1)

    @property
    def max_total(self) -> Number:
        """The highest possible weighted total: every criterion at the top of the scale."""
        return sum((c.weight * self.scale_max for c in self.criteria), 0)

    def criterion(self, criterion_id: str) -> Criterion:
        """The criterion of that id (``KeyError`` when the rubric has none)."""
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(f"rubric {self.id} version {self.version} has no criterion {criterion_id!r}")

    def comment_required(self, score: int) -> bool:
        return score < self.comment_required_below


def _condition_phrase(name: str, wanted) -> str:
    values = wanted if isinstance(wanted, tuple) else (wanted,)
    if name == "adapted_for_disabilities":
        return str(
            _("adapted for children with disabilities")
            if values == (True,)
            else _("not adapted for children with disabilities")
        )
    if name == "short_term":
        return str(_("short-term") if values == (True,) else _("not short-term"))
    if name == "multi_level":
        return str(_("multi-level") if values == (True,) else _("not multi-level"))
    if name == "program_type":
        return ", ".join(str(ProgramType(v).label) for v in values)
    if name == "level":
        return ", ".join(str(Level(v).label) for v in values)
    return f"{name}: {', '.join(map(str, values))}"


def _number(value) -> Number:
    if isinstance(value, int):
        return value
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else number


def fingerprint(data: dict) -> str:
    """SHA-256 of the content's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_rubric(data: dict, filename: str = "") -> RubricFile:
    """The typed model of content that :func:`validate_rubric` accepted."""
    scale = data["scale"]
    sections = tuple(
        Section(
            id=str(s["id"]),
            title=s["title"],
            criteria=tuple(
                Criterion(
                    id=str(c["id"]),
                    title=c["title"],
                    weight=_number(c["weight"]),
                    blocking=bool(c["blocking"]),
                    section_id=str(s["id"]),
                    applies_if=tuple(
                        sorted(
                            (str(k), tuple(v) if isinstance(v, list) else v)
                            for k, v in (c.get("applies_if") or {}).items()
                        )
                    ),
                )
                for c in s["criteria"]
            ),
            min_percent=None if s.get("min_percent") is None else _number(s["min_percent"]),
        )
        for s in data["sections"]
    )
    decision, divergence = data["decision"], data["divergence"]
    return RubricFile(
        id=data["id"],
        version=int(data["version"]),
        title=data["title"],
        program_types=frozenset(ProgramType(t) for t in data["program_types"]),
        sha256=fingerprint(data),
        data=data,
        filename=filename,
        scale_min=int(scale["min"]),
        scale_max=int(scale["max"]),
        scale_labels={
            int(k): str(v) for k, v in sorted(scale["labels"].items(), key=lambda kv: int(kv[0]))
        },
        experts_per_review=int(data["experts_per_review"]),
        comment_required_below=int(data["comment_required_below"]),
        sections=sections,
        decision=Decision(
            admit_percent=_number(decision["admit_percent"]),
            revision_percent=_number(decision["revision_percent"]),
            blocking_min=int(decision["blocking_min"]),
            floor_percent=(
                None
                if decision.get("floor_percent") is None
                else _number(decision["floor_percent"])
            ),
        ),
        divergence=Divergence(
            total_percent=_number(divergence["total_percent"]),
            decision_split=bool(divergence["decision_split"]),
            criterion_points=int(divergence["criterion_points"]),
            resolution=divergence["resolution"],
        ),
        final_score=data["final_score"],
        appeal_scope=data.get("appeal_scope", "contested"),
        notes_title=data.get("notes_title"),
        default=bool(data.get("default", True)),
        registry_kinds={
            str(kind): KindPolicy(
                admit_percent=(
                    None
                    if policy.get("admit_percent") is None
                    else _number(policy["admit_percent"])
                ),
                sections=tuple(
                    (str(k), _number(v)) for k, v in (policy.get("sections") or {}).items()
                ),
            )
            for kind, policy in (data.get("registry_kinds") or {}).items()
        },
    )


#: ``yaml.safe_load``'s loader, in C where PyYAML was built with libyaml (every process
#: reads the rubric files at start; the C loader takes a tenth of the time).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_rubric(path: Path) -> RubricFile:
    """Read, validate and model one file; :class:`RubricError` names the file and field."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as error:
        raise RubricError(f"rubric file {path.name}: not valid YAML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RubricError(f"rubric file {path.name}: cannot be read: {error}") from None
    validate_rubric(data, path.name)
    return build_rubric(data, path.name)


def rubric_dir() -> Path:
    """The rubric folder: ``RUBRIC_DIR`` of the current application, else this package's."""
    if has_app_context() and current_app.config.get("RUBRIC_DIR"):
        return Path(current_app.config["RUBRIC_DIR"])
    return RUBRIC_DIR


#: How long (seconds) the files read from a folder are used before the folder is looked at
#: again (names, sizes, modification times): a request does not stat every file.
RECHECK_SECONDS = 2.0


@dataclass
class _Folder:
    #: The folder's files as last read: ``(name, mtime, size)`` of each.
    key: tuple
    files: dict[tuple[str, int], RubricFile]
    #: ``time.monotonic()`` of the last look at the folder.
    checked: float


#: ``{folder as given: what was read from it}``.
_folders: dict[str, _Folder] = {}


def rubric_files(directory: Path | str | None = None) -> dict[tuple[str, int], RubricFile]:
    """Every rubric file of the folder, by (id, version), in (id, version) order.

    Read once per process; the folder is looked at again at most every
    :data:`RECHECK_SECONDS` and the files read again only when one changed (name, size or
    modification time), so a file edited in development is picked up within seconds.
    """
    folder = Path(directory) if directory is not None else rubric_dir()
    name = str(folder)
    entry = _folders.get(name)
    now = time.monotonic()
    if entry is not None and now - entry.checked < RECHECK_SECONDS:
        return entry.files
    paths = sorted(folder.glob("*.yaml"))
    key = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    if entry is not None and entry.key == key:
        entry.checked = now
        return entry.files
    rubrics: dict[tuple[str, int], RubricFile] = {}
    for path in paths:
        rubric = load_rubric(path)
        other = rubrics.get((rubric.id, rubric.version))
        if other is not None:
            raise RubricError(
                f"rubric file {path.name}: id {rubric.id!r} version {rubric.version} is "
                f"already defined by {other.filename}; give the new file a new version"
            )
        rubrics[(rubric.id, rubric.version)] = rubric
    rubrics = dict(sorted(rubrics.items()))
    if len(_folders) >= 16:  # tests make a folder each; a process has one
        _folders.clear()
    _folders[name] = _Folder(key, rubrics, now)
    return rubrics


def get_rubric(rubric_id: str, version: int) -> RubricFile:
    """The rubric of that id and version; ``KeyError`` naming them when no file has it."""
    try:
        return rubric_files()[(rubric_id, int(version))]
    except KeyError:
        raise KeyError(f"no rubric file has id {rubric_id!r} version {version}") from None


def active_rubric(program_type: ProgramType, short_term: bool = False) -> RubricFile | None:
    """The rubric in force for a program of the type: for a short-term one (see
    :func:`review_portal.scoring.compute.is_short_term`) the coordinator's choice for the
    type's short-term programs when there is one; else the choice for the type, else the
    newest rubric that covers it (of those not marked ``default: false``, when there are
    any)."""
    program_type = ProgramType(program_type)
    files = rubric_files()
    if short_term:
        chosen = db.session.get(ActiveRubric, (program_type, True))
        if chosen is not None:
            return files.get((chosen.rubric_id, chosen.rubric_version))
    chosen = db.session.get(ActiveRubric, (program_type, False))
    if chosen is not None:
        return files.get((chosen.rubric_id, chosen.rubric_version))
    covering = [r for r in files.values() if ProgramType(program_type) in r.program_types]
    covering = [r for r in covering if r.default] or covering
    return max(covering, key=lambda r: (r.version, r.id), default=None)


def record_rubric_use(rubric: RubricFile) -> None:
    """Remember the fingerprint of a rubric version the first time a review uses it."""
    exists = db.session.execute(
        select(RubricRecord).where(
            RubricRecord.rubric_id == rubric.id, RubricRecord.version == rubric.version
        )
    ).scalar_one_or_none()
    if exists is None:
        db.session.add(
            RubricRecord(
                rubric_id=rubric.id,
                version=rubric.version,
                sha256=rubric.sha256,
                title=rubric.title,
            )
        )


def check_rubrics(app) -> None:
    """Start-up check: every file is valid, and no rubric version in use has changed.

    Raises :class:`RubricError` naming the file. The comparison with the recorded
    fingerprints is skipped when the database is unreachable or not migrated yet (so
    ``flask db upgrade`` works on an empty database).
    """
    with app.app_context():
        files = rubric_files()
        try:
            with db.engine.connect() as connection:
                if not sa.inspect(connection).has_table(RubricRecord.__tablename__):
                    return
                rows = connection.execute(
                    select(RubricRecord.rubric_id, RubricRecord.version, RubricRecord.sha256)
                ).all()
        except sa.exc.OperationalError as error:
            log.warning("rubrics not compared with the database (unreachable): %s", error)
            return
        finally:
            # No pooled connection survives into forked workers (``gunicorn --preload``).
            if db.engine.dialect.name != "sqlite":
                db.engine.dispose()
        for rubric_id, version, sha256 in rows:
            rubric = files.get((rubric_id, version))
            if rubric is None:
                log.warning("rubric %s version %s is in use but no file has it", rubric_id, version)
            elif rubric.sha256 != sha256:
                raise RubricError(
                    f"rubric file {rubric.filename}: rubric {rubric_id} version {version} is in "
                    "use and has changed; restore it and add a new version instead"
                )


class RubricNotApplicable(ValueError):
    """The chosen rubric does not cover the program type."""


def rubrics_in_use() -> set[tuple[str, int]]:
    """(id, version) of every rubric a review has used (its fingerprint is recorded)."""
    return {
        tuple(row)
        for row in db.session.execute(select(RubricRecord.rubric_id, RubricRecord.version))
    }


@dataclass(frozen=True)
class ActiveChoice:
    """What is in force for the programs of a type, or for its short-term programs."""

    program_type: ProgramType
    short_term: bool
    #: The rubric in force (for short-term programs without a choice of their own: the
    #: type's); ``None``: no rubric covers the type.
    rubric: RubricFile | None
    #: A coordinator chose it for exactly these programs (not inherited, not the default).
    chosen: bool


def active_choices() -> list[ActiveChoice]:
    """For each program type, its regular choice and its short-term programs' choice."""
    chosen = {
        (row.program_type, row.short_term)
        for row in db.session.execute(select(ActiveRubric)).scalars()
    }
    return [
        ActiveChoice(
            program_type,
            short_term,
            active_rubric(program_type, short_term),
            (program_type, short_term) in chosen,
        )
        for program_type in ProgramType
        for short_term in (False, True)
    ]


def _audit_choice(choice: ActiveRubric | None, short_term: bool) -> dict | None:
    if choice is None:
        return None
    return {
        "rubric_id": choice.rubric_id,
        "rubric_version": choice.rubric_version,
        "short_term": short_term,
    }


def choose_active_rubric(
    program_type: ProgramType, rubric: RubricFile | None, actor, short_term: bool = False
) -> ActiveRubric | None:
    """Make ``rubric`` the active one for ``program_type`` (its short-term programs with
    ``short_term``) and audit it (not committed); ``rubric=None`` with ``short_term`` clears
    the short-term choice, so those programs take the type's rubric again.

    Only a rubric whose ``program_types`` include the type may be chosen
    (:class:`RubricNotApplicable` otherwise); the regular choice cannot be cleared (a
    ``ValueError``). Reviews already started keep their frozen rubric.
    """
    authorize(is_staff(actor))
    program_type = ProgramType(program_type)
    short_term = bool(short_term)
    if rubric is None and not short_term:
        raise ValueError("only the choice for short-term programs can be cleared")
    if rubric is not None and program_type not in rubric.program_types:
        raise RubricNotApplicable(
            f"rubric {rubric.id} version {rubric.version} does not cover {program_type.value}"
        )
    choice = db.session.get(ActiveRubric, (program_type, short_term))
    before = _audit_choice(choice, short_term)
    if rubric is None:
        if choice is None:
            return None  # nothing chosen, nothing to clear or to audit
        db.session.delete(choice)
        choice = None
    else:
        if choice is None:
            choice = ActiveRubric(program_type=program_type, short_term=short_term)
            db.session.add(choice)
        choice.rubric_id = rubric.id
        choice.rubric_version = rubric.version
        choice.chosen_at = utcnow()
        choice.chosen_by_id = getattr(actor, "id", None)
    db.session.flush()
    record_event(
        "rubric.activate",
        actor=actor,
        object_type="program_type",
        object_id=program_type.value,
        before=before,
        after={
            "rubric_id": rubric.id if rubric else None,
            "rubric_version": rubric.version if rubric else None,
            "short_term": short_term,
        },
    )
    return choice
