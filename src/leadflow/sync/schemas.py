from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class DeletedType(enum.StrEnum):
    lead = "lead"
    deal = "deal"
    person = "person"
    organization = "organization"


class DeletedReason(enum.StrEnum):
    deleted = "deleted"
    converted = "converted"


class DeletedRead(BaseModel):
    type: DeletedType = Field(description="The kind of record that was deleted.")
    id: uuid.UUID = Field(description="The deleted record's id.")
    deleted_at: datetime
    reason: DeletedReason = Field(
        description=(
            "`deleted`, or `converted`: a lead that became a deal (or a deal that became a "
            "lead) left every list; its id answers 410 naming the record it became, which "
            "a sync job receives through that record's own list."
        )
    )
