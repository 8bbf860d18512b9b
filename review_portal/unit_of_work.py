"""The transaction boundary: one request, job step or CLI command is one unit of work.

Web requests: views never commit. :func:`init_app` commits once after a view returned
normally (any status below 500) and every error handler rolls back before it answers, so an
exception anywhere — a domain error, an ``abort``, a bug — leaves nothing written. What must
persist although an operation is refused (a draft kept when its submission is refused) is
the service's own business: it runs the part that may fail inside a savepoint
(``db.session.begin_nested()``).

Jobs and CLI commands wrap each step in :func:`unit_of_work`: commit when the block ends
normally, roll back and re-raise on any exception.

Work that belongs right after a commit (linking the audit records the transaction wrote
into the audit chain) is registered by the service with :func:`after_commit`; it runs
after the commit, in transactions of its own, and a failure there is logged and never turns
the committed request or step into an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask, Response

from review_portal.extensions import db

log = logging.getLogger(__name__)

#: Key in ``db.session.info``: the callbacks to run after the current transaction commits.
AFTER_COMMIT = "after_commit"


def after_commit(callback: Callable[[], object]) -> None:
    """Run ``callback`` once after the current unit of work commits (registered once however
    often this is called). It must be safe to run when nothing is left for it to do: a
    unit of work that rolled back may leave it registered for the next commit."""
    callbacks = db.session.info.setdefault(AFTER_COMMIT, [])
    if callback not in callbacks:
        callbacks.append(callback)


def run_after_commit() -> None:
    """Run (and forget) the callbacks registered with :func:`after_commit`."""
    for callback in db.session.info.pop(AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # noqa: BLE001 - the unit of work itself has committed
            log.exception("after-commit step %s failed", getattr(callback, "__name__", callback))
            db.session.rollback()


def _forget_after_commit() -> None:
    db.session.info.pop(AFTER_COMMIT, None)


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit the session when the block ends normally; roll back on any exception."""
    try:
        yield
    except BaseException:
        rollback()
        raise
    db.session.commit()
    run_after_commit()


def rollback() -> None:
    """Discard whatever the current request or step changed (error handlers call this)."""
    db.session.rollback()
    _forget_after_commit()


def init_app(app: Flask) -> None:
    """Commit each request's work in one place, after the view returned."""

    @app.after_request
    def commit_request(response: Response) -> Response:
        if response.status_code >= 500:
            rollback()
        else:
            db.session.commit()
            run_after_commit()
        return response
