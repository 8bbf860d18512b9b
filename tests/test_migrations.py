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
        [sys.executable, "-m", "flask", "--app", "review_portal.wsgi", "db", "check"],
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

        def same_as_kept(now: dict) -> bool:
            """The rows equal those kept on the columns both have: revisions after 0010
            add columns (0018: ``programs.modules``), which a refused downgrade has already
            dropped where DDL is not transactional (SQLite) and not elsewhere."""

            def project(rows_, columns):
                return [
                    tuple(row._mapping[c] for c in row._fields if c in columns) for row in rows_
                ]

            for table in kept:
                if len(now[table]) != len(kept[table]):
                    return False
                if not kept[table]:
                    continue
                columns = set(kept[table][0]._fields) & set(now[table][0]._fields)
                if project(now[table], columns) != project(kept[table], columns):
                    return False
            return True

        downgrade(revision="0010")
        assert unique_inn()
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("organizations")}
        assert "inn_lost_at" not in columns
        assert same_as_kept(rows())

        upgrade()
        assert not unique_inn()
        assert same_as_kept(rows())
        db.session.add(factories.OrganizationFactory.build(inn=inn))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def _legacy_events(count: int) -> None:
    """Audit events as the code before 0012 wrote them: gapless ids, each hash over the
    content and the previous event's hash, the head at the last one (Core statements: the
    models describe the newer schema)."""
    from types import SimpleNamespace

    from review_portal.audit.chain import GENESIS_HASH, event_hash
    from review_portal.db import UTCDateTime, utcnow

    events = sa.table(
        "audit_events",
        *(sa.column(name) for name in ("id", "actor_id", "actor_label", "ip_address")),
        *(sa.column(name) for name in ("action", "object_type", "object_id", "prev_hash")),
        sa.column("occurred_at", UTCDateTime()),
        sa.column("before", sa.JSON()),
        sa.column("after", sa.JSON()),
        sa.column("hash"),
    )
    previous = GENESIS_HASH
    for n in range(1, count + 1):
        row = {
            "id": n,
            "occurred_at": utcnow(),
            "actor_id": None,
            "actor_label": "system",
            "ip_address": "10.0.0.1",
            "action": "legacy.action",
            "object_type": "program",
            "object_id": str(n),
            "before": None,
            "after": {"n": n, "title": "Робототехника «Старт»"},
            "prev_hash": previous,
        }
        row["hash"] = event_hash(SimpleNamespace(**row))
        db.session.execute(events.insert().values(**row))
        previous = row["hash"]
    db.session.execute(
        sa.text("UPDATE audit_chain_head SET last_event_id = :id, last_hash = :hash WHERE id = 1"),
        {"id": count, "hash": previous},
    )
    db.session.commit()


def _legacy_chain_length() -> int:
    """What ``audit-verify`` before 0012 checked: gapless ids from 1, each event linked to
    the previous one's hash, every hash over its content, the head at the last event."""
    from review_portal.audit.chain import GENESIS_HASH, event_hash
    from review_portal.db import UTCDateTime

    table = sa.Table("audit_events", sa.MetaData(), autoload_with=db.engine)
    table.c.occurred_at.type = UTCDateTime()
    previous, last_id = GENESIS_HASH, 0
    for row in db.session.execute(sa.select(table).order_by(table.c.id)):
        assert row.id == last_id + 1
        assert row.prev_hash == previous
        assert event_hash(row) == row.hash
        previous, last_id = row.hash, row.id
    head = db.session.execute(
        sa.text("SELECT last_event_id, last_hash FROM audit_chain_head")
    ).one()
    assert tuple(head) == ((last_id or None), previous)
    db.session.remove()
    return last_id


def test_upgrade_to_0012_links_the_existing_chain_and_downgrade_rechains_the_new_records(
    scratch_app,
):
    """A log written before 0012 verifies after the upgrade (its records linked in their old
    order), the new code goes on from it, and a downgrade leaves a log the old check accepts."""
    from review_portal.audit.models import AuditLink
    from review_portal.audit.services import anchor_chain, record_event
    from review_portal.audit.verification import verify_chain
    from review_portal.unit_of_work import unit_of_work

    with scratch_app.app_context():
        downgrade(revision="0011")
        _legacy_events(5)
        assert _legacy_chain_length() == 5

        upgrade()
        report = verify_chain()
        assert report.ok, report
        assert (report.checked, report.pending) == (5, 0)
        order = db.session.execute(
            sa.select(AuditLink.position, AuditLink.event_id).order_by(AuditLink.position)
        ).all()
        assert order == [(n, n) for n in range(1, 6)]

        for n in range(3):
            with unit_of_work():
                record_event("new.action", object_type="program", object_id=n)
        anchor_chain("test")
        with unit_of_work():
            record_event("new.action", object_type="program", object_id="queued")
            record_event("new.action", object_type="program", object_id="queued too")
        report = verify_chain()
        assert report.ok and (report.checked, report.anchors) == (10, 1)
        result = scratch_app.test_cli_runner().invoke(args=["audit-verify"])
        assert result.exit_code == 0, result.output
        assert "10 records checked" in result.output
        db.session.remove()

        downgrade(revision="0011")
        assert _legacy_chain_length() == 10
        upgrade()
        report = verify_chain()
        assert report.ok and report.checked == 10
        db.session.remove()


def test_downgrade_below_0020_keeps_the_regular_rubric_choices_and_programs(scratch_app):
    """``active_rubrics`` is rebuilt on SQLite both ways with its regular choices; the
    short-term choices, which the old key has no room for, are dropped by a downgrade; the
    programs keep their rows and read as not multi-level after the upgrade."""
    from review_portal.enums import ProgramType
    from review_portal.programs.models import Program
    from review_portal.rubrics.models import ActiveRubric
    from tests import factories

    def pk_columns() -> list[str]:
        return sa.inspect(db.engine).get_pk_constraint("active_rubrics")["constrained_columns"]

    def rows() -> list[tuple]:
        with db.engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT program_type, rubric_id, rubric_version FROM active_rubrics")
            ).all()

    general = ProgramType.GENERAL_DEVELOPMENTAL
    with scratch_app.app_context():
        assert sorted(pk_columns()) == ["program_type", "short_term"]
        program = factories.ProgramFactory(multi_level=True)
        db.session.add_all(
            [
                ActiveRubric(program_type=general, rubric_id="dop-general", rubric_version=1),
                ActiveRubric(
                    program_type=general,
                    short_term=True,
                    rubric_id="dop-short-term",
                    rubric_version=1,
                ),
            ]
        )
        db.session.commit()
        program_id = program.id
        db.session.remove()

        downgrade(revision="0019")
        assert pk_columns() == ["program_type"]
        assert rows() == [("general_developmental", "dop-general", 1)]
        for table in ("programs", "program_versions"):
            assert "multi_level" not in {
                c["name"] for c in sa.inspect(db.engine).get_columns(table)
            }

        upgrade()
        choice = db.session.get(ActiveRubric, (general, False))
        assert (choice.rubric_id, choice.short_term) == ("dop-general", False)
        assert db.session.get(ActiveRubric, (general, True)) is None
        assert db.session.get(Program, program_id).multi_level is False
        db.session.remove()


def test_0021_indexes_the_published_rows_on_sqlite_and_downgrade_removes_the_index(scratch_app):
    """SQLite only: the FTS5 search index (with its triggers) is built from the rows already
    published, and a downgrade leaves no trace of it; PostgreSQL gets nothing."""
    from review_portal.enums import RegistryKind
    from review_portal.registry.services import publish_registry
    from tests import factories

    def fts_tables() -> set[str]:
        return {t for t in table_names() if t.startswith("registry_snapshot_items_fts")}

    def found(word: str) -> int:
        with db.engine.connect() as connection:
            return connection.execute(
                sa.text(
                    "SELECT count(*) FROM registry_snapshot_items_fts WHERE search_text MATCH :q"
                ),
                {"q": f'"{word}"'},
            ).scalar()

    with scratch_app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
        assert bool(fts_tables()) == sqlite
        downgrade(revision="0020")
        assert not fts_tables()
        coordinator = factories.CoordinatorFactory()
        factories.admitted_program(coordinator=coordinator, title="Юные астрономы")
        publish_registry(RegistryKind.CERTIFIED, coordinator)
        db.session.commit()
        db.session.remove()
        upgrade()
        assert bool(fts_tables()) == sqlite
        if sqlite:
            assert found("астроном") == 1
            assert found("геолог") == 0
