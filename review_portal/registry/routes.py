"""The registry on the web: the public page, history and differences, pending changes and
publication for the center, the municipal view, and exclusion of a program.

The public reads published snapshots only; a snapshot never changes, so its pages answer
conditional requests (``ETag`` / ``Last-Modified``) before reading any row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    get_template_attribute,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from werkzeug.routing import BaseConverter

from review_portal.enums import Direction, Level, RegistryKind, StudyForm
from review_portal.extensions import db
from review_portal.input_guard import parse_db_int
from review_portal.jobs.services import queue_unavailable_message, start_in_background
from review_portal.lazy_text import lazy_gettext as _l
from review_portal.permissions import ensure, requires
from review_portal.programs.models import Program
from review_portal.registry import http, queries, services
from review_portal.registry.forms import ExcludeForm, PublishForm, RegistryFilterForm
from review_portal.registry.models import RegistrySnapshot
from review_portal.registry.permissions import (
    can_exclude_program,
    can_publish_registry,
    can_view_municipal_registry,
    can_view_pending_registry,
    pending_scope,
)
from review_portal.registry.queries import DEFAULT_PER_PAGE
from review_portal.registry.services import RegistryError
from review_portal.urls import PLACEHOLDER, LinkPattern, public_url

bp = Blueprint("registry", __name__)


@bp.record_once
def _expose(state) -> None:
    state.app.jinja_env.globals["registry_entries_of"] = queries.entries_of_program
    state.app.jinja_env.globals["registry_filter_form"] = filter_form_html
    state.app.jinja_env.globals["registry_table_texts"] = TableTexts
    state.app.jinja_env.globals["registry_entries_table"] = entries_table_html


#: Rendered tables of pages of published snapshots, by page, language and links.
_TABLES: dict[tuple, Markup] = {}
#: The most tables kept (~1 KB a row).
TABLE_CACHE_SIZE = 128


def entries_table_html(page: queries.Page, caption, link_entries: bool = True) -> Markup:
    """The entries table of ``registry/_macros.html`` for ``page``, rendered once per page
    of a published snapshot (which never changes), language and kind of links."""
    from review_portal.lazy_text import translations

    render = get_template_attribute("registry/_macros.html", "entries_table")
    if page.key is None:
        return render(page.items, caption, link_entries=link_entries)
    key = (page.key, str(caption), link_entries, id(translations()), request.script_root)
    found = _TABLES.get(key)
    if found is None:
        found = render(page.items, caption, link_entries=link_entries)
        if len(_TABLES) >= TABLE_CACHE_SIZE:
            _TABLES.clear()
        _TABLES[key] = found
    return found


class TableTexts:
    """What the entries table prints in every row, resolved once per page: its words in the
    page's language (as the templates' ``_``/``ngettext`` give them: translations are markup,
    the values put in are escaped), the labels of directions, levels and study forms, and the
    links of an entry and of a conclusion (``url_for`` once, then the number put in as the
    URL map's converter writes it). Each row used to translate about a dozen strings through
    the request context and build two URLs through the URL map."""

    #: Labels by the translations object (one per language), never changing in a process.
    _labels: dict[int, tuple[object, dict]] = {}

    def __init__(self) -> None:
        from review_portal.lazy_text import translations

        t = self._translations = translations()
        self.ages, self.conclusion, self.included, self.adapted, self.disab = (
            Markup(str(w)) for w in _TABLE_WORDS
        )
        self.years, self.of_date, self.valid_until = (Markup(str(w)) for w in _TABLE_FORMATS)
        cached = self._labels.get(id(t))
        if cached is None or cached[0] is not t:
            members = [*Direction, *Level, *StudyForm]
            cached = self._labels[id(t)] = (t, {m: Markup(m.label.__html__()) for m in members})
        #: An enum member's label as ``{{ member.label }}`` prints it.
        self.labels = cached[1]
        #: ``url_for("registry.entry", number=…)`` and ``url_for("conclusions.verify", …)``.
        self.entry_url = LinkPattern(url_for("registry.entry", number=PLACEHOLDER))
        self.verify_url = LinkPattern(url_for("conclusions.verify", number=PLACEHOLDER))

    def hours(self, num: int) -> Markup:
        """``ngettext("%(num)d hour", "%(num)d hours", num)`` as a template prints it."""
        return Markup(self._translations.ungettext(*_HOURS, num)) % {"num": num}


#: The entries table's words (as the templates' ``_`` gives them: without ``%`` formatting).
_TABLE_WORDS = (
    _l("Ages"),
    _l("Expert conclusion"),
    _l("Included on"),
    _l("Adapted for children with disabilities"),
    _l("Disab."),
)
#: … and its formats, filled in per row (``Markup % values`` escapes the values).
_TABLE_FORMATS = (_l("%(min)s–%(max)s years"), _l("of %(date)s"), _l("valid until %(date)s"))
#: Its hours (``ngettext`` of registry/entry.html: the same message).
_HOURS = ("%(num)d hour", "%(num)d hours")


#: Rendered selection forms (``registry/_macros.html`` ``filter_form``) by what they show.
_FILTER_FORMS: dict[tuple, Markup] = {}
#: The most forms kept (a few KB each, mostly the municipalities' options).
FILTER_FORM_CACHE_SIZE = 256


def filter_form_html(form: RegistryFilterForm, action: str, kind, snapshot_id=None,
                     with_municipality: bool = True) -> Markup:  # fmt: skip
    """The selection form as the macro renders it, kept per language, values and
    municipalities: the public registry's busiest part (300 municipalities, nine fields
    through the generic field macro) is then rendered once per selection, not per request.
    A form with an error is always rendered afresh."""
    from review_portal.lazy_text import translations

    render = get_template_attribute("registry/_macros.html", "filter_form")
    state = form.render_key()
    if state is None:
        return render(form, action, kind, snapshot_id, with_municipality)
    key = (id(translations()), action, kind, snapshot_id, with_municipality, state)
    found = _FILTER_FORMS.get(key)
    if found is None:
        found = render(form, action, kind, snapshot_id, with_municipality)
        if len(_FILTER_FORMS) >= FILTER_FORM_CACHE_SIZE:
            _FILTER_FORMS.clear()
        _FILTER_FORMS[key] = found
    return found


#: The most rows of each list (added, removed, changed) a difference page shows.
DIFF_LIMIT = 1000

#: Human names of the compared columns of an entry, for the lists of changes.
FIELD_LABELS = {
    "title": _l("Title"),
    "organization_name": _l("Organization"),
    "organization_inn": _l("INN of the organization"),
    "municipality_id": _l("Municipality (code)"),
    "municipality_name": _l("Municipality"),
    "direction": _l("Direction"),
    "level": _l("Level"),
    "age_min": _l("Age from"),
    "age_max": _l("Age to"),
    "total_hours": _l("Hours"),
    "study_form": _l("Study form"),
    "adapted_for_disabilities": _l("Adapted for children with disabilities (ОВЗ)"),
    "conclusion_number": _l("Conclusion number"),
    "conclusion_date": _l("Conclusion date"),
    "final_percent": _l("Final score, %"),
}


@bp.context_processor
def registry_context() -> dict:
    return {"registry_kinds": list(RegistryKind)}


# --- the published registry -------------------------------------------------------------


def _variant(view: str, latest: RegistrySnapshot | None, extra: str = "") -> str:
    """What besides the snapshot and the query string shapes a page: the language, the user
    (the navigation bar), whether it is the latest publication, and the CSRF token the page
    embeds (its session, and a time bucket so that a reused page's token is still valid)."""
    user = current_user.get_id() if current_user.is_authenticated else "anon"
    limit = current_app.config.get("WTF_CSRF_TIME_LIMIT") or 3600
    bucket = int(time.time() // max(1, limit // 2))
    token = session.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), "")
    token = hashlib.sha256(str(token).encode()).hexdigest()[:12]
    latest_id = latest.id if latest else ""
    return f"{view}|{get_locale()}|{user}|{bucket}|{token}|{latest_id}|{extra}"


def _page_args(form: RegistryFilterForm, filters, kind, snapshot_id) -> dict:
    """The query arguments that reproduce the selection (without the page)."""
    args = {**filters.args(), "kind": kind.value}
    if snapshot_id is not None:
        args["snapshot"] = snapshot_id
    if form.page_size != DEFAULT_PER_PAGE:
        args["per_page"] = form.page_size
    return args


def _show_registry(
    view: str,
    template: str,
    municipality_id: int | None = None,
    summary: Callable[[RegistryKind], tuple[dict, str]] | None = None,
    **context,
):
    """The published registry (all of it, or one municipality's): validate the selection,
    pick the snapshot, answer ``304`` when the client's copy is current, else one page.

    ``municipality_id`` restricts the page to one municipality. ``summary(kind)`` adds what else the page shows about the kind: its template context
    and a string that changes whenever that part of the page does (for the ``ETag``).
    """
    args = request.args.copy()
    if municipality_id is not None:
        args.pop("municipality", None)  # forced below: whatever the URL says is ignored
    form = RegistryFilterForm(args)
    if not form.validate():
        kind = RegistryKind.CERTIFIED
        if form.kind.data in {k.value for k in RegistryKind}:
            kind = RegistryKind(form.kind.data)
        return render_template(template, form=form, kind=kind, invalid=True, **context), 400
    snapshot = form.requested_snapshot()
    kind = snapshot.kind if snapshot is not None else form.registry_kind
    latest = snapshot if form.snapshot.data is None else queries.latest_snapshot(kind)
    extra = ""
    if summary is not None:
        more, extra = summary(kind)
        context.update(more)
    if snapshot is None:
        return render_template(template, form=form, kind=kind, snapshot=None, **context)

    filters = form.selection()
    if municipality_id is not None:
        filters = dataclasses.replace(filters, municipality_id=municipality_id)
    etag, modified = http.validators(snapshot, _variant(view, latest, extra))
    if not session.get("_flashes"):
        unchanged = http.not_modified(etag, modified, by_date=False, private=True)
        if unchanged is not None:
            return unchanged

    page = queries.page_items(snapshot, filters, form.page_number, form.page_size)
    args = _page_args(form, filters, kind, form.snapshot.data)
    if municipality_id is not None:
        args.pop("municipality", None)
    export_args = {k: v for k, v in args.items() if k != "per_page"}
    tab_args = {k: v for k, v in args.items() if k not in ("kind", "snapshot")}
    response = current_app.make_response(
        render_template(
            template,
            form=form,
            kind=kind,
            snapshot=snapshot,
            latest=latest,
            past=snapshot.id != latest.id,
            page=page,
            args=args,
            export_args=export_args,
            tab_args=tab_args,
            **context,
        )
    )
    # Rendering may have started the session's CSRF token: stamp the page with it.
    etag, modified = http.validators(snapshot, _variant(view, latest, extra))
    # Private: the page carries the session's form token (and, signed in, the user's name).
    return http.with_validators(response, etag, modified, private=True)


class RegistryNumberConverter(BaseConverter):
    """A registry number in a URL: one path segment holding a digit. Every registry number
    has digits and none of the registry's own pages (``/registry/pending``, ``publish`` …)
    does, so those URLs are never read as an entry's (a ``DELETE /registry/publish`` is
    told ``Allow: POST``, not ``GET`` as if it were an entry's page)."""

    regex = r"[^/]*\d[^/]*"


# Recorded before the routes, so the converter exists when their rules are compiled.
bp.record_once(
    lambda state: state.app.url_map.converters.setdefault(
        "registry_number", RegistryNumberConverter
    )
)


@bp.get("/registry")
def index():
    return _show_registry("page", "registry/index.html")


@bp.get("/registry/<registry_number:number>")
def entry(number: str):
    """One entry of the published registry, for a parent: what the program is, for whom,
    where and who runs it, and its conclusion to verify. Only the latest publication of the
    entry's registry is read; anything else (a malformed number included) is a 404."""
    found = queries.published_entry(number)
    if found is None:
        limit = queries.MAX_NUMBER_LENGTH
        shown = number if len(number) <= limit else f"{number[:limit]}…"
        return render_template("registry/entry_not_found.html", number=shown), 404
    website = queries.web_address(found.provider["website"])
    return render_template(
        "registry/entry.html",
        entry=found,
        item=found.item,
        website=website,
        structured_data=_structured_data(found, website),
    )


def _structured_data(found: queries.PublishedEntry, website: str | None) -> dict:
    """The entry as schema.org ``Course`` (JSON-LD) for search engines and aggregators."""
    item, provider = found.item, found.provider
    organization = {"@type": "EducationalOrganization", "name": item["organization_name"]}
    if provider["full_name"]:
        organization["legalName"] = provider["full_name"]
    if provider["address"]:
        organization["address"] = provider["address"]
    if provider["phone"]:
        organization["telephone"] = provider["phone"]
    if website:
        organization["url"] = website
    data = {
        "@context": "https://schema.org",
        "@type": "Course",
        "name": item["title"],
        "courseCode": item["registry_number"],
        "url": public_url("registry.entry", number=item["registry_number"]),
        "inLanguage": "ru",
        "provider": organization,
        "typicalAgeRange": f"{item['age_min']}-{item['age_max']}",
        "educationalLevel": str(item["level"].label),
        "about": str(item["direction"].label),
        "timeRequired": f"PT{item['total_hours']}H",
        "hasCourseInstance": {
            "@type": "CourseInstance",
            "courseMode": str(item["study_form"].label),
            "location": {"@type": "Place", "name": item["municipality_name"]},
        },
    }
    if found.program["annotation"]:
        data["description"] = found.program["annotation"]
    if item["valid_until"]:
        data["expires"] = item["valid_until"].isoformat()
    return data


@bp.get("/registry/municipal")
@requires(can_view_municipal_registry)
def municipal():
    municipality_id = current_user.municipality_id

    def pending_summary(kind: RegistryKind) -> tuple[dict, str]:
        changes = queries.pending_changes(kind, municipality_id)
        counts = (len(changes.added), len(changes.removed), len(changes.changed))
        return {"pending_counts": counts}, "-".join(map(str, (municipality_id, *counts)))

    return _show_registry(
        "municipal",
        "registry/municipal.html",
        municipality_id,
        summary=pending_summary,
        municipality=current_user.municipality,
    )


def _kind_arg() -> RegistryKind:
    """``?kind=`` of pages outside the filter form; an unknown kind is a bad request."""
    try:
        return RegistryKind(request.args.get("kind") or RegistryKind.CERTIFIED.value)
    except ValueError:
        abort(400)


# --- history and differences ------------------------------------------------------------


@bp.get("/registry/snapshots")
def snapshots():
    by_kind: dict[RegistryKind, list[RegistrySnapshot]] = {}
    for snapshot in queries.list_snapshots():
        by_kind.setdefault(snapshot.kind, []).append(snapshot)
    groups = [(kind, by_kind[kind]) for kind in RegistryKind if kind in by_kind]
    return render_template("registry/snapshots.html", groups=groups)


def _snapshot_arg(name: str) -> RegistrySnapshot:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        raise _BadDiff(_("Choose both publications to compare."))
    snapshot_id = parse_db_int(raw)
    if snapshot_id is None:
        raise _BadDiff(_("A publication is identified by its number in the history."))
    return db.get_or_404(RegistrySnapshot, snapshot_id)


class _BadDiff(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


@bp.get("/registry/diff")
def diff():
    choices = queries.list_snapshots()
    try:
        old, new = _snapshot_arg("from"), _snapshot_arg("to")
        if old.kind != new.kind:
            raise _BadDiff(_("Only publications of the same registry can be compared."))
    except _BadDiff as error:
        context = {"error": error.message, "choices": choices}
        return render_template("registry/diff.html", **context), 400
    changes = queries.diff_snapshots(old, new)
    return render_template(
        "registry/diff.html",
        old=old,
        new=new,
        diff=changes,
        choices=choices,
        limit=DIFF_LIMIT,
        labels=FIELD_LABELS,
    )


# --- pending changes and publication ----------------------------------------------------


@bp.get("/registry/pending")
@requires(can_view_pending_registry)
def pending():
    kind = _kind_arg()
    scope = pending_scope(current_user)
    changes = queries.pending_changes(kind, scope)
    publish_form = PublishForm(formdata=None, kind=kind.value, changes=queries.fingerprint(changes))
    return render_template(
        "registry/pending.html",
        kind=kind,
        diff=changes,
        latest=queries.latest_snapshot(kind),
        municipality=current_user.municipality if scope is not None else None,
        publish_form=publish_form,
        limit=DIFF_LIMIT,
        labels=FIELD_LABELS,
    )


@bp.post("/registry/publish")
@requires(can_publish_registry)
def publish():
    form = PublishForm()
    if not form.validate_on_submit():
        flash(_("Read the pending changes, then publish them from their page."), "error")
        return redirect(url_for("registry.pending"))
    kind = RegistryKind(form.kind.data)
    try:
        with db.session.begin_nested():
            snapshot = services.publish_registry(kind, current_user, form.changes.data)
    except RegistryError as error:
        flash(str(error.message), "error")
        return redirect(url_for("registry.pending", kind=kind.value))
    number, entries = snapshot.number, snapshot.entry_count
    job = services.start_snapshot_exports(snapshot, current_user)
    start_in_background(current_app._get_current_object(), job.id)
    if job.waiting_for_queue:
        flash(queue_unavailable_message(), "warning")
    flash(
        ngettext(
            "Publication № %(number)s of the registry “%(kind)s” is out: %(num)d entry.",
            "Publication № %(number)s of the registry “%(kind)s” is out: %(num)d entries.",
            entries,
            number=number,
            kind=kind.label,
        ),
        "success",
    )
    return redirect(url_for("registry.pending", kind=kind.value))


# --- exclusion --------------------------------------------------------------------------


@bp.route("/programs/<int:program_id>/exclude", methods=["GET", "POST"])
@requires(lambda user: True)
def exclude(program_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_exclude_program(current_user, program))
    form = ExcludeForm()
    if request.method == "POST":
        if not form.validate():
            return render_template("registry/exclude.html", program=program, form=form), 400
        try:
            with db.session.begin_nested():
                services.exclude_program(
                    queries.excludable_review(program) or program.current_review,
                    current_user,
                    form.reason.data,
                )
        except RegistryError as error:
            flash(str(error.message), "error")
            return redirect(url_for("programs.view", program_id=program.id))
        flash(
            _(
                "The program has been excluded from the registry. If it is published, the "
                "next publication removes it."
            ),
            "success",
        )
        return redirect(url_for("programs.view", program_id=program.id))
    return render_template("registry/exclude.html", program=program, form=form)
