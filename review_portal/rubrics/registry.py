"""The rubric files of this folder and the choice of the active rubric per program type.

A minimal reader: the schema validation, previews and the coordinator's choice screen come
with the rubrics issue. What exists here is what accepting a submission needs: the active
rubric's id and version, frozen on the review together with the file's fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from sqlalchemy import select

from review_portal.enums import ProgramType
from review_portal.extensions import db
from review_portal.rubrics.models import ActiveRubric, RubricRecord

RUBRIC_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class RubricFile:
    id: str
    version: int
    title: str
    program_types: frozenset[ProgramType]
    #: SHA-256 of the canonical JSON of the file's content.
    sha256: str
    data: dict


@cache
def rubric_files() -> dict[tuple[str, int], RubricFile]:
    """Every rubric file of the folder, by (id, version)."""
    rubrics = {}
    for path in sorted(RUBRIC_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        rubric = RubricFile(
            id=data["id"],
            version=int(data["version"]),
            title=data["title"],
            program_types=frozenset(ProgramType(t) for t in data["program_types"]),
            sha256=hashlib.sha256(canonical.encode()).hexdigest(),
            data=data,
        )
        rubrics[(rubric.id, rubric.version)] = rubric
    return rubrics


def active_rubric(program_type: ProgramType) -> RubricFile | None:
    """The coordinator's choice for the type, else the newest rubric that covers it."""
    chosen = db.session.get(ActiveRubric, ProgramType(program_type))
    files = rubric_files()
    if chosen is not None:
        return files.get((chosen.rubric_id, chosen.rubric_version))
    covering = [r for r in files.values() if ProgramType(program_type) in r.program_types]
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
