"""The OpenAPI 3.1 document of the registry API (``/api/v1/openapi.json``), as data.

The enumerations (directions, levels, forms, kinds, sort keys, compared fields) and the
limits (ages, page sizes) come from the code that enforces them, so the document cannot
drift from what the API accepts; the response schemas forbid unknown keys, so the tests
that validate real answers against them catch any drift of the answers.
"""

from __future__ import annotations

from review_portal.enums import Direction, Level, RegistryEntryStatus, RegistryKind, StudyForm
from review_portal.input_guard import CONTROL_RANGE
from review_portal.programs.modules import (
    GROUP_MAX,
    HOURS_MAX,
    MODULE_TITLE_MAX,
    MONTHS_MAX,
    TEACHER_REQUIREMENTS_MAX,
)
from review_portal.registry.forms import MAX_AGE, MIN_AGE
from review_portal.registry.queries import (
    COMPARED_FIELDS,
    DEFAULT_PER_PAGE,
    DEFAULT_SORT,
    MAX_ID,
    MAX_PAGE,
    MAX_PER_PAGE,
    SORTS,
)

API_VERSION = "1.0.0"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _coded(enum, description: str) -> dict:
    """An enumeration member as the API writes it: the stable code and a label."""
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "required": ["code", "label"],
        "properties": {
            "code": {"type": "string", "enum": [m.value for m in enum]},
            "label": {"type": "string", "description": "In the interface language."},
        },
    }


def _obj(required: dict, description: str = "") -> dict:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": required,
    }
    if description:
        schema["description"] = description
    return schema


def _query(name, schema, description, required=False, empty=False) -> dict:
    """A query parameter; ``empty``: given empty it counts as left out (``allowEmptyValue``),
    as the search form of the page sends the filters nobody chose."""
    parameter = {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }
    if empty:
        parameter["allowEmptyValue"] = True
    return parameter


def _json(schema_name: str, description: str, *, cached: bool = False) -> dict:
    response = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema_name)}},
    }
    if cached:
        response["headers"] = {
            "ETag": {"$ref": "#/components/headers/ETag"},
            "Last-Modified": {"$ref": "#/components/headers/LastModified"},
        }
    return response


def _params(*names: str) -> list[dict]:
    return [{"$ref": f"#/components/parameters/{name}"} for name in names]


SELECTION = ("q", "municipality", "direction", "level", "age", "form", "ovz", "sort")
CONDITIONAL = ("lang", "IfNoneMatch", "IfModifiedSince")

RESPONSES = {
    "NotModified": {
        "description": "Not modified: the answer identified by the request's "
        "`If-None-Match` or `If-Modified-Since` is still current.",
        "headers": {
            "ETag": {"$ref": "#/components/headers/ETag"},
            "Last-Modified": {"$ref": "#/components/headers/LastModified"},
        },
    },
    "BadRequest": {
        "description": "Invalid parameters, with a message per parameter "
        "(`ValidationErrors`); or a malformed request, with one message (`Error`): "
        "control characters such as NUL in the query string are refused before any "
        "parameter is read.",
        "content": {
            "application/json": {"schema": {"oneOf": [_ref("ValidationErrors"), _ref("Error")]}}
        },
    },
    "Malformed": _json(
        "Error", "A malformed request (control characters such as NUL in the query string)."
    ),
    "NotFound": _json("Error", "No such snapshot or municipality (or path)."),
}


def openapi_document(server: str = "/api/v1") -> dict:
    """The OpenAPI 3.1 description of every ``/api/v1`` endpoint; ``server``: the API's
    base address (the route gives the absolute one on ``PUBLIC_URL``, never the request's
    Host)."""
    item = _obj(
        {
            "registry_number": {"type": "string", "examples": ["67-С-000001"]},
            "title": {"type": "string"},
            "organization": _obj(
                {
                    "name": {"type": "string"},
                    "inn": {"type": "string", "pattern": r"^[0-9]{10}([0-9]{2})?$"},
                },
                "The provider organization: short name and ИНН.",
            ),
            "municipality": _obj(
                {"id": {"type": "integer"}, "name": {"type": "string"}},
                "The municipality where the program runs.",
            ),
            "direction": _ref("Direction"),
            "level": _ref("Level"),
            "ages": _obj(
                {
                    "min": {"type": "integer", "minimum": MIN_AGE, "maximum": MAX_AGE},
                    "max": {"type": "integer", "minimum": MIN_AGE, "maximum": MAX_AGE},
                },
                "The ages of the children, both ends inclusive.",
            ),
            "total_hours": {
                "type": "integer",
                "minimum": 1,
                "description": "With modules: the sum of the modules' hours.",
            },
            "modules": {
                "type": "array",
                "items": _ref("Module"),
                "description": "The modules the program is certified with, in their order; "
                "empty for a program without modules.",
            },
            "study_form": _ref("StudyForm"),
            "adapted_for_disabilities": {
                "type": "boolean",
                "description": "Adapted for children with disabilities (ОВЗ).",
            },
            "conclusion": _obj(
                {
                    "number": {"type": "string"},
                    "date": {"type": "string", "format": "date"},
                    "verify_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "The public verification page of the conclusion "
                        "(on the portal's public address).",
                    },
                    "pdf_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "The PDF of the conclusion as issued (PDF/A-3b; it carries "
                        "no electronic signature).",
                    },
                },
                "The expert conclusion that admitted the program.",
            ),
            "final_percent": {"type": "number", "minimum": 0, "maximum": 100},
            "included_on": {"type": "string", "format": "date"},
            "valid_until": {
                "type": ["string", "null"],
                "format": "date",
                "description": (
                    "The last day the entry is valid (null: no end). Set by the publication "
                    "that includes or renews the entry; an entry past it without a renewal "
                    "leaves the registry at the next publication."
                ),
            },
            "status": _ref("EntryStatus"),
        },
        "One program of a published snapshot.",
    )
    snapshot = _obj(
        {
            "id": {"type": "integer", "minimum": 1},
            "kind": {"type": "string", "enum": [k.value for k in RegistryKind]},
            "number": {"type": "integer", "minimum": 1, "description": "1, 2, 3 … per kind."},
            "published_at": {"type": "string", "format": "date-time"},
            "entry_count": {"type": "integer", "minimum": 0},
            "audit_anchor": {
                "oneOf": [_ref("AuditAnchor"), {"type": "null"}],
                "description": "The portal's audit log as it stood at the publication; null "
                "for publications before the log was anchored.",
            },
        },
        "A dated, numbered publication of one registry kind; it never changes.",
    )
    hex64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    anchor = _obj(
        {
            "position": {
                "type": "integer",
                "minimum": 0,
                "description": "Records in the audit chain at that moment.",
            },
            "link": {**hex64, "description": "The chain's last link (SHA-256, hex)."},
            "signature": {
                **hex64,
                "description": "HMAC-SHA256 of the position, the link and the moment, with the "
                "portal's anchor key: keep it; the portal's audit check compares the log "
                "with it.",
            },
            "anchored_at": {"type": "string", "format": "date-time"},
        },
        "The head of the portal's audit chain, signed: a witness that the log up to this "
        "position can no longer change unnoticed.",
    )
    scalar = {"type": ["string", "number", "boolean", "null", "array"], "items": _ref("Module")}
    count = {"type": "integer", "minimum": 1}
    module = _obj(
        {
            "title": {"type": "string", "maxLength": MODULE_TITLE_MAX},
            "hours": {**count, "maximum": HOURS_MAX},
            "months": {**count, "maximum": MONTHS_MAX},
            "group_min": {**count, "maximum": GROUP_MAX},
            "group_max": {**count, "maximum": GROUP_MAX},
            "teacher_requirements": {
                "type": "string",
                "maxLength": TEACHER_REQUIREMENTS_MAX,
                "description": "Requirements for the module's teachers (may be empty).",
            },
        },
        "One module of a program: its hours, months, group size and teacher requirements.",
    )
    schemas = {
        "Direction": _coded(Direction, "Direction (направленность)."),
        "Level": _coded(Level, "Level (уровень)."),
        "StudyForm": _coded(StudyForm, "Study form (форма обучения)."),
        "EntryStatus": _coded(RegistryEntryStatus, "Status of the entry in the snapshot."),
        "RegistryItem": item,
        "Module": module,
        "Snapshot": snapshot,
        "AuditAnchor": anchor,
        "RegistryPage": _obj(
            {
                "items": {"type": "array", "items": _ref("RegistryItem")},
                "page": {"type": "integer", "minimum": 1},
                "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                "total": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Entries in the whole selection.",
                },
                "snapshot": {
                    "oneOf": [_ref("Snapshot"), {"type": "null"}],
                    "description": "The snapshot read; null before the first publication.",
                },
            },
            "One page of the selection.",
        ),
        "SnapshotList": _obj(
            {"items": {"type": "array", "items": _ref("Snapshot")}},
            "Published snapshots, newest first.",
        ),
        "FieldChange": _obj({"old": scalar, "new": scalar}),
        "Change": _obj(
            {
                "registry_number": {"type": "string"},
                "title": {"type": "string", "description": "The title in the newer snapshot."},
                "fields": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"enum": list(COMPARED_FIELDS)},
                    "additionalProperties": _ref("FieldChange"),
                },
            },
            "An entry in both snapshots whose data differ.",
        ),
        "Diff": _obj(
            {
                "from": _ref("Snapshot"),
                "to": _ref("Snapshot"),
                "added": {"type": "array", "items": _ref("RegistryItem")},
                "removed": {"type": "array", "items": _ref("RegistryItem")},
                "changed": {"type": "array", "items": _ref("Change")},
            },
            "What changed from one snapshot to another of the same kind.",
        ),
        "ValidationErrors": {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "object",
                    "description": "Messages (in the interface language) per parameter.",
                    "minProperties": 1,
                    "additionalProperties": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string"},
                    },
                }
            },
        },
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
        },
    }
    parameters = {
        "q": _query(
            "q",
            {"type": "string", "maxLength": 200, "pattern": f"^[^{CONTROL_RANGE}]*$"},
            "Words of the title or the organization's name (all must occur; case, and ё/е, "
            "ignored). Control characters (NUL and the like) are refused.",
        ),
        "municipality": _query(
            "municipality",
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "A municipality's id (`404` when no municipality has it).",
            empty=True,
        ),
        "direction": _query(
            "direction",
            {"type": "string", "enum": [m.value for m in Direction]},
            "Direction.",
            empty=True,
        ),
        "level": _query(
            "level", {"type": "string", "enum": [m.value for m in Level]}, "Level.", empty=True
        ),
        "age": _query(
            "age",
            {"type": "integer", "minimum": MIN_AGE, "maximum": MAX_AGE},
            "The age of a child: programs whose age range contains it (ends inclusive).",
            empty=True,
        ),
        "form": _query(
            "form",
            {"type": "string", "enum": [m.value for m in StudyForm]},
            "Study form.",
            empty=True,
        ),
        "ovz": _query(
            "ovz",
            {"type": "string", "enum": ["1", "0"]},
            "1: only programs adapted for children with disabilities (ОВЗ); 0: only others.",
            empty=True,
        ),
        "sort": _query(
            "sort",
            {"type": "string", "enum": list(SORTS), "default": DEFAULT_SORT},
            "Order of the entries (ties broken so that pages never overlap).",
        ),
        "kind": _query(
            "kind",
            {"type": "string", "enum": [k.value for k in RegistryKind], "default": "certified"},
            "Registry kind.",
        ),
        "snapshot": _query(
            "snapshot",
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "A past snapshot's id; the latest snapshot of `kind` when absent.",
            empty=True,
        ),
        "page": _query(
            "page",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
            "Page number (past the last page: no items).",
            empty=True,
        ),
        "per_page": _query(
            "per_page",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PER_PAGE,
                "default": DEFAULT_PER_PAGE,
            },
            "Entries per page.",
            empty=True,
        ),
        "lang": _query(
            "lang",
            {"type": "string", "enum": ["ru", "en"]},
            "Language of the labels (Russian by default; any other value: `400`).",
        ),
        "kindFilter": _query(
            "kind",
            {"type": "string", "enum": [k.value for k in RegistryKind]},
            "Only snapshots of this kind.",
            empty=True,
        ),
        "from": _query(
            "from",
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "The older snapshot's id.",
            required=True,
        ),
        "to": _query(
            "to",
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "The newer snapshot's id.",
            required=True,
        ),
        "IfNoneMatch": {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": "The `ETag` of an earlier answer: `304` while it is current.",
            "schema": {"type": "string"},
        },
        "IfModifiedSince": {
            "name": "If-Modified-Since",
            "in": "header",
            "required": False,
            "description": "The `Last-Modified` of an earlier answer (used without "
            "`If-None-Match`): `304` while it is current.",
            "schema": {"type": "string"},
        },
    }
    headers = {
        "ETag": {
            "description": "Identifies the answer (snapshot, parameters, language).",
            "schema": {"type": "string"},
        },
        "LastModified": {
            "description": "The snapshot's publication time.",
            "schema": {"type": "string"},
        },
    }
    not_modified = {"$ref": "#/components/responses/NotModified"}
    bad_request = {"$ref": "#/components/responses/BadRequest"}
    not_found = {"$ref": "#/components/responses/NotFound"}
    paths = {
        "/registry": {
            "get": {
                "operationId": "listRegistry",
                "summary": "A page of the published registry",
                "description": "The entries of a published snapshot (the latest of `kind` "
                "unless `snapshot` is given) matching the filters, in the order of the "
                "public page `/registry`, which takes the same parameters; the CSV and XLSX "
                "exports `/registry.csv` and `/registry.xlsx` return all of the selection. "
                "Before the first publication: no items, total 0.",
                "parameters": _params(
                    *SELECTION, "kind", "snapshot", "page", "per_page", *CONDITIONAL
                ),
                "responses": {
                    "200": _json("RegistryPage", "The page.", cached=True),
                    "304": not_modified,
                    "400": bad_request,
                    "404": not_found,
                },
            }
        },
        "/registry/snapshots": {
            "get": {
                "operationId": "listSnapshots",
                "summary": "The published snapshots, newest first",
                "parameters": _params("kindFilter", *CONDITIONAL),
                "responses": {
                    "200": _json("SnapshotList", "The snapshots.", cached=True),
                    "304": not_modified,
                    "400": bad_request,
                },
            }
        },
        "/registry/diff": {
            "get": {
                "operationId": "diffSnapshots",
                "summary": "What changed between two snapshots of one kind",
                "description": "Entries are matched across snapshots; `changed` lists the "
                "entries whose data differ, field by field.",
                "parameters": _params("from", "to", *CONDITIONAL),
                "responses": {
                    "200": _json("Diff", "The difference.", cached=True),
                    "304": not_modified,
                    "400": bad_request,
                    "404": not_found,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "304": {"description": "Not modified (`If-None-Match`)."},
                    "400": {"$ref": "#/components/responses/Malformed"},
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Registry of supplementary education programs",
            "version": API_VERSION,
            "description": "Open data of the registry of children's supplementary education "
            "programs admitted after the independent quality assessment. Published "
            "snapshots never change: answers carry `ETag` and `Last-Modified`, and a "
            "conditional request for an unchanged answer gets `304`. Labels are in the "
            "interface language (Russian by default, `lang=en` for English); codes are "
            "stable. Each parameter is given at most once (a repeated one: `400`); a filter "
            "given empty (`direction=`), as the search form of the page sends the filters "
            "nobody chose, is the filter left out.",
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": parameters,
            "responses": RESPONSES,
            "headers": headers,
        },
    }
