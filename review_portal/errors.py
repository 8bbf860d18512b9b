"""Domain errors: what a service raises when it refuses an operation.

A service checks who acts and in which state the object is, and raises one of these with a
message for the user (a lazy translation). The web turns them into an answer in one place
(:mod:`review_portal.main.errors`): JSON ``{"status": "error", "message": ...}`` for API and
JSON clients, otherwise a flash message and a redirect back, or the error page. Jobs and CLI
commands report the message on the item's line. This module imports nothing of the app.
"""

from __future__ import annotations


class DomainError(Exception):
    """An operation refused for a reason the user should read; ``status`` is its HTTP code."""

    status = 409

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


class Forbidden(DomainError):
    """The acting user may not do this to this object (role, relation or state)."""

    status = 403


class NotFound(DomainError):
    """The object named by the request does not exist."""

    status = 404


class InvalidInput(DomainError):
    """The values given are not acceptable; nothing was written."""

    status = 422
