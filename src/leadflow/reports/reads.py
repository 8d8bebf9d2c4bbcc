"""The statements of the reports: one each (the pipeline report: its stages first, then
one), compiled once per viewer kind, on the read path (no transaction, rows as asyncpg
records), and the answers shaped from their rows.

Definitions (the OpenAPI description of each operation repeats them):

- A deal counts while it is a deal: one converted back to a lead has left.
- Weighted value: value x probability / 100, rounded to the cent per deal; the deal's
  probability, else its stage's, else 100 %. Open deals only.
- Periods are months or quarters of the `timezone` given: a deal won at 23:30 UTC on 31
  January is a February win in Europe/Paris. `from` and `to` are inclusive dates there.
- Amounts are summed in `numeric` per currency and never added across currencies; a
  deal without a value counts in `count` and in no currency.
- Durations are exact intervals (no floats), given in days with 2 decimals; a median of
  an even number of durations is the mean of the middle two.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    extract,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    tuple_,
    union_all,
    within_group,
)
from sqlalchemy import Interval as IntervalType
from sqlalchemy import column as named_column
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import Grouping

from leadflow.auth.models import Company, User
from leadflow.conversion.models import Conversion
from leadflow.deals.models import COUNTS_AS_OPEN, Deal, DealFile, DealStatus
from leadflow.deals.reads import board_stages
from leadflow.leads.models import Lead, LeadReadiness, in_inbox
from leadflow.pipelines.models import Stage
from leadflow.readpath import ReadStatement, fields
from leadflow.reports.models import DealHistory, LeadDayTotal
from leadflow.reports.schemas import Interval, amount
from leadflow.rules.models import ConversionRule
from leadflow.tenancy import Caller, Viewer, in_viewer_company, viewer_params, visible_to_viewer

_TZ = bindparam("tz", type_=String)
_FROM = bindparam("date_from", type_=Date)
_TO = bindparam("date_to", type_=Date)
_INTERVAL = bindparam("interval", type_=String)


def _optional(column: Any, name: str, type_: Any) -> Any:
    """`column = :name`, or every row when the parameter is null (one compiled statement
    for every combination of filters)."""
    value = bindparam(name, type_=type_)
    return or_(value.is_(None), column == value)


def _local_day(column: Any) -> Any:
    """A timestamptz as a date in the report's time zone."""
    return cast(func.timezone(_TZ, column), Date)


def _in_range(column: Any) -> Any:
    """A timestamptz within the range's days in its time zone, written so that an index
    on the column serves it: from the first instant of `from` there to the first of the
    day after `to`."""
    return and_(column >= _range_start(), column < _range_end())


def _range_start() -> Any:
    return func.timezone(_TZ, cast(_FROM, DateTime))


def _range_end() -> Any:
    return func.timezone(_TZ, cast(_TO, DateTime) + literal_column("interval '1 day'"))


def _period(day: Any) -> Any:
    return cast(func.date_trunc(_INTERVAL, day), Date)


def _status(status: DealStatus) -> Any:
    """`status = 'won'` with the value written in the SQL, not a parameter: the partial
    indexes of the reports (`WHERE status = 'won'`, ...) then serve it in a generic plan
    of the prepared statement too."""
    return Deal.status == literal_column(f"'{status.value}'", String)


def _is_deal() -> Any:
    return Deal.converted_lead_id.is_(None)


def _weighted() -> Any:
    weight = func.coalesce(Deal.probability, Stage.probability, 100)
    return func.round(Deal.value_amount * weight / 100, 2)


def _days(interval: Any) -> Any:
    """An interval as days, 2 decimals, in numeric (EXTRACT gives numeric)."""
    return cast(func.round(extract("epoch", interval) / 86400, 2), Text)


def _median_days(duration: Any, fraction: float = 0.5) -> Any:
    return _days(within_group(func.percentile_cont(fraction), duration))


# Deal summary


@functools.cache
def summary_statement(viewer: Viewer) -> ReadStatement:
    """Per (stage, currency): count, value, weighted value of the matching deals."""
    return ReadStatement(
        select(
            cast(Deal.stage_id, Text).label("stage_id"),
            Deal.value_currency,
            func.count().label("count"),
            cast(func.sum(Deal.value_amount), Text).label("value"),
            cast(func.sum(case((Deal.status == DealStatus.open.value, _weighted()))), Text).label(
                "weighted_value"
            ),
        )
        .select_from(Deal)
        .join(Stage, Stage.id == Deal.stage_id)
        .where(
            visible_to_viewer(Deal, viewer),
            _is_deal(),
            _optional(Deal.status, "status", String),
            _optional(Deal.pipeline_id, "pipeline_id", Uuid),
            _optional(Deal.stage_id, "stage_id", Uuid),
            _optional(Deal.owner_id, "owner_id", Uuid),
        )
        .group_by(Deal.stage_id, Deal.value_currency, Stage.position)
        .order_by(Stage.position, Deal.stage_id, Deal.value_currency)
    )


def _totals(count: int, value: Decimal, weighted: Decimal) -> dict[str, Any]:
    return {"count": count, "value": amount(value), "weighted_value": amount(weighted)}


async def deal_summary(
    session: AsyncSession, caller: Caller, filters: dict[str, Any], per_stage: bool
) -> dict[str, Any]:
    rows = await summary_statement(Viewer.of(caller)).fetch(
        session, {**viewer_params(caller), **filters}
    )
    count = 0
    overall: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    stages: dict[str, dict[str, Any]] = {}
    for row in rows:
        count += row["count"]
        stage = stages.setdefault(
            row["stage_id"], {"stage_id": row["stage_id"], "count": 0, "by_currency": {}}
        )
        stage["count"] += row["count"]
        currency = row["value_currency"]
        if currency is None:
            continue
        value, weighted = Decimal(row["value"]), Decimal(row["weighted_value"] or 0)
        stage["by_currency"][currency] = _totals(row["count"], value, weighted)
        figures = overall[currency]
        figures[0] += row["count"]
        figures[1] += value
        figures[2] += weighted
    return {
        "count": count,
        "by_currency": {c: _totals(*figures) for c, figures in sorted(overall.items())},
        "stages": list(stages.values()) if per_stage else None,
    }


# Periods


def period_starts(date_from: date, date_to: date, interval: Interval) -> list[date]:
    """The first day of every period from the one holding `date_from` to the one holding
    `date_to`."""
    months = 3 if interval is Interval.quarter else 1
    month = (date_from.month - 1) // months * months + 1
    start = date(date_from.year, month, 1)
    starts = []
    while start <= date_to:
        starts.append(start)
        month_index = start.month - 1 + months
        start = date(start.year + month_index // 12, month_index % 12 + 1, 1)
    return starts


@dataclass(frozen=True, slots=True)
class Range:
    """The dates a report covers (inclusive, in `tz`) and how it cuts them."""

    date_from: date
    date_to: date
    interval: Interval
    tz: str

    def params(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from,
            "date_to": self.date_to,
            "interval": self.interval.value,
            "tz": self.tz,
        }

    def starts(self) -> list[date]:
        return period_starts(self.date_from, self.date_to, self.interval)

    def header(self) -> dict[str, Any]:
        return {"interval": self.interval.value, "timezone": self.tz}


async def _rows(
    statement: Any, session: AsyncSession, caller: Caller, filters: dict[str, Any], span: Range
) -> list[Any]:
    rows: list[Any] = await statement(Viewer.of(caller)).fetch(
        session, {**viewer_params(caller), **filters, **span.params()}
    )
    return rows


def _by_currency(rows: list[Any], value: str = "value") -> dict[str, str]:
    return {
        row["value_currency"]: amount(Decimal(row[value]))
        for row in sorted(rows, key=lambda r: r["value_currency"] or "")
        if row["value_currency"] is not None
    }


# Forecast


@functools.cache
def forecast_statement(viewer: Viewer) -> ReadStatement:
    """Open deals by the period of their expected close date, beside deals won by the
    period of their win, per currency."""
    filters = (
        visible_to_viewer(Deal, viewer),
        _is_deal(),
        _optional(Deal.pipeline_id, "pipeline_id", Uuid),
        _optional(Deal.owner_id, "owner_id", Uuid),
    )
    open_deals = (
        select(
            literal("open").label("kind"),
            _period(Deal.expected_close_date).label("start"),
            Deal.value_currency,
            func.count().label("count"),
            cast(func.sum(Deal.value_amount), Text).label("value"),
            cast(func.sum(_weighted()), Text).label("weighted_value"),
        )
        .select_from(Deal)
        .join(Stage, Stage.id == Deal.stage_id)
        .where(
            *filters,
            _status(DealStatus.open),
            Deal.expected_close_date.between(_FROM, _TO),
        )
        .group_by(_period(Deal.expected_close_date), Deal.value_currency)
    )
    won = (
        select(
            literal("won").label("kind"),
            _period(_local_day(Deal.won_at)).label("start"),
            Deal.value_currency,
            func.count().label("count"),
            cast(func.sum(Deal.value_amount), Text).label("value"),
            null().cast(Text).label("weighted_value"),
        )
        .where(
            *filters,
            _status(DealStatus.won),
            _in_range(Deal.won_at),
        )
        .group_by(_period(_local_day(Deal.won_at)), Deal.value_currency)
    )
    return ReadStatement(union_all(open_deals, won))


async def forecast(
    session: AsyncSession,
    caller: Caller,
    filters: dict[str, Any],
    span: Range,
) -> dict[str, Any]:
    rows = await _rows(forecast_statement, session, caller, filters, span)
    found: dict[tuple[str, date], list[Any]] = defaultdict(list)
    for row in rows:
        found[(row["kind"], row["start"])].append(row)
    periods = []
    for start in span.starts():
        opened, won = found[("open", start)], found[("won", start)]
        periods.append(
            {
                "start": start,
                "open_count": sum(row["count"] for row in opened),
                "open_value": _by_currency(opened),
                "open_weighted_value": _by_currency(opened, "weighted_value"),
                "won_count": sum(row["count"] for row in won),
                "won_value": _by_currency(won),
            }
        )
    return {**span.header(), "periods": periods}


# Outcomes


@functools.cache
def outcomes_statement(viewer: Viewer) -> ReadStatement:
    """Won and lost deals by period and currency; lost reasons ranked; days from creation
    to win (average, median) of the deals won in the range."""
    filters = (
        visible_to_viewer(Deal, viewer),
        _is_deal(),
        _optional(Deal.pipeline_id, "pipeline_id", Uuid),
        _optional(Deal.owner_id, "owner_id", Uuid),
    )
    won_in_range = (
        _status(DealStatus.won),
        _in_range(Deal.won_at),
    )
    lost_in_range = (
        _status(DealStatus.lost),
        _in_range(Deal.lost_at),
    )

    def closed(kind: str, at: Any, in_range: tuple[Any, ...]) -> Any:
        return (
            select(
                literal(kind).label("kind"),
                _period(_local_day(at)).label("start"),
                Deal.value_currency.label("key"),
                func.count().label("count"),
                cast(func.sum(Deal.value_amount), Text).label("value"),
                null().cast(Text).label("median"),
            )
            .where(*filters, *in_range)
            .group_by(_period(_local_day(at)), Deal.value_currency)
        )

    reasons = (
        select(
            literal("reason").label("kind"),
            null().cast(Date).label("start"),
            Deal.lost_reason.label("key"),
            func.count().label("count"),
            null().cast(Text).label("value"),
            null().cast(Text).label("median"),
        )
        .where(*filters, *lost_in_range)
        .group_by(Deal.lost_reason)
    )
    to_win = Deal.won_at - Deal.created_at
    days = select(
        literal("days").label("kind"),
        null().cast(Date).label("start"),
        null().cast(String).label("key"),
        func.count().label("count"),
        _days(func.avg(to_win)).label("value"),
        _median_days(to_win).label("median"),
    ).where(*filters, *won_in_range)
    return ReadStatement(
        union_all(
            closed("won", Deal.won_at, won_in_range),
            closed("lost", Deal.lost_at, lost_in_range),
            reasons,
            days,
        )
    )


async def outcomes(
    session: AsyncSession,
    caller: Caller,
    filters: dict[str, Any],
    span: Range,
) -> dict[str, Any]:
    rows = await _rows(outcomes_statement, session, caller, filters, span)
    closed: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    reasons: list[dict[str, Any]] = []
    average = median = None
    for row in rows:
        if row["kind"] in ("won", "lost"):
            closed[(row["kind"], row["start"])].append(
                {"value_currency": row["key"], "value": row["value"], "count": row["count"]}
            )
        elif row["kind"] == "reason":
            reasons.append({"reason": row["key"], "count": row["count"]})
        else:
            average, median = row["value"], row["median"]
    periods = []
    for start in span.starts():
        won, lost = closed[("won", start)], closed[("lost", start)]
        periods.append(
            {
                "start": start,
                "won_count": sum(row["count"] for row in won),
                "won_value": _by_currency(won),
                "lost_count": sum(row["count"] for row in lost),
                "lost_value": _by_currency(lost),
            }
        )
    reasons.sort(key=lambda r: (-r["count"], r["reason"] is None, r["reason"] or ""))
    return {
        **span.header(),
        "periods": periods,
        "lost_reasons": reasons,
        "days_to_win_average": average,
        "days_to_win_median": median,
    }


# Leads


def _utc_day(instant: Any) -> Any:
    return cast(func.timezone("UTC", instant), Date)


def _utc_midnight(day: Any) -> Any:
    """The first instant of a UTC day."""
    return func.timezone("UTC", cast(day, DateTime))


_BOUNDARIES = bindparam("boundaries", type_=ARRAY(Date))


def _lead_filters(model: Any, viewer: Viewer) -> tuple[Any, ...]:
    return (
        visible_to_viewer(model, viewer),
        _optional(model.source, "source", String),
        _optional(model.owner_id, "owner_id", Uuid),
    )


def _by_period_source_owner(period: Any, source: Any, owner_id: Any) -> dict[str, Any]:
    return {
        "grouping": func.grouping(period, source, owner_id).label("grouping"),
        "start": period.label("start"),
        "source": source.label("source"),
        "owner_id": cast(owner_id, Text).label("owner_id"),
    }


def _grouped_four_ways(period: Any, source: Any, owner_id: Any) -> Any:
    return func.grouping_sets(tuple_(period), tuple_(source), tuple_(owner_id), tuple_())


@functools.cache
def lead_counts_statement(viewer: Viewer) -> ReadStatement:
    """How many leads were created in the range, how many of them are converted, how many
    archived without conversion, grouped four ways (grouping sets): per period, per
    source, per owner, and all of them.

    From `lead_day_total` (per company, UTC day, source, owner and visibility; kept by
    triggers) for the UTC days that no period boundary cuts, each whole in one period;
    from the leads themselves (ix_lead_company_id_created_at) for the UTC days a boundary
    cuts: the range's first instant, its end, and each period's first instant in the
    time zone (`boundaries`: their dates there), unless at 00:00 UTC. A year by month of
    a company of 1,000,000 leads is ~3,500 kept rows, plus in a time zone other than UTC
    the leads of ~14 days, not 1,000,000 leads. The kept rows carry owner and visibility,
    so the caller's visibility applies to them as to leads.
    """
    given = func.unnest(_BOUNDARIES).table_valued(named_column("date", Date)).render_derived()
    instant = func.timezone(_TZ, cast(given.c.date, DateTime))
    # The UTC days a boundary cuts (one at 00:00 UTC cuts none: a day begins there).
    boundary = (
        select(_utc_day(instant).label("day"))
        .where(_utc_midnight(_utc_day(instant)) != instant)
        .distinct()
        .cte("boundary_day")
    )
    total = LeadDayTotal
    whole_days = select(
        _period(_local_day(_utc_midnight(total.day))).label("start"),
        total.source,
        total.owner_id,
        total.created,
        total.converted,
        total.archived,
    ).where(
        *_lead_filters(total, viewer),
        # From the first day that begins in the range to the last that ends in it.
        total.day
        >= _utc_day(_range_start() - literal_column("interval '1 microsecond'"))
        + literal_column("1", Integer),
        total.day < _utc_day(_range_end()),
        ~select(boundary.c.day).where(boundary.c.day == total.day).exists(),
    )
    converted = Lead.converted_deal_id.is_not(None)
    cut_days = (
        select(
            _period(_local_day(Lead.created_at)).label("start"),
            Lead.source,
            Lead.owner_id,
            func.count().label("created"),
            func.count().filter(converted).label("converted"),
            func.count().filter(and_(Lead.is_archived, ~converted)).label("archived"),
        )
        .select_from(
            boundary.join(
                Lead,
                and_(
                    Lead.created_at >= _utc_midnight(boundary.c.day),
                    Lead.created_at < _utc_midnight(boundary.c.day + literal_column("1", Integer)),
                ),
            )
        )
        .where(*_lead_filters(Lead, viewer), _in_range(Lead.created_at))
        .group_by(_period(_local_day(Lead.created_at)), Lead.source, Lead.owner_id)
    )
    counted = union_all(whole_days, cut_days).subquery("counted")
    keys = (counted.c.start, counted.c.source, counted.c.owner_id)
    return ReadStatement(
        select(
            *_by_period_source_owner(*keys).values(),
            cast(func.sum(counted.c.created), BigInteger).label("created"),
            cast(func.sum(counted.c.converted), BigInteger).label("converted"),
            cast(func.sum(counted.c.archived), BigInteger).label("archived"),
        )
        .group_by(_grouped_four_ways(*keys))
        .having(func.sum(counted.c.created) > 0)
    )


@functools.cache
def lead_durations_statement(viewer: Viewer) -> ReadStatement:
    """The days from creation to conversion of the converted leads created in the range
    (average, median, 90th percentile), grouped as `lead_counts_statement`: from the
    converted leads alone, an index-only range of ix_lead_converted_created_at."""
    period = _period(_local_day(Lead.created_at))
    to_convert = Lead.converted_at - Lead.created_at
    return ReadStatement(
        select(
            *_by_period_source_owner(period, Lead.source, Lead.owner_id).values(),
            _days(func.avg(to_convert)).label("average"),
            _median_days(to_convert).label("median"),
            _median_days(to_convert, 0.9).label("p90"),
        )
        .where(
            # Every lead with a conversion time, as the durations always counted (a lead
            # whose deal was deleted since keeps it), through the partial index.
            Lead.converted_at.is_not(None),
            *_lead_filters(Lead, viewer),
            _in_range(Lead.created_at),
        )
        .group_by(_grouped_four_ways(period, Lead.source, Lead.owner_id))
    )


@functools.cache
def lead_rules_statement(viewer: Viewer) -> ReadStatement:
    """Per conversion rule of the company, over the leads created in the range: how many
    it holds for now (ready), how many it converted, and how many of those deals are won.

    From the rules' readiness and conversion records (ix_lead_readiness_rule_id,
    ix_conversion_rule_id), each joined to its lead by key to check the range: never
    every lead of the range."""
    lead_in_range = (*_lead_filters(Lead, viewer), _in_range(Lead.created_at))
    rules = select(ConversionRule.id).where(in_viewer_company(ConversionRule)).cte("rules")
    converted = (
        select(
            Conversion.rule_id,
            func.count().label("converted"),
            func.count().filter(Deal.status == DealStatus.won.value).label("won"),
        )
        .join(rules, rules.c.id == Conversion.rule_id)
        .join(Lead, Lead.id == Conversion.lead_id)
        .join(Deal, Deal.id == Conversion.deal_id)
        .where(Conversion.direction == "lead_to_deal", *lead_in_range)
        .group_by(Conversion.rule_id)
        .subquery("converted")
    )
    ready = (
        select(LeadReadiness.rule_id, func.count().label("ready"))
        .join(rules, rules.c.id == LeadReadiness.rule_id)
        .join(Lead, Lead.id == LeadReadiness.lead_id)
        .where(*lead_in_range)
        .group_by(LeadReadiness.rule_id)
        .subquery("ready")
    )
    return ReadStatement(
        select(
            cast(ConversionRule.id, Text).label("rule_id"),
            ConversionRule.name,
            func.coalesce(ready.c.ready, 0).label("ready"),
            func.coalesce(converted.c.converted, 0).label("converted"),
            func.coalesce(converted.c.won, 0).label("won"),
        )
        .outerjoin(ready, ready.c.rule_id == ConversionRule.id)
        .outerjoin(converted, converted.c.rule_id == ConversionRule.id)
        .where(in_viewer_company(ConversionRule))
        .order_by(ConversionRule.name, ConversionRule.id)
    )


# func.grouping(period, source, owner) is a bit mask of the columns left out: 1 = owner,
# 2 = source, 4 = period.
_PER_PERIOD, _PER_SOURCE, _PER_OWNER, _ALL = 0b011, 0b101, 0b110, 0b111


def _rate(part: int, whole: int) -> str | None:
    """part / whole with 4 decimals, in Decimal; None over nothing."""
    return f"{Decimal(part) / Decimal(whole):.4f}" if whole else None


def _lead_figures(row: Any | None, durations: Any | None = None) -> dict[str, Any]:
    if row is None:
        created = converted = archived = 0
    else:
        created, converted, archived = row["created"], row["converted"], row["archived"]
    if durations is None:
        average = median = p90 = None
    else:
        average, median, p90 = durations["average"], durations["median"], durations["p90"]
    return {
        "created": created,
        "converted": converted,
        "archived": archived,
        "conversion_rate": _rate(converted, created),
        "days_to_convert_average": average,
        "days_to_convert_median": median,
        "days_to_convert_p90": p90,
    }


def boundaries(span: Range) -> list[date]:
    """The dates (in the range's time zone) at whose first instant the range begins or
    ends or a period begins."""
    return sorted({span.date_from, span.date_to + timedelta(days=1), *span.starts()[1:]})


def _group_key(row: Any) -> tuple[Any, ...]:
    return (row["grouping"], row["start"], row["source"], row["owner_id"])


async def lead_conversion(
    session: AsyncSession,
    caller: Caller,
    filters: dict[str, Any],
    span: Range,
) -> dict[str, Any]:
    bounded = {**filters, "boundaries": boundaries(span)}
    rows = await _rows(lead_counts_statement, session, caller, bounded, span)
    durations = {
        _group_key(row): row
        for row in await _rows(lead_durations_statement, session, caller, filters, span)
    }
    rules = await _rows(lead_rules_statement, session, caller, filters, span)
    total = total_durations = None
    per_period: dict[date, Any] = {}
    by_source, by_owner = [], []
    for row in rows:
        kept = durations.get(_group_key(row))
        if row["grouping"] == _ALL:
            total, total_durations = row, kept
        elif row["grouping"] == _PER_PERIOD:
            per_period[row["start"]] = (row, kept)
        elif row["grouping"] == _PER_SOURCE:
            by_source.append({"source": row["source"], **_lead_figures(row, kept)})
        elif row["grouping"] == _PER_OWNER:
            by_owner.append({"owner_id": row["owner_id"], **_lead_figures(row, kept)})
    by_source.sort(key=lambda f: (-f["created"], f["source"]))
    by_owner.sort(key=lambda f: (-f["created"], f["owner_id"] is None, f["owner_id"] or ""))
    return {
        **span.header(),
        "total": _lead_figures(total, total_durations),
        "periods": [
            {"start": start, **_lead_figures(*per_period.get(start, (None, None)))}
            for start in span.starts()
        ],
        "by_source": by_source,
        "by_owner": by_owner,
        "by_rule": [
            {
                **fields(rule, ("rule_id", "name", "ready", "converted", "won")),
                "won_rate": _rate(rule["won"], rule["converted"]),
            }
            for rule in rules
        ],
    }


# Pipeline movement and conversion


@functools.cache
def pipeline_conversion_statement(viewer: Viewer) -> ReadStatement:
    """The funnel of one pipeline, its movements and the time spent in its stages.

    A deal enters stages: the one it was created in (at `created_at`: the stage its first
    move left, or its stage if it never moved), then each stage a move took it to; a deal
    recorded before history was kept enters at its synthetic row. It has *reached* every
    stage up to the furthest position it entered, so a deal that skipped stages counts
    for each one it skipped; it reached a stage at its first entry that far. So a deal
    reached in the range the stages past the furthest position it had entered before
    the range, up to the furthest it had entered by the end of it.

    No order of a deal's entries is needed: a move's row holds both entries it joins (the
    stage it left, entered at `from_stage_entered_at`, and the one it took, at `at`), so
    those two furthest positions, and the furthest of all, are maxima over the deal's
    stage rows. Those are grouped per deal as ix_deal_history_pipeline_deal gives them
    (deal order), then merge-joined to the pipeline's deals read in id order from
    ix_deal_pipeline_report (a deal without stage rows entered only the stage it was
    created in); a few rows per (before, by the end, furthest) come out. Positions come
    as bind parameters beside the stage ids (`stage_ids`, `positions`: the pipeline's
    stages as the report read them); a stage of another pipeline has none and counts
    for no position. Rows, by `kind`: `span` (`count` deals whose furthest position was
    `a` before the range, -1 for none, and `b` at its end, `x` of them won, `y` their
    furthest position now), `added` (deals created in the range: count, won, lost),
    `move` (moves from `a` to `b` in the range) and `stay` (moves out of `a` in the
    range: average days spent in it, from `from_stage_entered_at` to the move).
    """
    pipeline = bindparam("pipeline_id", type_=Uuid)
    stage_ids = bindparam("stage_ids", type_=ARRAY(Uuid))
    positions = bindparam("positions", type_=ARRAY(Integer))

    def position(stage_id: Any) -> Any:
        return Grouping(positions)[func.array_position(stage_ids, stage_id)]

    in_pipeline = (_is_deal(), Deal.pipeline_id == pipeline)
    start, end = _range_start(), _range_end()

    def entered(bound: Any | None) -> Any:
        """The furthest position a stage row's entries reached before `bound` (or ever):
        the stage a move left, entered at `from_stage_entered_at`, and the stage the row
        took, at `at`."""
        left, took = position(DealHistory.from_stage_id), position(DealHistory.stage_id)
        if bound is None:
            return func.max(func.greatest(left, took))
        return func.max(
            func.greatest(
                case((DealHistory.from_stage_entered_at < bound, left)),
                case((DealHistory.at < bound, took)),
            )
        )

    # Per deal with stage rows, grouped as the index gives them (deal order, no sort).
    moved = (
        select(
            DealHistory.deal_id,
            entered(start).label("before"),
            entered(end).label("reached"),
            entered(None).label("furthest"),
        )
        .where(
            in_viewer_company(DealHistory),
            DealHistory.pipeline_id == pipeline,
            or_(DealHistory.from_stage_id.is_not(None), DealHistory.synthetic),
        )
        .group_by(DealHistory.deal_id)
        .subquery("moved")
    )
    # A deal without stage rows entered only the stage it was created in (its stage).
    never_moved, created_in = moved.c.deal_id.is_(None), position(Deal.stage_id)
    per_deal = (
        select(
            Deal.status,
            _in_range(Deal.created_at).label("added"),
            func.coalesce(
                case(
                    (never_moved, case((Deal.created_at < start, created_in))),
                    else_=moved.c.before,
                ),
                -1,
            ).label("before"),
            case(
                (never_moved, case((Deal.created_at < end, created_in))),
                else_=moved.c.reached,
            ).label("reached"),
            case((never_moved, created_in), else_=moved.c.furthest).label("furthest"),
        )
        .select_from(Deal.__table__.outerjoin(moved, moved.c.deal_id == Deal.id))
        .where(visible_to_viewer(Deal, viewer), *in_pipeline)
        .subquery("per_deal")
    )
    grew, added_now = per_deal.c.reached > per_deal.c.before, per_deal.c.added
    won = per_deal.c.status == DealStatus.won.value
    lost = per_deal.c.status == DealStatus.lost.value
    span_key = (per_deal.c.before, per_deal.c.reached, per_deal.c.furthest)
    spans = (
        select(
            *span_key,
            func.count().filter(grew).label("deals"),
            func.count().filter(and_(grew, won)).label("won"),
            func.count().filter(added_now).label("added"),
            func.count().filter(and_(added_now, won)).label("added_won"),
            func.count().filter(and_(added_now, lost)).label("added_lost"),
        )
        .group_by(*span_key)
        .cte("spans")
    )

    def row(kind: Any, a: Any, b: Any, count: Any, *more: Any) -> list[Any]:
        extra = list(more) + [null()] * (3 - len(more))
        return [
            (literal(kind) if isinstance(kind, str) else kind).label("kind"),
            cast(a, Text).label("a"),
            cast(b, Text).label("b"),
            count.label("count"),
            *(
                cast(value, Text).label(name)
                for value, name in zip(extra, ("x", "y", "z"), strict=True)
            ),
        ]

    reached = select(
        *row("span", spans.c.before, spans.c.reached, spans.c.deals, spans.c.won, spans.c.furthest)
    ).where(spans.c.deals > 0)

    def total(count: Any) -> Any:
        return cast(func.coalesce(func.sum(count), 0), BigInteger)

    added = select(
        *row(
            "added",
            null(),
            null(),
            total(spans.c.added),
            total(spans.c.added_won),
            total(spans.c.added_lost),
        )
    )
    # The moves of the range per (from, to) with their summed stays, one hash table;
    # per stage left, the average is the summed stays over the moves (what avg() of
    # the intervals computes), from those few rows.
    pairs = (
        select(
            DealHistory.from_stage_id,
            DealHistory.stage_id,
            func.count().label("moves"),
            func.sum(DealHistory.at - DealHistory.from_stage_entered_at).label("stayed"),
        )
        .join(Deal, Deal.id == DealHistory.deal_id)
        .where(
            in_viewer_company(DealHistory),
            DealHistory.pipeline_id == pipeline,
            DealHistory.from_stage_id.is_not(None),
            ~DealHistory.synthetic,
            _in_range(DealHistory.at),
            visible_to_viewer(Deal, viewer),
            *in_pipeline,
        )
        .group_by(DealHistory.from_stage_id, DealHistory.stage_id)
        .cte("pairs")
    )
    moves = select(*row("move", pairs.c.from_stage_id, pairs.c.stage_id, pairs.c.moves))
    moved_out = cast(func.sum(pairs.c.moves), BigInteger)
    stays = select(
        *row(
            "stay",
            pairs.c.from_stage_id,
            null(),
            moved_out,
            _days(
                func.sum(pairs.c.stayed).op("/", return_type=IntervalType)(cast(moved_out, Float))
            ),
        )
    ).group_by(pairs.c.from_stage_id)
    # The planner's default random_page_cost (4) prices the covering indexes' pages as
    # seeks: it read both tables whole, hashed them, and ran three parallel workers
    # each building the same hash (386 ms under load); priced as the cached pages they
    # are, it merge-joins the two indexes in deal order with no sort or hash (213 ms).
    # A custom plan each time: the generic plan the server switches to after five runs
    # cannot fold the range's bounds (timezone(...) of parameters), so it computes them
    # for every row, six times (556 ms against 215 ms, same connection and load).
    return ReadStatement(
        union_all(reached, added, moves, stays),
        settings={"random_page_cost": "1.1", "plan_cache_mode": "force_custom_plan"},
    )


async def pipeline_conversion(
    session: AsyncSession, caller: Caller, pipeline_id: Any, span: Range
) -> dict[str, Any] | None:
    """None when the pipeline is not the caller's company's."""
    stages = await board_stages().fetch(
        session, {**viewer_params(caller), "pipeline_id": pipeline_id}
    )
    if not stages:
        return None
    order = [(row["id"], row["position"]) for row in stages if row["id"] is not None]
    rows = await _rows(
        pipeline_conversion_statement,
        session,
        caller,
        {
            "pipeline_id": pipeline_id,
            "stage_ids": [stage_id for stage_id, _ in order],
            "positions": [position for _, position in order],
        },
        span,
    )
    # Per stage reached in the range: how many deals, by the furthest position they reached.
    by_furthest: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    stays: dict[str, str] = {}
    movements = []
    added = {"count": 0, "won": 0, "lost": 0}
    for row in rows:
        if row["kind"] == "span":
            before, reached = int(row["a"]), int(row["b"])
            for stage_id, position in order:
                if before < position <= reached:
                    by_furthest[stage_id].append((int(row["y"]), row["count"], int(row["x"])))
        elif row["kind"] == "added":
            added = {"count": row["count"], "won": int(row["x"]), "lost": int(row["y"])}
        elif row["kind"] == "move":
            movements.append(
                {"from_stage_id": row["a"], "to_stage_id": row["b"], "count": row["count"]}
            )
        else:
            stays[row["a"]] = row["x"]
    movements.sort(key=lambda m: (-m["count"], m["from_stage_id"], m["to_stage_id"]))
    funnel = []
    for index, (stage_id, _) in enumerate(order):
        groups = by_furthest[stage_id]
        entered = sum(count for _, count, _ in groups)
        won = sum(won for _, _, won in groups)

        def reaching(position: int, groups: list[tuple[int, int, int]] = groups) -> int:
            return sum(count for furthest, count, _ in groups if furthest >= position)

        funnel.append(
            {
                "stage_id": stage_id,
                "entered": entered,
                "reached": [
                    {
                        "stage_id": later,
                        "count": reaching(position),
                        "rate": _rate(reaching(position), entered),
                    }
                    for later, position in order[index + 1 :]
                ],
                "won": won,
                "won_rate": _rate(won, entered),
                "days_in_stage_average": stays.get(stage_id),
            }
        )
    return {
        "timezone": span.tz,
        "pipeline_id": str(pipeline_id),
        "stages": funnel,
        "added": {
            **added,
            "won_rate": _rate(added["won"], added["count"]),
            "lost_rate": _rate(added["lost"], added["count"]),
        },
        "movements": movements,
    }


# Usage: what the company's plan counts, for a front end to show how close it is.


@functools.cache
def usage_statement() -> ReadStatement:
    """The caller's company's open deals (as the open-deal limit counts them, served by
    its partial index) and limit, inbox leads, active users, and deal files with their
    bytes, in one statement."""
    company_id = bindparam("viewer_company_id", type_=Uuid)

    def counted(model: Any, *where: Any) -> Any:
        return (
            select(func.count())
            .select_from(model)
            .where(model.company_id == company_id, *where)
            .scalar_subquery()
        )

    return ReadStatement(
        select(
            counted(Deal, COUNTS_AS_OPEN).label("open_deals"),
            select(Company.max_open_deals)
            .where(Company.id == company_id)
            .scalar_subquery()
            .label("max_open_deals"),
            counted(Lead, in_inbox()).label("leads"),
            counted(User, User.deactivated_at.is_(None)).label("users"),
            counted(DealFile).label("files"),
            select(func.coalesce(func.sum(DealFile.size_bytes), 0))
            .where(DealFile.company_id == company_id)
            .scalar_subquery()
            .label("file_bytes"),
        )
    )


async def usage(session: AsyncSession, caller: Caller) -> dict[str, Any]:
    row = await usage_statement().fetchrow(session, viewer_params(caller))
    return {
        "open_deals": row["open_deals"],
        "max_open_deals": row["max_open_deals"],
        "leads": row["leads"],
        "users": row["users"],
        "files": {"count": row["files"], "bytes": int(row["file_bytes"])},
    }
