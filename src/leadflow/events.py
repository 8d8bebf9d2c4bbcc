"""Domain events: what changed, published inside the transaction of the change.

A service that writes a record publishes an event after the write; the subscribers
registered at start-up (conversion rules today; the webhook outbox and report history
next) run in the same transaction, so what they write commits or rolls back with the
change itself. Events flow up: a package publishes without knowing who listens, and the
listeners live above it (`leadflow.rules` subscribes to lead and activity events; no
package below it imports it).

Subscribers are found by the event's class and its bases: a handler of `LeadChanged`
also receives `LeadArchived`. They run one after the other, in subscription order; an
exception in one aborts the write that published (the request answers its error and
the transaction rolls back), as if the write itself had failed. A batch subscriber
(`subscribe_batch`: the webhook outbox) receives all the events of one `publish` call
at once, before the per-event subscribers, so that it can write them in one statement
whatever their number (a bulk conversion publishes two per lead). A group subscriber
(`subscribe_group`: the conversion rules) receives the events of its types of one
`publish` call together, where the first of them comes.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.tenancy import Caller


class ChangeSource(enum.StrEnum):
    """Where a change came from (outgoing webhooks will carry it as `change_source`)."""

    api = "api"
    capture = "capture"
    rule = "rule"
    import_ = "import"
    system = "system"


@dataclass(frozen=True, slots=True)
class Change:
    """A field's value before and after, as stored (ids, decimals, dates as Python values)."""

    old: Any
    new: Any


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """Something that happened to one record of one company.

    `actor` is who made the change, with their visibility (a subscriber that writes acts
    as them); None when no user is behind it (a capture for a company without an admin).
    `changes` holds the changed fields with old and new values (empty for creations and
    deletions: the record itself is the news).
    """

    # `lead.created`, `deal.stage_changed`, ...: the names outgoing webhooks will use;
    # the part before the dot is the entity.
    type: ClassVar[str] = "event"

    id: uuid.UUID
    company_id: uuid.UUID
    actor: Caller | None
    source: ChangeSource = ChangeSource.api
    changes: Mapping[str, Change] = field(default_factory=dict)
    at: datetime = field(default_factory=_now)
    # The record as the API shows it (its GET answer's fields), or what makes it, when
    # the write's own statement returned its columns (a new lead, a conversion's new
    # deal): the webhook outbox then writes it instead of reading the record again (a
    # callable is called only by an outbox that writes the event). None: the outbox
    # reads it.
    shown: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.actor.user_id if self.actor is not None else None

    @property
    def entity(self) -> str:
        return self.type.split(".", 1)[0]


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Change]:
    """The fields of `after` whose value differs from `before`."""
    return {
        name: Change(before.get(name), value)
        for name, value in after.items()
        if before.get(name) != value
    }


# Companies


class CompanyCreated(DomainEvent):
    """A new company with its first admin (the actor) and default pipeline."""

    type = "company.created"


# Leads


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadCreated(DomainEvent):
    type = "lead.created"

    # False when the lead's own INSERT found the company without an enabled conversion
    # rule (it asks at no extra round trip): the rules need not ask again.
    rules_enabled: bool = True


class LeadChanged(DomainEvent):
    type = "lead.updated"


class LeadLabelRemoved(LeadChanged):
    """A deleted label taken off a lead (`changes`: its `label_ids`): an update of the
    lead for integrators. Conversion rules answer the label's deletion once, for all
    leads (`LeadLabelDeleted`), not lead by lead."""


class LeadArchived(LeadChanged):
    """`is_archived` went from false to true (or back: `LeadUnarchived`)."""

    type = "lead.archived"


class LeadUnarchived(LeadChanged):
    type = "lead.unarchived"


class LeadDeleted(DomainEvent):
    type = "lead.deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadMerged(LeadDeleted):
    """The lead was merged into lead `into_id` (its notes, activities and captures are
    there now): a deletion for integrators, whose webhook names the survivor."""

    into_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadConverted(DomainEvent):
    """A lead became a deal (`deal_id`); `rule_id` when a conversion rule did it."""

    type = "lead.converted"

    deal_id: uuid.UUID
    conversion_id: uuid.UUID
    rule_id: uuid.UUID | None = None


class LeadLabelDeleted(DomainEvent):
    """A lead label is gone; records that carried it must drop it (the leads already have)."""

    type = "lead_label.deleted"


# Deals


class DealCreated(DomainEvent):
    type = "deal.created"


class DealChanged(DomainEvent):
    type = "deal.updated"


class DealLabelRemoved(DealChanged):
    """A deleted lead label taken off a deal (`changes`: its `label_ids`)."""


class DealStageChanged(DomainEvent):
    """Published beside `DealChanged` when the deal moved: `changes` has `pipeline_id`
    (when it changed) and `stage_id`."""

    type = "deal.stage_changed"


class DealStatusChanged(DomainEvent):
    """Published beside `DealChanged` when the status changed (open, won, lost)."""

    type = "deal.status_changed"


class DealDeleted(DomainEvent):
    type = "deal.deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class DealConverted(DomainEvent):
    """An open deal went back to the inbox as lead `lead_id`."""

    type = "deal.converted"

    lead_id: uuid.UUID
    conversion_id: uuid.UUID


# Contacts, notes, the catalog and pipelines: published for the webhook outbox (nothing
# else listens yet). `changes` as for leads: the changed columns' old and new values.


class PersonCreated(DomainEvent):
    type = "person.created"


class PersonChanged(DomainEvent):
    type = "person.updated"


class PersonDeleted(DomainEvent):
    type = "person.deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonMerged(PersonDeleted):
    """The person was merged into person `into_id`: a deletion naming the survivor."""

    into_id: uuid.UUID


class OrganizationCreated(DomainEvent):
    type = "organization.created"


class OrganizationChanged(DomainEvent):
    type = "organization.updated"


class OrganizationDeleted(DomainEvent):
    type = "organization.deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrganizationMerged(OrganizationDeleted):
    """The organization was merged into organization `into_id`: a deletion naming the
    survivor."""

    into_id: uuid.UUID


class NoteCreated(DomainEvent):
    type = "note.created"


class NoteChanged(DomainEvent):
    type = "note.updated"


class NoteDeleted(DomainEvent):
    type = "note.deleted"


class ProductCreated(DomainEvent):
    type = "product.created"


class ProductChanged(DomainEvent):
    type = "product.updated"


class ProductDeleted(DomainEvent):
    type = "product.deleted"


class PipelineCreated(DomainEvent):
    type = "pipeline.created"


class PipelineChanged(DomainEvent):
    type = "pipeline.updated"


class PipelineDeleted(DomainEvent):
    type = "pipeline.deleted"


class StageCreated(DomainEvent):
    type = "stage.created"


class StageChanged(DomainEvent):
    type = "stage.updated"


class StageDeleted(DomainEvent):
    type = "stage.deleted"


# Pipelines and stages


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineVacating(DomainEvent):
    """Pipeline `id` (or only its stage `stage_id`) is about to be deleted, or the stage
    moved to another pipeline. Published before the change, under the lock of the
    company's pipelines, so that a listener whose records sit there can refuse (409):
    deals keep their stage, even won and lost ones (the foreign keys are ON DELETE
    RESTRICT), and a stage that holds deals cannot move without splitting them."""

    type = "pipeline.vacating"

    stage_id: uuid.UUID | None = None


# Custom fields (the records that carry values listen: leads and deals to `deal` fields,
# contacts to `person` and `organization` fields, products to `product` fields)


class FieldCreated(DomainEvent):
    """A custom field definition was created (for the webhook outbox)."""

    type = "field.created"


class FieldChanged(DomainEvent):
    """A custom field definition's name, description, options or formula changed."""

    type = "field.updated"


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldDeleted(DomainEvent):
    """A custom field was deleted: records hide its value and keep it for history."""

    type = "field.deleted"

    entity: str
    key: str


class FormulaChanged(DomainEvent):
    """A deal formula field was created or its formula changed: every deal of the company
    gets its value again."""

    type = "field.formula_changed"


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldOptionsRemoved(DomainEvent):
    """Options of an `enum` or `set` field were removed. A listener whose records still
    use one refuses (409) unless `clear`, in which case it takes them off those records."""

    type = "field.options_removed"

    entity: str
    key: str
    field_type: str
    option_ids: tuple[int, ...]
    clear: bool = False


# Activities (the ones on a lead are what `activity_done` conditions look at)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityEvent(DomainEvent):
    """An activity event names the activity's parent record and whether it is done."""

    type = "activity"

    lead_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    done: bool = False


class ActivityCreated(ActivityEvent):
    type = "activity.created"


class ActivityChanged(ActivityEvent):
    type = "activity.updated"


class ActivityDone(ActivityChanged):
    """An activity changed from not done to done (one created done is `ActivityCreated`
    with `done`)."""

    type = "activity.done"


class ActivityDeleted(ActivityEvent):
    type = "activity.deleted"


# Publishing

E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[AsyncSession, Any], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, Sequence[DomainEvent]], Awaitable[None]]


class Publisher:
    """Handlers by event class. One per process (`publisher`); tests may make their own."""

    def __init__(self) -> None:
        self._handlers: dict[type[DomainEvent], list[Handler]] = {}
        self._routes: dict[type[DomainEvent], tuple[Handler, ...]] = {}
        self._batch_handlers: list[BatchHandler] = []
        self._group_handlers: dict[type[DomainEvent], list[BatchHandler]] = {}
        self._group_routes: dict[type[DomainEvent], tuple[BatchHandler, ...]] = {}

    def subscribe_batch(self, handler: BatchHandler) -> None:
        """`handler` receives every `publish` call's events together (idempotent)."""
        if handler not in self._batch_handlers:
            self._batch_handlers.append(handler)

    def subscribe_group(self, event_type: type[DomainEvent], handler: BatchHandler) -> None:
        """`handler` receives, once per `publish` call, every event of that call of
        `event_type` (or a subclass, or another type it is subscribed to), in their
        order; it runs where the first of them comes among the per-event handlers
        (idempotent). For a subscriber that can do the work of many events at once (the
        conversion rules over an import's leads) and whose events are independent."""
        handlers = self._group_handlers.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)
            self._group_routes.clear()

    def group_handlers_of(self, event_type: type[DomainEvent]) -> tuple[BatchHandler, ...]:
        route = self._group_routes.get(event_type)
        if route is None:
            found: dict[BatchHandler, None] = {}
            for cls in event_type.__mro__:
                found.update(dict.fromkeys(self._group_handlers.get(cls, ())))
            route = tuple(found)
            self._group_routes[event_type] = route
        return route

    def subscribe(
        self, event_type: type[E], handler: Callable[[AsyncSession, E], Awaitable[None]]
    ) -> None:
        """Idempotent: the same handler subscribed twice runs once (apps made per test)."""
        handlers = self._handlers.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)
            self._routes.clear()

    def unsubscribe(self, event_type: type[DomainEvent], handler: Handler) -> None:
        if handler in self._handlers.get(event_type, []):
            self._handlers[event_type].remove(handler)
            self._routes.clear()

    def handlers_of(self, event_type: type[DomainEvent]) -> tuple[Handler, ...]:
        """The handlers of the class and its bases, resolved once per class."""
        route = self._routes.get(event_type)
        if route is None:
            route = tuple(
                handler for cls in event_type.__mro__ for handler in self._handlers.get(cls, ())
            )
            self._routes[event_type] = route
        return route

    async def publish(self, session: AsyncSession, *events: DomainEvent) -> None:
        for batch_handler in self._batch_handlers:
            await batch_handler(session, events)
        grouped: set[BatchHandler] = set()
        for event in events:
            for handler in self.handlers_of(type(event)):
                await handler(session, event)
            for group_handler in self.group_handlers_of(type(event)):
                if group_handler not in grouped:
                    grouped.add(group_handler)
                    await group_handler(
                        session,
                        [e for e in events if group_handler in self.group_handlers_of(type(e))],
                    )


publisher = Publisher()
subscribe = publisher.subscribe
publish = publisher.publish
