"""`/reports`: what is in the pipeline and how likely, what was won and lost, how leads
become deals. Every figure counts only what the caller may see (an admin: the company),
amounts per currency, and every report answers `text/csv` when asked (`Accept`)."""

from __future__ import annotations

import csv
import inspect
import io
import uuid
import zoneinfo
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from leadflow.deps import CurrentCaller, Session
from leadflow.errors import CONFLICTING_PARAMETERS, InvalidInput, found, responses
from leadflow.leads.schemas import LeadSource
from leadflow.readpath import json_response
from leadflow.reports import reads
from leadflow.reports.schemas import (
    DealStatusFilter,
    DealSummary,
    Forecast,
    Interval,
    LeadConversion,
    Outcomes,
    PipelineConversion,
    Totals,
    Usage,
)

router = APIRouter(tags=["reports"])

# Checked once: a time zone that PostgreSQL knows too (both read the IANA database).
_TIME_ZONES = frozenset(zoneinfo.available_timezones())
# At most ten years in one report: 120 months, 40 quarters.
MAX_DAYS = 3660

_DEFINITIONS = (
    "\n\nDefinitions: a deal converted back to a lead no longer counts. Amounts are "
    "summed in numeric per currency, never across currencies; a deal without a value "
    "counts in `count` only. Weighted value = value x probability / 100 rounded to the "
    "cent per deal, with the deal's probability, else its stage's, else 100 %; open deals "
    "only. Periods are months or quarters in `timezone`; `from` and `to` are inclusive "
    "dates there. Durations are exact (no floats), in days with 2 decimals; the median "
    "of an even number of durations is the mean of the middle two. Only what the caller "
    "may see is counted (an admin: the whole company). `Accept: text/csv` answers the "
    "same figures as CSV."
)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}

PipelineId = Annotated[uuid.UUID | None, Query(description="Only deals of this pipeline.")]
OwnerId = Annotated[uuid.UUID | None, Query(description="Only records of this owner.")]
DateFrom = Annotated[date, Query(alias="from", description="First day (inclusive).")]
DateTo = Annotated[date, Query(alias="to", description="Last day (inclusive).")]
IntervalParam = Annotated[Interval, Query(description="How the range is cut.")]
TimeZone = Annotated[
    str,
    Query(
        max_length=64,
        description="IANA time zone of the periods and dates, e.g. `Europe/Paris`.",
        json_schema_extra={"enum": sorted(_TIME_ZONES)},
    ),
]


def report(
    path: str, name: str, model: type[BaseModel], *statuses: int
) -> Callable[[Endpoint], Endpoint]:
    """A report's GET route: its docstring, then the definitions every report shares, as
    the operation's description; JSON by `model`, or CSV."""

    def add(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            name=name,
            response_model=model,
            responses={**responses(401, *statuses, 422), **_CSV},
            description=inspect.cleandoc(endpoint.__doc__ or "") + _DEFINITIONS,
        )
        return endpoint

    return add


def _span(date_from: date, date_to: date, interval: Interval, timezone: str) -> reads.Range:
    if timezone not in _TIME_ZONES:
        raise InvalidInput(["query", "timezone"], f"Unknown time zone {timezone!r}.")
    # Each date is valid alone; together they may not be (no schema states it).
    if date_to < date_from:
        raise InvalidInput(["query", "to"], "`to` is before `from`.", CONFLICTING_PARAMETERS)
    if (date_to - date_from).days > MAX_DAYS:
        raise InvalidInput(
            ["query", "to"], f"At most {MAX_DAYS} days in one report.", CONFLICTING_PARAMETERS
        )
    return reads.Range(date_from, date_to, interval, timezone)


def _answer(
    request: Request,
    report: dict[str, Any],
    rows: list[dict[str, Any]],
    columns: Sequence[str] = (),
) -> Response:
    """JSON, or the same figures as CSV rows when the client asks for `text/csv`. The
    header starts with `columns`, so a report with no row still names its columns (a
    spreadsheet's import keeps its mapping), then any other column the rows have."""
    if "text/csv" not in request.headers.get("accept", ""):
        return json_response(report)
    out = io.StringIO()
    header = list(dict.fromkeys([*columns, *(column for row in rows for column in row)]))
    writer = csv.DictWriter(out, fieldnames=header, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")


# The columns of the reports whose CSV may have no row (no deal matched; a pipeline
# without stages); the others always have one (a total, every period of the range).
_SUMMARY_COLUMNS = ("stage_id", "currency", *Totals.model_fields)
_PIPELINE_COLUMNS = ("stage_id", "entered", "won", "reached_stage_id", "reached", "rate")


def _period_rows(
    periods: list[dict[str, Any]], counts: tuple[str, ...], amounts: tuple[str, ...]
) -> list[dict[str, Any]]:
    """CSV rows of a report by period: one per (period, currency), with the period's
    counts and the currency's amounts (one row with no currency for an empty period)."""
    rows = []
    for period in periods:
        currencies = sorted({c for name in amounts for c in period[name]}) or [""]
        for currency in currencies:
            rows.append(
                {
                    "period_start": period["start"].isoformat(),
                    "currency": currency,
                    **{name: period[name] for name in counts},
                    **{name: period[name].get(currency, "") for name in amounts},
                }
            )
    return rows


@report("/reports/deals/summary", "reports:deals-summary", DealSummary)
async def deal_summary(
    request: Request,
    session: Session,
    caller: CurrentCaller,
    status: Annotated[
        DealStatusFilter | None, Query(description="Only deals in this status.")
    ] = None,
    pipeline_id: PipelineId = None,
    stage_id: Annotated[uuid.UUID | None, Query(description="Only deals in this stage.")] = None,
    owner_id: OwnerId = None,
    per_stage: Annotated[bool, Query(description="Also give the figures per stage.")] = False,
) -> Response:
    """How many deals, their value and their weighted value per currency (weighted: open
    deals only), for the whole selection and, with `per_stage`, per stage in pipeline
    order. CSV: one row per (stage, currency), `stage_id` empty for the whole selection."""
    filters = {
        "status": status.value if status else None,
        "pipeline_id": pipeline_id,
        "stage_id": stage_id,
        "owner_id": owner_id,
    }
    report = await reads.deal_summary(session, caller, filters, per_stage)
    rows = [
        {"stage_id": "", "currency": currency, **figures}
        for currency, figures in report["by_currency"].items()
    ]
    for stage in report["stages"] or []:
        rows += [
            {"stage_id": stage["stage_id"], "currency": currency, **figures}
            for currency, figures in stage["by_currency"].items()
        ]
    return _answer(request, report, rows, _SUMMARY_COLUMNS)


@report("/reports/deals/forecast", "reports:deals-forecast", Forecast)
async def deal_forecast(
    request: Request,
    session: Session,
    caller: CurrentCaller,
    date_from: DateFrom,
    date_to: DateTo,
    interval: IntervalParam = Interval.month,
    timezone: TimeZone = "UTC",
    pipeline_id: PipelineId = None,
    owner_id: OwnerId = None,
) -> Response:
    """Per period: the open deals expected to close in it (by `expected_close_date`), their
    value and weighted value, beside the deals won in it (by the day they were won) and
    their value, per currency. Every period of the range is listed, empty ones too. CSV:
    one row per (period, currency)."""
    span = _span(date_from, date_to, interval, timezone)
    filters = {"pipeline_id": pipeline_id, "owner_id": owner_id}
    report = await reads.forecast(session, caller, filters, span)
    rows = _period_rows(
        report["periods"],
        ("open_count", "won_count"),
        ("open_value", "open_weighted_value", "won_value"),
    )
    return _answer(request, report, rows)


@report("/reports/deals/outcomes", "reports:deals-outcomes", Outcomes)
async def deal_outcomes(
    request: Request,
    session: Session,
    caller: CurrentCaller,
    date_from: DateFrom,
    date_to: DateTo,
    interval: IntervalParam = Interval.month,
    timezone: TimeZone = "UTC",
    pipeline_id: PipelineId = None,
    owner_id: OwnerId = None,
) -> Response:
    """Per period: deals won and lost in it (by the day they were won or lost), how many and
    their value per currency; the lost reasons of the range, most frequent first; and
    the days from creation to win of the deals won in the range (average and median).
    CSV: one row per (period, currency)."""
    span = _span(date_from, date_to, interval, timezone)
    filters = {"pipeline_id": pipeline_id, "owner_id": owner_id}
    report = await reads.outcomes(session, caller, filters, span)
    rows = _period_rows(report["periods"], ("won_count", "lost_count"), ("won_value", "lost_value"))
    return _answer(request, report, rows)


@report("/reports/leads/conversion", "reports:leads-conversion", LeadConversion)
async def lead_conversion(
    request: Request,
    session: Session,
    caller: CurrentCaller,
    date_from: DateFrom,
    date_to: DateTo,
    interval: IntervalParam = Interval.month,
    timezone: TimeZone = "UTC",
    source: Annotated[LeadSource | None, Query(description="Only leads of this source.")] = None,
    owner_id: OwnerId = None,
) -> Response:
    """The leads created in the range (by the day they were created): how many, how many of
    them became deals by now and at what rate (converted / created), how many were
    archived without becoming a deal, and the days from creation to conversion (average,
    median, 90th percentile); for the whole range, per period, per source and per owner
    (most leads first); and per conversion rule, of those leads, how many it holds for
    now, how many it converted and how many of those deals are won. CSV: one row per
    figure set, `group` naming it (`total`, `period`, `source`, `owner`, `rule`) and
    `key` its period start, source, owner id or rule id."""
    span = _span(date_from, date_to, interval, timezone)
    filters = {"source": source.value if source else None, "owner_id": owner_id}
    report = await reads.lead_conversion(session, caller, filters, span)

    def row(group: str, key: Any, figures: dict[str, Any]) -> dict[str, Any]:
        hidden = ("start", "source", "owner_id", "rule_id")
        shown = {k: v for k, v in figures.items() if k not in hidden}
        return {
            "group": group,
            "key": key or "",
            **{k: "" if v is None else v for k, v in shown.items()},
        }

    rows = [row("total", "", report["total"])]
    rows += [row("period", p["start"].isoformat(), p) for p in report["periods"]]
    rows += [row("source", f["source"], f) for f in report["by_source"]]
    rows += [row("owner", f["owner_id"], f) for f in report["by_owner"]]
    rows += [row("rule", f["rule_id"], f) for f in report["by_rule"]]
    return _answer(request, report, rows)


@report(
    "/reports/pipelines/{pipeline_id}/conversion",
    "reports:pipeline-conversion",
    PipelineConversion,
    404,
)
async def pipeline_conversion(
    request: Request,
    session: Session,
    caller: CurrentCaller,
    pipeline_id: uuid.UUID,
    date_from: DateFrom,
    date_to: DateTo,
    timezone: TimeZone = "UTC",
) -> Response:
    """How deals move through one pipeline. Per stage, in pipeline order: the deals that
    entered it in the range, how many of them reached each later stage by now and how
    many are won (a deal that skips stages counts for each stage it skipped; a deal
    enters the stage it is created in at its creation), and the average days deals spent
    in it before moves out of it in the range. Also the deals created in the range with
    their won and lost rates, and the moves between stages in the range. History is kept
    from the deal history's migration on: a deal made before it enters its stage of then,
    at its last stage change. 404 for a pipeline of another company. CSV: one row per
    (stage, later stage)."""
    span = _span(date_from, date_to, Interval.month, timezone)
    report = found(await reads.pipeline_conversion(session, caller, pipeline_id, span), "pipeline")
    rows = [
        {
            "stage_id": stage["stage_id"],
            "entered": stage["entered"],
            "won": stage["won"],
            "reached_stage_id": later["stage_id"],
            "reached": later["count"],
            "rate": later["rate"] or "",
        }
        for stage in report["stages"]
        for later in stage["reached"] or [{"stage_id": "", "count": "", "rate": ""}]
    ]
    return _answer(request, report, rows, _PIPELINE_COLUMNS)


@router.get(
    "/usage",
    name="usage:get",
    response_model=Usage,
    responses=responses(401),
)
async def get_usage(session: Session, caller: CurrentCaller) -> Response:
    """The company's usage against its plan.

    Open deals as the open-deal limit counts them, beside the limit; inbox leads; active
    users; the files on its deals and their bytes. Counts only, for any user of the
    company (a front end shows how close the company is to its limit)."""
    return json_response(await reads.usage(session, caller))
