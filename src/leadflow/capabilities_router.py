"""`GET /capabilities`: the capability table of `leadflow.capabilities`, served as data."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, create_model

from leadflow.capabilities import TABLE, as_table
from leadflow.deps import CurrentCaller
from leadflow.errors import responses

# One boolean per capability of the table, described by the table's own text.
_flags: dict[str, Any] = {
    capability.value: (bool, Field(description=description))
    for capability, (_, description) in TABLE.items()
}
CapabilityFlags: type[BaseModel] = create_model(
    "CapabilityFlags",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Whether the entity has each capability.",
    **_flags,
)


class CapabilityTable(BaseModel):
    """The lead/deal capability table: asking a record for a capability it lacks is 409."""

    model_config = ConfigDict(json_schema_extra={"example": cast(dict[str, Any], as_table())})

    lead: CapabilityFlags
    deal: CapabilityFlags


router = APIRouter(tags=["capabilities"])


@router.get(
    "/capabilities",
    name="capabilities:get",
    response_model=CapabilityTable,
    responses=responses(401),
)
async def get_capabilities(_: CurrentCaller) -> dict[str, dict[str, bool]]:
    """What leads and deals can each do (products, archiving, pipeline, ...)."""
    return as_table()
