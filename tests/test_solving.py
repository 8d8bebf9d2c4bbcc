"""Dependencies solved from a plan per route (`leadflow.solving`) answer exactly as
FastAPI's own solving does: the same values, the same validation errors in the same
order, sub-dependencies before parameters, one call per dependency per request, the
sub-response's headers and status, background tasks, and FastAPI's own path for what
the plan does not cover (generator dependencies, overrides)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import BackgroundTasks, Cookie, Depends, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel

from leadflow import solving
from leadflow.main import create_app
from tests.factories import API, create_company

calls: list[str] = []


async def counted(request: Request) -> str:
    calls.append("counted")
    return request.url.path


async def needs_token(authorization: Annotated[str | None, Header()] = None) -> str:
    if authorization != "Bearer good":
        raise fastapi.HTTPException(401, "no")
    return "caller"


async def caller(
    token: Annotated[str, Depends(needs_token)], path: Annotated[str, Depends(counted)]
) -> str:
    return f"{token}@{path}"


def sync_dependency(limit: Annotated[int, Query(ge=1, le=10)] = 5) -> int:
    return limit * 2


async def with_cleanup() -> AsyncIterator[str]:
    calls.append("opened")
    yield "resource"
    calls.append("closed")


def sync_generator() -> Iterator[str]:
    yield "sync-resource"


async def sets_headers(response: Response) -> None:
    response.headers["x-from-dependency"] = "yes"
    response.status_code = 203


class Item(BaseModel):
    name: str
    amount: int


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read(
        item_id: int,
        who: Annotated[str, Depends(caller)],
        again: Annotated[str, Depends(counted)],
        doubled: Annotated[int, Depends(sync_dependency)],
        tags: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
        session: Annotated[str | None, Cookie()] = None,
        x_trace: Annotated[str | None, Header()] = None,
        x_tags: Annotated[list[str], Header()] = [],  # noqa: B006 - a header read as a list
        x_count: Annotated[int | None, Header()] = None,
    ) -> dict[str, Any]:
        return {
            "item_id": item_id,
            "who": who,
            "again": again,
            "doubled": doubled,
            "tags": tags,
            "session": session,
            "trace": x_trace,
            "header_tags": x_tags,
            "count": x_count,
        }

    @app.post("/items", dependencies=[Depends(sets_headers)])
    async def create(
        item: Item, background: BackgroundTasks, who: Annotated[str, Depends(caller)]
    ) -> dict[str, Any]:
        background.add_task(calls.append, f"after {item.name}")
        return {"item": item.model_dump(), "who": who}

    @app.get("/resource")
    async def resource(
        held: Annotated[str, Depends(with_cleanup)], other: Annotated[str, Depends(sync_generator)]
    ) -> dict[str, str]:
        return {"held": held, "other": other}

    @app.get("/settings")
    async def settings(value: Annotated[int, Depends(sync_dependency)]) -> dict[str, int]:
        return {"value": value}

    return app


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/items/3", {"headers": {"authorization": "Bearer good"}}),
    (
        "GET",
        "/items/3?tags=a&tags=b&limit=2",
        {"headers": {"authorization": "Bearer good", "x-trace": "t", "cookie": "session=s"}},
    ),
    ("GET", "/items/x?limit=0", {"headers": {"authorization": "Bearer good"}}),
    ("GET", "/items/x?limit=0", {}),  # the dependency's 401 before the parameters' 422
    (
        "POST",
        "/items",
        {"headers": {"authorization": "Bearer good"}, "json": {"name": "a", "amount": 2}},
    ),
    ("POST", "/items", {"headers": {"authorization": "Bearer good"}, "json": {"name": "a"}}),
    ("POST", "/items", {"headers": {"authorization": "Bearer good"}, "content": b"{nope"}),
    ("GET", "/resource", {}),
    ("GET", "/settings?limit=3", {}),
    (
        "GET",
        "/items/3",
        {"headers": [("authorization", "Bearer good"), ("x-tags", "p"), ("x-tags", "q")]},
    ),
    ("GET", "/items/3", {"headers": {"authorization": "Bearer good", "x-count": "many"}}),
]


async def _answers(app: FastAPI) -> list[tuple[int, Any, str | None, list[str]]]:
    answers = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        for method, path, options in REQUESTS:
            calls.clear()
            response = await client.request(method, path, **options)
            answers.append(
                (
                    response.status_code,
                    response.json(),
                    response.headers.get("x-from-dependency"),
                    list(calls),
                )
            )
    return answers


async def test_planned_solving_answers_as_fastapis_own(monkeypatch: pytest.MonkeyPatch) -> None:
    assert solving.install(), "this FastAPI's solve_dependencies is the one planned for"
    original = solving._ORIGINAL
    unplanned: list[str] = []

    async def counting(**arguments: Any) -> Any:
        unplanned.append(arguments["dependant"].call.__name__)
        return await original(**arguments)

    monkeypatch.setattr(solving, "_ORIGINAL", counting)
    planned = await _answers(_app())
    assert unplanned == ["resource"]  # generator dependencies: FastAPI's own solving
    monkeypatch.setattr(fastapi.routing, "solve_dependencies", original)
    assert not solving.installed()
    reference = await _answers(_app())
    assert planned == reference
    # What the comparison covers, read off FastAPI's answers.
    assert reference[0][0] == 200 and reference[0][3] == ["counted"]  # cached: called once
    assert reference[3][0] == 401
    assert reference[2][0] == 422 and len(reference[2][1]["detail"]) == 2
    assert reference[4][:3] == (203, reference[4][1], "yes") and reference[4][3][-1] == "after a"
    assert reference[7][3] == ["opened", "closed"]
    assert reference[9][1]["header_tags"] == ["p", "q"]  # a repeated header, as a list
    assert reference[10][0] == 422 and reference[10][1]["detail"][0]["loc"] == [
        "header",
        "x-count",
    ]


async def test_overrides_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    solving.install()
    app = _app()
    app.dependency_overrides[sync_dependency] = lambda: 99
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (await client.get("/settings")).json() == {"value": 99}


async def test_the_app_solves_through_plans_and_authenticates_before_validating(
    client: httpx.AsyncClient,
) -> None:
    create_app()
    assert solving.installed()
    admin = await create_company(client)
    anonymous = await client.get(f"{API}/leads/not-a-uuid")
    assert anonymous.status_code == 401
    wrong = await client.get(f"{API}/leads/not-a-uuid", headers=admin.headers)
    assert wrong.status_code == 422
    assert wrong.headers["content-type"] == "application/problem+json"
