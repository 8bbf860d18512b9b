"""The registry's exports: CSV and XLSX of a selection, streamed from the snapshot.

``/registry.csv`` and ``/registry.xlsx`` are public and read exactly what ``/registry``
shows (the same form, the same statement, the same order), all of it. The municipal exports
are the published registry of the viewer's own municipality; ``/registry/pending.csv`` is
what the next publication would change, for the center (everything) and for a municipal
viewer (their municipality). Nothing unpublished ever reaches the public exports: they read
snapshots only.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, request, stream_with_context
from flask_babel import get_locale
from flask_login import current_user

from review_portal.assignment.services import local_today
from review_portal.permissions import requires
from review_portal.registry import exports
from review_portal.registry.forms import RegistryFilterForm
from review_portal.registry.http import not_modified, validators, with_validators
from review_portal.registry.permissions import (
    can_view_municipal_registry,
    can_view_pending_registry,
    pending_scope,
)
from review_portal.registry.queries import RegistryFilters, iter_items, pending_changes

bp = Blueprint("registry_exports", __name__)


@bp.get("/registry.csv")
def registry_csv():
    return _export("csv", RegistryFilterForm(request.args))


@bp.get("/registry.xlsx")
def registry_xlsx():
    return _export("xlsx", RegistryFilterForm(request.args))


@bp.get("/registry/municipal.csv")
@requires(can_view_municipal_registry)
def municipal_csv():
    return _export("csv", _municipal_form(), municipality_id=current_user.municipality_id)


@bp.get("/registry/municipal.xlsx")
@requires(can_view_municipal_registry)
def municipal_xlsx():
    return _export("xlsx", _municipal_form(), municipality_id=current_user.municipality_id)


@bp.get("/registry/pending.csv")
@requires(can_view_pending_registry)
def pending_csv():
    form = RegistryFilterForm(request.args)
    if not form.validate():
        return exports.bad_request_text(form)
    kind, scope = form.registry_kind, pending_scope(current_user)
    rows = exports.pending_rows(pending_changes(kind, scope))
    suffix = f"pending-{local_today().isoformat()}"
    if scope is not None:
        suffix += f"-municipality-{scope}"
    response = exports.csv_response(
        stream_with_context(exports.csv_stream(rows, exports.PENDING_COLUMNS)),
        exports.export_filename(kind, None, "csv", suffix),
    )
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


def _municipal_form() -> RegistryFilterForm:
    """The selection form without ``municipality``: the viewer's own is forced instead."""
    args = request.args.copy()
    args.pop("municipality", None)
    return RegistryFilterForm(args)


def _export(fmt: str, form: RegistryFilterForm, *, municipality_id: int | None = None):
    """The whole selection of the requested snapshot as ``fmt`` (``csv`` or ``xlsx``);
    ``municipality_id`` restricts it to one municipality (a private answer then)."""
    if not form.validate():
        return exports.bad_request_text(form)
    snapshot = form.requested_snapshot()
    selection = form.selection()
    private = municipality_id is not None
    if private:
        selection = replace(selection, municipality_id=municipality_id)
    suffix = f"municipality-{municipality_id}" if private else ""
    kind = snapshot.kind if snapshot is not None else form.registry_kind
    filename = exports.export_filename(kind, snapshot, fmt, suffix)
    if snapshot is None:
        # Nothing published yet: the header alone, and nothing for caches to keep.
        response = _file_response(fmt, iter(()), filename, exports.Heading.of(kind, None))
        response.cache_control.no_store = True
        return response
    variant = f"{exports.format_variant(fmt)}:{get_locale()}:{municipality_id or ''}"
    etag, last_modified = validators(snapshot, variant)
    if (unchanged := not_modified(etag, last_modified, private=private)) is not None:
        return unchanged
    response = None
    if fmt == "xlsx" and not private and selection == RegistryFilters():
        # The whole snapshot: built once, at publication, in each language.
        response = exports.prebuilt_response(snapshot, str(get_locale()), filename)
    if response is None:
        response = _file_response(
            fmt, iter_items(snapshot.id, selection), filename, exports.Heading.of(kind, snapshot)
        )
    return with_validators(response, etag, last_modified, private=private)


def _file_response(fmt: str, rows, filename: str, heading: exports.Heading) -> Response:
    if fmt == "csv":
        return exports.csv_response(stream_with_context(exports.csv_stream(rows)), filename)
    return exports.xlsx_response(rows, filename, heading)
