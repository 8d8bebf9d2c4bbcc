"""Conversion rules in the API: typed conditions (a union discriminated on `type`)."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    TypeAdapter,
)
from pydantic.config import JsonDict

from leadflow.activities.schemas import ActivityType
from leadflow.leads.schemas import LeadRead, LeadSource
from leadflow.schemas import AMOUNT_INPUT, Currency, Input, Name, Output, Patch, fields_unset

MAX_CONDITIONS = 20
MAX_KEYWORDS = 20
# Any letter case and a final dot are accepted (stored lower-cased, without the dot).
HOST_PATTERN = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?$"
_HOST = re.compile(HOST_PATTERN)
_WORD = re.compile(r"\w+")


class RuleAction(enum.StrEnum):
    mark_ready = "mark_ready"
    convert = "convert"


def _keyword(value: str) -> str:
    if not _WORD.search(value):
        raise ValueError("a keyword needs at least one letter or digit")
    return value


def _host(value: str) -> str:
    if not _HOST.fullmatch(value):
        raise ValueError("a host name such as linkedin.com (no scheme, path or port)")
    return value.lower().rstrip(".")


Keyword = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_keyword),
    Field(json_schema_extra={"pattern": _WORD.pattern}),
]
Host = Annotated[
    str,
    Field(max_length=253, examples=["linkedin.com"], json_schema_extra={"pattern": HOST_PATTERN}),
    AfterValidator(_host),
]


class ActivityDone(Input):
    """An activity of this type on the lead is marked done (e.g. an `email`: "first email
    sent")."""

    type: Literal["activity_done"]
    activity_type: ActivityType


class OrganizationMatches(Input):
    """One of the keywords is a whole word (or run of words) of the linked organization's name
    or of the prospect's organization name, ignoring case: `pipes` matches "Pipes and More",
    not "Bagpipes"."""

    type: Literal["organization_matches"]
    keywords: Annotated[list[Keyword], Field(min_length=1, max_length=MAX_KEYWORDS)] = Field(
        examples=[["pipes", "plumbing"]]
    )


class HasLabel(Input):
    """The lead carries this lead label (e.g. "Replied")."""

    type: Literal["has_label"]
    label_id: uuid.UUID = Field(description="A lead label of the company.")


class SourceIs(Input):
    """The lead arrived this way."""

    type: Literal["source_is"]
    source: LeadSource


class HasLink(Input):
    """A link to this host or one of its subdomains appears in the prospect's name or
    organization name, or in a captured field or message (e-mail addresses are not links)."""

    type: Literal["has_link"]
    host: Host


class ValueAtLeast(Input):
    """The lead's value is at least this amount, in this currency (no conversion between
    currencies: a value in another currency does not match)."""

    type: Literal["value_at_least"]
    amount: Annotated[
        Decimal,
        AMOUNT_INPUT,
        Field(ge=0, max_digits=16, decimal_places=2, description="Decimal string, as in Money"),
        PlainSerializer(lambda d: f"{d:.2f}", return_type=str, when_used="json"),
    ] = Field(examples=["1000.00"])
    currency: Currency


Condition = Annotated[
    ActivityDone | OrganizationMatches | HasLabel | SourceIs | HasLink | ValueAtLeast,
    Field(discriminator="type"),
]
Conditions = Annotated[
    list[Condition],
    Field(
        min_length=1,
        max_length=MAX_CONDITIONS,
        description="All must hold for the rule to hold.",
    ),
]
CONDITIONS: TypeAdapter[list[Condition]] = TypeAdapter(list[Condition])

_TARGET = (
    "For `convert`: where the deal goes. Default: the first stage of `pipeline_id`, or of "
    "the default pipeline when neither is given (resolved when the rule is saved)."
)
_EXAMPLE: JsonDict = {
    "name": "First email sent",
    "enabled": True,
    "action": "convert",
    "conditions": [{"type": "activity_done", "activity_type": "email"}],
}


class ConversionRuleCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "example": _EXAMPLE,
            # Only a `convert` rule has a target (checked by the service).
            "allOf": [
                {
                    "anyOf": [
                        {
                            "required": ["action"],
                            "properties": {"action": {"const": RuleAction.convert.value}},
                        },
                        fields_unset("pipeline_id", "stage_id"),
                    ]
                }
            ],
        }
    )

    name: Name = Field(examples=["First email sent"])
    enabled: StrictBool = True
    action: RuleAction = Field(
        description=(
            "`mark_ready`: the lead shows the rule in `readiness`. `convert`: the lead is "
            "converted into a deal; when the conversion is blocked (duplicate contacts, "
            "the open-deal limit) it is marked ready with `blocked_reason` instead."
        )
    )
    pipeline_id: uuid.UUID | None = Field(default=None, description=_TARGET)
    stage_id: uuid.UUID | None = Field(default=None, description=_TARGET)
    conditions: Conditions


_UNSET: Any = None


class ConversionRuleUpdate(Patch):
    """Only the fields sent change. Changing `conditions` or `action`, or disabling the rule,
    clears the readiness it gave; `apply` marks the inbox again."""

    name: Name = Field(default=_UNSET)
    enabled: StrictBool = Field(default=_UNSET)
    action: RuleAction = Field(default=_UNSET)
    pipeline_id: uuid.UUID | None = Field(default=None, description=_TARGET)
    stage_id: uuid.UUID | None = Field(default=None, description=_TARGET)
    conditions: Conditions = Field(default=_UNSET)


class ConversionRuleRead(Output):
    model_config = ConfigDict(json_schema_extra={"example": _EXAMPLE})

    id: uuid.UUID
    name: str
    enabled: bool
    action: RuleAction
    pipeline_id: uuid.UUID | None
    stage_id: uuid.UUID | None
    conditions: list[Condition]
    created_at: datetime
    updated_at: datetime


class DryRun(Output):
    matches: int = Field(description="Inbox leads visible to the caller that the rule matches.")
    data: list[LeadRead] = Field(description="The first of them, newest first.")


class Applied(Output):
    matched: int = Field(description="Inbox leads the rule matched.")
    marked_ready: int = Field(description="Leads newly marked ready by a `mark_ready` rule.")
    converted: int = Field(description="Leads converted by a `convert` rule.")
    blocked: int = Field(
        description="Leads a `convert` rule could not convert; marked ready with the reason."
    )
