"""Reads of background jobs that other parts of the portal need."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import select

from review_portal.extensions import db
from review_portal.jobs.models import Job

#: Names of the fields of a job's ``payload`` or ``result`` (at any depth) that hold
#: storage keys: ``storage_key`` one key, ``storage_keys`` a list of them. A job that keeps
#: a file in the storage (an uploaded import, a produced export) names it under one of
#: these, and ``flask storage-cleanup`` keeps the file as long as the job row exists.
STORAGE_KEY_FIELDS = ("storage_key", "storage_keys")


def _keys_in(value) -> Iterator[str]:
    if isinstance(value, dict):
        for name, item in value.items():
            if name == "storage_key" and isinstance(item, str):
                yield item
            elif name == "storage_keys" and isinstance(item, list):
                yield from (key for key in item if isinstance(key, str))
            else:
                yield from _keys_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys_in(item)


def referenced_storage_keys() -> set[str]:
    """Storage keys named in any job's payload or result (:data:`STORAGE_KEY_FIELDS`);
    only the jobs whose JSON mentions ``storage_key`` at all are read."""
    mentions = sa.or_(
        sa.cast(Job.payload, sa.Text).contains("storage_key"),
        sa.cast(Job.result, sa.Text).contains("storage_key"),
    )
    keys: set[str] = set()
    for payload, result in db.session.execute(select(Job.payload, Job.result).where(mentions)):
        keys.update(_keys_in(payload))
        keys.update(_keys_in(result))
    return keys
