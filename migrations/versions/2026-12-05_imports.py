"""imports: uploaded files' rows, mappings, progress and the revert ledger

Revision ID: 0015_imports
Revises: 0016_invoices
Create Date: 2026-12-05 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_imports"
down_revision: str | None = "0016_invoices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    # The duplicate search's GIN indexes without a pending list: with one (the default),
    # every look-up reads all the entries inserted since the index was last cleaned, so
    # the matching of an import's chunks slowed as its persons were inserted; without,
    # an insert updates the index at once.
    op.execute("ALTER INDEX ix_person_emails SET (fastupdate = off)")
    op.execute("ALTER INDEX ix_person_phones_e164 SET (fastupdate = off)")
    op.create_table(
        "data_import",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("encoding", sa.String(length=32), nullable=True),
        sa.Column("delimiter", sa.String(length=4), nullable=True),
        sa.Column("columns", _JSONB, nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("mapping", _JSONB, nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("processed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("skipped", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revert_result", _JSONB, nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_data_import_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_data_import_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_import")),
    )
    op.create_index("ix_data_import_company_id_id", "data_import", ["company_id", "id"])
    op.create_index("ix_data_import_company_id_sha256", "data_import", ["company_id", "sha256"])
    op.create_table(
        "data_import_row",
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("row_no", sa.Integer(), nullable=False),
        sa.Column("cells", _JSONB, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("errors", _JSONB, nullable=True),
        sa.Column("entities", _JSONB, nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["data_import.id"],
            name=op.f("fk_data_import_row_import_id_data_import"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "row_no", name=op.f("pk_data_import_row")),
    )
    op.create_table(
        "data_import_record",
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("before", _JSONB, nullable=True),
        sa.Column("after", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["data_import.id"],
            name=op.f("fk_data_import_record_import_id_data_import"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "import_id", "entity", "record_id", name=op.f("pk_data_import_record")
        ),
    )


def downgrade() -> None:
    op.execute("ALTER INDEX ix_person_emails RESET (fastupdate)")
    op.execute("ALTER INDEX ix_person_phones_e164 RESET (fastupdate)")
    op.drop_table("data_import_record")
    op.drop_table("data_import_row")
    op.drop_index("ix_data_import_company_id_sha256", table_name="data_import")
    op.drop_index("ix_data_import_company_id_id", table_name="data_import")
    op.drop_table("data_import")
