"""The committed OpenAPI document is this function's output; a test compares them."""

from __future__ import annotations

import json

from fastapi import FastAPI


def render(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
