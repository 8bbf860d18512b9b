"""The coordinator's bulk import pages."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("imports", __name__)
