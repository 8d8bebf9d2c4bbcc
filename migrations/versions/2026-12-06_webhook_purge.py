"""webhook purges: indexes for the worker's purge of finished deliveries and old events

Revision ID: 0022_webhook_purge
Revises: 0021_pipeline_entries
Create Date: 2026-12-06 02:00:00

Delivered attempts and the events nothing refers to any more are deleted once past the
30 days a replay reaches back (`purge.webhook_deliveries`, `purge.webhook_events`, hourly
jobs of the worker). The purge of deliveries walks a partial index of the finished ones
by age; events are found by their primary key (UUIDv7), and whether a delivery still
refers to an event (and the foreign key's check when it is deleted) by `event_id`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_webhook_purge"
down_revision: str | None = "0021_pipeline_entries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_delivery_finished",
        "webhook_delivery",
        ["created_at"],
        postgresql_where=sa.text("status IN ('succeeded', 'failed')"),
    )
    op.create_index("ix_webhook_delivery_event_id", "webhook_delivery", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_event_id", table_name="webhook_delivery")
    op.drop_index("ix_webhook_delivery_finished", table_name="webhook_delivery")
