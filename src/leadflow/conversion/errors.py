"""Why a conversion is refused."""

from __future__ import annotations

import uuid
from typing import Any

from leadflow.contacts.duplicates import Duplicates
from leadflow.errors import Conflict


class LeadAlreadyConverted(Conflict):
    slug = "lead-converted"
    title = "This lead was already converted into a deal"

    def __init__(self, lead_id: uuid.UUID, deal_id: uuid.UUID) -> None:
        super().__init__(
            "The lead already became a deal; nothing was changed.",
            lead_id=str(lead_id),
            deal_id=str(deal_id),
        )


class DuplicateContacts(Conflict):
    slug = "duplicate-contacts"
    title = "The lead's prospect details match existing contacts"

    def __init__(self, duplicates: Duplicates) -> None:
        super().__init__(
            'Choose an existing contact ({"id": ...}) or ask for a new one '
            '({"create": true}) in `person` / `organization`; nothing was written.',
            duplicates=duplicates.model_dump(mode="json"),
        )


class DealNotOpen(Conflict):
    slug = "deal-not-open"
    title = "Only an open deal can go back to the leads inbox"

    def __init__(self, status: str) -> None:
        super().__init__(f"The deal is {status}; reopen it first.", deal_status=status)


class ConversionsFailed(Conflict):
    slug = "conversion-failed"
    title = "Some leads cannot be converted; nothing was changed"

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        super().__init__(
            f"{len(failures)} of the leads cannot be converted; nothing was changed.",
            failures=failures,
        )
