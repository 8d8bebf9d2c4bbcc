"""pipeline entries: when a move's deal entered the stage it left; indexes that give the
pipeline conversion report a pipeline's deals and their moves in deal order

Revision ID: 0021_pipeline_entries
Revises: 0019_report_rollups
Create Date: 2026-12-05 19:00:00

The pipeline conversion report put every entry of every deal of a pipeline (its
creation, then each move) through one sort and three window passes, to know per deal
the furthest stage it had reached before each entry and when it left each stage: 380 ms
at 100,000 deals. A move now carries `from_stage_entered_at`, when its deal entered
the stage the move left (its previous move's time, else the deal's creation), written
by the history's repository in the insert of the move. Each move row then holds both
of the deal's entries it joins, and the report needs no order: per deal, the furthest
position entered before and within the range is a max over its rows; the time spent
in a stage is `at - from_stage_entered_at` of the moves out of it.

Existing moves are backfilled from the history itself. Two covering indexes let the
report read a pipeline's deals (`ix_deal_pipeline_report`) and their stage rows
(`ix_deal_history_pipeline_deal`) without the tables, both in deal order, for a merge
join.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_pipeline_entries"
down_revision: str | None = "0019_report_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "deal_history",
        sa.Column("from_stage_entered_at", sa.DateTime(timezone=True), nullable=True),
    )
    # The entry before a move, in the order the report has always used: (at, id) among
    # the deal's stage rows (moves and the synthetic one); before the first, creation.
    op.execute(
        """
        UPDATE deal_history AS h
        SET from_stage_entered_at = coalesce(entry.previous_at, deal.created_at)
        FROM (
            SELECT id, lag(at) OVER (PARTITION BY deal_id ORDER BY at, id) AS previous_at
            FROM deal_history
            WHERE from_stage_id IS NOT NULL OR synthetic
        ) AS entry, deal
        WHERE entry.id = h.id AND deal.id = h.deal_id AND h.from_stage_id IS NOT NULL
        """
    )
    op.create_index(
        "ix_deal_history_pipeline_deal",
        "deal_history",
        ["company_id", "pipeline_id", "deal_id"],
        postgresql_include=["at", "from_stage_entered_at", "from_stage_id", "stage_id", "synthetic"],
        postgresql_where=sa.text("from_stage_id IS NOT NULL OR synthetic"),
    )
    op.create_index(
        "ix_deal_pipeline_report",
        "deal",
        ["company_id", "pipeline_id", "id"],
        postgresql_include=["created_at", "stage_id", "status", "owner_id", "visible_to"],
        postgresql_where=sa.text("converted_lead_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_deal_pipeline_report", table_name="deal")
    op.drop_index("ix_deal_history_pipeline_deal", table_name="deal_history")
    op.drop_column("deal_history", "from_stage_entered_at")
