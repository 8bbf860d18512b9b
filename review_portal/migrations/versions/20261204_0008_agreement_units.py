"""Agreement: each submitted sheet's total as a percentage of the maximum, and the per-review
sums of the submitted sheets (``agreement_units``) that the analytics read instead of every
score; both filled from the existing scores.

The fill calls the portal's own bulk rebuild (``review_portal.scoring.summary.rebuild``), on
the migration's connection: the weights and maxima come from the rubric files, which only
the portal reads. It names only the columns it writes. On PostgreSQL, extended statistics
tell the planner how few groups the analytics' aggregation makes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 23:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN: no table rebuild on SQLite.
    op.add_column('score_sheets', sa.Column('total_percent', sa.Float(), nullable=True))
    op.create_table('agreement_units',
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('measure', sa.String(length=20), nullable=False),
    sa.Column('rubric_id', sa.String(length=80), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('municipality_id', sa.Integer(), nullable=False),
    sa.Column('m', sa.Integer(), nullable=False),
    sa.Column('s', sa.Float(), nullable=False),
    sa.Column('q', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipalities.id'], name=op.f('fk_agreement_units_municipality_id_municipalities')),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], name=op.f('fk_agreement_units_review_id_reviews'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('review_id', 'measure', name=op.f('pk_agreement_units'))
    )
    op.create_index(op.f('ix_agreement_units_submitted_at'), 'agreement_units', ['submitted_at'], unique=False)
    op.create_index('ix_agreement_units_municipality_submitted', 'agreement_units', ['municipality_id', 'submitted_at'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # The analytics group the units by rubric, measure and block of reviews: without
        # these statistics PostgreSQL expects a group per review and sorts every unit on
        # disk instead of hashing ~11,000 groups (0.8 s against 0.2 s at national scale).
        # The expression must stay the one ``analytics.services.measure_blocks`` groups by.
        op.execute(
            'CREATE STATISTICS agreement_units_blocks (ndistinct) '
            'ON rubric_id, measure, (review_id % 1000) FROM agreement_units'
        )

    from review_portal.scoring.summary import rebuild

    rebuild(op.get_bind())
    if op.get_bind().dialect.name == 'postgresql':
        # The statistics above exist from the first ANALYZE on, not when autovacuum gets to it.
        op.execute('ANALYZE agreement_units')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP STATISTICS IF EXISTS agreement_units_blocks')
    op.drop_index('ix_agreement_units_municipality_submitted', table_name='agreement_units')
    op.drop_index(op.f('ix_agreement_units_submitted_at'), table_name='agreement_units')
    op.drop_table('agreement_units')
    # Plain DROP COLUMN (SQLite 3.35+), not a batch: a batch copies the table and drops the
    # old one, and with foreign keys on, SQLite would delete every score with it (cascade).
    op.drop_column('score_sheets', 'total_percent')
