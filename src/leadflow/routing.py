"""The route table: every path operation of the app in one flat list, indexed by prefix.

`app.include_router()` in this FastAPI keeps each included router as a wrapper that is
searched on every request, the matched router twice, with bookkeeping per candidate:
it took about a third of the CPU of reading one lead. The routers here never include
other routers or carry include-time options, so their routes are added to the app
once, with the prefix in their path.

A router then still tries its routes in order, and a deal route sat some hundred routes
deep (~15-20% of the CPU of reading a deal). `index_routes` puts the app's path
operations into one `RouteGroup` per static path prefix (`/api/v1/deals`, `/f`, ...):
the router tries a dozen groups, each rejects a request by one string comparison, and
only the request's own group tries its routes, in their original order. No group prefix
lies under another (such routes share the outer group), so a request can match in one
group only and the order between groups cannot matter.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

import fastapi.routing
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, NoMatchFound, compile_path
from starlette.types import Receive, Scope, Send

# Static path segments that make a group's key: /api/v1/<resource>.
KEY_SEGMENTS = 3

# FastAPI's reading of the route context an included router leaves in the scope (None
# when this FastAPI has none): a route then matches by that context, not by its path.
_route_context = getattr(fastapi.routing, "_get_scope_effective_route_context", None)


def add_routes(app: FastAPI, routers: Iterable[APIRouter], prefix: str = "") -> None:
    """Add the routes of `routers` to the app, in order, their paths under `prefix`, their
    operation ids from the app's `generate_unique_id_function`."""
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                raise TypeError(f"{route!r}: only path operations can be added flat")
            added = copy.copy(route)
            added.path = prefix + route.path
            added.path_regex, added.path_format, added.param_convertors = compile_path(added.path)
            added.unique_id = app.router.generate_unique_id_function(added)
            app.router.routes.append(added)


class RouteGroup(BaseRoute):
    """The path operations under one static prefix, tried only for paths under it."""

    def __init__(self, prefix: str, routes: list[APIRoute]) -> None:
        self.prefix = prefix
        self.routes = routes

    def _under(self, path: str) -> bool:
        return _contains(self.prefix, path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not self._under(_route_path(scope)):
            return Match.NONE, {}
        partial: Scope | None = None
        # A route whose path pattern rejects the path answers Match.NONE: rejected here by
        # the pattern alone, without its `matches` (four Python calls and a scope look-up
        # each; a conversion tried 25 routes of the leads group before its own). Only
        # where a route matches by its path, as every route of this flat table does.
        path = get_route_path(scope) if _route_context and _route_context(scope) is None else None
        for route in self.routes:
            if path is not None and route.path_regex.match(path) is None:
                continue
            match, child_scope = route.matches(scope)  # sets child_scope["route"]
            if match is Match.FULL:
                return match, child_scope
            if match is Match.PARTIAL and partial is None:
                partial = child_scope
        return (Match.PARTIAL, partial) if partial is not None else (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope["route"]  # the member `matches` chose
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)


class RouteIndex(BaseRoute):
    """The groups of the route table behind one look-up: the group of a path is found by
    its first segments in a dict (at most KEY_SEGMENTS + 1 look-ups), where the router
    would ask each group in turn (14 calls of `matches` a request, ~5 % of a read)."""

    def __init__(self, groups: dict[str, RouteGroup]) -> None:
        self.groups = groups

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        segments = _route_path(scope).split("/", KEY_SEGMENTS + 1)[1 : KEY_SEGMENTS + 1]
        for count in range(len(segments), -1, -1):
            group = self.groups.get("/" + "/".join(segments[:count]))
            if group is not None:
                return group.matches(scope)
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope["route"]  # the member `matches` chose
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for group in self.groups.values():
            try:
                return group.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)


def index_routes(app: FastAPI) -> None:
    """Group the app's path operations by static prefix (see the module's docstring).

    A prefix under another one (`/docs/oauth2-redirect` under `/docs`) joins that one's
    group, so no two groups can match the same path."""
    prefixes = {
        _static_prefix(route.path) for route in app.router.routes if isinstance(route, APIRoute)
    }
    groups: dict[str, list[APIRoute]] = {}
    index = RouteIndex({})
    table: list[BaseRoute] = []
    for route in app.router.routes:
        if not isinstance(route, APIRoute):
            table.append(route)
            continue
        own = _static_prefix(route.path)
        prefix = min((p for p in prefixes if _contains(p, own)), key=len)
        if prefix not in groups:
            groups[prefix] = []
            if not groups.keys() - {prefix}:
                table.append(index)  # where the first group was
        groups[prefix].append(route)
    index.groups.update((prefix, RouteGroup(prefix, routes)) for prefix, routes in groups.items())
    app.router.routes[:] = table


def path_operations(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes of a table with its groups opened: what the OpenAPI document lists."""
    for route in routes:
        if isinstance(route, RouteIndex):
            for group in route.groups.values():
                yield from group.routes
        elif isinstance(route, RouteGroup):
            yield from route.routes
        else:
            yield route


def _contains(prefix: str, path: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def _route_path(scope: Scope) -> str:
    """The path the app routes on: under a root path, the part after it (as Starlette)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and path[len(root_path) :][:1] in ("", "/"):
        return path[len(root_path) :]
    return path


def _static_prefix(path: str) -> str:
    segments = []
    for segment in path.strip("/").split("/")[:KEY_SEGMENTS]:
        if "{" in segment:
            break
        segments.append(segment)
    return "/" + "/".join(segments)
