"""The lead read model: leads as the API shows them, with their readiness.

Every lead answer (the lead routes, conversion, rules' dry-runs) is built here, so a lead
reads the same wherever it comes from. Readiness rows are written by `leadflow.rules`;
a row names its rule, whose name the answer shows. That name is read from the rule's
table by its columns (`models.CONVERSION_RULE`), not through the rules package's ORM
class: `rules/` sits above `leads/`, and a lower package never imports a higher one.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    UUID,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leadflow import attribution, sorting
from leadflow.contacts.search import linked_matches
from leadflow.fields import filters as custom_filters
from leadflow.fields.filters import CustomShape
from leadflow.leads.models import CONVERSION_RULE, Lead, LeadReadiness, in_archive, in_inbox
from leadflow.leads.schemas import LeadRead, ProspectRead, Readiness
from leadflow.pagination import (
    Keyset,
    PageRequest,
    cursor_after,
    decode_cursor,
    encode_cursor,
)
from leadflow.readpath import JsonRows, ReadStatement, as_text, fields, money, page_of, rfc3339
from leadflow.readpath import page as readpath_page
from leadflow.sorting import ColumnSort
from leadflow.tenancy import Caller, Viewer, viewer_params, visible_to_viewer
from leadflow.textsearch import matches, search_doc, unindexed

# `GET /leads?ready=true`: oldest readiness first. A lead's place is its earliest
# readiness row, so the list walks ix_lead_readiness_company_id_since (company_id,
# since, lead_id) in order and keeps each lead's earliest row only.
READY_ORDER = Keyset(LeadReadiness.since, LeadReadiness.lead_id)
# Leads carry the deal fields (`fields.values`): their definitions' entity.
DEAL_FIELDS = "deal"
# The inbox and the archive: newest first (ix_lead_inbox*, ix_lead_archived).
INBOX_ORDER = Keyset(Lead.created_at, Lead.id, descending=True)


# A lead's readiness, oldest first, as one JSON array (`since` spelled as the read models
# write it), in the statements of the GET answers.
_READINESS_ROWS = (
    select(
        func.coalesce(
            func.jsonb_agg(
                aggregate_order_by(
                    func.jsonb_build_object(
                        "rule_id",
                        cast(LeadReadiness.rule_id, Text),
                        "name",
                        CONVERSION_RULE.c.name,
                        "since",
                        rfc3339(LeadReadiness.since),
                        "blocked_reason",
                        LeadReadiness.blocked_reason,
                        "blocked_detail",
                        LeadReadiness.blocked_detail,
                    ),
                    LeadReadiness.since,
                    LeadReadiness.rule_id,
                )
            ),
            literal_column("'[]'::jsonb"),
            type_=JSONB,
        )
    )
    .join(CONVERSION_RULE, CONVERSION_RULE.c.id == LeadReadiness.rule_id)
    .where(LeadReadiness.lead_id == Lead.id, LeadReadiness.company_id == Lead.company_id)
    .scalar_subquery()
)


async def readiness_by_lead(
    session: AsyncSession, company_id: uuid.UUID, lead_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Readiness]]:
    """The readiness of these leads, oldest first, in one statement."""
    found: dict[uuid.UUID, list[Readiness]] = {}
    if not lead_ids:
        return found
    rows = await session.execute(
        select(
            LeadReadiness.lead_id,
            LeadReadiness.rule_id,
            CONVERSION_RULE.c.name,
            LeadReadiness.since,
            LeadReadiness.blocked_reason,
            LeadReadiness.blocked_detail,
        )
        .join(CONVERSION_RULE, CONVERSION_RULE.c.id == LeadReadiness.rule_id)
        .where(
            LeadReadiness.company_id == company_id,
            LeadReadiness.lead_id == any_(cast(list(set(lead_ids)), ARRAY(UUID))),
        )
        .order_by(LeadReadiness.since, LeadReadiness.rule_id)
    )
    for lead_id, rule_id, name, since, reason, detail in rows:
        found.setdefault(lead_id, []).append(
            Readiness(
                rule_id=rule_id,
                name=name,
                since=since,
                blocked_reason=reason,
                blocked_detail=detail,
            )
        )
    return found


async def read_leads(
    session: AsyncSession, company_id: uuid.UUID, leads: Sequence[Lead]
) -> list[LeadRead]:
    """Leads as the write answers show them, with their readiness: as their writer left
    it (`readiness_rows`, e.g. none on a new lead), else in one query for all of them."""
    readiness = await readiness_by_lead(
        session, company_id, [lead.id for lead in leads if lead.readiness_rows is None]
    )
    return [
        LeadRead.of(
            lead,
            [Readiness.model_validate(row) for row in lead.readiness_rows]
            if lead.readiness_rows is not None
            else readiness.get(lead.id, []),
        )
        for lead in leads
    ]


async def read_lead(session: AsyncSession, company_id: uuid.UUID, lead: Lead) -> LeadRead:
    return (await read_leads(session, company_id, [lead]))[0]


async def ready_page(
    session: AsyncSession, caller: Caller, leads: Select[Lead], page: PageRequest
) -> tuple[list[Lead], str | None]:
    """One page of `leads` (an inbox select with its filters) that carry readiness, oldest
    readiness first. Keyset on the lead's earliest readiness row: (since, lead_id)."""
    row = LeadReadiness
    earlier = aliased(LeadReadiness)
    stmt = (
        leads.add_columns(row.since)
        .join(row, row.lead_id == Lead.id)
        .where(
            row.company_id == caller.company_id,
            ~select(earlier.rule_id)
            .where(
                earlier.lead_id == row.lead_id,
                tuple_(earlier.since, earlier.rule_id) < tuple_(row.since, row.rule_id),
            )
            .exists(),
        )
    )
    if page.cursor is not None:
        since, lead_id = decode_cursor(page.cursor, READY_ORDER)
        stmt = stmt.where(tuple_(row.since, row.lead_id) > tuple_(since, lead_id))
    stmt = stmt.order_by(row.since, row.lead_id).limit(page.limit + 1)
    rows: list[tuple[Lead, datetime]] = [(r[0], r[1]) for r in await session.execute(stmt)]
    if len(rows) <= page.limit:
        return [lead for lead, _ in rows], None
    rows = rows[: page.limit]
    last, since = rows[-1]
    return [lead for lead, _ in rows], cursor_after(_Key(since, last.id), READY_ORDER)


class _Key:
    """The keyset values of a ready page's last row, for `cursor_after`."""

    def __init__(self, since: datetime, lead_id: uuid.UUID) -> None:
        self.since = since
        self.lead_id = lead_id


# GET answers: statements compiled once per shape (`readpath`), rows straight to JSON.


def lead_columns(lead: Any, readiness: Any) -> tuple[Any, ...]:
    """The columns of a lead answer, of `lead` (`Lead`, or an alias of a statement's
    rows such as an INSERT's RETURNING) with `readiness` (a JSON array)."""
    return (
        as_text(lead.id),
        lead.title,
        as_text(lead.owner_id),
        as_text(lead.person_id),
        as_text(lead.organization_id),
        lead.prospect_person_name,
        lead.prospect_email,
        lead.prospect_phone,
        lead.prospect_phone_e164,
        lead.prospect_organization_name,
        as_text(lead.value_amount),
        lead.value_currency,
        lead.expected_close_date,
        as_text(lead.label_ids),
        lead.source,
        lead.is_archived,
        lead.archived_at,
        lead.was_seen,
        lead.visible_to,
        as_text(lead.source_deal_id),
        readiness.label("readiness"),
        lead.fields,
        lead.custom_fields,
        *(getattr(lead, name) for name in attribution.FIELDS),
        lead.created_at,
        lead.updated_at,
    )


_LEAD_COLUMNS = lead_columns(Lead, _READINESS_ROWS)
# A lead just written has no readiness (conversion rules mark it afterwards, if at all).
NO_READINESS = literal_column("'[]'::jsonb", JSONB)


# LeadRead's fields that are columns of the same name (`value`, `prospect` are built).
_LEAD_FIELDS = tuple(name for name in LeadRead.model_fields if name not in ("value", "prospect"))
_PROSPECT = {name: f"prospect_{name}" for name in ProspectRead.model_fields}


def lead_json(row: Any) -> dict[str, Any]:
    """A lead row of these statements as `LeadRead` writes it (tests hold the two alike)."""
    prospect = {name: row[column] for name, column in _PROSPECT.items()}
    return {**fields(row, _LEAD_FIELDS), "prospect": prospect, "value": money(row)}


@functools.cache
def lead_by_id(viewer: Viewer) -> ReadStatement:
    """One lead the viewer may see (converted ones too: the route answers 410 for them)."""
    return ReadStatement(
        select(*_LEAD_COLUMNS, as_text(Lead.converted_deal_id)).where(
            visible_to_viewer(Lead, viewer), Lead.id == bindparam("lead_id", type_=Uuid)
        )
    )


@functools.cache
def leads_by_ids(viewer: Viewer) -> ReadStatement:
    """The leads the viewer may see among `lead_ids` (converted ones too), in one
    statement: the records of the webhook events of one write."""
    ids = bindparam("lead_ids", type_=ARRAY(UUID(as_uuid=True)))
    return ReadStatement(
        select(*_LEAD_COLUMNS).where(visible_to_viewer(Lead, viewer), Lead.id == any_(ids))
    )


# How many of the newest leads a search walks before it asks the GIN index (`lead_page`).
SEARCH_WINDOW = 5_000


@dataclass(frozen=True, slots=True)
class InboxShape:
    """Which filters and which order an inbox page uses: one compiled statement each."""

    archived: bool = False
    owner: bool = False
    labels: bool = False
    person: bool = False
    organization: bool = False
    source: bool = False
    email: bool = False
    ready: bool = False
    search: bool = False  # `q` (`leadflow.textsearch`)
    # The attribution filters given (`utm_source`, ..., `channel`), in `FIELDS` order.
    attribution: tuple[str, ...] = ()
    updated_since: bool = False
    column_sort: ColumnSort | None = None  # `sort` by a column (`leadflow.sorting`)
    custom: CustomShape | None = None  # `custom_fields` filters, a custom field sort
    after: bool = False  # a cursor was given
    # A search's first try: only the company's SEARCH_WINDOW newest leads (see `lead_page`).
    window: bool = False


@functools.lru_cache(maxsize=1024)
def inbox_page(viewer: Viewer, shape: InboxShape) -> ReadStatement:
    """A page of the inbox (or the archive), newest first; with `ready`, only leads with
    readiness, oldest readiness first (see READY_ORDER). Parameters: `limit`, the filters
    the shape names, and `after_key`/`after_id` after a cursor."""
    stmt = select(*_LEAD_COLUMNS).where(
        visible_to_viewer(Lead, viewer), in_archive() if shape.archived else in_inbox()
    )
    if shape.owner:
        stmt = stmt.where(Lead.owner_id == bindparam("owner_id", type_=Uuid))
    if shape.labels:
        wanted = bindparam("label_ids", type_=ARRAY(UUID(as_uuid=True)))
        stmt = stmt.where(Lead.label_ids.contains(wanted))
    if shape.person:
        stmt = stmt.where(Lead.person_id == bindparam("person_id", type_=Uuid))
    if shape.organization:
        stmt = stmt.where(Lead.organization_id == bindparam("organization_id", type_=Uuid))
    if shape.source:
        stmt = stmt.where(Lead.source == bindparam("source", type_=String))
    for name in shape.attribution:  # exact match: ix_lead_<name>
        stmt = stmt.where(getattr(Lead, name) == bindparam(name, type_=String))
    if shape.custom is not None:  # containment: ix_lead_custom_fields (GIN, jsonb_path_ops)
        stmt = custom_filters.filtered(stmt, Lead, DEAL_FIELDS, shape.custom)
    if shape.search:  # ix_lead_search_doc, or the linked contacts' (leadflow.textsearch)
        stmt = stmt.where(or_(matches(search_doc(Lead)), linked_matches(Lead, viewer)))
    if shape.updated_since:
        stmt = stmt.where(sorting.updated_since(Lead))
    if shape.email:  # spelled as ix_lead_prospect_email
        stmt = stmt.where(
            func.lower(Lead.prospect_email) == func.lower(bindparam("email", type_=String))
        )
    limit = bindparam("limit", type_=Integer)
    if shape.ready:
        row, earlier = LeadReadiness, aliased(LeadReadiness)
        stmt = (
            stmt.add_columns(row.since.label("ready_since"))
            .join(row, row.lead_id == Lead.id)
            .where(
                row.company_id == bindparam("viewer_company_id", type_=Uuid),
                ~select(earlier.rule_id)
                .where(
                    earlier.lead_id == row.lead_id,
                    tuple_(earlier.since, earlier.rule_id) < tuple_(row.since, row.rule_id),
                )
                .exists(),
            )
        )
        if shape.after:
            stmt = stmt.where(tuple_(row.since, row.lead_id) > _after())
        return ReadStatement(stmt.order_by(row.since, row.lead_id).limit(limit))
    if shape.custom is not None and shape.custom.sort is not None:
        return ReadStatement(
            custom_filters.sorted_page(stmt, Lead, DEAL_FIELDS, shape.custom, limit)
        )
    if shape.column_sort is not None:  # updated_at: ix_lead_inbox_updated_at
        by_index = not shape.search
        return ReadStatement(
            sorting.sorted_page(stmt, Lead, shape.column_sort, limit, by_index=by_index)
        )
    if shape.after:
        stmt = stmt.where(tuple_(Lead.created_at, Lead.id) < _after())
    if shape.window:
        # The newest leads walked in index order down to the SEARCH_WINDOW-th of the
        # company's inbox (or archive) after the cursor: no row when there are fewer.
        bound = (
            select(Lead.created_at, Lead.id)
            .where(
                Lead.company_id == bindparam("viewer_company_id", type_=Uuid),
                in_archive() if shape.archived else in_inbox(),
            )
            .order_by(Lead.created_at.desc(), Lead.id.desc())
            .offset(bindparam("window", type_=Integer))
            .limit(1)
        )
        if shape.after:
            bound = bound.where(tuple_(Lead.created_at, Lead.id) < _after())
        stmt = stmt.where(tuple_(Lead.created_at, Lead.id) >= bound.scalar_subquery())
        return ReadStatement(stmt.order_by(Lead.created_at.desc(), Lead.id.desc()).limit(limit))
    # A search sorts its matches (the GIN index finds them): `textsearch.unindexed`.
    newest = unindexed(Lead.created_at) if shape.search else Lead.created_at
    return ReadStatement(stmt.order_by(newest.desc(), Lead.id.desc()).limit(limit))


def _after() -> Any:
    return tuple_(
        bindparam("after_key", type_=DateTime(timezone=True)),
        bindparam("after_id", type_=Uuid),
    )


async def lead_page(
    session: AsyncSession,
    caller: Caller,
    page: PageRequest,
    shape: InboxShape,
    filters: dict[str, Any],
) -> dict[str, Any]:
    """A page of leads for `GET /leads` (`pagination.Page` of `LeadRead`), as JSON-ready
    values: the filters the shape names, by their bind parameter names."""
    order = READY_ORDER if shape.ready else INBOX_ORDER
    params = {**viewer_params(caller), **filters, "limit": page.limit + 1}
    custom = shape.custom
    if custom is not None and custom.sort is not None:
        if page.cursor is not None:
            params.update(custom_filters.sort_params(page.cursor))
            shape = replace(shape, custom=replace(custom, after=True))
        rows = await inbox_page(Viewer.of(caller), shape).fetch(session, params)
        custom_filters.check_sorted(rows)
        return page_of(rows, page, "", lead_json, cursor_of=custom_filters.sort_cursor)
    if shape.column_sort is not None:
        if page.cursor is not None:
            params.update(sorting.sort_params(page.cursor, shape.column_sort))
            shape = replace(shape, column_sort=replace(shape.column_sort, after=True))
        rows = await inbox_page(Viewer.of(caller), shape).fetch(session, params)
        return page_of(rows, page, "", lead_json, cursor_of=sorting.sort_cursor)
    if page.cursor is not None:
        params["after_key"], params["after_id"] = decode_cursor(page.cursor, order)
        shape = replace(shape, after=True)
    found: list[Any] | None = None
    if shape.search and not shape.ready:
        # A broad term (thousands of matches) has a page among the newest leads: walked
        # in index order they give it at once, where sorting every GIN match took 464 ms
        # at 1,000,000 leads (bench/search.py, a term of 2 % of the leads). Only a full
        # page (and one more) found there is the answer: the matches older than the
        # window are older than all of them. Otherwise the GIN statement answers, which
        # serves a rare term (a few matches) at any size.
        window = await inbox_page(Viewer.of(caller), replace(shape, window=True)).fetch(
            session, {**params, "window": SEARCH_WINDOW}
        )
        if len(window) > page.limit:
            found = list(window)
    rows = (
        found
        if found is not None
        else await inbox_page(Viewer.of(caller), shape).fetch(session, params)
    )
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        last = rows[-1]
        key = last["ready_since"] if shape.ready else last["created_at"]
        cursor = encode_cursor(key, last["id"])
    return readpath_page([lead_json(row) for row in rows], cursor)


def lead_rows() -> JsonRows:
    """Leads as `lead_json` writes them, for JSON built in SQL (the webhook outbox)."""
    return JsonRows(
        select(*_LEAD_COLUMNS), (*_LEAD_FIELDS, "prospect", "value"), {"prospect": _PROSPECT}
    )
