"""board totals: covering partial index on open deals per (stage, currency)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deal_open_stage_totals",
        "deal",
        ["stage_id", "value_currency"],
        unique=False,
        postgresql_include=["value_amount", "company_id", "owner_id", "visible_to"],
        postgresql_where=sa.text("status = 'open' AND converted_lead_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_deal_open_stage_totals",
        table_name="deal",
        postgresql_where=sa.text("status = 'open' AND converted_lead_id IS NULL"),
    )
