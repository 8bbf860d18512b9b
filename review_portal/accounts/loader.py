"""Flask-Login wiring: loading the user of a session (checking its session version on every
request) and the login view."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import lazy_gettext as _l
from flask_login import login_user

from review_portal.extensions import db, login_manager
from review_portal.input_guard import DB_INT_MAX


def init_login(app: Flask) -> None:
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please log in to open this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(session_id: str):
        return user_for_session(session_id)


def user_for_session(session_id: str):
    """The user a session (or a "remember me" cookie) names, or ``None``.

    The identity is ``<id>:<session version>`` (:meth:`User.get_id`): once the user's
    session version has been raised (logout, a new password, deactivation, other roles)
    every session and cookie carrying the old one is refused. A switched-off account is
    refused too.
    """
    from review_portal.accounts.models import User

    user_id, _, version = (session_id or "").partition(":")
    if not (_is_number(user_id) and _is_number(version)) or int(user_id) > DB_INT_MAX:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 19


def renew_login(user) -> None:
    """Keep this browser logged in after ``user``'s sessions were ended (their session
    version went up): a new session, and a new "remember me" cookie if it had one."""
    remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    login_user(user, remember=remembered in request.cookies)
