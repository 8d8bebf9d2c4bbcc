"""webhook fan-out in the worker: events not yet fanned out

Revision ID: 0024_webhook_fan_out
Revises: 0023_sync_leaving
Create Date: 2026-12-06 03:00:00

A write's transaction now inserts only its events; the worker makes their deliveries
(`webhooks.repository.fan_out`) and marks each event `fanned_out_at`, finding the ones
to do through a partial index of those still NULL. Every existing event had its
deliveries made when it was written: all are marked done.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_webhook_fan_out"
down_revision: str | None = "0023_sync_leaving"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_event", sa.Column("fanned_out_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE webhook_event SET fanned_out_at = occurred_at")
    op.create_index(
        "ix_webhook_event_to_fan_out",
        "webhook_event",
        ["id"],
        postgresql_where=sa.text("fanned_out_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_event_to_fan_out", table_name="webhook_event")
    op.drop_column("webhook_event", "fanned_out_at")
