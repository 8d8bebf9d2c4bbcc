from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from leadflow.fields.formulas import MAX_FORMULA_LENGTH
from leadflow.fields.keys import KEY_PATTERN
from leadflow.fields.limits import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_OPTION_LABEL_LENGTH,
    MAX_OPTIONS_PER_FIELD,
)
from leadflow.schemas import JSON_NUMBER, NOT_BLANK, Input, Output, Patch


class FieldEntity(enum.StrEnum):
    """Whose records carry the field; leads carry the `deal` fields (conversion in either
    direction keeps every value)."""

    deal = "deal"
    person = "person"
    organization = "organization"
    product = "product"


class FieldType(enum.StrEnum):
    text = "text"
    long_text = "long_text"
    number = "number"
    monetary = "monetary"
    date = "date"
    date_range = "date_range"
    time = "time"
    enum = "enum"
    set = "set"
    user = "user"
    person = "person"
    organization = "organization"
    phone = "phone"
    email = "email"
    url = "url"
    boolean = "boolean"
    formula = "formula"


WITH_OPTIONS = frozenset({FieldType.enum, FieldType.set})
_WITH_OPTIONS: list[Any] = sorted(t.value for t in WITH_OPTIONS)


class OptionColor(enum.StrEnum):
    gray = "gray"
    red = "red"
    orange = "orange"
    yellow = "yellow"
    green = "green"
    blue = "blue"
    purple = "purple"
    pink = "pink"


FieldName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    NOT_BLANK,
    Field(examples=["Budget range"]),
]
OptionLabel = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_OPTION_LABEL_LENGTH),
    NOT_BLANK,
    Field(examples=["10k-50k"]),
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]
FieldKey = Annotated[
    str,
    StringConstraints(pattern=KEY_PATTERN),
    Field(
        description=(
            "The field's key in `custom_fields`: lower-case letters, digits and `_`, starting "
            "with a letter. Unique per entity, never a system field's name; it never changes "
            "and is never reused after the field is deleted."
        ),
        examples=["budget_range"],
    ),
]

_UNSET: Any = None
Formula = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_FORMULA_LENGTH),
    NOT_BLANK,
    Field(examples=["#value * 0.8 + #setup_fee"]),
]
_FORMULA = (
    "Deals only, for the `formula` type: an expression over the deal's `#value`, "
    "`#weighted_value`, `#probability`, `#products_total`, `#activities_count`, "
    "`#done_activities_count` and its number, monetary and formula fields (`#key`), with "
    "`+ - * / ( )`, comparisons, `x - 10%` (10 percent of x), `round(x, places)`, "
    "`min(...)`, `max(...)` and `if(condition, then, else)`. Its value is read-only, null "
    "when an input is null (not calculated), and monetary in its monetary inputs' currency."
)
_OPTIONS = (
    "The choices of an `enum` or `set` field (at least one), in their order; other types "
    "take none. Labels are unique in the field, ignoring case."
)


class OptionCreate(Input):
    label: OptionLabel
    color: OptionColor = OptionColor.gray


class OptionChange(Input):
    """An option to keep (by `id`, its label and colour as given) or, without `id`, to add."""

    id: Annotated[int, Field(ge=1, le=2**31 - 1), JSON_NUMBER] | None = Field(
        default=None, examples=[1]
    )
    label: OptionLabel
    color: OptionColor = OptionColor.gray


class FieldCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "name": "Budget range",
                "type": "enum",
                "options": [{"label": "under 10k"}, {"label": "10k-50k", "color": "green"}],
            },
            # Options for enum and set (at least one), none for the other types.
            "allOf": [
                {
                    "anyOf": [
                        {
                            "required": ["type", "options"],
                            "properties": {
                                "type": {"enum": _WITH_OPTIONS},
                                "options": {"minItems": 1},
                            },
                        },
                        {
                            "properties": {
                                "type": {"not": {"enum": _WITH_OPTIONS}},
                                "options": {"maxItems": 0},
                            }
                        },
                    ]
                },
                # A formula for the formula type, and only there.
                {
                    "anyOf": [
                        {
                            "required": ["type", "formula"],
                            "properties": {
                                "type": {"const": "formula"},
                                "formula": {"type": "string"},
                            },
                        },
                        {
                            "properties": {
                                "type": {"not": {"const": "formula"}},
                                "formula": {"type": "null"},
                            }
                        },
                    ]
                },
            ],
        }
    )

    name: FieldName
    key: FieldKey | None = Field(
        default=None,
        description="Made from the name when omitted (`Budget range`: `budget_range`).",
    )
    type: FieldType
    description: Description | None = None
    options: list[OptionCreate] = Field(
        default_factory=list, max_length=MAX_OPTIONS_PER_FIELD, description=_OPTIONS
    )
    formula: Formula | None = Field(default=None, description=_FORMULA)

    @model_validator(mode="after")
    def _formula_for_the_formula_type(self) -> FieldCreate:
        if (self.type is FieldType.formula) != (self.formula is not None):
            raise ValueError("`formula` is given for the formula type, and only for it")
        return self


class FieldUpdate(Patch):
    """Only what is sent changes. `options` is the whole new list: options named by `id`
    are kept (relabelled, recoloured, reordered), options without `id` are added, options
    left out are removed (409 while records use them, unless `clear_values=true`). `key`
    and `type` never change: sending another value answers 409."""

    name: FieldName = Field(default=_UNSET)
    description: Description | None = None
    options: list[OptionChange] = Field(
        default=_UNSET, max_length=MAX_OPTIONS_PER_FIELD, description=_OPTIONS
    )
    formula: Formula = Field(default=_UNSET, description="A formula field's new formula.")
    key: FieldKey = Field(default=_UNSET, description="Immutable: only its current value.")
    type: FieldType = Field(default=_UNSET, description="Immutable: only its current value.")


class OptionRead(Output):
    id: int = Field(description="Stored in records' values; never reused.", examples=[1])
    label: str = Field(examples=["10k-50k"])
    color: OptionColor


class FieldRead(Output):
    id: uuid.UUID
    entity: FieldEntity
    key: str = Field(examples=["budget_range"])
    name: str = Field(examples=["Budget range"])
    type: FieldType
    description: str | None
    options: list[OptionRead] = Field(description="In their order; empty unless enum or set.")
    formula: str | None = Field(description="A formula field's formula; null for the others.")
    created_at: datetime
    updated_at: datetime
