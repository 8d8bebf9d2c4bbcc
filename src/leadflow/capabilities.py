"""The lead/deal capability table of the mission, as data.

The routers, the conversion use cases and `GET /capabilities` all read this one table;
asking an entity for a capability it lacks raises `CapabilityNotSupported`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

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
    invoices = "invoices"
    formula_fields = "formula_fields"
    changelog = "changelog"
    open_deal_limit = "open_deal_limit"
    import_ = "import"


_BOTH = frozenset(Entity)
_LEAD = frozenset({Entity.lead})
_DEAL = frozenset({Entity.deal})

# capability -> (entities that have it, what the mission's table says about it)
TABLE: Final[dict[Capability, tuple[frozenset[Entity], str]]] = {
    Capability.persons_and_organizations: (_BOTH, "Linked to a person, an organization, or both."),
    Capability.notes: (_BOTH, "Notes, with comments and mentions."),
    Capability.activities: (_BOTH, "Calls, meetings, tasks, deadlines, emails, lunches."),
    Capability.labels: (_BOTH, "Labels (leads use lead labels)."),
    Capability.lead_capture: (
        _BOTH,
        "Created by lead-capture tools (forms, webhooks); "
        "deals only when a form is set to create deals.",
    ),
    Capability.archiving: (_LEAD, "Can be archived."),
    Capability.pipeline: (_DEAL, "Enters a pipeline and a stage; won / lost."),
    Capability.products: (_DEAL, "Products (line items)."),
    Capability.participants: (_DEAL, "Participants."),
    Capability.files: (_DEAL, "Files and documents."),
    Capability.invoices: (_DEAL, "Invoicing."),
    Capability.formula_fields: (_DEAL, "Formula fields."),
    Capability.changelog: (_DEAL, "Changelog (field-level history)."),
    Capability.open_deal_limit: (_DEAL, "Counted against the plan's open-deal limit."),
    Capability.import_: (_BOTH, "Can be imported from CSV / XLSX."),
}

# Fields of a deal body that belong to the pipeline capability.
PIPELINE_FIELDS: Final = frozenset({"stage_id", "pipeline_id", "status"})


class CapabilityNotSupported(Conflict):
    slug = "capability-not-supported"
    title = "This capability is not available for this kind of record"

    def __init__(self, entity: Entity, capability: str) -> None:
        super().__init__(
            f"A {entity.value} does not support {capability!r}.",
            capability=capability,
            entity=entity.value,
        )


def supports(entity: Entity, capability: Capability) -> bool:
    return entity in TABLE[capability][0]


def require(entity: Entity, capability: Capability, asked_as: str | None = None) -> None:
    """Raise `CapabilityNotSupported` naming `asked_as` (a path segment or field name)."""
    if not supports(entity, capability):
        raise CapabilityNotSupported(entity, asked_as or capability.value)


def as_table() -> dict[str, dict[str, bool]]:
    """`{"lead": {"products": false, ...}, "deal": {...}}` for GET /capabilities."""
    return {
        entity.value: {cap.value: entity in entities for cap, (entities, _) in TABLE.items()}
        for entity in Entity
    }
