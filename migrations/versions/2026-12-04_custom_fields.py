"""custom fields: field definitions per company and entity, values on leads, deals, persons,
organizations and products

Revision ID: 0008_fields
Revises: 0007_webhooks
Create Date: 2026-12-04 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_fields"
down_revision: str | None = "0007_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables whose records carry custom field values.
_CARRIERS = ("lead", "deal", "person", "organization", "product")
# The carriers whose lists filter by custom fields (GIN, jsonb_path_ops).
_FILTERED = ("lead", "deal", "person", "organization")


def upgrade() -> None:
    op.create_table(
        "field_definition",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("field_type", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column(
            "options",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("formula", sa.Text(), nullable=True),
        sa.Column("next_option_id", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "entity IN ('deal', 'person', 'organization', 'product')",
            name=op.f("ck_field_definition_entity"),
        ),
        sa.CheckConstraint(
            "field_type IN ('text', 'long_text', 'number', 'monetary', 'date', 'date_range', "
            "'time', 'enum', 'set', 'user', 'person', 'organization', 'phone', 'email', 'url', "
            "'boolean', 'formula')",
            name=op.f("ck_field_definition_field_type"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_field_definition_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_definition")),
    )
    for table in _CARRIERS:
        for column in ("custom_fields", "retired_custom_fields"):
            op.add_column(
                table,
                sa.Column(
                    column,
                    postgresql.JSONB(astext_type=sa.Text()),
                    server_default=sa.text("'{}'::jsonb"),
                    nullable=False,
                ),
            )
    for table in _FILTERED:
        op.create_index(
            f"ix_{table}_custom_fields",
            table,
            ["custom_fields"],
            postgresql_using="gin",
            postgresql_ops={"custom_fields": "jsonb_path_ops"},
        )
    op.create_index(
        "ux_field_definition_key",
        "field_definition",
        ["company_id", "entity", "key"],
        unique=True,
    )


def downgrade() -> None:
    for table in _FILTERED:
        op.drop_index(f"ix_{table}_custom_fields", table_name=table)
    for table in _CARRIERS:
        op.drop_column(table, "retired_custom_fields")
        op.drop_column(table, "custom_fields")
    op.drop_index("ux_field_definition_key", table_name="field_definition")
    op.drop_table("field_definition")
