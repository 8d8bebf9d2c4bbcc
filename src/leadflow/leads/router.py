from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from starlette.exceptions import HTTPException

from leadflow import attribution
from leadflow.capabilities import Capability, CapabilityNotSupported, Entity, require
from leadflow.deps import AppSettings, CurrentCaller, Session
from leadflow.errors import (
    CONFLICTING_PARAMETERS,
    InvalidInput,
    NotFound,
    RecordMerged,
    found,
    problem_model,
    responses,
)
from leadflow.fields.filters import CustomFieldsFilter, parse_query
from leadflow.leads import labels, service
from leadflow.leads.access import LeadConverted, visible_lead
from leadflow.leads.models import Lead
from leadflow.leads.reads import InboxShape, lead_by_id, lead_json, lead_page, read_lead
from leadflow.leads.repository import LeadRepository
from leadflow.leads.schemas import (
    LeadCreate,
    LeadLabelCreate,
    LeadLabelRead,
    LeadLabelUpdate,
    LeadRead,
    LeadSource,
    LeadUpdate,
)
from leadflow.leads.service import LabelNameTaken
from leadflow.merged import gone_or_not_found
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response
from leadflow.sorting import ListSort, UpdatedSince, aware, split_sort
from leadflow.tenancy import Viewer, viewer_params
from leadflow.textsearch import SearchText, words

router = APIRouter(tags=["leads"])
labels_router = APIRouter(tags=["lead labels"])

# Sub-resources of a deal; whether a lead has them is the capability table's answer.
DEAL_SUBRESOURCES = (
    Capability.products,
    Capability.participants,
    Capability.files,
    Capability.changelog,
    Capability.invoices,
    Capability.documents,
    Capability.projects,
)


async def _pipeline_fields_refused(request: Request) -> None:
    """Checked on the raw body, before the schema would call them unknown fields (422)."""
    try:
        body = await request.json()
    except ValueError:
        return  # not JSON: body validation answers
    service.refuse_pipeline_fields(body)


async def _new_lead_body(request: Request, caller: CurrentCaller) -> None:
    await _pipeline_fields_refused(request)


async def _lead_to_update(
    lead_id: uuid.UUID, request: Request, session: Session, caller: CurrentCaller
) -> Lead:
    """The lead first (404, 410), then its body's pipeline fields (409)."""
    lead = await visible_lead(session, caller, lead_id, for_update=True)
    await _pipeline_fields_refused(request)
    return lead


LeadToUpdate = Annotated[Lead, Depends(_lead_to_update)]


def _attribution_query(name: str) -> Any:
    return Query(
        min_length=1,
        max_length=attribution.MAX_LENGTH,
        description=f"Leads whose `{name}` is exactly this (case counts).",
    )


@router.post(
    "/leads",
    name="leads:create",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadRead,
    responses=responses(401, 409, 422, CapabilityNotSupported, LabelNameTaken),
    dependencies=[Depends(_new_lead_body)],
)
async def create_lead(
    data: LeadCreate, session: Session, caller: CurrentCaller, settings: AppSettings
) -> Response:
    """Add a lead to the inbox."""
    lead, rules_ran = await service.create_lead(
        session, caller, data, settings.default_phone_region
    )
    if rules_ran:
        # Rules may have marked the lead ready or converted it: read it as it is now
        # (the caller wrote it, so it is answered even where they could not see it).
        params = {**viewer_params(caller), "lead_id": uuid.UUID(lead["id"])}
        lead = lead_json(await lead_by_id(Viewer.admin).fetchrow(session, params))
    return json_response(lead, status.HTTP_201_CREATED)


@router.get(
    "/leads", name="leads:list", response_model=Page[LeadRead], responses=responses(401, 422)
)
async def list_leads(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    archived: Annotated[
        bool,
        Query(description="true: the archive (archived leads not converted) instead of the inbox."),
    ] = False,
    owner_id: Annotated[uuid.UUID | None, Query(description="Leads of this owner.")] = None,
    label_id: Annotated[
        list[uuid.UUID] | None,
        Query(
            max_length=20,
            description="Leads carrying this label; repeat it to require several.",
        ),
    ] = None,
    person_id: Annotated[
        uuid.UUID | None, Query(description="Leads linked to this person.")
    ] = None,
    organization_id: Annotated[
        uuid.UUID | None, Query(description="Leads linked to this organization.")
    ] = None,
    source: Annotated[
        LeadSource | None,
        Query(
            description="Leads that arrived this way (an unknown source is 422).", examples=["api"]
        ),
    ] = None,
    email: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=320,
            description=(
                "Leads whose prospect has this email address, ignoring case: how a form "
                "tool or an integration finds the lead it made for someone."
            ),
            examples=["ana.silva@example.com"],
        ),
    ] = None,
    ready: Annotated[
        bool,
        Query(
            description=(
                "true: only inbox leads that conversion rules mark ready, oldest readiness "
                "first (by each lead's earliest `readiness.since`)."
            )
        ),
    ] = False,
    q: SearchText = None,
    updated_since: UpdatedSince = None,
    custom_fields: CustomFieldsFilter = None,
    sort: ListSort = None,
    utm_source: Annotated[str | None, _attribution_query("utm_source")] = None,
    utm_medium: Annotated[str | None, _attribution_query("utm_medium")] = None,
    utm_campaign: Annotated[str | None, _attribution_query("utm_campaign")] = None,
    utm_term: Annotated[str | None, _attribution_query("utm_term")] = None,
    utm_content: Annotated[str | None, _attribution_query("utm_content")] = None,
    channel: Annotated[str | None, _attribution_query("channel")] = None,
) -> Response:
    """The inbox: leads neither archived nor converted, newest first (or by `sort`)."""
    if ready and archived:
        raise InvalidInput(
            ["query", "ready"],
            "Readiness lists inbox leads, not the archive.",
            CONFLICTING_PARAMETERS,
        )
    if ready and sort is not None:
        raise InvalidInput(
            ["query", "sort"],
            "Ready leads are listed by readiness; `sort` does not apply.",
            CONFLICTING_PARAMETERS,
        )
    column_sort, custom_sort = split_sort(sort)
    custom = parse_query(custom_fields, custom_sort)
    given = {
        "owner_id": owner_id,
        "label_ids": label_id or None,
        "person_id": person_id,
        "organization_id": organization_id,
        "source": source.value if source is not None else None,
        "email": email,
        "q": None if q is None else words(q),
        "updated_since": None if updated_since is None else aware(updated_since),
        "utm_source": utm_source,
        "utm_medium": utm_medium,
        "utm_campaign": utm_campaign,
        "utm_term": utm_term,
        "utm_content": utm_content,
        "channel": channel,
    }
    filters = {name: value for name, value in given.items() if value is not None}
    if custom is not None:
        filters.update(custom.params)
    shape = InboxShape(
        archived=archived,
        owner="owner_id" in filters,
        labels="label_ids" in filters,
        person="person_id" in filters,
        organization="organization_id" in filters,
        source="source" in filters,
        email="email" in filters,
        search="q" in filters,
        updated_since="updated_since" in filters,
        attribution=tuple(name for name in attribution.FIELDS if name in filters),
        column_sort=column_sort,
        custom=None if custom is None else custom.shape,
        ready=ready,
    )
    return json_response(await lead_page(session, caller, page, shape, filters))


@router.api_route(
    "/leads/convert",
    methods=["GET", "PATCH", "DELETE"],
    name="leads:convert:other-methods",
    include_in_schema=False,
)
async def _convert_is_not_a_lead_id() -> None:
    """`/leads/convert` (POST, the bulk conversion) is no lead id: its other methods are
    405, not the 422 of `/leads/{lead_id}` given a malformed id."""
    raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED)


@router.get(
    "/leads/{lead_id}",
    name="leads:get",
    response_model=LeadRead,
    responses=responses(401, 404, 422, LeadConverted, RecordMerged),
)
async def get_lead(lead_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One lead; its owner opening it marks it seen. A converted lead is 410 with `deal_id`."""
    params = {**viewer_params(caller), "lead_id": lead_id}
    row = await lead_by_id(Viewer.of(caller)).fetchrow(session, params)
    if row is None:
        raise await gone_or_not_found(session, caller, Lead, lead_id, "lead")
    if row["converted_deal_id"] is not None:
        raise LeadConverted(uuid.UUID(row["converted_deal_id"]))
    lead = lead_json(row)
    if not lead["was_seen"] and lead["owner_id"] == str(caller.user_id):
        await LeadRepository(session, caller).mark_seen(lead_id)
        lead["was_seen"] = True
    return json_response(lead)


@router.patch(
    "/leads/{lead_id}",
    name="leads:update",
    response_model=LeadRead,
    responses=responses(
        401, 404, 409, 422, CapabilityNotSupported, LabelNameTaken, LeadConverted, RecordMerged
    ),
)
async def update_lead(
    lead: LeadToUpdate,
    data: LeadUpdate,
    session: Session,
    caller: CurrentCaller,
    settings: AppSettings,
) -> LeadRead:
    """Change the fields sent; `source` never changes."""
    updated = await service.update_lead(session, caller, lead, data, settings.default_phone_region)
    return await read_lead(session, caller.company_id, updated)


@router.delete(
    "/leads/{lead_id}",
    name="leads:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422, LeadConverted, RecordMerged),
)
async def delete_lead(lead_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a lead with its notes and activities; a converted lead stays as history (410)."""
    lead = await visible_lead(session, caller, lead_id, for_update=True)
    await service.delete_lead(session, caller, lead)


@router.post(
    "/leads/{lead_id}/archive",
    name="leads:archive",
    response_model=LeadRead,
    responses=responses(401, 404, 422, LeadConverted, RecordMerged),
)
async def archive_lead(lead_id: uuid.UUID, session: Session, caller: CurrentCaller) -> LeadRead:
    """Move a lead out of the inbox into the archive; sets `archived_at`."""
    lead = await visible_lead(session, caller, lead_id, for_update=True)
    return await read_lead(
        session, caller.company_id, await service.archive_lead(session, caller, lead)
    )


@router.post(
    "/leads/{lead_id}/unarchive",
    name="leads:unarchive",
    response_model=LeadRead,
    responses=responses(401, 404, 422, LeadConverted, RecordMerged),
)
async def unarchive_lead(lead_id: uuid.UUID, session: Session, caller: CurrentCaller) -> LeadRead:
    """Bring an archived lead back to the inbox; clears `archived_at`."""
    lead = await visible_lead(session, caller, lead_id, for_update=True)
    return await read_lead(
        session, caller.company_id, await service.unarchive_lead(session, caller, lead)
    )


def _deal_only(capability: Capability) -> Callable[..., Awaitable[None]]:
    async def refuse(lead_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
        # A lead the caller cannot see is 404 like everywhere; a converted lead is still a
        # lead (history), and still has no such capability.
        await visible_lead(session, caller, lead_id, allow_converted=True)
        require(Entity.lead, capability, asked_as=capability.value)
        raise NotFound(capability.value)

    refuse.__doc__ = (
        f"Refused with 409 `capability-not-supported`: {capability.value} belong to deals, "
        "not leads (the methods a deal's route has there)."
    )
    return refuse


# The methods a deal's routes serve under each of its sub-resources: (on the collection,
# on any path below it). A lead refuses exactly these with 409 capability-not-supported
# (the deal's route has the method, the lead has no such capability); any other method is
# 405 with `Allow`, as HTTP and the document say for a method a path does not serve
# (issue 22: PUT, which no deal sub-resource has either, was 409). The collection's GET,
# which the document lists, is refused with 409 even where no deal route serves it yet
# (a planned capability). tests/leads/test_capabilities.py holds this table to the deal
# routes (deals stand above leads: leads cannot ask them).
DEAL_METHODS: dict[Capability, tuple[list[str], list[str]]] = {
    Capability.products: (["GET", "POST"], ["PATCH", "DELETE"]),
    Capability.participants: (["GET", "POST"], ["DELETE"]),
    Capability.files: (["GET", "POST"], ["GET", "DELETE"]),
    Capability.changelog: (["GET"], []),
    Capability.invoices: (["GET", "POST"], []),
    Capability.documents: (["GET", "POST"], []),
    Capability.projects: (["GET", "POST"], []),
}

for _capability in DEAL_SUBRESOURCES:
    _path = f"/leads/{{lead_id}}/{_capability.value}"
    _on_collection, _below = DEAL_METHODS[_capability]
    router.add_api_route(
        _path,
        _deal_only(_capability),
        methods=["GET"],
        name=f"leads:{_capability.value}",
        status_code=status.HTTP_409_CONFLICT,
        response_model=problem_model(CapabilityNotSupported),
        responses=responses(401, 404, 422),
    )
    # The deal's other methods, and its sub-paths such as a file's, answer the same; the
    # document lists the GET only, so that clients are not generated operations that
    # always fail.
    if _writes := [m for m in _on_collection if m != "GET"]:
        router.add_api_route(
            _path,
            _deal_only(_capability),
            methods=_writes,
            name=f"leads:{_capability.value}:write",
            include_in_schema=False,
        )
    if _below:
        router.add_api_route(
            _path + "/{rest:path}",
            _deal_only(_capability),
            methods=_below,
            name=f"leads:{_capability.value}:item",
            include_in_schema=False,
        )


@labels_router.post(
    "/lead-labels",
    name="lead-labels:create",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadLabelRead,
    responses=responses(401, 409, 422, CapabilityNotSupported, LabelNameTaken),
)
async def create_label(
    data: LeadLabelCreate, session: Session, caller: CurrentCaller
) -> LeadLabelRead:
    """Create a lead label (names are unique in the company, ignoring case)."""
    return LeadLabelRead.model_validate(await service.create_label(session, caller, data))


@labels_router.get(
    "/lead-labels",
    name="lead-labels:list",
    response_model=Page[LeadLabelRead],
    responses=responses(401, 422),
)
async def list_labels(session: Session, caller: CurrentCaller, page: PageParams) -> Response:
    """List the company's lead labels, by name."""
    return json_response(await labels.labels(session, caller, page))


@labels_router.get(
    "/lead-labels/{label_id}",
    name="lead-labels:get",
    response_model=LeadLabelRead,
    responses=responses(401, 404, 422),
)
async def get_label(label_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One lead label."""
    return json_response(found(await labels.label(session, caller, label_id), "lead label"))


@labels_router.patch(
    "/lead-labels/{label_id}",
    name="lead-labels:update",
    response_model=LeadLabelRead,
    responses=responses(401, 404, 409, 422, CapabilityNotSupported, LabelNameTaken),
)
async def update_label(
    label_id: uuid.UUID, data: LeadLabelUpdate, session: Session, caller: CurrentCaller
) -> LeadLabelRead:
    """Rename or recolor a lead label."""
    return LeadLabelRead.model_validate(await service.update_label(session, caller, label_id, data))


@labels_router.delete(
    "/lead-labels/{label_id}",
    name="lead-labels:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422),
)
async def delete_label(label_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a lead label; it is taken off every lead and deal that carried it."""
    await service.delete_label(session, caller, label_id)
