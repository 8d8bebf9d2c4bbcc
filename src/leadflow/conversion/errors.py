"""Why a conversion is refused."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from leadflow.contacts.duplicates import Duplicates
from leadflow.errors import Conflict


class ConversionFailure(BaseModel):
    """Why one lead of a bulk conversion cannot be converted: its problem's slug (`type`)
    and detail, with that problem's extension members beside them."""

    model_config = ConfigDict(extra="allow")

    lead_id: uuid.UUID
    type: str
    detail: str


class LeadAlreadyConverted(Conflict):
    slug = "lead-converted"
    title = "This lead was already converted into a deal"
    members = {"lead_id": uuid.UUID, "deal_id": uuid.UUID}  # noqa: RUF012 - read-only class data

    def __init__(self, lead_id: uuid.UUID, deal_id: uuid.UUID) -> None:
        super().__init__(
            "The lead already became a deal; nothing was changed.",
            lead_id=str(lead_id),
            deal_id=str(deal_id),
        )


class DuplicateContacts(Conflict):
    slug = "duplicate-contacts"
    title = "The lead's prospect details match existing contacts"
    members = {"duplicates": Duplicates}  # noqa: RUF012 - read-only class data

    def __init__(self, duplicates: Duplicates) -> None:
        super().__init__(
            'Choose an existing contact ({"id": ...}) or ask for a new one '
            '({"create": true}) in `person` / `organization`; nothing was written.',
            duplicates=duplicates.model_dump(mode="json"),
        )


class DealNotOpen(Conflict):
    slug = "deal-not-open"
    title = "Only an open deal can go back to the leads inbox"
    members = {"deal_status": str}  # noqa: RUF012 - read-only class data

    def __init__(self, status: str) -> None:
        super().__init__(f"The deal is {status}; reopen it first.", deal_status=status)


class ConversionsFailed(Conflict):
    slug = "conversion-failed"
    title = "Some leads cannot be converted; nothing was changed"
    members = {"failures": list[ConversionFailure]}  # noqa: RUF012 - read-only class data

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        super().__init__(
            f"{len(failures)} of the leads cannot be converted; nothing was changed.",
            failures=failures,
        )
