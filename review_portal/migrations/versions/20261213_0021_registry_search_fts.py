"""Registry search on SQLite: a full-text (FTS5) trigram index of the snapshot items'
``search_text``.

The search condition is ``search_text LIKE '%word%'``. PostgreSQL serves it from a GIN
trigram index (``pg_trgm``, migration 0006); SQLite scanned every row of the snapshot
(p95 334-623 ms at 100,000 entries). Here SQLite gets an external-content FTS5 table with
the trigram tokenizer (case-sensitive: the text and the words are folded already), whose
rowid is the item's id; the search finds words of three characters or more in it
(``review_portal.registry.queries.search_conditions``).

Triggers keep it in step with the items: a publication's ``INSERT … SELECT`` fills it in
the same transaction, a deleted item (a deleted snapshot's, by cascade) leaves it. The rows
already published are indexed here.

Nothing on PostgreSQL, nor on a SQLite without FTS5 or its trigram tokenizer (before
3.34): the search then keeps scanning, as before.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-13 18:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

TABLE = "registry_snapshot_items"
FTS = "registry_snapshot_items_fts"


def _trigram_available(bind) -> bool:
    if bind.dialect.name != "sqlite":
        return False
    try:
        with bind.begin_nested():
            bind.exec_driver_sql(
                "CREATE VIRTUAL TABLE temp.fts_trigram_probe USING fts5(x, tokenize='trigram')"
            )
            bind.exec_driver_sql("DROP TABLE temp.fts_trigram_probe")
    except sa.exc.OperationalError:  # no FTS5, or no trigram tokenizer (SQLite < 3.34)
        return False
    return True


def upgrade():
    bind = op.get_bind()
    if not _trigram_available(bind):
        return
    op.execute(
        f"CREATE VIRTUAL TABLE {FTS} USING fts5(search_text, content='{TABLE}', "
        "content_rowid='id', tokenize='trigram case_sensitive 1')"
    )
    op.execute(
        f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON {TABLE} BEGIN "
        f"INSERT INTO {FTS}(rowid, search_text) VALUES (new.id, new.search_text); END"
    )
    op.execute(
        f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON {TABLE} BEGIN "
        f"INSERT INTO {FTS}({FTS}, rowid, search_text) "
        "VALUES ('delete', old.id, old.search_text); END"
    )
    op.execute(
        f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF id, search_text ON {TABLE} BEGIN "
        f"INSERT INTO {FTS}({FTS}, rowid, search_text) "
        "VALUES ('delete', old.id, old.search_text); "
        f"INSERT INTO {FTS}(rowid, search_text) VALUES (new.id, new.search_text); END"
    )
    op.execute(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{trigger}")
    op.execute(f"DROP TABLE IF EXISTS {FTS}")
