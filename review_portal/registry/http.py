"""Conditional responses for the published registry: ``ETag`` and ``Last-Modified``.

A snapshot never changes, so everything served from it is identified by the snapshot, the
selection (the query string) and the representation (``variant``: page, CSV, XLSX, API,
language ...). A client that sends the validators of an unchanged answer gets ``304 Not
Modified`` before any row is read.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from flask import Response, request, session
from flask_login import current_user


def validators(snapshot, variant: str = "") -> tuple[str, datetime]:
    """The entity tag and the modification time of an answer built from ``snapshot``."""
    args = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)))
    key = f"{snapshot.id}|{snapshot.published_at.isoformat()}|{variant}|{args}"
    modified = snapshot.published_at
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return hashlib.sha256(key.encode()).hexdigest()[:32], modified.replace(microsecond=0)


def decided_by_url() -> bool:
    """The answer depends on nothing but the URL and the snapshot: no signed-in user and no
    language chosen in the session (the language then comes from the URL or the default)."""
    return not current_user.is_authenticated and "locale" not in session


def not_modified(
    etag: str, last_modified: datetime, *, by_date: bool = True, private: bool = False
) -> Response | None:
    """``304`` when the request's conditions match, else ``None``.

    ``If-None-Match`` first, as RFC 9110 says. ``If-Modified-Since`` only without it, and
    only when a date can tell (``by_date`` and :func:`decided_by_url`): a page that also
    depends on the session — its language, its user, its form token — changes without a
    new publication, which only the entity tag captures. ``private``: as the full answer
    would be (:func:`with_validators`).
    """
    if request.if_none_match:
        if request.if_none_match.contains_weak(etag):
            return _not_modified(etag, last_modified, private)
        return None
    if not (by_date and decided_by_url()):
        return None
    since = request.if_modified_since
    if since is not None and last_modified <= since:
        return _not_modified(etag, last_modified, private)
    return None


def _not_modified(etag, last_modified, private: bool) -> Response:
    return with_validators(Response(status=304), etag, last_modified, private=private)


def with_validators(response: Response, etag: str, last_modified: datetime, *, private=False):
    """Stamp ``response``: validators, and caches must revalidate before reusing it."""
    response.set_etag(etag)
    response.last_modified = last_modified
    response.cache_control.no_cache = True
    if private:
        response.cache_control.private = True
    else:
        response.cache_control.public = True
    response.vary.add("Cookie")  # the language and the user come with the session
    return response
