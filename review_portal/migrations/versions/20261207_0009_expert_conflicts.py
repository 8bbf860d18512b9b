"""Conflicts of interest: what an expert declared (on a decline, or from the profile) against
a program or a whole organization, kept so that eligibility excludes the expert from every
later review of it.

The declines with a conflict already recorded on assignments become rows here (source
``decline``, against the program), so an upgraded portal excludes those experts too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('expert_conflicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('expert_id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('declared_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.Enum('decline', 'profile', name='conflictsource', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_expert_conflicts_assignment_id_assignments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['expert_id'], ['users.id'], name=op.f('fk_expert_conflicts_expert_id_users')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_expert_conflicts_organization_id_organizations')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_expert_conflicts_program_id_programs')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_expert_conflicts_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_expert_conflicts'))
    )
    op.create_index(op.f('ix_expert_conflicts_expert_id'), 'expert_conflicts', ['expert_id'], unique=False)
    op.create_index(op.f('ix_expert_conflicts_organization_id'), 'expert_conflicts', ['organization_id'], unique=False)
    op.create_index(op.f('ix_expert_conflicts_program_id'), 'expert_conflicts', ['program_id'], unique=False)
    # Earlier declines with a conflict: against their program, dated by the answer.
    op.execute(
        "INSERT INTO expert_conflicts (expert_id, organization_id, program_id, text, "
        "declared_at, source, assignment_id, recorded_by_id) "
        "SELECT a.expert_id, p.organization_id, p.id, COALESCE(a.decline_reason, ''), "
        "COALESCE(a.responded_at, a.assigned_at), 'decline', a.id, NULL "
        "FROM assignments a JOIN reviews r ON r.id = a.review_id "
        "JOIN programs p ON p.id = r.program_id "
        "WHERE a.conflict_declared = true ORDER BY a.id"
    )


def downgrade():
    op.drop_index(op.f('ix_expert_conflicts_program_id'), table_name='expert_conflicts')
    op.drop_index(op.f('ix_expert_conflicts_organization_id'), table_name='expert_conflicts')
    op.drop_index(op.f('ix_expert_conflicts_expert_id'), table_name='expert_conflicts')
    op.drop_table('expert_conflicts')
