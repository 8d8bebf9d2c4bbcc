"""deal history: a row per stage or status change of a deal, for reports

Revision ID: 0013_deal_history
Revises: 0012_board_totals
Create Date: 2026-12-04 18:00:00

Kept from now on by `leadflow.reports` in the transaction of each change. A deal that
exists already gets one synthetic row: its stage and status, at its last stage change
(else its creation), since what happened before was not recorded.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_deal_history"
down_revision: str | None = "0012_board_totals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deal_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("deal_id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("from_stage_id", sa.Uuid(), nullable=True),
        sa.Column("stage_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=8), nullable=True),
        sa.Column("to_status", sa.String(length=8), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_deal_history_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"], ["deal.id"], name=op.f("fk_deal_history_deal_id_deal"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_deal_history_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_history")),
    )
    op.create_index(
        "ix_deal_history_pipeline_at", "deal_history", ["company_id", "pipeline_id", "at"]
    )
    op.create_index("ix_deal_history_deal_at", "deal_history", ["deal_id", "at"])
    op.execute(
        """
        INSERT INTO deal_history
            (id, company_id, deal_id, pipeline_id, stage_id, to_status, at, synthetic)
        SELECT gen_random_uuid(), company_id, id, pipeline_id, stage_id, status,
               coalesce(stage_changed_at, created_at), true
        FROM deal
        """
    )


def downgrade() -> None:
    op.drop_index("ix_deal_history_deal_at", table_name="deal_history")
    op.drop_index("ix_deal_history_pipeline_at", table_name="deal_history")
    op.drop_table("deal_history")
