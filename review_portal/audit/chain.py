"""The audit chain's hashes and signatures: pure functions, the one definition of each.

* :func:`event_hash` — an event's content hash (SHA-256 of its canonical JSON);
* :func:`link_hash` — the link of a chain position: SHA-256 over the position, the event's
  id and content hash, and the link before it;
* :func:`sign_anchor` — HMAC-SHA256 of a chain head (position, link) and the moment it was
  anchored, with ``AUDIT_ANCHOR_KEY``.

Stored hashes and signatures depend on these exact formats: never change one without a
migration that keeps the stored chain verifiable (migration 0012 repeats :func:`link_hash`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

#: The link before the first position (and the link of an empty chain).
GENESIS_HASH = "0" * 64

HASHED_FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_label",
    "ip_address",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "prev_hash",
)


def iso(moment: datetime) -> str:
    """A moment as naive UTC ISO text with microseconds (the same on every database)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def event_hash(fields: Any) -> str:
    """SHA-256 over an event's canonical content.

    ``fields`` is anything with the attributes of :data:`HASHED_FIELDS` (an event or a row).
    ``prev_hash`` is part of the content: the previous event's hash for events written before
    the chain moved to links (migration 0012), ``null`` since.
    """
    content = {name: getattr(fields, name) for name in HASHED_FIELDS}
    content["occurred_at"] = iso(content["occurred_at"])
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def link_hash(position: int, prev_link: str, event_id: int, content_hash: str) -> str:
    """The link of chain position ``position`` holding event ``event_id``."""
    text = f"{position}:{event_id}:{content_hash}:{prev_link}"
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def anchor_message(position: int, link: str, anchored_at: datetime) -> bytes:
    return f"review-portal audit anchor v1:{position}:{link}:{iso(anchored_at)}".encode("ascii")


def sign_anchor(key: str, position: int, link: str, anchored_at: datetime) -> str:
    """The HMAC-SHA256 (hex) of a chain head anchored at ``anchored_at``, with ``key``."""
    message = anchor_message(position, link, anchored_at)
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_valid(
    keys: list[str], position: int, link: str, anchored_at: datetime, signature: str
) -> bool:
    """Whether one of ``keys`` (the current key and the retired ones) made ``signature``."""
    return any(
        hmac.compare_digest(sign_anchor(key, position, link, anchored_at), signature or "")
        for key in keys
    )
