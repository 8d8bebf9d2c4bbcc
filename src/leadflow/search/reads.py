"""`GET /search`: one ranked list over leads, deals, persons and organizations.

One statement per (viewer, types): for each type, its best `limit` records by rank
through its `ix_<table>_search_doc` GIN index (leads and deals also through their linked
contacts, `contacts.search`), then the best `limit` of their union. Every branch applies
the caller's company and visibility; converted records (410 on their own routes) are
left out. `matched` is computed for the rows of the answer only.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    case,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.contacts.models import Organization, Person
from leadflow.contacts.search import organization_matches, person_matches
from leadflow.deals.models import Deal
from leadflow.leads.models import Lead
from leadflow.readpath import ReadStatement, as_text
from leadflow.search.schemas import SearchType
from leadflow.tenancy import Caller, Viewer, viewer_params, visible_to_viewer
from leadflow.textsearch import custom_text, matches, rank, search_doc, text_matches


def _matched(tests: list[tuple[str, ColumnElement[bool]]]) -> ColumnElement[Any]:
    """The names of the tests that hold, as a text[]."""
    named = array([case((test, literal(name, String))) for name, test in tests])
    return func.array_remove(named, null(), type_=ARRAY(String))


def _linked(record: Any, viewer: Viewer) -> list[tuple[str, ColumnElement[bool]]]:
    return [
        ("person.name", record.person_id == any_(person_matches(viewer))),
        ("organization.name", record.organization_id == any_(organization_matches(viewer))),
    ]


def _branch(
    kind: SearchType,
    model: Any,
    title: Any,
    tests: list[tuple[str, ColumnElement[bool]]],
    where: list[ColumnElement[bool]],
) -> Select[Any]:
    """The best `limit` records of one type: (type, id, title, matched, score)."""
    score = rank(search_doc(model))
    found = [matches(search_doc(model))]
    found += [test for name, test in tests if name in ("person.name", "organization.name")]
    return (
        select(
            literal(kind.value, String).label("type"),
            as_text(model.id).label("id"),
            title.label("title"),
            _matched(tests).label("matched"),
            score.label("score"),
        )
        .where(*where, or_(*found))
        .order_by(score.desc(), model.id)
        .limit(bindparam("limit", type_=Integer))
    )


def _lead(viewer: Viewer) -> Select[Any]:
    tests = [
        ("title", text_matches(Lead.title)),
        ("prospect.name", text_matches(Lead.prospect_person_name)),
        ("prospect.email", text_matches(Lead.prospect_email)),
        ("prospect.organization_name", text_matches(Lead.prospect_organization_name)),
        ("custom_fields", text_matches(custom_text(Lead))),
        *_linked(Lead, viewer),
    ]
    where = [visible_to_viewer(Lead, viewer), Lead.converted_deal_id.is_(None)]
    return _branch(SearchType.lead, Lead, Lead.title, tests, where)


def _deal(viewer: Viewer) -> Select[Any]:
    tests = [
        ("title", text_matches(Deal.title)),
        ("custom_fields", text_matches(custom_text(Deal))),
        *_linked(Deal, viewer),
    ]
    where = [visible_to_viewer(Deal, viewer), Deal.converted_lead_id.is_(None)]
    return _branch(SearchType.deal, Deal, Deal.title, tests, where)


def _person(viewer: Viewer) -> Select[Any]:
    tests = [
        ("name", text_matches(Person.name)),
        ("emails", text_matches(func.leadflow_join_text(Person.emails, type_=String))),
        ("custom_fields", text_matches(custom_text(Person))),
    ]
    return _branch(
        SearchType.person, Person, Person.name, tests, [visible_to_viewer(Person, viewer)]
    )


def _organization(viewer: Viewer) -> Select[Any]:
    tests = [
        ("name", text_matches(Organization.name)),
        ("custom_fields", text_matches(custom_text(Organization))),
    ]
    where = [visible_to_viewer(Organization, viewer)]
    return _branch(SearchType.organization, Organization, Organization.name, tests, where)


_BRANCHES = {
    SearchType.lead: _lead,
    SearchType.deal: _deal,
    SearchType.person: _person,
    SearchType.organization: _organization,
}


@functools.lru_cache(maxsize=64)
def search_statement(viewer: Viewer, types: tuple[SearchType, ...]) -> ReadStatement:
    """The ranked hits over `types` (parameters: the viewer's, `q`, `limit`)."""
    branches = [_BRANCHES[kind](viewer).subquery().select() for kind in types]
    hits = union_all(*branches).subquery("hit")
    return ReadStatement(
        select(hits)
        .order_by(hits.c.score.desc(), hits.c.type, hits.c.id)
        .limit(bindparam("limit", type_=Integer))
    )


async def search(
    session: AsyncSession, caller: Caller, words: str, types: tuple[SearchType, ...], limit: int
) -> dict[str, Any]:
    rows = await search_statement(Viewer.of(caller), types).fetch(
        session, {**viewer_params(caller), "q": words, "limit": limit}
    )
    return {
        "data": [
            {
                "type": row["type"],
                "id": row["id"],
                "title": row["title"],
                "matched": list(row["matched"]),
                "score": float(row["score"]),
            }
            for row in rows
        ]
    }
