"""Migrations: upgrade and downgrade on SQLite and PostgreSQL, and no drift from the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from review_portal.db import migration_filter
from review_portal.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def table_names() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def test_upgrade_creates_every_model_table_without_drift(scratch_app):
    with scratch_app.app_context():
        assert set(db.metadata.tables) <= table_names()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "render_as_batch": True,
                    "include_object": migration_filter(connection.dialect.name),
                },
            )
            assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_base_removes_everything_and_upgrade_restores_it(scratch_app):
    with scratch_app.app_context():
        downgrade(revision="base")
        assert table_names() == {"alembic_version"}
        upgrade()
        assert set(db.metadata.tables) <= table_names()


def test_flask_db_check_reports_no_drift(scratch_app, scratch_database_url):
    """The real command, as an operator runs it, against the migrated database."""
    env = {**os.environ, "DATABASE_URL": scratch_database_url, "REVIEW_PORTAL_CONFIG": "testing"}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout


def test_upgrade_to_0008_fills_the_agreement_units_from_existing_scores(scratch_app):
    """A database of 0007 with scored reviews gets the rows the services would have kept."""
    from review_portal.scoring.models import AgreementUnit
    from tests import factories
    from tests.factories import with_total
    from tests.test_agreement_units import all_rows, assert_same_rows

    with scratch_app.app_context():
        factories.scored_review(with_total(18), with_total(17))
        factories.scored_review(with_total(12), with_total(6), with_total(9))
        factories.scored_review(with_total(4), with_total(5), submit=False)
        db.session.commit()
        kept = all_rows()
        assert len(kept[0]) == 22
        db.session.remove()
        downgrade(revision="0007")
        assert AgreementUnit.__tablename__ not in table_names()
        upgrade()
        assert_same_rows(kept, all_rows())


def test_downgrade_below_0010_keeps_the_users_and_upgrade_starts_them_at_version_0(scratch_app):
    """The session version is added to (and dropped from) ``users`` in place, its rows kept:
    on SQLite a copy-and-move of ``users`` would be refused by the tables referring to it."""
    from review_portal.accounts.models import User
    from tests import factories

    with scratch_app.app_context():
        program = factories.ProgramFactory()
        user = factories.ApplicantFactory(organization=program.organization)
        user.session_version = 3
        db.session.commit()
        user_id = user.id
        db.session.remove()
        downgrade(revision="0009")
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("users")}
        assert "session_version" not in columns
        upgrade()
        db.session.remove()
        user = db.session.get(User, user_id)
        assert user.session_version == 0
        assert user.get_id() == f"{user_id}:0"
