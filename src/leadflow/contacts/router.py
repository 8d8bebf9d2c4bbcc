from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from leadflow.contacts import reads, service
from leadflow.contacts.models import Organization, Person
from leadflow.contacts.schemas import (
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    PersonCreate,
    PersonRead,
    PersonUpdate,
)
from leadflow.deps import AppSettings, CurrentCaller, Session
from leadflow.errors import RecordMerged, responses
from leadflow.fields.filters import CustomFieldsFilter, parse_query
from leadflow.merged import gone_or_not_found
from leadflow.pagination import Page, PageParams
from leadflow.readpath import json_response
from leadflow.schemas import Email
from leadflow.sorting import CONTACT_SORT_PATTERN, ContactSort, UpdatedSince, aware, split_sort

router = APIRouter(tags=["contacts"])

SearchText = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        description="Words that start words of the name, in any order.",
        examples=["ana sil"],
    ),
]


@router.post(
    "/persons",
    name="persons:create",
    status_code=status.HTTP_201_CREATED,
    response_model=PersonRead,
    responses=responses(401, 409, 422),
)
async def create_person(
    data: PersonCreate, session: Session, caller: CurrentCaller, settings: AppSettings
) -> PersonRead:
    """Create a person."""
    person = await service.create_person(session, caller, data, settings.default_phone_region)
    return PersonRead.model_validate(person)


@router.get(
    "/persons", name="persons:list", response_model=Page[PersonRead], responses=responses(401, 422)
)
async def list_persons(
    session: Session,
    caller: CurrentCaller,
    settings: AppSettings,
    page: PageParams,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description=(
                "Words that start words of the name, in any order; a whole email address "
                "or phone number also matches persons that have it."
            ),
            examples=["ana sil"],
        ),
    ] = None,
    email: Annotated[
        Email | None, Query(description="Persons with this email address (any case).")
    ] = None,
    organization_id: Annotated[
        uuid.UUID | None, Query(description="Persons of this organization.")
    ] = None,
    custom_fields: CustomFieldsFilter = None,
    sort: ContactSort = None,
    updated_since: UpdatedSince = None,
) -> Response:
    """List the persons visible to the caller, by name (or by `sort`)."""
    column_sort, custom_sort = split_sort(sort, CONTACT_SORT_PATTERN)
    answer = await reads.contact_page(
        session,
        caller,
        Person,
        page,
        q=q,
        email=email,
        organization_id=organization_id,
        phone_region=settings.default_phone_region,
        custom=parse_query(custom_fields, custom_sort),
        column_sort=column_sort,
        updated_since=None if updated_since is None else aware(updated_since),
    )
    return json_response(answer)


@router.get(
    "/persons/{person_id}",
    name="persons:get",
    response_model=PersonRead,
    responses=responses(401, 404, 422, RecordMerged),
)
async def get_person(person_id: uuid.UUID, session: Session, caller: CurrentCaller) -> Response:
    """One person."""
    answer = await reads.contact(session, caller, Person, person_id)
    if answer is None:
        raise await gone_or_not_found(session, caller, Person, person_id, "person")
    return json_response(answer)


@router.patch(
    "/persons/{person_id}",
    name="persons:update",
    response_model=PersonRead,
    responses=responses(401, 404, 422, RecordMerged),
)
async def update_person(
    person_id: uuid.UUID,
    data: PersonUpdate,
    session: Session,
    caller: CurrentCaller,
    settings: AppSettings,
) -> PersonRead:
    """Change the fields sent; null clears `organization_id`."""
    person = await service.update_person(
        session, caller, person_id, data, settings.default_phone_region
    )
    return PersonRead.model_validate(person)


@router.delete(
    "/persons/{person_id}",
    name="persons:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422, RecordMerged),
)
async def delete_person(person_id: uuid.UUID, session: Session, caller: CurrentCaller) -> None:
    """Delete a person."""
    await service.delete_person(session, caller, person_id)


@router.post(
    "/organizations",
    name="organizations:create",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationRead,
    responses=responses(401, 409, 422),
)
async def create_organization(
    data: OrganizationCreate, session: Session, caller: CurrentCaller, settings: AppSettings
) -> OrganizationRead:
    """Create an organization."""
    organization = await service.create_organization(
        session, caller, data, settings.default_phone_region
    )
    return OrganizationRead.model_validate(organization)


@router.get(
    "/organizations",
    name="organizations:list",
    response_model=Page[OrganizationRead],
    responses=responses(401, 422),
)
async def list_organizations(
    session: Session,
    caller: CurrentCaller,
    page: PageParams,
    q: SearchText = None,
    custom_fields: CustomFieldsFilter = None,
    sort: ContactSort = None,
    updated_since: UpdatedSince = None,
) -> Response:
    """List the organizations visible to the caller, by name (or by `sort`)."""
    column_sort, custom_sort = split_sort(sort, CONTACT_SORT_PATTERN)
    answer = await reads.contact_page(
        session,
        caller,
        Organization,
        page,
        q=q,
        custom=parse_query(custom_fields, custom_sort),
        column_sort=column_sort,
        updated_since=None if updated_since is None else aware(updated_since),
    )
    return json_response(answer)


@router.get(
    "/organizations/{organization_id}",
    name="organizations:get",
    response_model=OrganizationRead,
    responses=responses(401, 404, 422, RecordMerged),
)
async def get_organization(
    organization_id: uuid.UUID, session: Session, caller: CurrentCaller
) -> Response:
    """One organization."""
    answer = await reads.contact(session, caller, Organization, organization_id)
    if answer is None:
        raise await gone_or_not_found(
            session, caller, Organization, organization_id, "organization"
        )
    return json_response(answer)


@router.patch(
    "/organizations/{organization_id}",
    name="organizations:update",
    response_model=OrganizationRead,
    responses=responses(401, 404, 422, RecordMerged),
)
async def update_organization(
    organization_id: uuid.UUID,
    data: OrganizationUpdate,
    session: Session,
    caller: CurrentCaller,
    settings: AppSettings,
) -> OrganizationRead:
    """Change the fields sent; null clears `address` and `website`."""
    organization = await service.update_organization(
        session, caller, organization_id, data, settings.default_phone_region
    )
    return OrganizationRead.model_validate(organization)


@router.delete(
    "/organizations/{organization_id}",
    name="organizations:delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(401, 404, 422, RecordMerged),
)
async def delete_organization(
    organization_id: uuid.UUID, session: Session, caller: CurrentCaller
) -> None:
    """Delete an organization; its persons stay, without an organization."""
    await service.delete_organization(session, caller, organization_id)
