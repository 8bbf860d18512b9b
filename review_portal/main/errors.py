"""Error pages (400, 403, 404, 405, 409, 413, 422, 429, 500) in the interface language; JSON
for API clients; and the one place where a domain error (:mod:`review_portal.errors`) becomes
an answer.

Every handler here rolls the request's transaction back before it answers (see
:mod:`review_portal.unit_of_work`): a refused or failed request writes nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, flash, jsonify, make_response, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter import RateLimitExceeded
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from review_portal.errors import DomainError, Forbidden, NotFound
from review_portal.forms import too_large_message
from review_portal.throttling import retry_after
from review_portal.unit_of_work import rollback
from review_portal.url_safety import safe_next_url

TITLES = {
    400: _l("Bad request"),
    403: _l("Access denied"),
    404: _l("Page not found"),
    405: _l("Method not allowed"),
    409: _l("The action cannot be performed"),
    413: _l("The file is too large"),
    422: _l("Please correct the data"),
    429: _l("Too many requests"),
    500: _l("Internal error"),
}
MESSAGES = {
    400: _l("The request could not be understood. Go back and try again."),
    403: _l("You do not have permission to open this page."),
    404: _l("There is no such page or object."),
    405: _l("This action cannot be performed this way."),
    409: _l("The object has changed or is in a state that does not allow this action."),
    413: _l("The request is too large."),
    422: _l("The data could not be accepted."),
    429: _l("Too many attempts. Please wait and try again later."),
    500: _l("Something went wrong on our side. The error has been logged."),
}


#: The open-data API: every error it answers has one shape, ``{"error", "message"}`` (its
#: parameter errors aside), as its OpenAPI document says.
API_PREFIX = "/api/"


def _wants_json() -> bool:
    return request.path.startswith(API_PREFIX) or (
        request.accept_mimetypes.best == "application/json"
    )


def _awaiting_approval() -> bool:
    """Whether the user is logged in but may not work yet (a registration awaiting the
    center's approval or rejected, or an approved account without a role)."""
    from review_portal.accounts.services import home_endpoint

    return bool(getattr(current_user, "is_authenticated", False)) and (
        home_endpoint(current_user) == "main.pending"
    )


def render_error(code: int, message=None):
    message = message or MESSAGES.get(code, MESSAGES[500])
    if _wants_json():
        return jsonify(error=str(TITLES.get(code, TITLES[500])), message=str(message)), code
    if code == 403 and _awaiting_approval():
        # Not a bare "access denied": why nothing opens yet, as the account's own page says.
        return render_template("main/pending.html", refused=True, inn_claim=False), code
    return (
        render_template("errors/error.html", code=code, title=TITLES.get(code), message=message),
        code,
    )


def with_error_headers(answer, error: HTTPException):
    """``answer`` with the headers the HTTP error carries, except the type of werkzeug's own
    page: a 405's ``Allow`` (the methods the URL takes; RFC 9110 requires it)."""
    response = make_response(answer)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _back_path() -> str | None:
    """The page the form was posted from, when it is a page of this site (the Referer's path
    only: an absolute link never comes from the request)."""
    referrer = request.headers.get("Referer")
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next_url(path)


def answer_domain_error(error: DomainError):
    """A refused operation: the API's error for the API, JSON for other JSON clients; after a form, the message on the page the
    form came from; otherwise the error page with the message and the error's status."""
    if request.path.startswith(API_PREFIX):
        return render_error(error.status, error.message)
    if _wants_json() or request.is_json:
        return jsonify(status="error", message=str(error.message)), error.status
    back = _back_path()
    if request.method == "POST" and back and not isinstance(error, Forbidden | NotFound):
        flash(str(error.message), "danger")
        return redirect(back)
    return render_error(error.status, error.message)


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        rollback()
        return answer_domain_error(error)

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        rollback()
        return render_error(
            400, _l("The form has expired or its security token is missing. Reload and retry.")
        )

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(error: RateLimitExceeded):
        """A throttled request: what was refused, when to come back (also as
        ``Retry-After``, in seconds)."""
        rollback()
        seconds = retry_after()
        message = error.description
        if seconds is not None:
            minutes = -(-seconds // 60)
            message = " ".join(
                (message, _("Please try again in %(minutes)s min.", minutes=minutes))
            )
        response = make_response(render_error(429, message))
        if seconds is not None:
            response.headers["Retry-After"] = str(seconds)
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge):
        """A request over ``MAX_CONTENT_LENGTH``, refused before its view read it: the upload
        view's own page with the message at its file field (:func:`review_portal.forms.on_too_large`), else the
        error page with the limit."""
        rollback()
        view = app.view_functions.get(request.endpoint)
        render = getattr(view, "on_too_large", None)
        page = render() if render is not None else None
        if page is None:
            page = render_error(413, too_large_message())
        response = make_response(page)
        response.status_code = 413
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        rollback()
        if error.code in TITLES:
            return with_error_headers(render_error(error.code), error)
        return error

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        rollback()
        app.logger.exception("unhandled error")
        if app.config.get("TESTING") and app.config.get("PROPAGATE_TEST_ERRORS", True):
            raise error
        return render_error(500)
