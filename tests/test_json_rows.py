"""`db.json_rows` (written by orjson) reads back as json.dumps(default=str) wrote it: the
text PostgreSQL parses for `rows_of` means the same values."""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from leadflow.db import json_rows, new_id


class Colour(enum.StrEnum):
    blue = "blue"


class Level(enum.IntEnum):
    high = 3


class DriverUUID(uuid.UUID):
    """As asyncpg's own UUID class: a subclass orjson does not write itself."""


@dataclasses.dataclass
class Point:
    x: int


def _as_json_wrote(rows: list[dict[str, Any]]) -> Any:
    return json.loads(json.dumps(rows, default=str))


def test_rows_read_back_as_json_dumps_wrote_them() -> None:
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "driver_id": DriverUUID(str(uuid.uuid4())),
            "amount": Decimal("1500.50"),
            "day": date(2026, 12, 15),
            "at": datetime(2026, 12, 6, 3, 55, 4, 64471, tzinfo=UTC),
            "naive": datetime(2026, 12, 6, 3, 55),
            "offset": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))),
            "clock": time(12, 30),
            "none": None,
            "flags": [True, False],
            "colour": Colour.blue,
            "level": Level.high,
            "point": Point(1),
            "label_ids": (uuid.uuid4(), uuid.uuid4()),
            "text": 'Olá "é" \\ \n \u2028 \u0001 😀',
            "custom_fields": {"n": "12.5", "nested": {"k": [1, 2.5, None, 1e16, 0.1]}},
        },
        {"id": uuid.uuid4(), "custom_fields": {}},
    ]
    assert json.loads(json_rows(rows)) == _as_json_wrote(rows)


def test_what_orjson_refuses_is_written_by_json() -> None:
    for rows in (
        [{"big": 2**70, "small": -(2**64)}],
        [{"keys": {1: "one", None: "none"}}],
    ):
        assert json.loads(json_rows(rows)) == _as_json_wrote(rows)  # type: ignore[arg-type]
