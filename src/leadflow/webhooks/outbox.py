"""The outbox: each domain event about a lead or a deal becomes one `webhook_event` row,
written in the transaction of the change, with a delivery row per matching subscription.

A subscriber of `leadflow.events` (`subscribe()`, called at start-up before the other
listeners, so that an event's `data` is the record as the change left it and not as a
conversion rule reacting to the change leaves it). The event row exists if and only if
the change commits: a rolled-back request leaves nothing to send.

Cost. A company without any subscription pays nothing: whether it has one is remembered
per process (`SubscribedCompanies`), so its writes run no extra statement. A company with
one pays, per `publish` call (a batch subscriber: a bulk conversion of any number of
leads is one call), one read per kind of record (leads, deals) as the API shows them,
one read of the last states of deleted records if any, and one INSERT of every event
and its deliveries (a CTE): POST /leads 2 statements more, a conversion 3.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from cachetools import TTLCache
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import events
from leadflow.db import new_id
from leadflow.deals.reads import deal_json, deals_by_ids
from leadflow.events import Change, CompanyCreated, DealConverted, DomainEvent, LeadConverted
from leadflow.leads.reads import lead_json, leads_by_ids
from leadflow.tenancy import Viewer

# Every event type a subscription may name (besides `<entity>.*` and `*`), as the
# payload's `type` spells it: the `type` of the domain events below.
EVENT_TYPES = (
    "lead.created",
    "lead.updated",
    "lead.archived",
    "lead.unarchived",
    "lead.deleted",
    "lead.converted",
    "deal.created",
    "deal.updated",
    "deal.stage_changed",
    "deal.status_changed",
    "deal.deleted",
    "deal.converted",
)
ENTITIES = ("lead", "deal")
TEST_EVENT = "webhook.test"

# Deletions: the record is gone when the event is published.
_DELETIONS = frozenset({"lead.deleted", "deal.deleted"})


class SubscribedCompanies:
    """Whether a company has any subscription (enabled or not: a disabled one may be
    replayed later, so its company's events are kept), remembered per process.

    Bounded staleness: a subscription created through another API process is seen here
    at most `ttl` seconds later (LEADFLOW_WEBHOOK_CACHE_SECONDS, 5 by default); events
    this process writes meanwhile for that company are not in the outbox. In this
    process a subscription created or deleted is seen at once (`note`), and a new
    company is known to have none (`CompanyCreated`). The reverse staleness (a company
    whose last subscription is gone) only costs an event row no delivery uses.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.configure(ttl)

    def configure(self, ttl: float) -> None:
        self._cache: TTLCache[uuid.UUID, bool] | None = (
            TTLCache(maxsize=100_000, ttl=ttl) if ttl > 0 else None
        )

    async def any(self, session: AsyncSession, company_id: uuid.UUID) -> bool:
        if self._cache is not None and (known := self._cache.get(company_id)) is not None:
            return known
        found = bool(
            (await session.execute(_HAS_SUBSCRIPTION, {"company_id": company_id})).scalar_one()
        )
        self.note(company_id, found)
        return found

    def note(self, company_id: uuid.UUID, subscribed: bool) -> None:
        if self._cache is not None:
            self._cache[company_id] = subscribed


_HAS_SUBSCRIPTION = text("SELECT EXISTS (SELECT 1 FROM webhook WHERE company_id = :company_id)")

subscribed_companies = SubscribedCompanies()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # amounts as the API spells them: text with their decimals
    if isinstance(value, uuid.UUID):
        return str(value)  # the driver's own UUID class, which orjson does not know
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """JSON as the API writes it (UTC datetimes with `Z`, ids and amounts as text)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_UTC_Z).decode()


def previous_values(changes: Mapping[str, Change], data: Mapping[str, Any]) -> dict[str, Any]:
    """The changed fields' values before the change, under the API's field names: money
    columns become `value` ({amount, currency}, null when either was null), prospect
    columns nest under `prospect`; columns the API does not show are left out."""
    previous: dict[str, Any] = {}
    money: dict[str, Any] = {}
    for column, change in changes.items():
        if column in ("value_amount", "value_currency"):
            money[column.removeprefix("value_")] = change.old
        elif column.startswith("prospect_") and column[9:] in (data.get("prospect") or {}):
            previous.setdefault("prospect", {})[column[9:]] = change.old
        elif column in data:
            previous[column] = change.old
    if money:
        current = data.get("value") or {}
        amount = money.get("amount", current.get("amount"))
        currency = money.get("currency", current.get("currency"))
        previous["value"] = (
            None
            if amount is None or currency is None
            else {"amount": str(amount), "currency": currency}
        )
    return previous


def payload(
    *,
    event_id: uuid.UUID,
    type_: str,
    event: DomainEvent | None,
    company_id: uuid.UUID,
    entity_id: uuid.UUID | None,
    data: Any,
    previous: Any,
    related: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body every delivery of an event sends (documented as the OpenAPI `webhooks`)."""
    body: dict[str, Any] = {
        "id": str(event_id),
        "type": type_,
        "occurred_at": event.at if event is not None else None,
        "company_id": str(company_id),
        "user_id": str(event.user_id) if event is not None and event.user_id else None,
        "change_source": event.source.value if event is not None else "system",
        "entity": type_.split(".", 1)[0],
        "entity_id": str(entity_id) if entity_id is not None else None,
        "data": data,
        "previous": previous,
    }
    if related:
        body["related"] = related
    return body


def _related(event: DomainEvent) -> dict[str, Any] | None:
    if isinstance(event, LeadConverted):
        return {
            "deal_id": str(event.deal_id),
            "conversion_id": str(event.conversion_id),
            "rule_id": str(event.rule_id) if event.rule_id else None,
        }
    if isinstance(event, DealConverted):
        return {"lead_id": str(event.lead_id), "conversion_id": str(event.conversion_id)}
    return None


async def _records(
    session: AsyncSession, company_id: uuid.UUID, entity: str, ids: list[uuid.UUID]
) -> dict[str, dict[str, Any]]:
    """The records as the API shows them to an admin (whose visibility is the company's),
    by id, in one statement; each subscription's creator is matched against their owner
    and visibility apart, when the event is fanned out."""
    if not ids:
        return {}
    if entity == "lead":
        params = {**_admin_of(company_id), "lead_ids": ids}
        rows = await leads_by_ids(Viewer.admin).fetch(session, params)
        return {row["id"]: lead_json(row) for row in rows}
    rows = await deals_by_ids().fetch(session, {**_admin_of(company_id), "deal_ids": ids})
    return {row["id"]: deal_json(row) for row in rows}


def _admin_of(company_id: uuid.UUID) -> dict[str, Any]:
    return {"viewer_company_id": company_id, "viewer_user_id": None, "viewer_group_id": None}


# The last state an earlier event carried, per deleted record (its `previous`, and the
# owner and visibility that decide who may hear of the deletion).
_LAST_STATES = text(
    "SELECT DISTINCT ON (entity_id) CAST(entity_id AS text) AS entity_id,"
    " payload -> 'data' AS data, owner_id, pipeline_id, visible_to FROM webhook_event"
    " WHERE company_id = :company_id AND entity_id = ANY (CAST(:ids AS uuid[]))"
    " AND payload -> 'data' <> 'null'::jsonb ORDER BY entity_id, id DESC"
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event as the outbox stores it."""

    id: uuid.UUID
    type: str
    entity_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    pipeline_id: uuid.UUID | None
    visible_to: str | None
    body: dict[str, Any]


async def on_events(session: AsyncSession, published: Sequence[DomainEvent]) -> None:
    """Write the events of one `publish` call, when their company has a subscription:
    the records read once per kind (leads, deals), the deleted ones' last states once,
    then one INSERT of every event and its deliveries."""
    wanted = [e for e in published if e.type in EVENT_TYPES]
    for company_id in dict.fromkeys(e.company_id for e in wanted):
        if await subscribed_companies.any(session, company_id):
            await _write(session, company_id, [e for e in wanted if e.company_id == company_id])


async def _write(session: AsyncSession, company_id: uuid.UUID, batch: list[DomainEvent]) -> None:
    deleted = [e.id for e in batch if e.type in _DELETIONS]
    last: dict[str, Any] = {}
    if deleted:
        result = await session.execute(_LAST_STATES, {"company_id": company_id, "ids": deleted})
        last = {row.entity_id: row for row in result}
    records: dict[str, dict[str, Any]] = {}
    if len(deleted) < len(batch):
        await session.flush()
        for entity in ENTITIES:
            ids = list(
                dict.fromkeys(
                    e.id for e in batch if e.entity == entity and e.type not in _DELETIONS
                )
            )
            records.update(await _records(session, company_id, entity, ids))
    rows = []
    for event in batch:
        key = str(event.id)
        if event.type in _DELETIONS:
            state = last.get(key)
            data = None
            previous = state.data if state is not None else None
            facts = (
                (state.owner_id, state.pipeline_id, state.visible_to)
                if state is not None
                else (None, None, None)
            )
        else:
            data = records.get(key)
            if data is None:  # not there any more (deleted later in the same request)
                continue
            previous = previous_values(event.changes, data) if event.changes else None
            facts = (
                _uuid(data.get("owner_id")),
                _uuid(data.get("pipeline_id")),
                data["visible_to"],
            )
        event_id = new_id()
        body = payload(
            event_id=event_id,
            type_=event.type,
            event=event,
            company_id=company_id,
            entity_id=event.id,
            data=data,
            previous=previous,
            related=_related(event),
        )
        rows.append(
            OutboxRow(
                id=event_id,
                type=event.type,
                entity_id=event.id,
                owner_id=facts[0],
                pipeline_id=facts[1],
                visible_to=facts[2],
                body=body,
            )
        )
    await insert_events(session, company_id, rows)


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))


async def insert_events(
    session: AsyncSession, company_id: uuid.UUID, rows: list[OutboxRow]
) -> None:
    """The events, and a pending delivery for each matching enabled subscription, in one
    statement whatever their number."""
    if not rows:
        return
    await session.execute(
        _insert_events(),
        {
            "company_id": company_id,
            "ids": [r.id for r in rows],
            "types": [r.type for r in rows],
            "entity_ids": [r.entity_id for r in rows],
            "owner_ids": [r.owner_id for r in rows],
            "pipeline_ids": [r.pipeline_id for r in rows],
            "visible_tos": [r.visible_to for r in rows],
            "payloads": [dumps(r.body) for r in rows],
        },
    )


@functools.cache
def _insert_events() -> Any:
    """One statement: the events, and their deliveries to the company's enabled
    subscriptions whose event types, filters and creator's visibility match (the rule of
    `tenancy.visible_to_caller`, for the creator: admins see all of the company; others
    what they own, what is shared with the company, and group records of their group)."""
    return text(
        """
        WITH event AS (
            INSERT INTO webhook_event
                (id, company_id, type, entity, entity_id, owner_id, pipeline_id, visible_to,
                 payload, occurred_at)
            SELECT e.id, :company_id, e.type, split_part(e.type, '.', 1), e.entity_id,
                   e.owner_id, e.pipeline_id, e.visible_to, CAST(e.payload AS jsonb), now()
            FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS varchar[]),
                        CAST(:entity_ids AS uuid[]), CAST(:owner_ids AS uuid[]),
                        CAST(:pipeline_ids AS uuid[]), CAST(:visible_tos AS varchar[]),
                        CAST(:payloads AS text[]))
                 AS e(id, type, entity_id, owner_id, pipeline_id, visible_to, payload)
            RETURNING id, company_id, type, entity, entity_id, owner_id, pipeline_id,
                      visible_to
        )
        INSERT INTO webhook_delivery (id, company_id, webhook_id, event_id, entity_id, status,
                                      attempts, next_attempt_at, created_at)
        SELECT gen_random_uuid(), w.company_id, w.id, e.id, e.entity_id, 'pending', 0,
               now(), now()
        FROM event e
        JOIN webhook w ON w.company_id = e.company_id AND w.enabled
        JOIN app_user creator ON creator.id = w.created_by AND creator.company_id = w.company_id
        WHERE (e.type = ANY (w.event_types)
               OR e.entity || '.*' = ANY (w.event_types)
               OR '*' = ANY (w.event_types))
          AND (w.pipeline_id IS NULL OR w.pipeline_id = e.pipeline_id)
          AND (w.owner_id IS NULL OR w.owner_id = e.owner_id)
          AND (creator.role = 'admin'
               OR e.owner_id = creator.id
               OR e.visible_to = 'company'
               OR (e.visible_to = 'group' AND creator.group_id IS NOT NULL AND EXISTS (
                   SELECT 1 FROM app_user o
                   WHERE o.id = e.owner_id AND o.company_id = e.company_id
                     AND o.group_id = creator.group_id)))
        ORDER BY e.id
        """
    )


async def _company_created(session: AsyncSession, event: CompanyCreated) -> None:
    subscribed_companies.note(event.company_id, False)


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    """Called first by `main.subscribe_listeners` (see the module's docstring)."""
    publisher.subscribe_batch(on_events)
    publisher.subscribe(CompanyCreated, _company_created)
