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


class DeletedRead(BaseModel):
    type: DeletedType = Field(description="The kind of record that was deleted.")
    id: uuid.UUID = Field(description="The deleted record's id.")
    deleted_at: datetime
