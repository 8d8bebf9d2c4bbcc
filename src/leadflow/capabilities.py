"""The lead/deal capability table of the mission, as data.

The routers, the conversion use cases and `GET /capabilities` all read this one table.
Each row says which kind of record the mission means the capability for and whether it
is built: `GET /capabilities` says true only where it is both (a route serves it), and
names the capabilities not built yet under `planned`. Asking a record for a capability
meant for the other kind raises `CapabilityNotSupported` (409), built or not.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, NamedTuple

from leadflow.errors import Conflict


class Entity(StrEnum):
    lead = "lead"
    deal = "deal"


class Capability(StrEnum):
    persons_and_organizations = "persons_and_organizations"
    notes = "notes"
    activities = "activities"
    labels = "labels"
    lead_capture = "lead_capture"
    archiving = "archiving"
    pipeline = "pipeline"
    products = "products"
    participants = "participants"
    files = "files"
    documents = "documents"
    invoices = "invoices"
    projects = "projects"
    formula_fields = "formula_fields"
    changelog = "changelog"
    open_deal_limit = "open_deal_limit"
    import_ = "import"


class Row(NamedTuple):
    """A capability: the entities the mission's table gives it to, its text, and whether
    it is built (while not, no route serves it: false for both, listed as planned)."""

    meant_for: frozenset[Entity]
    description: str
    built: bool = True


_BOTH = frozenset(Entity)
_LEAD = frozenset({Entity.lead})
_DEAL = frozenset({Entity.deal})

TABLE: Final[dict[Capability, Row]] = {
    Capability.persons_and_organizations: Row(
        _BOTH, "Linked to a person, an organization, or both."
    ),
    Capability.notes: Row(_BOTH, "Notes, with comments and mentions."),
    Capability.activities: Row(_BOTH, "Calls, meetings, tasks, deadlines, emails, lunches."),
    Capability.labels: Row(_BOTH, "Labels (leads use lead labels)."),
    Capability.lead_capture: Row(
        _BOTH,
        "Created by lead-capture tools (forms, webhooks); "
        "deals only when a form is set to create deals.",
    ),
    Capability.archiving: Row(_LEAD, "Can be archived."),
    Capability.pipeline: Row(_DEAL, "Enters a pipeline and a stage; won / lost."),
    Capability.products: Row(_DEAL, "Products (line items)."),
    Capability.participants: Row(_DEAL, "Participants."),
    Capability.files: Row(_DEAL, "Files."),
    Capability.documents: Row(_DEAL, "Documents (PDF) made from the company's templates."),
    Capability.invoices: Row(_DEAL, "Invoicing."),
    Capability.projects: Row(_DEAL, "Linked to projects."),
    Capability.formula_fields: Row(_DEAL, "Formula fields."),
    Capability.changelog: Row(_DEAL, "Changelog (field-level history)."),
    Capability.open_deal_limit: Row(_DEAL, "Counted against the plan's open-deal limit."),
    Capability.import_: Row(_BOTH, "Can be imported from CSV / XLSX."),
}

# Capabilities of the mission not built yet, in the table's order.
PLANNED: Final = tuple(capability for capability, row in TABLE.items() if not row.built)

# Fields of a deal body that belong to the pipeline capability.
PIPELINE_FIELDS: Final = frozenset({"stage_id", "pipeline_id", "status"})


class CapabilityNotSupported(Conflict):
    slug = "capability-not-supported"
    title = "This capability is not available for this kind of record"
    members = {"capability": str, "entity": Entity}  # noqa: RUF012 - read-only class data

    def __init__(self, entity: Entity, capability: str) -> None:
        super().__init__(
            f"A {entity.value} does not support {capability!r}.",
            capability=capability,
            entity=entity.value,
        )


def meant_for(entity: Entity, capability: Capability) -> bool:
    """Whether the mission's table gives the capability to this kind of record."""
    return entity in TABLE[capability].meant_for


def supports(entity: Entity, capability: Capability) -> bool:
    """Whether the record has the capability today: meant for it and built."""
    return TABLE[capability].built and meant_for(entity, capability)


def require(entity: Entity, capability: Capability, asked_as: str | None = None) -> None:
    """Raise `CapabilityNotSupported` naming `asked_as` (a path segment or field name)
    when the capability is meant for the other kind of record. A planned capability is
    not refused here: no route serves it yet, so nothing can ask for it."""
    if not meant_for(entity, capability):
        raise CapabilityNotSupported(entity, asked_as or capability.value)


def as_table() -> dict[str, Any]:
    """`{"lead": {"products": false, ...}, "deal": {...}, "planned": ["invoices", ...]}`
    for GET /capabilities: true only where the capability is meant for the entity and
    built."""
    table: dict[str, Any] = {
        entity.value: {capability.value: supports(entity, capability) for capability in TABLE}
        for entity in Entity
    }
    table["planned"] = [capability.value for capability in PLANNED]
    return table
