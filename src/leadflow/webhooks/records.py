"""The kinds of record the outbox sends events about, and each one's rows as the API
shows them, built as JSON in SQL, with the facts a subscription is matched against.

Each kind's read model (its `reads` module) gives its columns and how its Python shaping
names them (`readpath.JsonRows`); here they get the record's id, the company filter, the
ids of one write (`<entity>_ids`) and three facts: the owner and the visibility that
decide which subscriptions' creators may see the record, and its pipeline (the
`pipeline_id` filter). A note or an activity has no visibility of its own: it is seen
exactly when its parent (lead, deal, person or organization) is, so its facts are its
parent's. Products, pipelines, stages and custom field definitions are the company's:
every user sees them.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    String,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from leadflow.activities.models import Activity, Note
from leadflow.activities.reads import activity_rows, note_rows
from leadflow.activities.schemas import ActivityRead, NoteRead
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.reads import contact_rows
from leadflow.contacts.schemas import OrganizationRead, PersonRead
from leadflow.deals.models import Deal
from leadflow.deals.reads import deal_rows
from leadflow.deals.schemas import DealRead
from leadflow.fields.models import FieldDefinition
from leadflow.fields.reads import field_rows
from leadflow.fields.schemas import FieldRead
from leadflow.leads.models import Lead
from leadflow.leads.reads import lead_rows
from leadflow.leads.schemas import LeadRead, ProspectRead
from leadflow.pipelines.models import Pipeline, Stage
from leadflow.pipelines.reads import pipeline_rows, stage_rows
from leadflow.pipelines.schemas import PipelineRead, StageRead
from leadflow.products.models import Product
from leadflow.products.reads import product_rows
from leadflow.products.schemas import ProductRead
from leadflow.readpath import JsonRows, json_record
from leadflow.tenancy import in_viewer_company


class Facts(enum.Enum):
    own = "own"  # the record's owner_id and visible_to (and pipeline_id when it has one)
    parent = "parent"  # its parent's (notes, activities)
    company = "company"  # every user of the company sees it


@dataclass(frozen=True)  # no slots: `shown` is cached on the instance
class Kind:
    entity: str
    model: Any
    rows: Callable[[], JsonRows]
    read: type[BaseModel]
    facts: Facts
    actions: tuple[str, ...] = ("created", "updated", "deleted")

    @functools.cached_property
    def shown(self) -> frozenset[str]:
        """The read model's field names: the columns a `previous` may name."""
        return frozenset(self.read.model_fields)


KINDS: dict[str, Kind] = {
    kind.entity: kind
    for kind in (
        Kind(
            "lead",
            Lead,
            lead_rows,
            LeadRead,
            Facts.own,
            ("created", "updated", "archived", "unarchived", "deleted", "converted"),
        ),
        Kind(
            "deal",
            Deal,
            deal_rows,
            DealRead,
            Facts.own,
            ("created", "updated", "stage_changed", "status_changed", "deleted", "converted"),
        ),
        Kind("person", Person, lambda: contact_rows(Person), PersonRead, Facts.own),
        Kind(
            "organization",
            Organization,
            lambda: contact_rows(Organization),
            OrganizationRead,
            Facts.own,
        ),
        Kind("note", Note, note_rows, NoteRead, Facts.parent),
        Kind(
            "activity",
            Activity,
            activity_rows,
            ActivityRead,
            Facts.parent,
            ("created", "updated", "done", "deleted"),
        ),
        Kind("product", Product, product_rows, ProductRead, Facts.company),
        Kind("pipeline", Pipeline, pipeline_rows, PipelineRead, Facts.company),
        Kind("stage", Stage, stage_rows, StageRead, Facts.company),
        Kind("field", FieldDefinition, field_rows, FieldRead, Facts.company),
    )
}

PROSPECT_FIELDS = frozenset(ProspectRead.model_fields)

# Every event type a subscription may name (besides `<entity>.*` and `*`).
EVENT_TYPES = tuple(f"{kind.entity}.{action}" for kind in KINDS.values() for action in kind.actions)
ENTITIES = tuple(KINDS)


def ids_param(entity: str) -> Any:
    return bindparam(f"{entity}_ids", type_=ARRAY(Uuid()))


@functools.cache
def records(entity: str, one: bool = False) -> Any:
    """The records of one kind among `<entity>_ids` of the company (`viewer_company_id`),
    or, `one`, the record `<entity>_id`: `id` (uuid), `data` (the JSON of the GET
    answer), `owner_id`, `pipeline_id`, `visible_to`. (A statement prepared once is
    planned for any value of its parameters: for `= ANY(:ids)` PostgreSQL assumes ten
    ids, for `= :id` one, which is what lets it keep one plan for a single write's
    record instead of planning it again at each run.)"""
    kind = KINDS[entity]
    rows = kind.rows()
    model = kind.model
    wanted = (
        model.id == bindparam(f"{entity}_id", type_=Uuid())
        if one
        else model.id == any_(ids_param(entity))
    )
    stmt = rows.select.add_columns(model.id.label("record_id")).where(
        in_viewer_company(model), wanted
    )
    visible_to: Any
    if kind.facts is Facts.own:
        owner, visible_to = model.owner_id, model.visible_to
        pipeline = model.pipeline_id if hasattr(model, "pipeline_id") else cast(null(), Uuid)
    elif kind.facts is Facts.parent:
        parents = (Lead, Deal, Person, Organization)
        for parent in parents:
            column = getattr(model, f"{parent.__tablename__}_id")
            stmt = stmt.outerjoin(parent, parent.id == column)
        # One parent column is set (ONE_PARENT): the other joins found nothing.
        owner = func.coalesce(*(p.owner_id for p in parents))
        visible_to = func.coalesce(*(p.visible_to for p in parents))
        pipeline = Deal.pipeline_id
    else:
        owner = cast(null(), Uuid)
        visible_to = cast(literal_column("'company'"), String)
        if model is Stage:
            pipeline = Stage.pipeline_id
        elif model is Pipeline:
            pipeline = Pipeline.id
        else:
            pipeline = cast(null(), Uuid)
    source = stmt.add_columns(
        owner.label("fact_owner_id"),
        pipeline.label("fact_pipeline_id"),
        visible_to.label("fact_visible_to"),
    ).subquery(f"{entity}_row")
    return select(
        source.c.record_id.label("id"),
        json_record(source.c, rows.names, rows.nested).label("data"),
        source.c.fact_owner_id.label("owner_id"),
        source.c.fact_pipeline_id.label("pipeline_id"),
        source.c.fact_visible_to.label("visible_to"),
    )
