"""The schema of a rubric file and its validation.

``jsonschema`` checks the shape; :func:`semantic_errors` checks what a JSON Schema cannot
say (unique ids, labels covering exactly the scale, thresholds in order ...). Every problem
is reported as ``<file>: <field path>: <what is wrong>``, in English: it is an operator's
start-up error, not an interface text.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from jsonschema import Draft202012Validator

from review_portal.enums import Level, ProgramType, RegistryKind


class RubricError(Exception):
    """A rubric file is broken, or a rubric version in use has changed."""


#: Section and criterion ids become HTML ids and form field names.
_ID = r"^[A-Za-z][A-Za-z0-9_-]*$"
_TEXT = {"type": "string", "minLength": 1, "pattern": r"\S"}
_PERCENT = {"type": "number", "exclusiveMinimum": 0, "maximum": 100}

#: The program fields a criterion's ``applies_if`` may test, and the values each may take
#: (read from a program by :func:`review_portal.scoring.compute.program_facts`;
#: ``short_term`` is derived from its duration and hours).
PROGRAM_FIELDS: dict[str, tuple] = {
    "adapted_for_disabilities": (True, False),
    "short_term": (True, False),
    "multi_level": (True, False),
    "program_type": tuple(t.value for t in ProgramType),
    "level": tuple(v.value for v in Level),
}

RUBRIC_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "id",
        "version",
        "title",
        "program_types",
        "scale",
        "experts_per_review",
        "comment_required_below",
        "sections",
        "decision",
        "divergence",
        "final_score",
    ],
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]*$", "maxLength": 80},
        "version": {"type": "integer", "minimum": 1},
        "title": {**_TEXT, "maxLength": 500},
        "program_types": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": [t.value for t in ProgramType]},
        },
        "scale": {
            "type": "object",
            "additionalProperties": False,
            "required": ["min", "max", "labels"],
            "properties": {
                "min": {"type": "integer", "minimum": 0},
                "max": {"type": "integer", "maximum": 100},
                "labels": {"type": "object", "minProperties": 1, "additionalProperties": _TEXT},
            },
        },
        "experts_per_review": {"type": "integer", "minimum": 2, "maximum": 5},
        "comment_required_below": {"type": "integer"},
        "sections": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "title", "criteria"],
                "properties": {
                    "id": {"type": "string", "pattern": _ID, "maxLength": 40},
                    "title": _TEXT,
                    # The least percentage of the section's maximum its final scores must reach.
                    "min_percent": _PERCENT,
                    "criteria": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["id", "title", "weight", "blocking"],
                            "properties": {
                                "id": {"type": "string", "pattern": _ID, "maxLength": 40},
                                "title": _TEXT,
                                "weight": {"type": "number", "exclusiveMinimum": 0},
                                "blocking": {"type": "boolean"},
                                # {program field: value or list of values}; checked below.
                                "applies_if": {"type": "object", "minProperties": 1},
                            },
                        },
                    },
                },
            },
        },
        "decision": {
            "type": "object",
            "additionalProperties": False,
            "required": ["admit_percent", "revision_percent", "blocking_min"],
            "properties": {
                "admit_percent": _PERCENT,
                "revision_percent": _PERCENT,
                "blocking_min": {"type": "integer"},
                # Admission also needs every counted expert's total at this percentage.
                "floor_percent": _PERCENT,
            },
        },
        "divergence": {
            "type": "object",
            "additionalProperties": False,
            "required": ["total_percent", "decision_split", "criterion_points", "resolution"],
            "properties": {
                "total_percent": _PERCENT,
                "decision_split": {"type": "boolean"},
                "criterion_points": {"type": "integer", "minimum": 1},
                "resolution": {"enum": ["third_expert", "discussion"]},
            },
        },
        "final_score": {"enum": ["closest_pair_mean", "mean"]},
        # What an appeal panel scores: the contested criteria (default) or the whole sheet.
        "appeal_scope": {"enum": ["contested", "whole"]},
        # false: never the default for its program types, only when chosen on /rubrics.
        "default": {"type": "boolean"},
        # The heading of the sheet's per-criterion notes column (e.g. "Примечание").
        "notes_title": {**_TEXT, "maxLength": 80},
        # {registry kind: policy}: what an admitted program must also reach to be included
        # in that kind (a stricter threshold, sections' own minimums); checked below.
        "registry_kinds": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"enum": [k.value for k in RegistryKind]},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "admit_percent": _PERCENT,
                    "sections": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": _PERCENT,
                    },
                },
            },
        },
    },
}

_validator = Draft202012Validator(RUBRIC_SCHEMA)


def field_path(parts: Iterable) -> str:
    """``sections[1].criteria[0].weight`` from ``("sections", 1, "criteria", 0, "weight")``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _schema_problem(error) -> tuple[list, str]:
    """The field an error is about and a short English description of the problem."""
    path = list(error.absolute_path)
    instance = error.instance
    match error.validator:
        case "required":
            missing = [k for k in error.validator_value if k not in instance]
            return path + [missing[0]], "is required but missing"
        case "additionalProperties":
            allowed = error.schema.get("properties", {})
            extra = sorted(str(k) for k in instance if k not in allowed)
            return path + [extra[0]], f"is not a known field (known: {', '.join(allowed)})"
        case "type":
            return path, f"must be of type {error.validator_value}, not {instance!r}"
        case "enum":
            choices = ", ".join(str(v) for v in error.validator_value)
            return path, f"must be one of: {choices}; got {instance!r}"
        case "exclusiveMinimum":
            return path, f"must be greater than {error.validator_value}; got {instance!r}"
        case "minimum":
            return path, f"must be at least {error.validator_value}; got {instance!r}"
        case "maximum":
            return path, f"must be at most {error.validator_value}; got {instance!r}"
        case "minItems" | "minProperties":
            return path, "must not be empty"
        case "uniqueItems":
            return path, "must not repeat a value"
        case "pattern":
            if error.validator_value == r"\S":
                return path, "must not be blank"
            return path, f"must match the pattern {error.validator_value}; got {instance!r}"
        case "minLength":
            return path, "must not be empty"
        case "maxLength":
            return path, f"must be at most {error.validator_value} characters long"
    return path, error.message


def schema_errors(data) -> list[tuple[str, str]]:
    """(field path, problem) for every place the content breaks the schema."""
    errors = []
    for error in sorted(_validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        path, problem = _schema_problem(error)
        errors.append((field_path(path), problem))
    return errors


def _int_key(key) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.strip().lstrip("-").isdigit():
        return int(key)
    return None


def semantic_errors(data: dict) -> list[tuple[str, str]]:
    """(field path, problem) for the rules beyond the schema; ``data`` passed the schema."""
    errors: list[tuple[str, str]] = []
    scale = data["scale"]
    low, high = scale["min"], scale["max"]
    if low >= high:
        errors.append(("scale.max", f"must be greater than scale.min ({low}); got {high}"))
    keys = {}
    for key in scale["labels"]:
        number = _int_key(key)
        if number is None:
            errors.append((f"scale.labels.{key}", "a label's key must be a whole number"))
        elif number in keys:
            errors.append((f"scale.labels.{key}", f"repeats the label of {number}"))
        else:
            keys[number] = key
    if low < high:
        expected = set(range(low, high + 1))
        missing = sorted(expected - set(keys))
        extra = sorted(set(keys) - expected)
        if missing:
            errors.append(
                (
                    "scale.labels",
                    f"has no label for {', '.join(map(str, missing))}; "
                    f"every integer from {low} to {high} needs one",
                )
            )
        for number in extra:
            errors.append((f"scale.labels.{keys[number]}", f"is outside the scale {low}..{high}"))
        if not low <= data["comment_required_below"] <= high + 1:
            errors.append(
                (
                    "comment_required_below",
                    f"must be between {low} and {high + 1}; got {data['comment_required_below']}",
                )
            )
        blocking_min = data["decision"]["blocking_min"]
        if not low < blocking_min <= high:
            errors.append(
                (
                    "decision.blocking_min",
                    f"must be within the scale, above {low} and at most {high}; got {blocking_min}",
                )
            )
        points = data["divergence"]["criterion_points"]
        if points > high - low:
            errors.append(
                (
                    "divergence.criterion_points",
                    f"must be at most {high - low} (the width of the scale); got {points}",
                )
            )
    decision = data["decision"]
    if Decimal(str(decision["revision_percent"])) >= Decimal(str(decision["admit_percent"])):
        errors.append(
            (
                "decision.revision_percent",
                f"must be below decision.admit_percent "
                f"({decision['admit_percent']}); got {decision['revision_percent']}",
            )
        )
    floor = decision.get("floor_percent")
    if floor is not None and Decimal(str(floor)) > Decimal(str(decision["admit_percent"])):
        errors.append(
            (
                "decision.floor_percent",
                f"must be at most decision.admit_percent ({decision['admit_percent']}); "
                f"got {floor}",
            )
        )
    section_ids: dict[str, int] = {}
    criterion_ids: dict[str, str] = {}
    unconditional = 0
    for i, section in enumerate(data["sections"]):
        if "min_percent" in section and all("applies_if" in c for c in section["criteria"]):
            errors.append(
                (
                    f"sections[{i}].min_percent",
                    "the section has no criterion that applies to every program; a threshold "
                    "needs at least one criterion without applies_if",
                )
            )
        for j, criterion in enumerate(section["criteria"]):
            if "applies_if" in criterion:
                errors.extend(
                    _condition_errors(
                        criterion["applies_if"], f"sections[{i}].criteria[{j}].applies_if"
                    )
                )
            else:
                unconditional += 1
        if section["id"] in section_ids:
            errors.append(
                (
                    f"sections[{i}].id",
                    f"{section['id']!r} is already the id of "
                    f"sections[{section_ids[section['id']]}]",
                )
            )
        section_ids.setdefault(section["id"], i)
        for j, criterion in enumerate(section["criteria"]):
            here = f"sections[{i}].criteria[{j}]"
            if criterion["id"] in criterion_ids:
                errors.append(
                    (
                        f"{here}.id",
                        f"{criterion['id']!r} is already the id of "
                        f"{criterion_ids[criterion['id']]}",
                    )
                )
            criterion_ids.setdefault(criterion["id"], here)
    if not unconditional:
        errors.append(
            ("sections", "every criterion has applies_if; at least one must apply to every program")
        )
    errors.extend(_policy_errors(data))
    return errors


def _policy_errors(data: dict) -> list[tuple[str, str]]:
    """Problems of ``registry_kinds``: a threshold below the rubric's own, sections that do
    not exist or may be absent from a program's sheet."""
    errors = []
    admit = Decimal(str(data["decision"]["admit_percent"]))
    sections = {s["id"]: s for s in data["sections"]}
    for kind, policy in (data.get("registry_kinds") or {}).items():
        here = f"registry_kinds.{kind}"
        stricter = policy.get("admit_percent")
        if stricter is not None and Decimal(str(stricter)) < admit:
            errors.append(
                (
                    f"{here}.admit_percent",
                    f"must be at least decision.admit_percent ({data['decision']['admit_percent']})"
                    f"; got {stricter}",
                )
            )
        for section_id in policy.get("sections") or {}:
            section = sections.get(section_id)
            if section is None:
                errors.append(
                    (
                        f"{here}.sections.{section_id}",
                        f"is not the id of a section (known: {', '.join(sections)})",
                    )
                )
            elif all("applies_if" in c for c in section["criteria"]):
                errors.append(
                    (
                        f"{here}.sections.{section_id}",
                        "the section has no criterion that applies to every program; a "
                        "threshold needs at least one criterion without applies_if",
                    )
                )
    return errors


def _condition_errors(condition: dict, here: str) -> list[tuple[str, str]]:
    """Problems of one ``applies_if``: unknown program fields, values they cannot take."""
    errors = []
    for name, wanted in condition.items():
        if name not in PROGRAM_FIELDS:
            errors.append(
                (
                    f"{here}.{name}",
                    f"is not a program field a rubric can test "
                    f"(known: {', '.join(PROGRAM_FIELDS)})",
                )
            )
            continue
        allowed = PROGRAM_FIELDS[name]
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values:
            errors.append((f"{here}.{name}", "must not be empty"))
        for value in values:
            # ``True == 1``: compare types too, so ``1`` is not taken for ``true``.
            if not any(type(value) is type(a) and value == a for a in allowed):
                choices = ", ".join(str(a).lower() if isinstance(a, bool) else a for a in allowed)
                errors.append((f"{here}.{name}", f"must be one of: {choices}; got {value!r}"))
    return errors


def validate_rubric(data, filename: str) -> None:
    """Raise :class:`RubricError` listing every problem of the file's content, if any."""
    if not isinstance(data, dict):
        raise RubricError(f"rubric file {filename}: (top level): must be a mapping of fields")
    errors = schema_errors(data)
    if not errors:
        errors = semantic_errors(data)
    if errors:
        lines = "\n".join(f"  {filename}: {path}: {problem}" for path, problem in errors)
        raise RubricError(f"rubric file {filename} is invalid:\n{lines}")
