"""sync: conversions in the deletion log, and links cleared by a cascade bump updated_at

Revision ID: 0023_sync_leaving
Revises: 0022_webhook_purge
Create Date: 2026-12-06 02:15:00

A sync job keeps a copy from `updated_since` and `GET /deleted`. Two changes escaped it:

- A converted lead (and a deal converted back to a lead) leaves every list without being
  deleted. The deletion log now has a `reason`, and a trigger logs a conversion as
  `converted` (the lead answers 410 with its deal; the deal, which the sync job then
  receives, is a record of its own), and takes the entry out again when the record
  returns to its list (its counterpart deleted).
- Deleting a person, an organization or a converted record's counterpart clears the
  links of the leads and deals that named it (`ON DELETE SET NULL`) without touching
  their `updated_at`, so the copy kept the old link. A BEFORE UPDATE trigger, guarded by
  its WHEN clause (no function call for an UPDATE that sets `updated_at` itself), moves
  `updated_at` to the transaction's time whenever a link changes and `updated_at` does
  not: cascades, merges moving references, and any write that forgot it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_sync_leaving"
down_revision: str | None = "0022_webhook_purge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A record that went back to its list (its counterpart deleted: the link is cleared)
# is no longer gone: its entry leaves the log, and the list gives it again (the touch
# trigger below moved its `updated_at`), whichever a sync job reads first.
_LOG_CONVERSION = """
CREATE FUNCTION leadflow_log_conversion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.{c} IS NULL THEN
    INSERT INTO deleted_record (company_id, record_type, record_id, owner_id, visible_to, reason)
    VALUES (NEW.company_id, TG_ARGV[0], NEW.id, NEW.owner_id, NEW.visible_to, 'converted');
  ELSIF NEW.{c} IS NULL THEN
    DELETE FROM deleted_record
    WHERE record_id = NEW.id AND record_type = TG_ARGV[0] AND reason = 'converted';
  END IF;
  RETURN NULL;
END
$$
"""

_TOUCH = """
CREATE FUNCTION leadflow_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$
"""

# table: the column naming its counterpart after a conversion
_CONVERTED = {"lead": "converted_deal_id", "deal": "converted_lead_id"}


def upgrade() -> None:
    op.add_column(
        "deleted_record",
        sa.Column("reason", sa.String(16), server_default="deleted", nullable=False),
    )
    op.create_check_constraint(
        "reason", "deleted_record", "reason IN ('deleted', 'converted')"
    )
    # A record's entries, for the trigger's DELETE.
    op.create_index("ix_deleted_record_record_id", "deleted_record", ["record_id"])
    op.execute(_TOUCH)
    for table, converted in _CONVERTED.items():
        function = f"leadflow_log_{table}_conversion"
        op.execute(
            _LOG_CONVERSION.replace("leadflow_log_conversion", function).replace(
                "{c}", converted
            )
        )
        op.execute(
            f"CREATE TRIGGER {table}_log_conversion AFTER UPDATE OF {converted} ON {table} "
            f"FOR EACH ROW WHEN ((OLD.{converted} IS NULL) <> (NEW.{converted} IS NULL)) "
            f"EXECUTE FUNCTION {function}('{table}')"
        )
        links = ("person_id", "organization_id", converted)
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in links)
        op.execute(
            f"CREATE TRIGGER {table}_touch_on_link BEFORE UPDATE OF {', '.join(links)} "
            f"ON {table} FOR EACH ROW WHEN (OLD.updated_at IS NOT DISTINCT FROM "
            f"NEW.updated_at AND ({changed})) EXECUTE FUNCTION leadflow_touch_updated_at()"
        )


def downgrade() -> None:
    for table in _CONVERTED:
        op.execute(f"DROP TRIGGER {table}_touch_on_link ON {table}")
        op.execute(f"DROP TRIGGER {table}_log_conversion ON {table}")
        op.execute(f"DROP FUNCTION leadflow_log_{table}_conversion()")
    op.execute("DROP FUNCTION leadflow_touch_updated_at()")
    op.drop_index("ix_deleted_record_record_id", table_name="deleted_record")
    op.drop_constraint("reason", "deleted_record", type_="check")
    op.drop_column("deleted_record", "reason")
