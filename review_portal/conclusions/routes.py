"""Conclusions on the web: public verification by number (HTML or JSON) and by uploaded
PDF, the stored PDF for those entitled, and revocation by a coordinator.

The verification page says only what the document itself prints publicly (number, status,
program, organization, decision, date, hashes): never an expert's name or anything else
private. The PDF is served as stored at issue time, byte for byte.
"""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.routing import BaseConverter

from review_portal.conclusions import services
from review_portal.conclusions.document import DECISION_WORDS
from review_portal.conclusions.forms import NumberForm, RevokeForm, UploadForm
from review_portal.conclusions.models import Conclusion
from review_portal.conclusions.permissions import can_download_conclusion, can_revoke_conclusion
from review_portal.confirmation import confirmation, previewing
from review_portal.enums import ConclusionStatus
from review_portal.extensions import db
from review_portal.forms import form_page_too_large, on_too_large, refused_status
from review_portal.i18n import local_date, quote
from review_portal.permissions import ensure, requires
from review_portal.throttling import Rule, client_address, throttled
from review_portal.workflow import ReviewState


class ConclusionNumberConverter(BaseConverter):
    """A conclusion number in a URL: anything but a slash or a dot, so that
    ``/verify/<number>.pdf`` is never read as the page of a number ending in ``.pdf``."""

    regex = r"[^/.]+"


bp = Blueprint("conclusions", __name__)

#: A decision on an appeal (``67-2026-A00001``) has its own verification page.
APPEAL_DECISION_NUMBER = re.compile(r"[^/.]+-\d{4}-A\d+")
# Recorded before the routes, so the converter exists when their rules are compiled.
bp.record_once(
    lambda state: state.app.url_map.converters.setdefault(
        "conclusion_number", ConclusionNumberConverter
    )
)

#: The PDF may show itself and nothing else: no scripts, no requests, no framing elsewhere.
INLINE_PDF_POLICY = (
    "default-src 'none'; script-src 'none'; object-src 'self'; "
    "style-src 'unsafe-inline'; frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)


def wants_json() -> bool:
    """The client asks for JSON rather than a page (the verification pages answer both)."""
    return (
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    )


def _facts(conclusion: Conclusion) -> dict:
    """What the verification page and its JSON say about ``conclusion`` (all public)."""
    review = conclusion.review
    program = review.program
    version = review.version
    newer = conclusion.superseded_by
    return {
        "conclusion": conclusion,
        # As printed on the document: the title of the version reviewed, the full name.
        "title": version.title if version is not None else program.title,
        "organization": program.organization.full_name,
        "issued_on": local_date(conclusion.issued_at),
        "newer": newer,
    }


def _as_json(facts: dict) -> dict:
    conclusion = facts["conclusion"]
    return {
        "number": conclusion.number,
        "status": conclusion.status.value,
        "valid": conclusion.status == ConclusionStatus.VALID,
        "program": {"title": facts["title"], "organization": facts["organization"]},
        "decision": conclusion.decision.value,
        # The words printed on the document (Russian, whatever the interface language).
        "decision_words": DECISION_WORDS[conclusion.decision],
        "issued_on": facts["issued_on"].isoformat(),
        "sha256": conclusion.sha256,
        "content_sha256": conclusion.content_sha256,
        "superseded_by": facts["newer"].number if facts["newer"] is not None else None,
        "revoked_at": conclusion.revoked_at.isoformat() if conclusion.revoked_at else None,
        "revoke_reason": conclusion.revoke_reason,
    }


def _not_found(number: str):
    if wants_json():
        return jsonify(error="not_found"), 404
    return (
        render_template("conclusions/not_found.html", number=number, number_form=NumberForm()),
        404,
    )


# --- public verification -------------------------------------------------------------------


@bp.get("/verify")
def check():
    """The page to check a conclusion by its number or by an uploaded copy."""
    number_form = NumberForm(request.args)
    number = number_form.number.data
    if number and APPEAL_DECISION_NUMBER.fullmatch(number):
        return redirect(url_for("appeals.verify", number=number))
    if number:
        return redirect(url_for("conclusions.verify", number=number))
    return render_template("conclusions/check.html", number_form=number_form, form=UploadForm())


#: Checking an uploaded copy reads and hashes up to ``MAX_UPLOAD_MB``: a limit per address.
VERIFY_UPLOAD = Rule(
    "VERIFY_UPLOAD_LIMIT_PER_ADDRESS",
    client_address,
    "verify-upload",
    _l("Too many documents checked from your network address."),
)


def _check_page(form: UploadForm, *, status: int = 200, **context):
    # ``formdata=None``: after a refused upload the request body must not be read again.
    return (
        render_template(
            "conclusions/check.html", number_form=NumberForm(formdata=None), form=form, **context
        ),
        status,
    )


@bp.post("/verify")
@throttled(VERIFY_UPLOAD)
@on_too_large(form_page_too_large(UploadForm, _check_page))
def check_upload():
    """Compare an uploaded PDF with the issued conclusions; a refused upload (no file, an
    empty one: 422; over the size limit: 413) shows the page again with the message."""
    form = UploadForm()
    if not form.validate_on_submit():
        return _check_page(form, status=refused_status(form))
    conclusion = services.find_by_file_hash(form.sha256)
    return _check_page(
        UploadForm(formdata=None),
        checked=True,
        uploaded_sha256=form.sha256,
        match=conclusion,
        facts=_facts(conclusion) if conclusion is not None else None,
    )


@bp.get("/verify/<number>")
def verify(number: str):
    conclusion = services.find_conclusion(number)
    if conclusion is None:
        return _not_found(number)
    facts = _facts(conclusion)
    if wants_json():
        return jsonify(_as_json(facts))
    return render_template("conclusions/verify.html", **facts)


@bp.get("/verify/<conclusion_number:number>.pdf")
def pdf(number: str):
    conclusion = services.find_conclusion(number)
    if conclusion is None:
        abort(404)
    if not can_download_conclusion(current_user, conclusion):
        return render_template("conclusions/forbidden.html", conclusion=conclusion), 403
    response = Response(services.stored_pdf(conclusion), mimetype="application/pdf")
    response.headers["Content-Disposition"] = _inline_disposition(
        f"conclusion-{conclusion.number}.pdf"
    )
    response.headers["Content-Security-Policy"] = INLINE_PDF_POLICY
    response.set_etag(conclusion.sha256)
    # Who may download can change (a publication, a role): revalidate every time.
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response.make_conditional(request)


def _inline_disposition(name: str) -> str:
    """``inline`` with a plain ASCII file name, and the exact one when the region code made
    it anything else (RFC 6266)."""
    from urllib.parse import quote

    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "_" for c in name)
    value = f'inline; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


# --- revocation ----------------------------------------------------------------------------


@bp.post("/conclusions/<int:conclusion_id>/revoke")
@requires(lambda user: True)
def revoke(conclusion_id: int):
    conclusion = db.get_or_404(Conclusion, conclusion_id)
    ensure(can_revoke_conclusion(current_user, conclusion))
    form = RevokeForm()
    if not form.validate_on_submit():
        return _render_revoke(conclusion, form, status=400)
    if previewing():
        if not (form.reason.data or "").strip():
            return _render_revoke(
                conclusion, form, error=_("A reason is required for this action."), status=422
            )
        lines = [
            _(
                "Conclusion № %(number)s on %(title)s is revoked for good; the public "
                "verification page shows it as revoked, with the reason: %(reason)s",
                number=conclusion.number,
                title=quote(conclusion.review.program.title),
                reason=form.reason.data.strip(),
            ),
            _(
                "The review returns to awaiting a decision; the new decision issues a new "
                "conclusion with a new number."
            ),
        ]
        if conclusion.review.state == ReviewState.ADMITTED:
            lines.append(
                _(
                    "The program's registry entry that rests on this conclusion goes: at once "
                    "if it was never published, otherwise at the next publication (unless a "
                    "new decision admits the program before it)."
                )
            )
        return confirmation(
            _("Revoke conclusion № %(number)s", number=conclusion.number),
            lines,
            button=_("Revoke the conclusion"),
            back=url_for("programs.view", program_id=conclusion.review.program_id),
            style="danger",
        )
    try:
        with db.session.begin_nested():
            services.revoke_conclusion(conclusion, current_user, form.reason.data)
    except services.ConclusionError as error:
        return _render_revoke(conclusion, form, error=error.message, status=422)
    flash(
        _(
            "Conclusion № %(number)s is revoked. The review awaits a new decision; it will "
            "issue a new conclusion.",
            number=conclusion.number,
        ),
        "success",
    )
    return redirect(url_for("reconciliation.decision", review_id=conclusion.review_id))


def _render_revoke(conclusion: Conclusion, form: RevokeForm, *, error=None, status: int):
    return (
        render_template("conclusions/revoke.html", conclusion=conclusion, form=form, error=error),
        status,
    )
