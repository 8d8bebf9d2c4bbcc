"""The route table: every path operation of the app in one flat list.

`app.include_router()` in this FastAPI keeps each included router as a wrapper that is
searched on every request, the matched router twice, with bookkeeping per candidate:
it took about a third of the CPU of reading one lead. The routers here never include
other routers or carry include-time options, so their routes are added to the app
once, with the prefix in their path: a request is matched against plain routes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import compile_path


def add_routes(app: FastAPI, routers: Iterable[APIRouter], prefix: str = "") -> None:
    """Add the routes of `routers` to the app, in order, their paths under `prefix`, their
    operation ids from the app's `generate_unique_id_function`."""
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                raise TypeError(f"{route!r}: only path operations can be added flat")
            added = copy.copy(route)
            added.path = prefix + route.path
            added.path_regex, added.path_format, added.param_convertors = compile_path(
                added.path
            )
            added.unique_id = app.router.generate_unique_id_function(added)
            app.router.routes.append(added)
