"""Readable, stable field keys: made from the name (`Budget range` -> `budget_range`) or
given, unique per entity of a company, never a system field's name, never changed and
never reused (tombstones keep theirs)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from leadflow.fields.limits import MAX_KEY_LENGTH

KEY_PATTERN = rf"^[a-z][a-z0-9_]{{0,{MAX_KEY_LENGTH - 1}}}$"

# Names a record's answer or body uses, plus what formulas name (`#value`): a custom
# field may not take one, so that a key never reads as a system field. The deal set also
# serves leads, so it holds both. tests/fields check these cover the read models.
_COMMON = frozenset(
    {"id", "company_id", "custom_fields", "created_at", "updated_at", "owner_id", "visible_to"}
)
_DEAL = frozenset(
    {
        # deals
        "title", "value", "value_from_products", "person_id", "organization_id",
        "pipeline_id", "stage_id", "status", "probability", "expected_close_date",
        "label_ids", "lost_reason", "won_at", "lost_at", "closed_at", "rotten",
        "stage_changed_at", "source_lead_id", "converted_lead_id",
        # leads
        "prospect", "fields", "source", "is_archived", "archived_at", "was_seen",
        "readiness", "source_deal_id", "converted_deal_id", "converted_at",
        # what formulas read besides the custom fields
        "weighted_value", "products_total", "activities_count", "done_activities_count",
        # attribution (leads and deals)
        "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "channel",
    }
)  # fmt: skip
_PERSON = frozenset({"name", "emails", "phones", "phones_e164", "organization_id"})
_ORGANIZATION = frozenset({"name", "address", "website"})
_PRODUCT = frozenset({"name", "code", "unit_price", "currency", "active"})

SYSTEM_NAMES: dict[str, frozenset[str]] = {
    "deal": _COMMON | _DEAL,
    "person": _COMMON | _PERSON,
    "organization": _COMMON | _ORGANIZATION,
    "product": _COMMON | _PRODUCT,
}


def key_from_name(name: str) -> str:
    """Lower-case ASCII words joined by `_`; accents dropped, a leading digit prefixed
    with `f_`, and `field` for a name with no Latin letter or digit at all."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_") or "field"
    if key[0].isdigit():
        key = f"f_{key}"
    return key[:MAX_KEY_LENGTH].rstrip("_")


def free_key(base: str, entity: str, taken: Iterable[str]) -> str:
    """`base`, or `base_2`, `base_3`, ... : the first that is neither taken (by a live or
    deleted field) nor a system name of the entity."""
    used = set(taken) | SYSTEM_NAMES[entity]
    if base not in used:
        return base
    n = 2
    while True:
        suffix = f"_{n}"
        candidate = base[: MAX_KEY_LENGTH - len(suffix)].rstrip("_") + suffix
        if candidate not in used:
            return candidate
        n += 1
