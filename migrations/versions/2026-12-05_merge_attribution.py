"""merge and attribution: merged records' forwarding rows; UTM and channel on leads and deals

Revision ID: 0018_merge_attribution
Revises: 0015_imports
Create Date: 2026-12-05 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_merge_attribution"
down_revision: str | None = "0015_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As `leadflow.attribution.FIELDS` (a migration does not import the code it upgrades).
ATTRIBUTION = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "channel")


def upgrade() -> None:
    op.create_table(
        "merged_record",
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("record_type", sa.String(length=16), nullable=False),
        sa.Column("into_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column(
            "merged_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_merged_record")),
    )
    op.create_index("ix_merged_record_into_id", "merged_record", ["into_id"])
    # Attribution: nullable, no default, so adding them rewrites no row.
    for table in ("lead", "deal"):
        for name in ATTRIBUTION:
            op.add_column(table, sa.Column(name, sa.String(length=255), nullable=True))
    for name in ATTRIBUTION:
        op.create_index(
            f"ix_lead_{name}",
            "lead",
            ["company_id", name, sa.text("created_at DESC"), sa.text("id DESC")],
            postgresql_where=sa.text(f"{name} IS NOT NULL"),
        )


def downgrade() -> None:
    for name in ATTRIBUTION:
        op.drop_index(f"ix_lead_{name}", table_name="lead")
    for table in ("lead", "deal"):
        for name in ATTRIBUTION:
            op.drop_column(table, name)
    op.drop_index("ix_merged_record_into_id", table_name="merged_record")
    op.drop_table("merged_record")
