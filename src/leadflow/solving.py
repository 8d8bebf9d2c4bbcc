"""FastAPI's dependency solving, planned once per route instead of worked out per request.

For every request FastAPI's `solve_dependencies` walks the route's dependency tree and,
at each node, re-derives what never changes between requests: whether the callable is a
coroutine or a generator, its cache key (with a scope analysis of the whole subtree), and
which parameter lists are empty, parsing the query string and the cookies for each node
that has none; it builds a result object per node. That was 20-30 % of the CPU of
reading one lead (`GET /leads/{id}`: the route, the session and the caller are three
nodes) and more on routes with more dependencies (a capture: five).

`install()` replaces the function FastAPI's request handler calls with one that solves
from a plan made the first time a dependency tree is seen: the same steps in the same
order (sub-dependencies first, each once per request through the same cache key, then
path, query, header and cookie parameters, then the body), with FastAPI's own functions
for every validation, so answers and errors are byte for byte the same. A tree with
anything the plan does not cover (dependency overrides, generator dependencies, a
concurrency limit, security scopes, websockets) is solved by FastAPI's function, as is
every request while `dependency_overrides` is set. The replacement is installed only
when FastAPI's function has the signature it was written against (checked at start-up,
`installed()`), so an upgrade that changes it falls back to FastAPI's own solving.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi import BackgroundTasks, Response
from fastapi.dependencies import models as dependency_models
from fastapi.dependencies import utils as dependency_utils
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.params import Param
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

_ORIGINAL = dependency_utils.solve_dependencies
# The keyword parameters of FastAPI's solve_dependencies this module was written against.
_EXPECTED = (
    "request",
    "dependant",
    "body",
    "background_tasks",
    "response",
    "dependency_overrides_provider",
    "dependency_cache",
    "async_exit_stack",
    "embed_body_fields",
    "_uses_scopes_cache",
)


@dataclass(frozen=True, slots=True)
class _Step:
    """One sub-dependency: where its value goes, what to call, how to solve its own."""

    name: str | None
    call: Callable[..., Any]
    is_coroutine: bool
    plan: _Plan
    cache_key: Any
    use_cache: bool


@dataclass(frozen=True, slots=True)
class _Param:
    """A path or header parameter as `request_params_to_args` reads it, its look-ups done
    once."""

    field: Any
    alias: str
    loc: tuple[str, str]
    sequence: bool
    # Read with `getlist` (`_get_multidict_value`: a header of a sequence type, not Json).
    multi: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    steps: tuple[_Step, ...]
    dependant: Dependant
    # None: the path parameters go through `request_params_to_args`.
    path: tuple[_Param, ...] | None = None
    # None: the header parameters go through `request_params_to_args`.
    headers: tuple[_Param, ...] | None = None


# FastAPI's helpers `request_params_to_args` reads a parameter with; a FastAPI without
# one of them reads path and header parameters through that function.
_param_model: Any = getattr(dependency_utils, "_get_param_model", None)
_param_aliases: Any = getattr(dependency_utils, "_get_param_aliases", None)
_validate: Any = getattr(dependency_utils, "_validate_value_with_model_field", None)
_is_sequence: Any = getattr(dependency_utils, "field_annotation_is_sequence", None)
_is_json: Any = getattr(dependency_utils, "_is_json_field", None)
_UNDEFINED: Any = getattr(dependency_utils, "Undefined", None)


def _params_plan(fields: list[Any], *, headers: bool = False) -> tuple[_Param, ...] | None:
    """What `request_params_to_args` works out per request for each path (or header)
    parameter: whether it is a model (not planned), its alias, its error location,
    whether its annotation is a sequence (the typing introspection was 2 % of a
    conversion's CPU, and the three `webhook-*` headers' about 4 % of a signed capture's)."""
    if None in (_param_model, _param_aliases, _validate, _is_sequence, _is_json, _UNDEFINED):
        return None
    planned = []
    for field in fields:
        info = field.field_info
        if _param_model(field) is not None or not isinstance(info, Param):
            return None
        aliases = _param_aliases(field)
        if len(aliases) != 1:
            return None  # the alias read depends on which the request has
        alias = aliases[0][1]
        sequence = _is_sequence(info.annotation)
        multi = headers and sequence and not _is_json(field)
        planned.append(_Param(field, alias, (info.in_.value, alias), sequence, multi))
    return tuple(planned)


# Plans by dependency tree (Dependant objects live as long as their routes); None: a tree
# FastAPI solves itself.
_plans: dict[int, _Plan | None] = {}


def _plan(dependant: Dependant) -> _Plan | None:
    key = id(dependant)
    if key in _plans:
        return _plans[key]
    plan = _make_plan(dependant)
    _plans[key] = plan
    return plan


def _make_plan(dependant: Dependant) -> _Plan | None:
    if dependant.security_scopes_param_name or dependant.websocket_param_name:
        return None
    steps = []
    for sub in dependant.dependencies:
        call = sub.call
        if call is None or sub.concurrency is not None:
            return None
        if dependency_models._is_gen_callable(call) or dependency_models._is_async_gen_callable(
            call
        ):
            return None
        sub_plan = _make_plan(sub)
        if sub_plan is None:
            return None
        steps.append(
            _Step(
                name=sub.name,
                call=call,
                is_coroutine=dependency_models._is_coroutine_callable(call),
                plan=sub_plan,
                cache_key=dependency_models._get_cache_key(dependant=sub, uses_scopes_cache={}),
                use_cache=sub.use_cache,
            )
        )
    return _Plan(
        tuple(steps),
        dependant,
        _params_plan(dependant.path_params),
        _params_plan(dependant.header_params, headers=True),
    )


def _read_planned(params: tuple[_Param, ...], received: Any, errors: list[Any]) -> dict[str, Any]:
    """`request_params_to_args` for planned path or header parameters (a header of a
    sequence type read with `getlist`, as `_get_multidict_value` reads it); their errors
    go to `errors`."""
    found: dict[str, Any] = {}
    for param in params:
        value = received.getlist(param.alias) if param.multi else received.get(param.alias)
        if value is None or (param.sequence and len(value) == 0):
            value = _UNDEFINED
        valid, wrong = _validate(field=param.field, value=value, values=found, loc=param.loc)
        if wrong:
            errors.extend(wrong)
        else:
            found[param.field.name] = valid
    return found


@dataclass(slots=True)
class _Solved:
    """What FastAPI's handler reads of a solved tree (its SolvedDependency's fields)."""

    values: dict[str, Any]
    errors: list[Any]
    background_tasks: BackgroundTasks | None
    response: Response
    dependency_cache: dict[Any, Any]


async def _solve_planned(
    plan: _Plan,
    request: Request,
    body: Any,
    background_tasks: BackgroundTasks | None,
    response: Response,
    cache: dict[Any, Any],
    embed_body_fields: bool,
) -> _Solved:
    values: dict[str, Any] = {}
    errors: list[Any] = []
    for step in plan.steps:
        solved_step = await _solve_planned(
            step.plan, request, body, background_tasks, response, cache, embed_body_fields
        )
        background_tasks = solved_step.background_tasks
        if solved_step.errors:
            errors.extend(solved_step.errors)
            continue
        if step.use_cache and step.cache_key in cache:
            solved = cache[step.cache_key]
        elif step.is_coroutine:
            solved = await step.call(**solved_step.values)
        else:
            solved = await run_in_threadpool(step.call, **solved_step.values)
        if step.name is not None:
            values[step.name] = solved
        if step.cache_key not in cache:
            cache[step.cache_key] = solved
    dependant = plan.dependant
    # Each list read only when the tree has parameters of its kind: reading
    # `request.query_params` or `request.cookies` parses them.
    if plan.path:
        # A dict: no path parameter is planned `multi`.
        values.update(_read_planned(plan.path, request.path_params, errors))
    elif dependant.path_params:
        found, wrong = request_params_to_args(dependant.path_params, request.path_params)
        values.update(found)
        errors += wrong
    if dependant.query_params:
        found, wrong = request_params_to_args(dependant.query_params, request.query_params)
        values.update(found)
        errors += wrong
    if plan.headers:
        values.update(_read_planned(plan.headers, request.headers, errors))
    elif dependant.header_params:
        found, wrong = request_params_to_args(dependant.header_params, request.headers)
        values.update(found)
        errors += wrong
    if dependant.cookie_params:
        found, wrong = request_params_to_args(dependant.cookie_params, request.cookies)
        values.update(found)
        errors += wrong
    if dependant.body_params:
        found, wrong = await request_body_to_args(
            body_fields=dependant.body_params,
            received_body=body,
            embed_body_fields=embed_body_fields,
        )
        values.update(found)
        errors.extend(wrong)
    if dependant.http_connection_param_name:
        values[dependant.http_connection_param_name] = request
    if dependant.request_param_name:
        values[dependant.request_param_name] = request
    if dependant.background_tasks_param_name:
        if background_tasks is None:
            background_tasks = BackgroundTasks()
        values[dependant.background_tasks_param_name] = background_tasks
    if dependant.response_param_name:
        values[dependant.response_param_name] = response
    return _Solved(values, errors, background_tasks, response, cache)


async def solve_dependencies(
    *,
    request: Any,
    dependant: Dependant,
    body: Any = None,
    background_tasks: BackgroundTasks | None = None,
    response: Response | None = None,
    dependency_overrides_provider: Any | None = None,
    dependency_cache: dict[Any, Any] | None = None,
    async_exit_stack: Any,
    embed_body_fields: bool,
    _uses_scopes_cache: Any = None,
) -> Any:
    """FastAPI's `solve_dependencies`, from the tree's plan when it has one."""
    plan = (
        None
        if not isinstance(request, Request)
        or (
            dependency_overrides_provider is not None
            and getattr(dependency_overrides_provider, "dependency_overrides", None)
        )
        else _plan(dependant)
    )
    if plan is None:
        return await _ORIGINAL(
            request=request,
            dependant=dependant,
            body=body,
            background_tasks=background_tasks,
            response=response,
            dependency_overrides_provider=dependency_overrides_provider,
            dependency_cache=dependency_cache,
            async_exit_stack=async_exit_stack,
            embed_body_fields=embed_body_fields,
            _uses_scopes_cache=_uses_scopes_cache,
        )
    if response is None:
        # As FastAPI makes it: the sub-response a dependency may set headers on.
        response = Response()
        del response.headers["content-length"]
        response.status_code = None  # type: ignore[assignment]
    return await _solve_planned(
        plan,
        request,
        body,
        background_tasks,
        response,
        {} if dependency_cache is None else dependency_cache,
        embed_body_fields,
    )


def installed() -> bool:
    """Whether FastAPI's handler solves through this module."""
    return getattr(fastapi.routing, "solve_dependencies", None) is solve_dependencies


def install() -> bool:
    """Make FastAPI's request handler solve through the plans; False (FastAPI's own
    solving kept) when its function is not the one this module was written for."""
    if installed():
        return True
    parameters = tuple(inspect.signature(_ORIGINAL).parameters)
    if (
        parameters != _EXPECTED
        or getattr(fastapi.routing, "solve_dependencies", None) is not _ORIGINAL
    ):
        return False
    setattr(fastapi.routing, "solve_dependencies", solve_dependencies)  # noqa: B010
    return True
