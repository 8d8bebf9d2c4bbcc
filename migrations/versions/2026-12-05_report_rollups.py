"""report rollups: leads counted per company, UTC day, source, owner and visibility, kept
by statement triggers; covering indexes for the deal reports

Revision ID: 0019_report_rollups
Revises: 0015_imports
Create Date: 2026-12-05 13:00:00

The lead conversion report counted every lead created in its range (a year of a company
of 1,000,000 leads is all of them): it did not answer within 30 s. `lead_day_total`
keeps, per (company, UTC day of creation, source, owner, visibility), how many leads
were created, how many of them are converted and how many archived without conversion;
the report reads those rows for the days its periods hold whole and the leads
themselves only for the days a period boundary cuts. Kept as `deal_stage_total` is
(0012): statement-level triggers with transition tables apply each statement's net
change in one upsert, in key order, skipping keys whose net change is nothing (a title
edit writes no row), so every writer of leads (the API, captures, imports, conversions,
the SET NULL of a deleted deal, a bulk SQL statement) keeps it without knowing.

Each key has up to 8 rows, one per `slot` (the writing backend's pid modulo 8): the
leads created at once by concurrent requests (one owner, one source, one day) would
otherwise all wait for one row's lock until each commits. The report sums the slots.

The converted leads' durations (average, median, 90th percentile) are read from the
converted leads alone, through a partial covering index.
"""

# ruff: noqa: S608 - the SQL is built from this file's constants, never from input

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_report_rollups"
down_revision: str | None = "0018_merge_attribution"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = "company_id, day, source, owner_id, visible_to"
_SLOTS = 8


def _rows(transition: str, sign: str) -> str:
    return (
        f"SELECT company_id, (created_at AT TIME ZONE 'UTC')::date AS day, source, owner_id,"
        f" visible_to, {sign}1 AS created,"
        f" {sign}(converted_deal_id IS NOT NULL)::int AS converted,"
        f" {sign}(is_archived AND converted_deal_id IS NULL)::int AS archived"
        f" FROM {transition}"
    )


def _apply(changes: str) -> str:
    return f"""
        INSERT INTO lead_day_total AS t ({_KEY}, slot, created, converted, archived)
        SELECT {_KEY}, pg_backend_pid() % {_SLOTS}, sum(created), sum(converted), sum(archived)
        FROM ({changes}) AS change
        GROUP BY {_KEY}
        HAVING sum(created) <> 0 OR sum(converted) <> 0 OR sum(archived) <> 0
        ORDER BY {_KEY}
        ON CONFLICT (company_id, day, source, owner_id, visible_to, slot) DO UPDATE
        SET created = t.created + excluded.created,
            converted = t.converted + excluded.converted,
            archived = t.archived + excluded.archived;
    """


_FUNCTION = f"""
CREATE FUNCTION lead_day_total_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_apply(_rows("new_leads", "+"))}
    ELSIF TG_OP = 'DELETE' THEN
        {_apply(_rows("old_leads", "-"))}
    ELSE
        {_apply(_rows("old_leads", "-") + " UNION ALL " + _rows("new_leads", "+"))}
    END IF;
    RETURN NULL;
END
$$;
"""

_TRIGGERS = {
    "lead_day_total_insert": "AFTER INSERT ON lead REFERENCING NEW TABLE AS new_leads",
    "lead_day_total_update": (
        "AFTER UPDATE ON lead REFERENCING OLD TABLE AS old_leads NEW TABLE AS new_leads"
    ),
    "lead_day_total_delete": "AFTER DELETE ON lead REFERENCING OLD TABLE AS old_leads",
}

_CONVERTED = "converted_at IS NOT NULL"
_LEAD_COUNTED_BY = ["source", "owner_id", "visible_to", "is_archived", "converted_deal_id"]
_IS_DEAL = "converted_lead_id IS NULL"
_WHO = ["pipeline_id", "owner_id", "visible_to"]
# The deal reports' indexes: each covers what its report reads (index-only scans of the
# rows in range, no heap), with the visibility columns. (name, columns, include, where)
_DEAL_INDEXES: list[tuple[str, list[str], list[str], str]] = [
    # Deals won in a range (forecast, outcomes: value and days to win).
    (
        "ix_deal_won_at",
        ["company_id", "won_at"],
        ["value_currency", "value_amount", "created_at", "converted_lead_id", *_WHO],
        "status = 'won'",
    ),
    # Deals lost in a range (outcomes: value and reasons).
    (
        "ix_deal_lost_at",
        ["company_id", "lost_at"],
        ["value_currency", "value_amount", "lost_reason", "converted_lead_id", *_WHO],
        "status = 'lost'",
    ),
    # Open deals by expected close date (forecast).
    (
        "ix_deal_open_expected_close",
        ["company_id", "expected_close_date"],
        ["stage_id", "probability", "value_currency", "value_amount", *_WHO],
        f"status = 'open' AND {_IS_DEAL}",
    ),
    # Every deal of a company, or of one pipeline (summary, pipeline conversion).
    (
        "ix_deal_reports",
        ["company_id", "pipeline_id", "stage_id"],
        [
            "status", "value_currency", "value_amount", "probability", "created_at",
            "owner_id", "visible_to",
        ],
        _IS_DEAL,
    ),
]  # fmt: skip
# The old, uncovering versions (0014) of the two kept names.
_OLD = {"ix_deal_won_at": "status = 'won'", "ix_deal_lost_at": "status = 'lost'"}


def upgrade() -> None:
    op.create_table(
        "lead_day_total",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("visible_to", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("converted", sa.BigInteger(), nullable=False),
        sa.Column("archived", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_day_total")),
    )
    op.create_index(
        "ux_lead_day_total",
        "lead_day_total",
        ["company_id", "day", "source", "owner_id", "visible_to", "slot"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    # The leads of the days a boundary cuts, counted index-only (was without INCLUDE).
    op.drop_index("ix_lead_company_id_created_at", table_name="lead")
    op.create_index(
        "ix_lead_company_id_created_at",
        "lead",
        ["company_id", "created_at"],
        postgresql_include=_LEAD_COUNTED_BY,
    )
    op.create_index(
        "ix_lead_converted_created_at",
        "lead",
        ["company_id", "created_at"],
        postgresql_include=["converted_at", "source", "owner_id", "visible_to"],
        postgresql_where=sa.text(_CONVERTED),
    )
    for name, where in _OLD.items():
        op.drop_index(name, table_name="deal", postgresql_where=sa.text(where))
    for name, columns, include, where in _DEAL_INDEXES:
        op.create_index(
            name, "deal", columns, postgresql_include=include, postgresql_where=sa.text(where)
        )
    # A rule's conversions (the lead conversion report per rule; a rule's deletion).
    op.create_index(
        "ix_conversion_rule_id",
        "conversion",
        ["rule_id"],
        postgresql_where=sa.text("rule_id IS NOT NULL"),
    )
    op.execute(_FUNCTION)
    for name, when in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT "
            "EXECUTE FUNCTION lead_day_total_apply()"
        )
    # The leads already there, under a lock that holds writers back until the totals
    # and the triggers commit together.
    op.execute("LOCK TABLE lead IN SHARE MODE")
    op.execute(
        f"""
        INSERT INTO lead_day_total ({_KEY}, slot, created, converted, archived)
        SELECT {_KEY}, 0, sum(created), sum(converted), sum(archived)
        FROM ({_rows("lead", "")}) AS lead_row
        GROUP BY {_KEY}
        """
    )


def downgrade() -> None:
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON lead")
    op.execute("DROP FUNCTION lead_day_total_apply()")
    op.drop_index(
        "ix_conversion_rule_id",
        table_name="conversion",
        postgresql_where=sa.text("rule_id IS NOT NULL"),
    )
    for name, _, _, where in reversed(_DEAL_INDEXES):
        op.drop_index(name, table_name="deal", postgresql_where=sa.text(where))
    for name, where in _OLD.items():
        op.create_index(
            name,
            "deal",
            ["company_id", name.removeprefix("ix_deal_")],
            postgresql_where=sa.text(where),
        )
    op.drop_index(
        "ix_lead_converted_created_at", table_name="lead", postgresql_where=sa.text(_CONVERTED)
    )
    op.drop_index("ix_lead_company_id_created_at", table_name="lead")
    op.create_index("ix_lead_company_id_created_at", "lead", ["company_id", "created_at"])
    op.drop_index("ux_lead_day_total", table_name="lead_day_total")
    op.drop_table("lead_day_total")
