"""The open-data API of the registry (``/api/v1``) and its OpenAPI document.

Public and read-only: a page of a published snapshot with the filters of ``/registry``
(the same form, the same statement, the same order), the list of snapshots, the difference
between two snapshots, and the OpenAPI document (:mod:`review_portal.registry.openapi`)
that describes every answer. Answers from snapshots carry ``ETag``/``Last-Modified``;
errors are JSON (``400``: ``{"errors": {parameter: [message]}}``; ``404`` and unknown
paths: the application's ``{"error", "message"}``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from flask import Blueprint, current_app, jsonify, request
from flask_babel import get_locale
from flask_babel import gettext as _

from review_portal.enums import RegistryKind
from review_portal.extensions import db
from review_portal.input_guard import parse_db_int
from review_portal.programs.modules import MODULE_KEYS
from review_portal.registry.forms import RegistryFilterForm
from review_portal.registry.http import not_modified, validators, with_validators
from review_portal.registry.models import RegistrySnapshot
from review_portal.registry.openapi import openapi_document
from review_portal.registry.queries import diff_snapshots, list_snapshots, page_items
from review_portal.urls import PLACEHOLDER, LinkPattern, public_url

bp = Blueprint("registry_api", __name__, url_prefix="/api/v1")


@bp.before_request
def refuse_ambiguous_parameters():
    """Every parameter of the API is one value: one given twice is refused, not read by its
    first occurrence, and ``lang`` must name a language (pages ignore an unknown one; the
    document promises ``ru`` or ``en``)."""
    if request.endpoint == "registry_api.openapi":
        return None
    errors = {
        name: [_("Give this parameter once.")]
        for name, values in request.args.lists()
        if len(values) > 1
    }
    lang = request.args.get("lang")
    if "lang" not in errors and lang is not None and lang not in current_app.config["LANGUAGES"]:
        errors["lang"] = [_("Not a valid choice.")]
    return _invalid(errors) if errors else None


@bp.get("/registry")
def registry():
    form = RegistryFilterForm(request.args)
    if not form.validate():
        return _invalid(form.errors)
    snapshot = form.requested_snapshot()
    if snapshot is None:
        return jsonify(
            items=[], page=form.page_number, per_page=form.page_size, total=0, snapshot=None
        )
    etag, last_modified = validators(snapshot, f"api:{get_locale()}:{_links()}")
    if (unchanged := not_modified(etag, last_modified)) is not None:
        return unchanged
    page = page_items(snapshot, form.selection(), form.page_number, form.page_size)
    texts = ItemTexts()
    response = jsonify(
        items=[item_json(row, texts) for row in page.items],
        page=page.page,
        per_page=page.per_page,
        total=page.total,
        snapshot=snapshot_json(snapshot),
    )
    return with_validators(response, etag, last_modified)


@bp.get("/registry/snapshots")
def snapshots():
    kind = request.args.get("kind") or None
    if kind is not None and kind not in RegistryKind._value2member_map_:
        return _invalid({"kind": [_("Not a valid choice.")]})
    found = sorted(
        list_snapshots(RegistryKind(kind) if kind else None),
        key=lambda s: (s.published_at, s.id),
        reverse=True,
    )
    if not found:
        return jsonify(items=[])
    # Snapshots are only ever added: the newest one identifies the whole list.
    etag, last_modified = validators(found[0], "api-snapshots")
    if (unchanged := not_modified(etag, last_modified)) is not None:
        return unchanged
    response = jsonify(items=[snapshot_json(s) for s in found])
    return with_validators(response, etag, last_modified)


@bp.get("/registry/diff")
def diff():
    errors, ids = {}, {}
    for name in ("from", "to"):
        raw = request.args.get(name, "").strip()
        if not raw:
            errors[name] = [_("This parameter is required.")]
        elif (snapshot_id := parse_db_int(raw)) is None:
            errors[name] = [_("Enter the id of a snapshot (a whole number).")]
        else:
            ids[name] = snapshot_id
    if errors:
        return _invalid(errors)
    old = db.get_or_404(RegistrySnapshot, ids["from"])
    new = db.get_or_404(RegistrySnapshot, ids["to"])
    if old.kind != new.kind:
        return _invalid({"to": [_("The two snapshots belong to different registries.")]})
    old_tag, old_modified = validators(old, f"api-diff:{get_locale()}:{_links()}")
    new_tag, new_modified = validators(new, f"api-diff:{get_locale()}:{_links()}")
    etag = hashlib.sha256(f"{old_tag}|{new_tag}".encode()).hexdigest()[:32]
    last_modified = max(old_modified, new_modified)
    if (unchanged := not_modified(etag, last_modified)) is not None:
        return unchanged
    changes = diff_snapshots(old, new)
    texts = ItemTexts()
    response = jsonify(
        {
            "from": snapshot_json(old),
            "to": snapshot_json(new),
            "added": [item_json(row, texts) for row in changes.added],
            "removed": [item_json(row, texts) for row in changes.removed],
            "changed": [
                {
                    "registry_number": change.new["registry_number"],
                    "title": change.new["title"],
                    "fields": {
                        name: {"old": _scalar(change.old[name]), "new": _scalar(change.new[name])}
                        for name in change.fields
                    },
                }
                for change in changes.changed
            ],
        }
    )
    return with_validators(response, etag, last_modified)


@bp.get("/openapi.json")
def openapi():
    server = public_url("registry_api.openapi").removesuffix("/openapi.json")
    response = jsonify(openapi_document(server))
    response.add_etag()
    response.cache_control.public = True
    response.cache_control.no_cache = True
    return response.make_conditional(request)


# --- representation ---------------------------------------------------------------------


def _links() -> str:
    """What the links of an answer are built on (part of its ETag: a new ``PUBLIC_URL``
    is a new answer)."""
    return current_app.config["PUBLIC_URL"]


def _invalid(errors: Mapping):
    return jsonify(errors={k: [str(m) for m in v] for k, v in errors.items()}), 400


def _coded(member) -> dict:
    return {"code": member.value, "label": str(member.label)}


def _scalar(value):
    """A compared field's value as JSON: enums by code, dates ISO, the percentage a number."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    if isinstance(value, list):  # a program's modules
        return _modules(value)
    return value


def _modules(modules) -> list[dict]:
    """A program's modules as the API writes them (the ``Module`` schema)."""
    return [{key: module.get(key) for key in MODULE_KEYS} for module in modules or []]


class ItemTexts:
    """What every item of a list repeats, resolved once per list: the enums' codes with their
    labels in the request's language, and the two links of a conclusion (built once on
    ``PUBLIC_URL``, the number put in as the URL map writes it): 500 items used to build
    1,000 links through the URL map."""

    def __init__(self) -> None:
        self._coded: dict = {}
        self.verify_url = LinkPattern(public_url("conclusions.verify", number=PLACEHOLDER))
        self.pdf_url = LinkPattern(public_url("conclusions.pdf", number=PLACEHOLDER))

    def coded(self, member) -> dict:
        found = self._coded.get(member)
        if found is None:
            found = self._coded[member] = _coded(member)
        return dict(found)


def item_json(row: Mapping, texts: ItemTexts | None = None) -> dict:
    """One snapshot row as the API writes it (the ``RegistryItem`` schema)."""
    texts = texts or ItemTexts()
    number = row["conclusion_number"]
    return {
        "registry_number": row["registry_number"],
        "title": row["title"],
        "organization": {"name": row["organization_name"], "inn": row["organization_inn"]},
        "municipality": {"id": row["municipality_id"], "name": row["municipality_name"]},
        "direction": texts.coded(row["direction"]),
        "level": texts.coded(row["level"]),
        "ages": {"min": row["age_min"], "max": row["age_max"]},
        "total_hours": row["total_hours"],
        "modules": _modules(row.get("modules")),
        "study_form": texts.coded(row["study_form"]),
        "adapted_for_disabilities": bool(row["adapted_for_disabilities"]),
        "conclusion": {
            "number": number,
            "date": row["conclusion_date"].isoformat(),
            # On PUBLIC_URL, never the request's Host: a shared cache hands this to all.
            "verify_url": texts.verify_url(number),
            "pdf_url": texts.pdf_url(number),
        },
        "final_percent": float(row["final_percent"]),
        "included_on": row["included_on"].isoformat(),
        "valid_until": row["valid_until"].isoformat() if row.get("valid_until") else None,
        "status": texts.coded(row["status"]),
    }


def snapshot_json(snapshot: RegistrySnapshot) -> dict:
    return {
        "id": snapshot.id,
        "kind": snapshot.kind.value,
        "number": snapshot.number,
        "published_at": snapshot.published_at.isoformat(),
        "entry_count": snapshot.entry_count,
        "audit_anchor": (
            {
                "position": snapshot.audit_position,
                "link": snapshot.audit_link,
                "signature": snapshot.audit_signature,
                "anchored_at": snapshot.audit_anchored_at.isoformat(),
            }
            if snapshot.audit_position is not None
            else None
        ),
    }
