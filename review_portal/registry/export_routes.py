"""The registry's exports: CSV and XLSX of a selection, streamed from the snapshot."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("registry_exports", __name__)
