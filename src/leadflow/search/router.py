"""`GET /search`: one ranked list of the leads, deals, persons and organizations whose
words start with the query's (`leadflow.textsearch`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from leadflow.deps import CurrentCaller, Session
from leadflow.errors import responses
from leadflow.readpath import json_response
from leadflow.search import reads
from leadflow.search.schemas import SearchResults, SearchType
from leadflow.textsearch import MAX_QUERY_LENGTH, MIN_QUERY_LENGTH, words

router = APIRouter(tags=["search"])

MAX_HITS = 50
_ALL = tuple(SearchType)
_TYPES_PATTERN = r"^(lead|deal|person|organization)(,(lead|deal|person|organization)){0,3}$"


@router.get(
    "/search",
    name="search:search",
    response_model=SearchResults,
    responses=responses(401, 422),
)
async def search(
    session: Session,
    caller: CurrentCaller,
    q: Annotated[
        str,
        Query(
            min_length=MIN_QUERY_LENGTH,
            max_length=MAX_QUERY_LENGTH,
            description=(
                "The words to find: each must start a word of the record, ignoring case "
                "and accents (leads: title, prospect name, email and organization, the "
                "linked person's and organization's names, custom field texts; deals: "
                "title, linked names, custom field texts; persons: name, emails, custom "
                "field texts; organizations: name, custom field texts). Under 2 "
                "characters is 422; without a letter or digit it matches nothing."
            ),
            examples=["jose mar"],
        ),
    ],
    types: Annotated[
        str | None,
        Query(
            pattern=_TYPES_PATTERN,
            max_length=40,
            description="Comma-separated kinds of record to search; all four by default.",
            examples=["lead,deal"],
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_HITS, description="At most this many hits (the best).")
    ] = 20,
) -> Response:
    """The records the caller may see that match `q`, best first, across the types
    asked: each hit's type, id, title and which of its fields matched. Converted leads
    and deals (answered 410 on their routes) are left out. One ranked list of the best
    `limit` hits, not paged: refine `q` or `types` to see others."""
    if types is None:
        kinds = _ALL
    else:
        asked = set(types.split(","))
        kinds = tuple(kind for kind in _ALL if kind.value in asked)
    return json_response(await reads.search(session, caller, words(q), kinds, limit))
