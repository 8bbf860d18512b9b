"""Appeals: the appeal against a conclusion, its files, the counter of the decisions on
appeals, and what a review needs to be an appeal panel.

* ``reviews.kind``: ``regular`` (every review so far) or ``appeal`` (the appeal names
  the appealed review and its panel's);
  ``reviews.scope_criteria`` / ``reviews.fixed_scores``: the criteria a panel scores when it
  scores only the contested ones, and the appealed final scores of the others.
* ``appeals``, ``appeal_files``, ``appeal_counters``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-11 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

KIND_CHECK = "kind IN ('regular', 'appeal')"
KIND_CONSTRAINT = "ck_reviews_reviewkind"


def _enum(*values, name):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        # ALTER TABLE ADD COLUMN takes the CHECK and the reference inline.
        op.execute(
            "ALTER TABLE reviews ADD COLUMN kind VARCHAR(7) DEFAULT 'regular' NOT NULL "
            f"CONSTRAINT {KIND_CONSTRAINT} CHECK ({KIND_CHECK})"
        )
    else:
        op.add_column(
            "reviews", sa.Column("kind", sa.String(7), server_default="regular", nullable=False)
        )
        op.create_check_constraint(op.f(KIND_CONSTRAINT), "reviews", KIND_CHECK)
    op.add_column("reviews", sa.Column("scope_criteria", sa.JSON(), nullable=True))
    op.add_column("reviews", sa.Column("fixed_scores", sa.JSON(), nullable=True))

    op.create_table(
        "appeal_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_appeal_counters")),
    )
    decisions = ("admitted", "revision_required", "rejected")
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conclusion_id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("panel_review_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            _enum("filed", "accepted", "refused", "upheld", "dismissed", name="appealstate"),
            nullable=False,
        ),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_by_id", sa.Integer(), nullable=False),
        sa.Column("window_ends_on", sa.Date(), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("appealed_decision", _enum(*decisions, name="appealed_decision"), nullable=False),
        sa.Column("refusal_ground", _enum("late", "unfounded", name="refusalground"), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("new_conclusion_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("storage_key", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conclusion_id"], ["conclusions.id"], name=op.f("fk_appeals_conclusion_id_conclusions")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_appeals_review_id_reviews")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_appeals_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["panel_review_id"], ["reviews.id"], name=op.f("fk_appeals_panel_review_id_reviews")
        ),
        sa.ForeignKeyConstraint(
            ["filed_by_id"], ["users.id"], name=op.f("fk_appeals_filed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_appeals_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["new_conclusion_id"],
            ["conclusions.id"],
            name=op.f("fk_appeals_new_conclusion_id_conclusions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
        sa.UniqueConstraint("conclusion_id", name=op.f("uq_appeals_conclusion_id")),
        sa.UniqueConstraint("number", name=op.f("uq_appeals_number")),
        sa.UniqueConstraint("sha256", name=op.f("uq_appeals_sha256")),
    )
    op.create_index(op.f("ix_appeals_review_id"), "appeals", ["review_id"])
    op.create_index(op.f("ix_appeals_program_id"), "appeals", ["program_id"])
    op.create_index(op.f("ix_appeals_state"), "appeals", ["state"])
    op.create_table(
        "appeal_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"],
            ["appeals.id"],
            name=op.f("fk_appeal_files_appeal_id_appeals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["stored_files.id"], name=op.f("fk_appeal_files_file_id_stored_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeal_files")),
    )
    op.create_index(op.f("ix_appeal_files_appeal_id"), "appeal_files", ["appeal_id"])
    op.create_index(op.f("ix_appeal_files_file_id"), "appeal_files", ["file_id"])


def downgrade():
    op.drop_table("appeal_files")
    op.drop_table("appeals")
    op.drop_table("appeal_counters")
    # In place on both databases (SQLite drops a column whose only constraint is its own
    # CHECK): a copy-and-move of ``reviews`` would be refused by the tables referring to it.
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(KIND_CONSTRAINT), "reviews", type_="check")
    op.drop_column("reviews", "fixed_scores")
    op.drop_column("reviews", "scope_criteria")
    op.drop_column("reviews", "kind")
