"""The registry on the web: the public page, history and differences, pending changes and
publication for the center, the municipal view, and exclusion of a program."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("registry", __name__)
