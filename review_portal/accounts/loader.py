"""Flask-Login wiring: loading the user of a session (checking its session version on every
request) and the login view."""

from __future__ import annotations

import functools

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
    user_id, _, version = (session_id or "").partition(":")
    if not (_is_number(user_id) and _is_number(version)) or int(user_id) > DB_INT_MAX:
        return None
    user = _user_with_roles(int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _user_with_roles(user_id: int):
    """The user, its roles and its expert profile (the navigation's "My profile") in one
    statement; ``None`` when there is no such user."""
    return db.session.execute(_user_statement(), {"user_id": user_id}).unique().scalar_one_or_none()


@functools.cache
def _user_statement():
    """:func:`_user_with_roles`'s statement, built once per process (every request runs it,
    and building it costs more CPU than running it)."""
    import sqlalchemy as sa
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload, lazyload

    from review_portal.accounts.models import User
    from review_portal.experts.models import ExpertProfile

    return (
        select(User)
        .where(User.id == sa.bindparam("user_id"))
        .options(
            joinedload(User.role_rows),
            joinedload(User.expert_profile).options(
                # Read where a page uses them, not on every request.
                lazyload(ExpertProfile.direction_rows)
            ),
        )
    )


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 19


def renew_login(user) -> None:
    """Keep this browser logged in after ``user``'s sessions were ended (their session
    version went up): a new session, and a new "remember me" cookie if it had one."""
    remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    login_user(user, remember=remembered in request.cookies)
