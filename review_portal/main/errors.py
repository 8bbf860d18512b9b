"""Error pages (400, 403, 404, 405, 429, 500) in the interface language; JSON for API clients."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from review_portal.extensions import db

TITLES = {
    400: _l("Bad request"),
    403: _l("Access denied"),
    404: _l("Page not found"),
    405: _l("Method not allowed"),
    429: _l("Too many requests"),
    500: _l("Internal error"),
}
MESSAGES = {
    400: _l("The request could not be understood. Go back and try again."),
    403: _l("You do not have permission to open this page."),
    404: _l("There is no such page or object."),
    405: _l("This action cannot be performed this way."),
    429: _l("Too many attempts. Please wait and try again later."),
    500: _l("Something went wrong on our side. The error has been logged."),
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json")


def render_error(code: int, message=None):
    message = message or MESSAGES.get(code, MESSAGES[500])
    if _wants_json():
        return jsonify(error=str(TITLES.get(code, TITLES[500])), message=str(message)), code
    return (
        render_template("errors/error.html", code=code, title=TITLES.get(code), message=message),
        code,
    )


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_error(
            400, _l("The form has expired or its security token is missing. Reload and retry.")
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code in TITLES:
            return render_error(error.code)
        return error

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error")
        if app.config.get("TESTING") and app.config.get("PROPAGATE_TEST_ERRORS", True):
            raise error
        return render_error(500)
