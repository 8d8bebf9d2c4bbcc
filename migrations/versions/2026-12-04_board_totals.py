"""board totals: open deals counted and summed per stage, kept by statement triggers

Revision ID: 0012_board_totals
Revises: 0008_fields
Create Date: 2026-12-04 17:40:00

The board read every open deal of a pipeline's stages to count and sum them (an
index-only scan of ix_deal_open_stage_totals): its time grew with the deals, 2.1x from
10,000 to 1,000,000. `deal_stage_total` keeps those figures per (stage, owner,
visibility, currency); the board sums a handful of its rows. Statement-level triggers
with transition tables apply each statement's net change in one upsert whatever the
number of rows (a bulk conversion of 500 deals is one), in key order so that two
statements never lock the same rows in opposite orders, and skip keys whose net change
is nothing (a title edit writes no total). The covering index served only the old
totals and goes.
"""

# ruff: noqa: S608 - the SQL is built from this file's constants, never from input

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_board_totals"
down_revision: str | None = "0008_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status = 'open' AND converted_lead_id IS NULL"
_KEY = "company_id, stage_id, owner_id, visible_to, value_currency"


def _rows(transition: str, sign: str) -> str:
    return (
        f"SELECT {_KEY}, {sign}1 AS n, {sign}coalesce(value_amount, 0) AS amount "
        f"FROM {transition} WHERE {_OPEN}"
    )


def _apply(changes: str) -> str:
    return f"""
        INSERT INTO deal_stage_total AS t ({_KEY}, count, value_amount)
        SELECT {_KEY}, sum(n), sum(amount) FROM ({changes}) AS change
        GROUP BY {_KEY}
        HAVING sum(n) <> 0 OR sum(amount) <> 0
        ORDER BY stage_id, owner_id, visible_to, value_currency
        ON CONFLICT (stage_id, owner_id, visible_to, value_currency) DO UPDATE
        SET count = t.count + excluded.count,
            value_amount = t.value_amount + excluded.value_amount;
    """


_FUNCTION = f"""
CREATE FUNCTION deal_stage_total_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_apply(_rows("new_deals", "+"))}
    ELSIF TG_OP = 'DELETE' THEN
        {_apply(_rows("old_deals", "-"))}
    ELSE
        {_apply(_rows("old_deals", "-") + " UNION ALL " + _rows("new_deals", "+"))}
    END IF;
    RETURN NULL;
END
$$;
"""

_TRIGGERS = {
    "deal_stage_total_insert": "AFTER INSERT ON deal REFERENCING NEW TABLE AS new_deals",
    "deal_stage_total_update": (
        "AFTER UPDATE ON deal REFERENCING OLD TABLE AS old_deals NEW TABLE AS new_deals"
    ),
    "deal_stage_total_delete": "AFTER DELETE ON deal REFERENCING OLD TABLE AS old_deals",
}


def upgrade() -> None:
    op.create_table(
        "deal_stage_total",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("stage_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("visible_to", sa.String(length=16), nullable=False),
        sa.Column("value_currency", sa.String(length=3), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("value_amount", sa.Numeric(precision=30, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_stage_total")),
    )
    op.create_index(
        "ux_deal_stage_total",
        "deal_stage_total",
        ["stage_id", "owner_id", "visible_to", "value_currency"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.execute(_FUNCTION)
    for name, when in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT "
            "EXECUTE FUNCTION deal_stage_total_apply()"
        )
    # The deals already there, under a lock that holds writers back until the totals
    # and the triggers commit together.
    op.execute("LOCK TABLE deal IN SHARE MODE")
    op.execute(
        f"""
        INSERT INTO deal_stage_total ({_KEY}, count, value_amount)
        SELECT {_KEY}, count(*), coalesce(sum(value_amount), 0)
        FROM deal WHERE {_OPEN}
        GROUP BY {_KEY}
        """
    )
    op.drop_index(
        "ix_deal_open_stage_totals",
        table_name="deal",
        postgresql_where=sa.text(_OPEN),
    )


def downgrade() -> None:
    op.create_index(
        "ix_deal_open_stage_totals",
        "deal",
        ["stage_id", "value_currency"],
        unique=False,
        postgresql_include=["value_amount", "company_id", "owner_id", "visible_to"],
        postgresql_where=sa.text(_OPEN),
    )
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON deal")
    op.execute("DROP FUNCTION deal_stage_total_apply()")
    op.drop_index("ux_deal_stage_total", table_name="deal_stage_total")
    op.drop_table("deal_stage_total")
