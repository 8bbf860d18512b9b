"""Two coordinators saving the settings page at the same moment, in separate connections and
transactions on committed data (SQLite and PostgreSQL): each save writes the setting its user
changed and neither loses the other's.

Kept apart from the other tests: this module must not use the per-test transaction
(``session`` fixture), which would bind every thread to one connection.
"""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from review_portal.accounts.models import User
from review_portal.audit.models import AuditEvent
from review_portal.extensions import db
from review_portal.settings.services import FORM_KEYS, get_setting, update_settings
from tests import factories


def test_two_saves_at_the_same_moment_keep_both_changes(scratch_app):
    with scratch_app.app_context():
        ids = [factories.CoordinatorFactory().id for _ in range(2)]
        update_settings(db.session.get(User, ids[0]), {"region_code": "67"})
        db.session.commit()
        seen = {key: get_setting(key) for key in FORM_KEYS}
        db.session.remove()
    # Both opened the page on the same values; each changes one setting.
    edits = [
        (ids[0], {**seen, "head_name": "Петров Пётр Петрович"}),
        (ids[1], {**seen, "center_address": "214000, г. Смоленск, пл. Победы, д. 2"}),
    ]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def save(user_id, values):
        try:
            with scratch_app.app_context():
                barrier.wait(timeout=30)
                update_settings(db.session.get(User, user_id), values, seen)
                db.session.commit()
                db.session.remove()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=save, args=edit) for edit in edits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with scratch_app.app_context():
        assert get_setting("head_name") == "Петров Пётр Петрович"
        assert get_setting("center_address") == "214000, г. Смоленск, пл. Победы, д. 2"
        assert get_setting("region_code") == "67"
        changed = db.session.execute(
            select(AuditEvent.object_id, func.count(AuditEvent.id))
            .where(AuditEvent.action == "settings.change")
            .group_by(AuditEvent.object_id)
        ).all()
        assert sorted(changed) == [("center_address", 1), ("head_name", 1), ("region_code", 1)]
