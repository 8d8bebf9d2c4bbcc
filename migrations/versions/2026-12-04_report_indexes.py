"""report indexes: leads by creation, deals by win and by loss, per company

Revision ID: 0014_report_indexes
Revises: 0013_deal_history
Create Date: 2026-12-04 18:10:00

The reports select leads created in a range (converted ones too, which the inbox's
partial indexes leave out) and deals won or lost in a range.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_report_indexes"
down_revision: str | None = "0013_deal_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_lead_company_id_created_at", "lead", ["company_id", "created_at"])
    op.create_index(
        "ix_deal_won_at",
        "deal",
        ["company_id", "won_at"],
        postgresql_where=sa.text("status = 'won'"),
    )
    op.create_index(
        "ix_deal_lost_at",
        "deal",
        ["company_id", "lost_at"],
        postgresql_where=sa.text("status = 'lost'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deal_lost_at", table_name="deal", postgresql_where=sa.text("status = 'lost'"))
    op.drop_index("ix_deal_won_at", table_name="deal", postgresql_where=sa.text("status = 'won'"))
    op.drop_index("ix_lead_company_id_created_at", table_name="lead")
