"""Migrations: upgrade and downgrade on SQLite and PostgreSQL, and no drift from the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
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


def test_downgrade_below_0011_restores_the_unique_inn_only_where_the_data_allows(
    scratch_app, capsys
):
    """The organizations, their users, programs and invitations survive the rebuild of
    ``organizations`` (on SQLite) both ways; a downgrade while two organizations share an
    ИНН is refused and changes nothing."""
    from datetime import timedelta

    from sqlalchemy.exc import IntegrityError

    from review_portal.db import utcnow
    from review_portal.enums import AccountStatus
    from review_portal.organizations.models import Invitation, Organization
    from tests import factories

    def unique_inn() -> bool:
        inspector = sa.inspect(db.engine)
        constraints = {c["name"] for c in inspector.get_unique_constraints("organizations")}
        return "uq_organizations_inn" in constraints

    def rows() -> dict:
        with db.engine.connect() as connection:
            return {
                table: connection.execute(
                    sa.text(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608 - fixed names
                ).all()
                for table in ("users", "programs", "invitations")
            } | {
                "organizations": connection.execute(
                    sa.text("SELECT id, inn, status, short_name FROM organizations ORDER BY id")
                ).all()
            }

    with scratch_app.app_context():
        program = factories.ProgramFactory()
        applicant = factories.ApplicantFactory(organization=program.organization)
        now = utcnow()
        db.session.add(
            Invitation(
                organization_id=program.organization_id,
                email="colleague@example.org",
                token_hash="0" * 64,
                invited_by_id=applicant.id,
                created_at=now,
                expires_at=now + timedelta(days=7),
            )
        )
        claim = factories.OrganizationFactory(
            inn=program.organization.inn, status=AccountStatus.PENDING
        )
        db.session.commit()
        claim_id, inn = claim.id, claim.inn
        db.session.remove()
        assert not unique_inn()

        with pytest.raises(SystemExit):
            downgrade(revision="0010")
        assert "several organizations share the ИНН" in capsys.readouterr().err
        assert not unique_inn()
        db.session.delete(db.session.get(Organization, claim_id))
        db.session.commit()
        db.session.remove()
        kept = rows()
        assert len(kept["invitations"]) == 1

        downgrade(revision="0010")
        assert unique_inn()
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("organizations")}
        assert "inn_lost_at" not in columns
        assert rows() == kept

        upgrade()
        assert not unique_inn()
        assert rows() == kept
        db.session.add(factories.OrganizationFactory.build(inn=inn))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
