"""The open-data API of the registry (``/api/v1``) and its OpenAPI document."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("registry_api", __name__, url_prefix="/api/v1")
