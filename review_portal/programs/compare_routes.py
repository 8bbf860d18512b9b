"""The comparison of two versions of a program."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("compare", __name__)
