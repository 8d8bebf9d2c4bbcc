"""The answers of `/reports`: figures per currency (amounts are never added across
currencies), amounts as decimal strings computed in `numeric`, periods as dates in the
report's time zone."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

Amount = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+\.[0-9]{2}$",
        description="Decimal string with 2 decimals, computed in numeric",
        examples=["1500.00"],
    ),
]
Days = Annotated[
    str | None,
    Field(
        pattern=r"^[0-9]+\.[0-9]{2}$",
        description="Days as a decimal string (2 decimals); null when nothing was measured",
        examples=["12.50"],
    ),
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]


class Interval(StrEnum):
    month = "month"
    quarter = "quarter"


class DealStatusFilter(StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


class Totals(BaseModel):
    """The deals of one currency: how many, their value, and their weighted value
    (value x probability / 100, each deal rounded to the cent; open deals only)."""

    count: int
    value: Amount
    weighted_value: Amount


class StageSummary(BaseModel):
    stage_id: uuid.UUID
    count: int = Field(description="Deals in the stage, with or without a value")
    by_currency: dict[CurrencyCode, Totals]


class DealSummary(BaseModel):
    count: int = Field(description="Deals counted, with or without a value")
    by_currency: dict[CurrencyCode, Totals]
    stages: list[StageSummary] | None = Field(
        description="Per stage, in pipeline order (`per_stage=true`); otherwise null"
    )


class ForecastPeriod(BaseModel):
    start: date = Field(description="First day of the period")
    open_count: int = Field(description="Open deals expected to close in the period")
    open_value: dict[CurrencyCode, Amount]
    open_weighted_value: dict[CurrencyCode, Amount]
    won_count: int = Field(description="Deals won in the period")
    won_value: dict[CurrencyCode, Amount]


class Forecast(BaseModel):
    interval: Interval
    timezone: str
    periods: list[ForecastPeriod]


class OutcomePeriod(BaseModel):
    start: date = Field(description="First day of the period")
    won_count: int
    won_value: dict[CurrencyCode, Amount]
    lost_count: int
    lost_value: dict[CurrencyCode, Amount]


class LostReason(BaseModel):
    reason: str | None = Field(description="As written when the deal was lost; null if none")
    count: int


class Outcomes(BaseModel):
    interval: Interval
    timezone: str
    periods: list[OutcomePeriod]
    lost_reasons: list[LostReason] = Field(description="Most frequent first")
    days_to_win_average: Days
    days_to_win_median: Days


class LeadFigures(BaseModel):
    created: int = Field(description="Leads created")
    converted: int = Field(description="Of those, leads that became a deal by now")
    archived: int = Field(description="Of those, leads archived without becoming a deal")
    conversion_rate: Annotated[
        str | None,
        Field(
            pattern=r"^[0-9]\.[0-9]{4}$",
            description="converted / created, 4 decimals; null when none was created",
        ),
    ]
    days_to_convert_average: Days
    days_to_convert_median: Days
    days_to_convert_p90: Days


class LeadPeriod(LeadFigures):
    start: date = Field(description="First day of the period")


class LeadSourceFigures(LeadFigures):
    source: str


class LeadOwnerFigures(LeadFigures):
    owner_id: uuid.UUID | None


class RuleFigures(BaseModel):
    """What one conversion rule did with the leads created in the range."""

    rule_id: uuid.UUID
    name: str
    ready: int = Field(description="Leads the rule holds for now (marked ready)")
    converted: int = Field(description="Leads the rule converted")
    won: int = Field(description="Of the deals it made, how many are won now")
    won_rate: Annotated[
        str | None,
        Field(pattern=r"^[0-9]\.[0-9]{4}$", description="won / converted; null when none"),
    ]


class LeadConversion(BaseModel):
    interval: Interval
    timezone: str
    total: LeadFigures
    periods: list[LeadPeriod]
    by_source: list[LeadSourceFigures]
    by_owner: list[LeadOwnerFigures]
    by_rule: list[RuleFigures] = Field(description="Every conversion rule of the company")


def amount(value: Decimal) -> str:
    return f"{value:.2f}"


Rate = Annotated[
    str | None,
    Field(pattern=r"^[0-9]\.[0-9]{4}$", description="A share, 4 decimals; null over nothing"),
]


class StageReached(BaseModel):
    stage_id: uuid.UUID
    count: int = Field(description="Of the deals that entered the stage, how many reached this")
    rate: Rate


class StageFunnel(BaseModel):
    stage_id: uuid.UUID
    entered: int = Field(description="Deals that reached the stage in the range")
    reached: list[StageReached] = Field(description="Each later stage, in pipeline order")
    won: int = Field(description="Of the deals that entered the stage, how many are won now")
    won_rate: Rate
    days_in_stage_average: Days


class AddedDeals(BaseModel):
    count: int = Field(description="Deals created in the pipeline in the range")
    won: int
    lost: int
    won_rate: Rate
    lost_rate: Rate


class Movement(BaseModel):
    from_stage_id: uuid.UUID
    to_stage_id: uuid.UUID
    count: int


class PipelineConversion(BaseModel):
    timezone: str
    pipeline_id: uuid.UUID
    stages: list[StageFunnel] = Field(description="In pipeline order")
    added: AddedDeals
    movements: list[Movement] = Field(description="Moves between stages, most frequent first")


class FilesUsage(BaseModel):
    count: int = Field(description="Files on the company's deals.")
    bytes: int = Field(description="Their size in bytes.")


class Usage(BaseModel):
    """What the company's plan counts, as of now."""

    open_deals: int = Field(description="Open deals, as the open-deal limit counts them.")
    max_open_deals: int | None = Field(
        description="The plan's open-deal limit; null when there is none."
    )
    leads: int = Field(description="Leads in the inbox (not counted by any limit).")
    users: int = Field(description="Active (not deactivated) users.")
    files: FilesUsage
