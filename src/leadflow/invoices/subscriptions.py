"""What invoices register at start-up: their rows stay on a deal converted back to a lead
and are counted in `conversion.left_on_deal`."""

from __future__ import annotations

from leadflow.capabilities import Capability
from leadflow.deals import left_behind
from leadflow.invoices.models import Invoice


def subscribe() -> None:
    left_behind.register(Capability.invoices, Invoice)
