from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from leadflow.contacts.duplicates import Duplicates
from leadflow.conversion.contacts import ContactChoice, Resolution
from leadflow.deals.schemas import DealRead
from leadflow.leads.schemas import LeadRead
from leadflow.schemas import Input, IsoDate, Money, Output, fields_absent, fields_unset
from leadflow.tenancy import Visibility

MAX_BULK = 500


_NEW_DEAL_FIELDS = ("pipeline_id", "stage_id", "title", "value", "owner_id", "visible_to")


class LeadConversionCreate(Input):
    """Every choice is optional; each has the default a conversion dialog shows."""

    model_config = ConfigDict(
        json_schema_extra={
            # `_existing_deal_takes_no_new_deal_fields` as JSON Schema.
            "allOf": [{"anyOf": [fields_unset("deal_id"), fields_absent(*_NEW_DEAL_FIELDS)]}]
        }
    )

    pipeline_id: uuid.UUID | None = Field(
        default=None, description="Its first stage, unless `stage_id` is given."
    )
    stage_id: uuid.UUID | None = Field(
        default=None, description="Default: first stage of `pipeline_id` or the default pipeline."
    )
    title: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    value: Money | None = Field(default=None, description="Default: the lead's value.")
    owner_id: uuid.UUID | None = None
    visible_to: Visibility | None = None
    expected_close_date: IsoDate | None = None
    person: ContactChoice | None = None
    organization: ContactChoice | None = None
    deal_id: uuid.UUID | None = Field(
        default=None,
        description="Merge the lead into this open deal instead of creating one.",
    )

    @model_validator(mode="after")
    def _existing_deal_takes_no_new_deal_fields(self) -> LeadConversionCreate:
        if self.deal_id is not None:
            given = [name for name in _NEW_DEAL_FIELDS if name in self.model_fields_set]
            if given:
                raise ValueError(f"with deal_id the deal exists already; drop {', '.join(given)}")
        return self


class BulkConversionCreate(Input):
    lead_ids: Annotated[
        list[uuid.UUID],
        Field(min_length=1, max_length=MAX_BULK, json_schema_extra={"uniqueItems": True}),
    ]
    pipeline_id: uuid.UUID | None = None
    stage_id: uuid.UUID | None = None
    resolutions: dict[uuid.UUID, Resolution] = Field(
        default_factory=dict,
        description="Per lead id: which contacts to use when its prospect details match some.",
    )

    @model_validator(mode="after")
    def _unique(self) -> BulkConversionCreate:
        if len(set(self.lead_ids)) != len(self.lead_ids):
            raise ValueError("lead_ids contains the same lead twice")
        return self


class Moved(Output):
    notes: int
    activities: int


class LeftOnDeal(Output):
    products: int
    participants: int
    files: int
    invoices: int = Field(default=0, description="0 in conversions made before invoices.")
    documents: int = Field(default=0, description="0 in conversions made before documents.")
    projects: int = Field(
        default=0, description="Projects linked to the deal (they keep the link)."
    )


class ConversionRead(Output):
    id: uuid.UUID
    direction: Literal["lead_to_deal", "deal_to_lead"]
    lead_id: uuid.UUID
    deal_id: uuid.UUID
    status: Literal["completed"]
    moved: Moved
    left_on_deal: LeftOnDeal | None = Field(
        description="Deal-only data that stayed on the original deal (deal to lead)."
    )
    rule_id: uuid.UUID | None
    user_id: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> ConversionRead:
        return cls(
            id=row.id,
            direction=row.direction,
            lead_id=row.lead_id,
            deal_id=row.deal_id,
            status=row.status,
            moved=Moved(**row.moved),
            left_on_deal=LeftOnDeal(**row.left_on_deal) if row.left_on_deal else None,
            rule_id=row.rule_id,
            user_id=row.user_id,
            created_at=row.created_at,
        )


class LeadConverted(Output):
    conversion: ConversionRead
    deal: DealRead


class LeadsConverted(Output):
    conversions: list[ConversionRead]


class DealConverted(Output):
    conversion: ConversionRead
    lead: LeadRead


class DealPreview(Output):
    """The deal a conversion would make, defaults filled in; not written."""

    title: str
    value: Money | None
    owner_id: uuid.UUID | None
    person_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    probability: int | None
    expected_close_date: date | None
    label_ids: list[uuid.UUID]
    visible_to: Visibility
    creates_person: bool = Field(description="A person would be made from prospect details.")
    creates_organization: bool = Field(
        description="An organization would be made from prospect details."
    )


class ConversionPreview(Output):
    deal: DealPreview
    duplicates: Duplicates
    moves: Moved
