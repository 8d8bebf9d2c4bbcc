"""`GET /capabilities`: the capability table of `leadflow.capabilities`, served as data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, create_model

from leadflow.capabilities import TABLE, Capability, as_table
from leadflow.deps import CurrentCaller
from leadflow.errors import responses

_NOT_BUILT = " Planned, not built yet: false for both."

# One boolean per capability of the table, described by the table's own text.
_flags: dict[str, Any] = {
    capability.value: (
        bool,
        Field(description=row.description + ("" if row.built else _NOT_BUILT)),
    )
    for capability, row in TABLE.items()
}
CapabilityFlags: type[BaseModel] = create_model(
    "CapabilityFlags",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Whether the entity has each capability.",
    **_flags,
)


class CapabilityTable(BaseModel):
    """The lead/deal capability table: asking a record for a capability meant for the other
    kind (a lead for products, a deal for archiving) is 409 `capability-not-supported`."""

    model_config = ConfigDict(json_schema_extra={"example": as_table()})

    lead: CapabilityFlags
    deal: CapabilityFlags
    planned: list[Capability] = Field(
        description="Capabilities of the product not built yet: no route serves them, so "
        "they are false for both entities."
    )


router = APIRouter(tags=["capabilities"])


@router.get(
    "/capabilities",
    name="capabilities:get",
    response_model=CapabilityTable,
    responses=responses(401),
)
async def get_capabilities(_: CurrentCaller) -> dict[str, Any]:
    """What leads and deals can each do (products, archiving, pipeline, ...)."""
    return as_table()
