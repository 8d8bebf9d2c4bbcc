"""Campaign attribution: where a lead (and the deal it becomes) came from.

Six nullable text columns on leads and deals, the five UTM parameters and a `channel`,
each at most `MAX_LENGTH` characters. `channel` is free text like the UTM values (e.g.
`paid_search`, `email`, `social`, `referral`): every marketing team names its channels,
so leadflow keeps what it is given rather than refusing an unknown name. Values are kept
as given (spaces around them stripped); an empty one is no value.

They arrive with `POST /leads`, `PATCH /leads/{id}`, a signed capture's body and the
hosted form page (from its own URL's query string: `/f/{id}?utm_source=news`), travel to
the deal at conversion and back, and filter `GET /leads` (exact match, each on an index).
A shared module: leads, deals, capture and conversion use the same names and limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.schemas import Input

MAX_LENGTH = 255
FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "channel")

_DESCRIPTIONS = {
    "utm_source": "Campaign source (`utm_source`), e.g. `newsletter`, `google`.",
    "utm_medium": "Campaign medium (`utm_medium`), e.g. `email`, `cpc`.",
    "utm_campaign": "Campaign name (`utm_campaign`), e.g. `spring_sale`.",
    "utm_term": "Paid search term (`utm_term`).",
    "utm_content": "What was clicked (`utm_content`), to tell ads or links apart.",
    "channel": (
        "Marketing channel, free text (e.g. `paid_search`, `email`, `social`, "
        "`referral`): kept as given, not checked against a list."
    ),
}


def _blank_is_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


Value = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LENGTH)]
    | None,
    BeforeValidator(_blank_is_none),
]


class AttributionColumns:
    """The columns of a record that carries attribution (leads, deals)."""

    utm_source: Mapped[str | None] = mapped_column(String(MAX_LENGTH))
    utm_medium: Mapped[str | None] = mapped_column(String(MAX_LENGTH))
    utm_campaign: Mapped[str | None] = mapped_column(String(MAX_LENGTH))
    utm_term: Mapped[str | None] = mapped_column(String(MAX_LENGTH))
    utm_content: Mapped[str | None] = mapped_column(String(MAX_LENGTH))
    channel: Mapped[str | None] = mapped_column(String(MAX_LENGTH))


class AttributionInput(Input):
    """Attribution in a request body: each optional; an empty string is no value, and in
    a PATCH null clears it."""

    utm_source: Value = Field(default=None, description=_DESCRIPTIONS["utm_source"])
    utm_medium: Value = Field(default=None, description=_DESCRIPTIONS["utm_medium"])
    utm_campaign: Value = Field(default=None, description=_DESCRIPTIONS["utm_campaign"])
    utm_term: Value = Field(default=None, description=_DESCRIPTIONS["utm_term"])
    utm_content: Value = Field(default=None, description=_DESCRIPTIONS["utm_content"])
    channel: Value = Field(default=None, description=_DESCRIPTIONS["channel"])


def read_field(name: str) -> Any:
    """The answer field of `name` (always present, null when not known), for read models
    that list the attribution after their own fields."""
    return Field(description=_DESCRIPTIONS[name])


def of(record: Any) -> dict[str, str | None]:
    """A record's attribution columns by name (a lead or deal, loaded or a row)."""
    return {name: getattr(record, name) for name in FIELDS}


def from_query(query: Mapping[str, str]) -> dict[str, str]:
    """The attribution a hosted page's URL carries (`?utm_source=news&channel=email`):
    the known names only, stripped, empty and over-long values left out (a link's
    parameters are not the visitor's to correct)."""
    found: dict[str, str] = {}
    for name in FIELDS:
        value = query.get(name)
        if isinstance(value, str) and (value := value.strip()) and len(value) <= MAX_LENGTH:
            found[name] = value
    return found
