"""The transaction boundary: one request, job step or CLI command is one unit of work.

Web requests: views never commit. :func:`init_app` commits once after a view returned
normally (any status below 500) and every error handler rolls back before it answers, so an
exception anywhere — a domain error, an ``abort``, a bug — leaves nothing written. What must
persist although an operation is refused (a draft kept when its submission is refused) is
the service's own business: it runs the part that may fail inside a savepoint
(``db.session.begin_nested()``).

Jobs and CLI commands wrap each step in :func:`unit_of_work`: commit when the block ends
normally, roll back and re-raise on any exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, Response

from review_portal.extensions import db


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit the session when the block ends normally; roll back on any exception."""
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


def rollback() -> None:
    """Discard whatever the current request or step changed (error handlers call this)."""
    db.session.rollback()


def init_app(app: Flask) -> None:
    """Commit each request's work in one place, after the view returned."""

    @app.after_request
    def commit_request(response: Response) -> Response:
        if response.status_code >= 500:
            db.session.rollback()
        else:
            db.session.commit()
        return response
