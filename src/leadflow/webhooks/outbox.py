"""The outbox: each domain event about a record the API shows (leads, deals, persons,
organizations, notes, activities, products, pipelines, stages, custom field definitions)
becomes one `webhook_event` row, written in the transaction of the change. Its
deliveries (one per matching subscription) are made by the worker (`leadflow worker`:
`repository.fan_out`, at the start of each round of `delivery.DeliveryLoop`), which the
statement wakes at the commit: the request pays for the event only.

A subscriber of `leadflow.events` (`subscribe()`, called at start-up before the other
listeners, so that an event's `data` is the record as the change left it and not as a
conversion rule reacting to the change leaves it). The event row exists if and only if
the change commits: a rolled-back request leaves nothing to send.

Cost: one statement per `publish` call (a batch subscriber: a bulk conversion of any
number of leads is one call), whatever the kinds and number of its events. The records
are read as the API shows them and written as JSON by the same statement
(`readpath.json_record`: the read models' columns, shaped in SQL), unless the event
carries its record already (`DomainEvent.shown`: a new lead, a conversion's new deal,
whose INSERT returned it; reading it again cost the write most of the statement's
time), the deleted ones' last states are looked up in it, and it inserts the events
(not their deliveries). It writes nothing unless the company has a subscription
(enabled or not: a disabled one may be replayed later), a condition PostgreSQL
evaluates once before anything else, and
it answers whether there is one: a process that LISTENs for new subscriptions then runs
no statement at all for that company's writes (`Unsubscribed`), and any replica's new
subscription is known to every process at its commit (a NOTIFY).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Text, Uuid, cast, false, null, select, text, union_all
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from leadflow import events
from leadflow.db import new_id
from leadflow.events import (
    Change,
    DealConverted,
    DomainEvent,
    LeadConverted,
    LeadMerged,
    OrganizationMerged,
    PersonMerged,
)
from leadflow.readpath import ReadStatement, autoflushed
from leadflow.webhooks import listening
from leadflow.webhooks.models import SUBSCRIBED_CHANNEL, WAKE_CHANNEL
from leadflow.webhooks.records import (
    ENTITIES,
    EVENT_TYPES,
    KINDS,
    PROSPECT_FIELDS,
    Facts,
    Kind,
    records,
)

__all__ = ["ENTITIES", "EVENT_TYPES", "TEST_EVENT", "dumps", "on_events", "payload"]

TEST_EVENT = "webhook.test"
_SENT = frozenset(EVENT_TYPES)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # amounts as the API spells them: text with their decimals
    if isinstance(value, uuid.UUID):
        return str(value)  # the driver's own UUID class, which orjson does not know
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """JSON as the API writes it (UTC datetimes with `Z`, ids and amounts as text)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_UTC_Z).decode()


def previous_values(
    changes: Mapping[str, Change], kind: Kind
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The changed fields' values before the change, under the API's field names (money
    columns become `value`: {amount, currency}, null when either was null; prospect
    columns nest under `prospect`; columns the API does not show are left out), and,
    when only one half of `value` changed, that half's old value: the statement fills
    the other half in from the record as it is (`fill`)."""
    previous: dict[str, Any] = {}
    money: dict[str, Any] = {}
    for column, change in changes.items():
        if column in ("value_amount", "value_currency") and "value" in kind.shown:
            old = change.old
            money[column.removeprefix("value_")] = str(old) if isinstance(old, Decimal) else old
        elif (
            column.startswith("prospect_")
            and "prospect" in kind.shown
            and column[9:] in PROSPECT_FIELDS
        ):
            previous.setdefault("prospect", {})[column[9:]] = change.old
        elif column in kind.shown:
            previous[column] = change.old
    if len(money) == 2:
        amount, currency = money["amount"], money["currency"]
        previous["value"] = (
            None if amount is None or currency is None else {"amount": amount, "currency": currency}
        )
        return previous, None
    return previous, (money or None)


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
    """The body every delivery of an event sends (documented as the OpenAPI `webhooks`);
    for a domain event the outbox's statement sets `data` (and completes `previous`)."""
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
    if isinstance(event, LeadMerged | PersonMerged | OrganizationMerged):
        return {"merged_into": str(event.into_id)}
    return None


async def on_events(session: AsyncSession, published: Sequence[DomainEvent]) -> None:
    """Write the events of one `publish` call: one statement per company (one in
    practice), which writes nothing when the company has no subscription."""
    sent = [e for e in published if e.type in _SENT]
    for company_id in dict.fromkeys(e.company_id for e in sent):
        if not unsubscribed.known(company_id):
            await _write(session, company_id, [e for e in sent if e.company_id == company_id])


class Unsubscribed:
    """Companies this process knows to have no subscription: their writes run no outbox
    statement. Known only from the statement's own answer (`subscribed`), and trusted
    only while the process LISTENs on SUBSCRIBED_CHANNEL, which a subscription's
    creation NOTIFYs with its company's id at its commit: the notification makes every
    process forget that company. A write starting after the commit and before the
    notification reaches a process (milliseconds) is not sent, as a write already under
    way at the commit is not. An answer is not kept when a notification (of any company)
    arrived while its statement ran, and a lost LISTEN forgets everything: until it is
    back, every write asks the database. A process that does not listen (a `leadflow
    worker`, the tests' apps) always asks."""

    def __init__(self, maxsize: int = 100_000) -> None:
        self.maxsize = maxsize
        self.listening = False
        self._none: set[uuid.UUID] = set()
        self._events = 0  # notifications and (dis)connections so far

    def known(self, company_id: uuid.UUID) -> bool:
        return self.listening and company_id in self._none

    def seen(self) -> int:
        """What `note` needs: taken before the statement runs."""
        return self._events

    def note(self, company_id: uuid.UUID, seen: int) -> None:
        """The statement that started at `seen` found no subscription."""
        if self.listening and seen == self._events and len(self._none) < self.maxsize:
            self._none.add(company_id)

    def subscribed(self, payload: str) -> None:
        self._events += 1
        try:
            self._none.discard(uuid.UUID(payload))
        except ValueError:
            self._none.clear()

    def state(self, up: bool) -> None:
        self._events += 1
        self.listening = up
        self._none.clear()

    async def listen(self, engine: AsyncEngine, stop: asyncio.Event) -> None:
        """Run by the API process's lifespan until `stop`."""
        await listening.listen(engine, SUBSCRIBED_CHANNEL, self.subscribed, self.state, stop)


unsubscribed = Unsubscribed()


async def _write(session: AsyncSession, company_id: uuid.UUID, batch: list[DomainEvent]) -> None:
    # The change's own rows must be in the database before the statement reads them
    # (a flush only when the session holds changes: most writes made theirs in SQL).
    await autoflushed(session)
    ids: list[uuid.UUID] = []
    types: list[str] = []
    entity_ids: list[uuid.UUID] = []
    deleted: list[bool] = []
    envelopes: list[str] = []
    fills: list[str | None] = []
    # The facts of a record the event carries (`DomainEvent.shown`), None for the others.
    owners: list[Any] = []
    pipelines: list[Any] = []
    visible: list[str | None] = []
    read: dict[str, list[uuid.UUID]] = {}
    for event in batch:
        # Not `event.entity`: a field event has a field of that name (the field's entity).
        entity, _, action = event.type.partition(".")
        kind = KINDS[entity]
        previous: dict[str, Any] | None = None
        fill = None
        if event.changes:
            previous, fill = previous_values(event.changes, kind)
        event_id = new_id()
        ids.append(event_id)
        types.append(event.type)
        entity_ids.append(event.id)
        deleted.append(action == "deleted")
        shown = _shown(event, kind) if action != "deleted" else None
        envelope = payload(
            event_id=event_id,
            type_=event.type,
            event=event,
            company_id=company_id,
            entity_id=event.id,
            data=shown,
            previous=previous,
            related=_related(event),
        )
        try:
            envelopes.append(dumps(envelope))
        except orjson.JSONEncodeError:
            # A value JSON text holds but orjson does not write (an integer beyond 64
            # bits among captured `fields`): the statement reads the record instead.
            shown = envelope["data"] = None
            envelopes.append(dumps(envelope))
        owners.append(shown.get("owner_id") if shown is not None else None)
        pipelines.append(shown.get("pipeline_id") if shown is not None else None)
        visible.append(shown["visible_to"] if shown is not None else None)
        if action != "deleted" and shown is None:
            read.setdefault(entity, []).append(event.id)
        fills.append(dumps(fill) if fill is not None else None)
    params: dict[str, Any] = {
        "viewer_company_id": company_id,
        "ids": ids,
        "types": types,
        "entity_ids": entity_ids,
        "deleted": deleted,
        "envelopes": envelopes,
        "fills": fills,
        "owners": owners,
        "pipelines": pipelines,
        "visible": visible,
    }
    single = []
    for entity, entity_record_ids in read.items():
        unique = list(dict.fromkeys(entity_record_ids))
        params[f"{entity}_ids"] = unique
        if len(unique) == 1:
            params[f"{entity}_id"] = unique[0]
            single.append(entity)
    seen = unsubscribed.seen()
    if read or any(deleted) or any(fill is not None for fill in fills):
        statement = _statement(tuple(sorted(read)), frozenset(single), any(deleted))
    else:
        # Every event carries its record: one JSON text of them all (the driver encodes
        # an array parameter element by element, with abstract-class checks on each).
        statement = _CARRIED
        # The envelopes are JSON already: taken as they are (`Fragment`), not written again.
        params["events"] = dumps(
            [
                {"envelope": orjson.Fragment(e), "owner_id": o, "pipeline_id": p, "visible_to": v}
                for e, o, p, v in zip(envelopes, owners, pipelines, visible, strict=True)
            ]
        )
    row = await statement.fetchrow(session, params)
    if not row["subscribed"]:
        unsubscribed.note(company_id, seen)


def _shown(event: DomainEvent, kind: Kind) -> Mapping[str, Any] | None:
    """The record the event carries, when the outbox can take it as it is: a record with
    facts of its own (owner and visibility are fields of its answer). A note's or an
    activity's facts are its parent's, which only a read finds."""
    if event.shown is None or kind.facts is not Facts.own:
        return None
    shown = event.shown() if callable(event.shown) else event.shown
    return shown if "visible_to" in shown else None


_COMPANY_WIDE = ", ".join(f"'{k.entity}'" for k in KINDS.values() if k.facts is Facts.company)

# The events, each with its record as the API shows it (`record`, or the envelope's
# `data` when the event carried it: `e.shown`, with its facts in `owners`, `pipelines`
# and `visible`; none for a deletion, whose `previous` and facts are those the last
# event about the record carried), and
# the facts subscriptions are matched against (owner, pipeline, visibility). No
# delivery: the worker makes them (`repository.fan_out`), woken at the commit when the
# statement wrote an event (WAKE_CHANNEL). The EXISTS is uncorrelated: PostgreSQL runs
# it once, first, and reads nothing more when the company has no subscription.
_TEMPLATE = """
WITH record AS ({statement}),
event AS (
    INSERT INTO webhook_event
        (id, company_id, type, entity, entity_id, owner_id, pipeline_id, visible_to,
         payload, occurred_at)
    SELECT e.id, :viewer_company_id, e.type, split_part(e.type, '.', 1), e.entity_id,
           CASE WHEN e.deleted THEN l.owner_id WHEN e.shown THEN e.owner_id ELSE r.owner_id END,
           CASE WHEN e.deleted THEN l.pipeline_id WHEN e.shown THEN e.pipeline_id
                ELSE r.pipeline_id END,
           CASE WHEN e.deleted THEN coalesce(l.visible_to, CASE
                    WHEN split_part(e.type, '.', 1) IN ({company_wide}) THEN 'company' END)
                WHEN e.shown THEN e.visible_to
                ELSE r.visible_to END,
           CASE WHEN e.shown THEN CAST(e.envelope AS jsonb)
                ELSE CAST(e.envelope AS jsonb) || jsonb_build_object('data', r.data) END
           || jsonb_build_object(
               'previous', CASE
                   WHEN e.deleted THEN l.data
                   WHEN e.fill IS NULL THEN CAST(e.envelope AS jsonb) -> 'previous'
                   ELSE (CAST(e.envelope AS jsonb) -> 'previous') || jsonb_build_object(
                       'value', CASE WHEN m.value ->> 'amount' IS NULL
                                       OR m.value ->> 'currency' IS NULL
                                     THEN 'null'::jsonb ELSE m.value END)
               END),
           now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS varchar[]),
                CAST(:entity_ids AS uuid[]), CAST(:deleted AS boolean[]),
                CAST(:envelopes AS text[]), CAST(:fills AS text[]),
                CAST(:owners AS uuid[]), CAST(:pipelines AS uuid[]),
                CAST(:visible AS text[]))
         AS u(id, type, entity_id, deleted, envelope, fill, owner_id, pipeline_id, visible_to)
    CROSS JOIN LATERAL (SELECT u.*, u.visible_to IS NOT NULL AS shown) e
    LEFT JOIN record r ON r.id = e.entity_id AND NOT e.deleted AND NOT e.shown
    LEFT JOIN {last} l ON true
    CROSS JOIN LATERAL (
        SELECT CASE WHEN e.shown THEN CAST(e.envelope AS jsonb) -> 'data' ELSE r.data END
               AS data
    ) d
    CROSS JOIN LATERAL (
        SELECT jsonb_build_object('amount', d.data -> 'value' -> 'amount',
                                  'currency', d.data -> 'value' -> 'currency')
               || CAST(e.fill AS jsonb) AS value
    ) m
    WHERE (e.deleted OR e.shown OR r.id IS NOT NULL)
      AND EXISTS (SELECT 1 FROM webhook WHERE company_id = :viewer_company_id)
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM webhook WHERE company_id = :viewer_company_id) AS subscribed,
       CASE WHEN EXISTS (SELECT 1 FROM event) THEN pg_notify('{channel}', '') END AS woken
""".replace("{channel}", WAKE_CHANNEL).replace("{company_wide}", _COMPANY_WIDE)


# Events that all carry their records (`shown`), none a deletion or a half-changed
# value: their envelopes are their payloads, their facts are given. The statement
# inserts them and nothing else (`_TEMPLATE` for them runs its joins, laterals and
# JSON work for nothing: 0.35 ms against 0.30 ms for a new lead's event, timed from the
# driver call in bench-webhooks, a trivial statement's round trip being 0.11 ms).
_CARRIED = ReadStatement(
    text(
        """
WITH event AS (
    INSERT INTO webhook_event
        (id, company_id, type, entity, entity_id, owner_id, pipeline_id, visible_to,
         payload, occurred_at)
    SELECT CAST(e.envelope ->> 'id' AS uuid), :viewer_company_id, e.envelope ->> 'type',
           e.envelope ->> 'entity', CAST(e.envelope ->> 'entity_id' AS uuid),
           e.owner_id, e.pipeline_id, e.visible_to, e.envelope, now()
    FROM jsonb_to_recordset(CAST(:events AS jsonb))
         AS e(envelope jsonb, owner_id uuid, pipeline_id uuid, visible_to text)
    WHERE EXISTS (SELECT 1 FROM webhook WHERE company_id = :viewer_company_id)
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM webhook WHERE company_id = :viewer_company_id) AS subscribed,
       CASE WHEN EXISTS (SELECT 1 FROM event) THEN pg_notify('{channel}', '') END AS woken
""".replace("{channel}", WAKE_CHANNEL)
    )
)


# A deleted record's last event: its `previous` and its facts.
_LAST = """LATERAL (
        SELECT last.payload -> 'data' AS data, last.owner_id, last.pipeline_id,
               last.visible_to
        FROM webhook_event last
        WHERE e.deleted AND last.company_id = :viewer_company_id
          AND last.entity_id = e.entity_id AND last.payload -> 'data' <> 'null'::jsonb
        ORDER BY last.id DESC LIMIT 1
    )"""
# Without deletions: nothing to look up (the lateral, though never run, would count
# in the plan's estimated cost at each of the ten rows PostgreSQL assumes an array has).
_NO_LAST = """(SELECT CAST(NULL AS jsonb) AS data, CAST(NULL AS uuid) AS owner_id,
                      CAST(NULL AS uuid) AS pipeline_id, CAST(NULL AS text) AS visible_to)"""


@functools.lru_cache(maxsize=256)
def _statement(entities: tuple[str, ...], single: frozenset[str], deletions: bool) -> ReadStatement:
    """The statement for events about records of these kinds (`single`: kinds of which
    the write touched one record), with deletions or not, compiled once per combination
    (a write touches one or two kinds).

    Shaped so that PostgreSQL keeps one plan for it: it plans a prepared statement for
    each run's values five times, then keeps a plan made for any values when that one's
    estimated cost is not above theirs. The union of record reads costs it 2-3 ms to
    plan (auto_explain, a conversion's lead, deal and person), more than running it;
    estimated for ten ids of each kind and a lookup per event of a deletion's last
    state, the general plan cost six times a single conversion's, and a conversion with
    a subscription planned at every run (bench-webhooks: 2.5 ms of a 2.7 ms statement)."""
    if entities:
        parts = [records(entity, entity in single) for entity in entities]
        rows: Any = parts[0] if len(parts) == 1 else union_all(*parts)
    else:
        rows = select(
            cast(null(), Uuid).label("id"),
            cast(null(), JSONB).label("data"),
            cast(null(), Uuid).label("owner_id"),
            cast(null(), Uuid).label("pipeline_id"),
            cast(null(), Text).label("visible_to"),
        ).where(false())
    return ReadStatement(rows).around(_TEMPLATE.replace("{last}", _LAST if deletions else _NO_LAST))


def subscribe(publisher: events.Publisher = events.publisher) -> None:
    """Called first by `main.subscribe_listeners` (see the module's docstring)."""
    publisher.subscribe_batch(on_events)
