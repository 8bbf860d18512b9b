"""ИНН claims: a registration may name an ИНН another organization holds or claims.

The UNIQUE constraint on ``organizations.inn`` becomes a partial unique index over the
organizations that hold their ИНН (``status = 'approved'``), so a pending or rejected
registration no longer blocks the ИНН; a plain index keeps look-ups by ИНН fast. Three
columns record that the center transferred an organization's ИНН to another registration:
when, why, and to which organization.

SQLite cannot drop a table constraint, so there the table is rebuilt: its rows are saved,
the table dropped and created anew, and the rows put back. ``users``, ``programs`` and other
tables reference ``organizations``: with the foreign-key checks deferred to the commit,
putting each row back under its old id settles the references its drop left dangling.
``invitations`` reference it with ``ON DELETE CASCADE``, which the drop would carry out, so
they are saved and restored too.

The downgrade restores the UNIQUE constraint; it is refused (nothing changed) while two
organizations share an ИНН, which only the people who decided the claims can untangle.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

HOLDS_INN = sa.text("status = 'approved'")
OLD_COLUMNS = (
    'id, full_name, short_name, inn, ogrn, kind, municipality_id, address, phone, email, '
    'website, status, approved_at, created_at, updated_at'
)


def _create_organizations(claims: bool) -> None:
    """The ``organizations`` table of 0010 (``claims=False``) or of this revision."""
    columns = [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('full_name', sa.String(length=500), nullable=False),
        sa.Column('short_name', sa.String(length=255), nullable=False),
        sa.Column('inn', sa.String(length=12), nullable=False),
        sa.Column('ogrn', sa.String(length=15), nullable=True),
        sa.Column('kind', sa.Enum('state', 'municipal', 'private', 'individual_entrepreneur', name='organizationtype', native_enum=False, create_constraint=True), nullable=False),
        sa.Column('municipality_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=500), nullable=True),
        sa.Column('phone', sa.String(length=40), nullable=True),
        sa.Column('email', sa.String(length=255), nullable=True),
        sa.Column('website', sa.String(length=255), nullable=True),
        sa.Column('status', sa.Enum('pending', 'approved', 'rejected', name='accountstatus', native_enum=False, create_constraint=True), nullable=False),
        sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['municipality_id'], ['municipalities.id'], name=op.f('fk_organizations_municipality_id_municipalities')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations')),
    ]
    if claims:
        columns += [
            sa.Column('inn_lost_at', sa.DateTime(timezone=True), nullable=True),
            sa.Column('inn_lost_reason', sa.Text(), nullable=True),
            sa.Column('inn_lost_to_id', sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(['inn_lost_to_id'], ['organizations.id'], name=op.f('fk_organizations_inn_lost_to_id_organizations')),
        ]
    else:
        columns.append(sa.UniqueConstraint('inn', name=op.f('uq_organizations_inn')))
    op.create_table('organizations', *columns)
    op.create_index(op.f('ix_organizations_municipality_id'), 'organizations', ['municipality_id'], unique=False)


def _rebuild_sqlite_organizations(claims: bool) -> None:
    """Drop and create ``organizations`` anew on SQLite, its rows and invitations kept."""
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute("CREATE TABLE _saved_invitations AS SELECT * FROM invitations")
    op.execute("CREATE TABLE _saved_organizations AS SELECT * FROM organizations")
    op.execute("DROP TABLE organizations")
    _create_organizations(claims)
    op.execute(
        f"INSERT INTO organizations ({OLD_COLUMNS}) "
        f"SELECT {OLD_COLUMNS} FROM _saved_organizations ORDER BY id"
    )
    op.execute("INSERT INTO invitations SELECT * FROM _saved_invitations ORDER BY id")
    op.execute("DROP TABLE _saved_organizations")
    op.execute("DROP TABLE _saved_invitations")


def _create_claim_indexes() -> None:
    op.create_index(op.f('ix_organizations_inn'), 'organizations', ['inn'], unique=False)
    op.create_index(
        'uq_organizations_inn_holder', 'organizations', ['inn'], unique=True,
        postgresql_where=HOLDS_INN, sqlite_where=HOLDS_INN,
    )


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_organizations(claims=True)
        _create_claim_indexes()
        return
    op.drop_constraint(op.f('uq_organizations_inn'), 'organizations', type_='unique')
    op.add_column('organizations', sa.Column('inn_lost_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('organizations', sa.Column('inn_lost_reason', sa.Text(), nullable=True))
    op.add_column('organizations', sa.Column('inn_lost_to_id', sa.Integer(), nullable=True))
    op.create_foreign_key(op.f('fk_organizations_inn_lost_to_id_organizations'), 'organizations', 'organizations', ['inn_lost_to_id'], ['id'])
    _create_claim_indexes()


def downgrade():
    shared = op.get_bind().execute(sa.text(
        "SELECT inn FROM organizations GROUP BY inn HAVING COUNT(*) > 1 ORDER BY inn"
    )).scalars().all()
    if shared:
        raise RuntimeError(
            "cannot restore the unique ИНН: several organizations share the ИНН "
            + ", ".join(shared)
            + "; keep one organization per ИНН (or change the others' ИНН) and downgrade again"
        )
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_organizations(claims=False)
        return
    op.drop_index('uq_organizations_inn_holder', table_name='organizations', postgresql_where=HOLDS_INN)
    op.drop_index(op.f('ix_organizations_inn'), table_name='organizations')
    op.drop_constraint(op.f('fk_organizations_inn_lost_to_id_organizations'), 'organizations', type_='foreignkey')
    op.drop_column('organizations', 'inn_lost_to_id')
    op.drop_column('organizations', 'inn_lost_reason')
    op.drop_column('organizations', 'inn_lost_at')
    op.create_unique_constraint(op.f('uq_organizations_inn'), 'organizations', ['inn'])
