"""Deal-only data of packages above deals, counted when a deal goes back to a lead.

Conversion (above deals) counts what stays on the deal (`conversion.left_on_deal`); the
packages that keep deal-only records above it (invoices, documents, projects) register
their table here at start-up, so that neither imports the other.
"""

from __future__ import annotations

from typing import Any

from leadflow.capabilities import TABLE, Capability, Entity

# Capability -> an ORM class with a `deal_id` column: one row per record left behind.
_REGISTERED: dict[Capability, Any] = {}


def register(capability: Capability, model: Any) -> None:
    """Count `model`'s rows of a deal as `capability` in `left_on_deal` (idempotent)."""
    assert Entity.lead not in TABLE[capability].meant_for, "only deal-only data stays behind"
    _REGISTERED[capability] = model


def registered() -> dict[Capability, Any]:
    return dict(_REGISTERED)
