"""`?custom_fields={"budget_range": 2}`: a list keeps the records whose custom fields
hold these values (JSON containment, `custom_fields @> filter`, which the GIN index of
each carrier's column answers). Equality for every type, as the values are answered
(canonical: `"1500.5"`, `{"amount": "1500.00", "currency": "EUR"}`, an E.164 phone);
for a `set`, `{"tags": [1]}` keeps the records whose set holds option 1."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import Query

from leadflow.errors import INVALID_CUSTOM_FIELD, InvalidInput
from leadflow.fields.keys import KEY_PATTERN

MAX_FILTER_LENGTH = 2000
MAX_FILTER_KEYS = 20

CustomFieldsFilter = Annotated[
    str | None,
    Query(
        alias="custom_fields",
        min_length=2,
        max_length=MAX_FILTER_LENGTH,
        description=(
            "A JSON object of custom field values, as the records answer them: only the "
            'records whose `custom_fields` hold every one (`{"budget_range": 2}`; for a set '
            'field, `{"tags": [1]}` keeps records whose set holds option 1). At most '
            f"{MAX_FILTER_KEYS} keys."
        ),
        examples=['{"budget_range": 2}'],
    ),
]


def parse_filter(raw: str | None) -> str | None:
    """The filter as JSON text for the statement's `custom_fields` bind parameter (the
    read path hands it to the driver as it is), or None when absent or empty; 422 when
    it is not a JSON object of field keys."""
    if raw is None:
        return None
    loc = ["query", "custom_fields"]
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(loc, "not JSON", INVALID_CUSTOM_FIELD) from exc
    if not isinstance(value, dict):
        raise InvalidInput(loc, "a JSON object of custom field values", INVALID_CUSTOM_FIELD)
    if len(value) > MAX_FILTER_KEYS:
        raise InvalidInput(loc, f"at most {MAX_FILTER_KEYS} keys", INVALID_CUSTOM_FIELD)
    for key in value:
        if not re.fullmatch(KEY_PATTERN, key):
            raise InvalidInput(loc, f"{key!r} is not a field key", INVALID_CUSTOM_FIELD)
    return orjson.dumps(value).decode() if value else None
