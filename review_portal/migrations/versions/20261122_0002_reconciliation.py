"""Reconciliation and decision: third experts, the settled outcome, discussion revisions.

On SQLite the downgrade rebuilds ``reviews``, which other tables reference: it works on an
empty database and is refused (rolled back, nothing changed) when reviews are referenced.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 18:13:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite cannot rebuild ``reviews`` (batch mode) while other tables reference it, and
        # Alembic will not add constraints there; ALTER TABLE ADD COLUMN takes them inline.
        for statement in (
            "ALTER TABLE reviews ADD COLUMN extra_experts INTEGER DEFAULT '0' NOT NULL",
            "ALTER TABLE reviews ADD COLUMN resolution VARCHAR(12) CONSTRAINT ck_reviews_resolution "
            "CHECK (resolution IN ('agreement', 'third_expert', 'coordinator'))",
            "ALTER TABLE reviews ADD COLUMN resolved_at DATETIME",
            "ALTER TABLE reviews ADD COLUMN resolved_by_id INTEGER "
            "CONSTRAINT fk_reviews_resolved_by_id_users REFERENCES users (id)",
            "ALTER TABLE reviews ADD COLUMN final_result JSON",
            "ALTER TABLE score_revisions ADD COLUMN kind VARCHAR(10) DEFAULT 'reopen' NOT NULL "
            "CONSTRAINT ck_score_revisions_revisionkind CHECK (kind IN ('discussion', 'reopen'))",
            "ALTER TABLE score_revisions ADD COLUMN old_comment TEXT",
            "ALTER TABLE score_revisions ADD COLUMN new_comment TEXT",
        ):
            op.execute(statement)
        return
    op.add_column('reviews', sa.Column('extra_experts', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('reviews', sa.Column('resolution', sa.Enum('agreement', 'third_expert', 'coordinator', name='resolution', native_enum=False, create_constraint=True), nullable=True))
    op.add_column('reviews', sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('reviews', sa.Column('resolved_by_id', sa.Integer(), nullable=True))
    op.create_foreign_key(op.f('fk_reviews_resolved_by_id_users'), 'reviews', 'users', ['resolved_by_id'], ['id'])
    op.add_column('reviews', sa.Column('final_result', sa.JSON(), nullable=True))
    op.add_column('score_revisions', sa.Column('kind', sa.Enum('discussion', 'reopen', name='revisionkind', native_enum=False, create_constraint=True), nullable=False, server_default='reopen'))
    op.add_column('score_revisions', sa.Column('old_comment', sa.Text(), nullable=True))
    op.add_column('score_revisions', sa.Column('new_comment', sa.Text(), nullable=True))


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        # Rebuilding ``reviews`` drops the old table while other tables reference it: the
        # references are checked at commit, when the rebuilt table is back under its name.
        op.execute("PRAGMA defer_foreign_keys = ON")
        with op.batch_alter_table('score_revisions', recreate='always') as batch_op:
            batch_op.drop_constraint(batch_op.f('ck_score_revisions_revisionkind'), type_='check')
            for column in ('new_comment', 'old_comment', 'kind'):
                batch_op.drop_column(column)
        with op.batch_alter_table('reviews', recreate='always') as batch_op:
            batch_op.drop_constraint(batch_op.f('ck_reviews_resolution'), type_='check')
            for column in ('final_result', 'resolved_by_id', 'resolved_at', 'resolution', 'extra_experts'):
                batch_op.drop_column(column)
        return
    op.drop_constraint(op.f('fk_reviews_resolved_by_id_users'), 'reviews', type_='foreignkey')
    for column in ('final_result', 'resolved_by_id', 'resolved_at', 'resolution', 'extra_experts'):
        op.drop_column('reviews', column)
    for column in ('new_comment', 'old_comment', 'kind'):
        op.drop_column('score_revisions', column)
