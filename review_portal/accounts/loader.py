"""Flask-Login wiring: loading the user of a session and the login view."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from review_portal.extensions import db, login_manager


def init_login(app: Flask) -> None:
    from review_portal.accounts.throttle import init_throttle

    init_throttle(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please log in to open this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(session_id: str):
        from review_portal.accounts.models import User

        user_id, _, token = session_id.partition(":")
        if not user_id.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        # The token changes with the password: a password change ends every other session
        # and every "remember me" cookie.
        if user is None or user.session_token != token:
            return None
        return user
