from __future__ import annotations

import enum
import uuid

from pydantic import BaseModel, Field


class SearchType(enum.StrEnum):
    lead = "lead"
    deal = "deal"
    person = "person"
    organization = "organization"


class SearchHit(BaseModel):
    type: SearchType = Field(description="The kind of record: its path is `/<type>s/{id}`.")
    id: uuid.UUID
    title: str = Field(description="A lead's or deal's title, a person's or organization's name.")
    matched: list[str] = Field(
        description=(
            "Where the words were found: `title`, `name`, `emails`, `prospect.name`, "
            "`prospect.email`, `prospect.organization_name`, `person.name` and "
            "`organization.name` (the linked contact's), `custom_fields` (a text value)."
        ),
        examples=[["title", "person.name"]],
    )
    score: float = Field(
        description=(
            "Relevance (PostgreSQL ts_rank; words in the title or name weigh most): the "
            "list is ordered by it, highest first."
        )
    )


class SearchResults(BaseModel):
    data: list[SearchHit] = Field(
        description=(
            "The best hits across the types asked, highest score first (ties by type, then id)."
        )
    )
