"""lead prospect email: index for GET /leads?email=

Not partial: PostgreSQL keeps statistics on the expression of an expression index and
uses them to estimate `lower(prospect_email) = ...` only when the index is not partial;
with a partial index it guessed 0.5 % of the table and walked the inbox index instead
(485 ms at 1,000,000 leads, against 0.6 ms through this index).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_lead_prospect_email",
        "lead",
        ["company_id", sa.literal_column("lower(prospect_email)")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_lead_prospect_email", table_name="lead")
