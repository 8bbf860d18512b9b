"""The organization's profile and invitations of colleagues."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("organizations", __name__)
