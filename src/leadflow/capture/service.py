"""Use cases of lead capture: forms and their secrets, and what one capture creates."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow import attribution
from leadflow.activities.parents import Parent, ParentKind
from leadflow.activities.repository import NoteRepository
from leadflow.auth.repository import UserRepository
from leadflow.capture.models import Form
from leadflow.capture.repository import CaptureRepository, CapturingForm, FormRepository
from leadflow.capture.schemas import CaptureBody, FieldMap, FormCreate, FormCreates, FormUpdate
from leadflow.capture.signing import Keyring, new_signing_secret
from leadflow.contacts.duplicates import Duplicates, Identity, find_duplicates, first_match
from leadflow.contacts.repository import insert_organizations, insert_persons
from leadflow.db import new_id
from leadflow.deals.limits import OpenDealLimit, ensure_open_deal_slot
from leadflow.deals.repository import insert_deals
from leadflow.errors import (
    CONFLICTS_WITH_RECORD,
    INVALID_CUSTOM_FIELD,
    NOT_A_PHONE_NUMBER,
    NOT_AN_EMAIL_ADDRESS,
    Conflict,
    InvalidInput,
    UnknownReference,
    found,
)
from leadflow.events import (
    ChangeSource,
    DealCreated,
    DomainEvent,
    LeadCreated,
    NoteCreated,
    OrganizationCreated,
    PersonCreated,
    publish,
)
from leadflow.fields import values
from leadflow.leads.repository import LeadRepository, ensure_labels_exist, existing_label_ids
from leadflow.normalize import normalize_email, normalize_phone
from leadflow.schemas import Money
from leadflow.tenancy import Caller, Role

# After a rotation the previous secret keeps working this long, so that senders can
# switch to the new one without losing deliveries.
ROTATION_GRACE = timedelta(hours=24)
_NAMES_NO_ONE = "Give at least one of person_name, email or organization_name."
_AMOUNT = r"\d+(?:\.\d{1,2})?"
# "1500.00 EUR" or "EUR 1500.00"
_MONEY_TEXT = re.compile(
    rf"^\s*(?:(?P<c1>[A-Za-z]{{3}})\s*(?P<a1>{_AMOUNT})|(?P<a2>{_AMOUNT})\s*(?P<c2>[A-Za-z]{{3}}))\s*$"
)
# The field map's entries that fill an attribute (`custom_fields` fills custom fields).
_MAPPED_ATTRIBUTES = frozenset(FieldMap.model_fields) - {"custom_fields"}
_MAX_LENGTHS = {
    "title": 300,
    "person_name": 300,
    "organization_name": 300,
    "email": 254,
    "phone": 64,
}


# Forms


async def create_form(
    session: AsyncSession, caller: Caller, data: FormCreate, keyring: Keyring
) -> tuple[Form, str]:
    """The new form and its signing secret, in clear this once."""
    forms = FormRepository(session, caller)
    await _check_references(forms, data.model_dump(exclude_unset=True))
    await _check_custom_map(session, caller, data.field_map)
    form_id = new_id()
    secret = new_signing_secret()
    form = Form(
        id=form_id,
        company_id=caller.company_id,
        name=data.name,
        creates=data.creates.value,
        stage_id=data.stage_id,
        owner_id=data.owner_id,
        label_ids=data.label_ids,
        field_map=data.field_map.model_dump(exclude_none=True),
        signing_secret_sealed=keyring.seal(secret, form_id),
    )
    return await forms.add(form), secret


async def update_form(
    session: AsyncSession, caller: Caller, form_id: uuid.UUID, data: FormUpdate
) -> Form:
    forms = FormRepository(session, caller)
    form = found(await forms.get(form_id, for_update=True), "form")
    changes = data.model_dump(exclude_unset=True)
    await _check_references(forms, changes)
    if "creates" in changes:
        changes["creates"] = changes["creates"].value
    if "field_map" in changes:
        await _check_custom_map(session, caller, data.field_map)
        changes["field_map"] = data.field_map.model_dump(exclude_none=True)
    creates = changes.get("creates", form.creates)
    stage_id = changes.get("stage_id", form.stage_id)
    if creates == FormCreates.deal.value and stage_id is None:
        # The body alone was valid (FormUpdate refuses both at once): the stored form's
        # `creates` or stage decides, a rule against the record.
        raise InvalidInput(
            ["body", "stage_id"],
            "A form that creates deals needs a stage_id.",
            CONFLICTS_WITH_RECORD,
        )
    for name, value in changes.items():
        setattr(form, name, value)
    return await forms.save(form)


async def rotate_secret(
    session: AsyncSession, caller: Caller, form_id: uuid.UUID, keyring: Keyring
) -> tuple[Form, str]:
    """A new secret; the current one stays valid for ROTATION_GRACE (replacing any older)."""
    forms = FormRepository(session, caller)
    form = found(await forms.get(form_id, for_update=True), "form")
    secret = new_signing_secret()
    form.previous_secret_sealed = form.signing_secret_sealed
    form.previous_secret_expires_at = datetime.now(UTC) + ROTATION_GRACE
    form.signing_secret_sealed = keyring.seal(secret, form.id)
    return await forms.save(form), secret


async def delete_form(session: AsyncSession, caller: Caller, form_id: uuid.UUID) -> None:
    """Deliveries go with the form; the leads and deals it captured stay."""
    forms = FormRepository(session, caller)
    form = found(await forms.get(form_id), "form")
    await forms.delete(form)


async def _check_references(forms: FormRepository, fields: dict[str, Any]) -> None:
    if fields.get("stage_id") is not None and await forms.stage(fields["stage_id"]) is None:
        raise UnknownReference(["body", "stage_id"], "No such stage in your company.")
    if fields.get("owner_id") is not None:
        await UserRepository(forms.session, forms.caller.company_id).ensure_exist(
            [fields["owner_id"]]
        )
    await ensure_labels_exist(forms.session, forms.caller.company_id, fields.get("label_ids") or [])


async def _check_custom_map(session: AsyncSession, caller: Caller, field_map: FieldMap) -> None:
    """Each custom field the map fills is a `deal` field a capture can fill (422 else);
    the definitions are read only when the map names custom fields."""
    if not field_map.custom_fields:
        return
    known = await values.definitions(session, caller.company_id, "deal")
    for key in field_map.custom_fields:
        why = values.capturable(known, key)
        if why is not None:
            loc = ["body", "field_map", "custom_fields", key]
            raise InvalidInput(loc, why, INVALID_CUSTOM_FIELD)


def signing_secrets(form: CapturingForm, keyring: Keyring, now: datetime) -> list[str]:
    """The secrets a capture may be signed with: the current one, and the previous one
    while its grace period lasts."""
    valid = [keyring.unseal(form.signing_secret_sealed, form.id)]
    if (
        form.previous_secret_sealed is not None
        and form.previous_secret_expires_at is not None
        and form.previous_secret_expires_at > now
    ):
        valid.append(keyring.unseal(form.previous_secret_sealed, form.id))
    return valid


# Captures


@dataclass(slots=True)
class Prospect:
    """Validated prospect details of one capture, ready to store."""

    person_name: str | None = None
    email: str | None = None
    phone: str | None = None
    phone_e164: str | None = None
    organization_name: str | None = None
    title: str | None = None
    message: str | None = None
    value: Money | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    # The server's default region, for phone numbers in `fields` that fill custom fields.
    phone_region: str | None = None
    # The names of the `fields` entries that filled an attribute through the field map.
    used: set[str] = field(default_factory=set)
    # utm_* and channel (`leadflow.attribution`), None where not given.
    attribution: dict[str, str | None] = field(default_factory=dict)

    def names_someone(self) -> bool:
        return any((self.person_name, self.email, self.organization_name))


@dataclass(frozen=True, slots=True)
class Captured:
    lead_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    created: bool
    # A deal form that made a lead instead: why (the open-deal limit's problem slug).
    instead_of_deal: str | None = None


def prospect_from_capture(
    body: CaptureBody, field_map: dict[str, str], phone_region: str | None
) -> Prospect:
    """The body's details, completed from `fields` through the form's field map."""
    prospect = Prospect(
        person_name=body.person_name,
        email=body.email,
        phone=body.phone,
        organization_name=body.organization_name,
        title=body.title,
        message=body.message,
        value=body.value,
        fields=dict(body.fields),
        phone_region=phone_region,
        attribution=_attribution(body),
    )
    for attribute, source in field_map.items():
        if attribute not in _MAPPED_ATTRIBUTES or getattr(prospect, attribute) is not None:
            continue
        raw = body.fields.get(source)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        setattr(prospect, attribute, _mapped_value(attribute, source, raw))
        prospect.used.add(source)
    if prospect.phone is not None:
        try:
            prospect.phone_e164 = normalize_phone(prospect.phone, phone_region)
        except ValueError as exc:
            loc = ["body", "phone"] if body.phone else ["body", "fields", field_map["phone"]]
            raise InvalidInput(loc, str(exc), NOT_A_PHONE_NUMBER) from exc
    if not prospect.names_someone():
        raise InvalidInput(["body"], _NAMES_NO_ONE)
    return prospect


def _attribution(body: CaptureBody) -> dict[str, str | None]:
    """The body's attribution; a value it leaves out is taken from a `fields` entry of
    the same name when that is a usable string (one that is not stays in `fields` only)."""
    given: dict[str, str | None] = {name: getattr(body, name) for name in attribution.FIELDS}
    from_fields = attribution.from_query(
        {n: v for n, v in body.fields.items() if n in given and isinstance(v, str)}
    )
    return {name: value or from_fields.get(name) for name, value in given.items()}


def _mapped_value(attribute: str, source: str, raw: Any) -> Any:
    loc = ["body", "fields", source]
    if not isinstance(raw, str):
        raise InvalidInput(loc, f"must be a string to fill {attribute}")
    text = raw.strip()
    if attribute == "value":
        match = _MONEY_TEXT.match(text)
        if match is None:
            raise InvalidInput(loc, 'must be an amount and a currency, like "1500.00 EUR"')
        amount = match["a1"] or match["a2"]
        currency = (match["c1"] or match["c2"]).upper()
        try:
            return Money(amount=Decimal(amount), currency=currency)
        except ValidationError as exc:
            raise InvalidInput(loc, "not a valid amount") from exc
    if len(text) > _MAX_LENGTHS[attribute]:
        raise InvalidInput(loc, f"at most {_MAX_LENGTHS[attribute]} characters to fill {attribute}")
    if attribute == "email":
        try:
            return normalize_email(text)
        except ValueError as exc:
            raise InvalidInput(loc, str(exc), NOT_AN_EMAIL_ADDRESS) from exc
    return text


async def deliver(
    session: AsyncSession,
    form: CapturingForm,
    owner_id: uuid.UUID | None,
    delivery_key: str,
    prospect: Prospect,
    source: str,
) -> Captured:
    """Create what the form creates, once per `delivery_key` (the webhook id).

    A concurrent delivery of the same key waits on the delivery's unique index until
    the first one's transaction ends, then sees the conflict (or, if the first rolled
    back, takes its place) and answers with the first one's ids.
    """
    captures = CaptureRepository(session)
    actor = _acting(form, owner_id)
    if form.creates == FormCreates.deal.value:
        if actor is None:
            raise Conflict("The form's company has no admin to own the deals it captures.")
        delivery_id = await captures.claim_delivery(form, delivery_key)
        if delivery_id is None:
            return await _first_delivery(captures, form, delivery_key)
        try:
            deal_id = await create_captured_deal(session, form, actor, prospect)
        except OpenDealLimit as limit:
            # A captured contact is never lost to a plan limit: the submission becomes a
            # lead (the limit is checked before the deal writes anything).
            lead_id = await _lead_instead(session, form, actor, owner_id, prospect, source)
            await captures.record_outcome(delivery_id, lead_id, None)
            return Captured(lead_id=lead_id, deal_id=None, created=True, instead_of_deal=limit.slug)
        await captures.record_outcome(delivery_id, None, deal_id)
        return Captured(lead_id=None, deal_id=deal_id, created=True)
    created = await create_captured_lead(session, form, owner_id, prospect, source, delivery_key)
    if created is None:
        return await _first_delivery(captures, form, delivery_key)
    lead_id, rules = created
    # Conversion rules listen: a `convert` rule that holds converts it, acting as the owner.
    await publish(
        session,
        LeadCreated(
            id=lead_id,
            company_id=form.company_id,
            actor=actor,
            source=ChangeSource.capture,
            rules_enabled=rules,
        ),
    )
    return Captured(lead_id=lead_id, deal_id=None, created=True)


def _acting(form: CapturingForm, owner_id: uuid.UUID | None) -> Caller | None:
    """Who a capture acts as, having no caller: the form's owner (else the company's first
    admin) with an admin's view of the company's records; None without either."""
    if owner_id is None:
        return None
    return Caller(company_id=form.company_id, user_id=owner_id, role=Role.admin, group_id=None)


async def _first_delivery(
    captures: CaptureRepository, form: CapturingForm, delivery_key: str
) -> Captured:
    lead_id, deal_id = await captures.delivered(form.id, delivery_key)
    # A deal form's delivery that holds a lead made it instead of a deal, at the limit.
    instead = (
        OpenDealLimit.slug
        if form.creates == FormCreates.deal.value and lead_id is not None
        else None
    )
    return Captured(lead_id=lead_id, deal_id=deal_id, created=False, instead_of_deal=instead)


def _title(prospect: Prospect, kind: str) -> str:
    if prospect.title:
        return prospect.title
    who = prospect.person_name or prospect.organization_name or prospect.email or "Captured"
    return f"{who[:290]} {kind}"


async def create_captured_lead(
    session: AsyncSession,
    form: CapturingForm,
    owner_id: uuid.UUID | None,
    prospect: Prospect,
    source: str,
    delivery_key: str,
) -> tuple[uuid.UUID, bool] | None:
    """A lead in the inbox with prospect details (not contacts: conversion makes those),
    written with its delivery record; None if `delivery_key` was delivered before. With
    its id, whether the company has an enabled conversion rule."""
    lead = await _lead_columns(session, form, owner_id, prospect, source)
    created = await CaptureRepository(session).claim_delivery_with_lead(form, delivery_key, lead)
    return created


async def _lead_columns(
    session: AsyncSession,
    form: CapturingForm,
    owner_id: uuid.UUID | None,
    prospect: Prospect,
    source: str,
) -> dict[str, Any]:
    """The columns of a captured lead (its id a new one)."""
    got = await _custom_fields(session, form, prospect)
    custom = got.values
    extra = _kept(prospect, got)
    return {
        "id": new_id(),
        "company_id": form.company_id,
        "title": _title(prospect, "lead"),
        "owner_id": owner_id,
        "prospect_person_name": prospect.person_name,
        "prospect_email": prospect.email,
        "prospect_phone": prospect.phone,
        "prospect_phone_e164": prospect.phone_e164,
        "prospect_organization_name": prospect.organization_name,
        "value_amount": prospect.value.amount if prospect.value else None,
        "value_currency": prospect.value.currency if prospect.value else None,
        "label_ids": await _labels_left(session, form),
        "source": source,
        "fields": extra,
        "visible_to": "company",
        "is_archived": False,
        "was_seen": False,
        **({"custom_fields": custom} if custom else {}),
        # Every one, null when not given: one statement per form's set of columns.
        **{name: prospect.attribution.get(name) for name in attribution.FIELDS},
    }


async def _lead_instead(
    session: AsyncSession,
    form: CapturingForm,
    actor: Caller,
    owner_id: uuid.UUID | None,
    prospect: Prospect,
    source: str,
) -> uuid.UUID:
    """A deal form's submission as a lead, its delivery claimed already; published as a
    captured lead is (conversion rules judge it: a `convert` rule meets the same limit)."""
    columns = await _lead_columns(session, form, owner_id, prospect, source)
    columns.pop("company_id")
    lead = await LeadRepository(session, actor).add(**columns)
    await publish(
        session,
        LeadCreated(
            id=lead.id, company_id=form.company_id, actor=actor, source=ChangeSource.capture
        ),
    )
    return lead.id


def _kept(prospect: Prospect, got: values.Captured) -> dict[str, Any]:
    """What a captured record's `fields` keeps: the message, every answer as submitted,
    the answers that filled neither an attribute nor a custom field (`unmapped`), and
    why each refused answer filled none (`refused`)."""
    kept: dict[str, Any] = {}
    if prospect.message:
        kept["message"] = prospect.message
    if prospect.fields:
        kept["fields"] = prospect.fields
        unmapped = {
            name: answer
            for name, answer in prospect.fields.items()
            if name not in prospect.used and name not in got.used
        }
        if unmapped:
            kept["unmapped"] = unmapped
        if got.refused:
            kept["refused"] = got.refused
    return kept


async def _custom_fields(
    session: AsyncSession, form: CapturingForm, prospect: Prospect
) -> values.Captured:
    """The `deal` custom field values (leads and deals share the set) of the answers in
    `fields`: those the form's `field_map.custom_fields` maps, then those named by a field
    key, each checked as an API write checks it (`values.captured`). Every answer also
    stays in `fields` as submitted, so one that does not fit is kept, not dropped. The
    definitions are read only when the capture has `fields`."""
    if not prospect.fields:
        return values.Captured({}, set(), {})
    known = await values.definitions(session, form.company_id, "deal")
    mapping = (form.field_map or {}).get("custom_fields") or {}
    return values.captured(known, prospect.fields, mapping, prospect.phone_region)


async def create_captured_deal(
    session: AsyncSession, form: CapturingForm, actor: Caller, prospect: Prospect
) -> uuid.UUID:
    """An open deal in the form's stage. A deal has no prospect details, so the person and
    organization are contacts: the oldest one matching (`contacts.duplicates`: a person by
    email, else phone; an organization by normalized name), else a new one. The message
    and extra fields become a note on the deal."""
    captures = CaptureRepository(session)
    assert form.stage_id is not None  # the deal_form_stage check constraint
    stage = await captures.stage(form.company_id, form.stage_id)
    if stage is None:
        raise Conflict("The form's stage no longer exists; choose another stage for the form.")
    await ensure_open_deal_slot(session, form.company_id)
    found = (
        await find_duplicates(
            session,
            actor,
            {
                0: Identity(
                    email=prospect.email,
                    phone_e164=prospect.phone_e164,
                    organization_name=prospect.organization_name,
                )
            },
        )
    ).get(0, Duplicates())
    contact = {"company_id": form.company_id, "owner_id": actor.user_id, "visible_to": "company"}
    # The contacts this capture creates, published with the deal (before it: it names them).
    created: list[DomainEvent] = []
    organization_id = first_match(found.organization)
    if organization_id is None and prospect.organization_name:
        organization_id = new_id()
        created.append(_created(OrganizationCreated, organization_id, form, actor))
        await insert_organizations(
            session, [{"id": organization_id, "name": prospect.organization_name, **contact}]
        )
    person_id = first_match(found.person)
    if person_id is None and (prospect.person_name or prospect.email):
        person_id = new_id()
        created.append(_created(PersonCreated, person_id, form, actor))
        await insert_persons(
            session,
            [
                {
                    "id": person_id,
                    "name": prospect.person_name or prospect.email,
                    "emails": [prospect.email] if prospect.email else [],
                    "phones": [prospect.phone] if prospect.phone else [],
                    "phones_e164": [prospect.phone_e164] if prospect.phone_e164 else [],
                    "organization_id": organization_id,
                    **contact,
                }
            ],
        )
    got = await _custom_fields(session, form, prospect)
    (deal,) = await insert_deals(
        session,
        form.company_id,
        None,  # no user made it: the changelog's first entry has no author
        [
            {
                "title": _title(prospect, "deal"),
                "owner_id": actor.user_id,
                "person_id": person_id,
                "organization_id": organization_id,
                "pipeline_id": stage.pipeline_id,
                "stage_id": stage.id,
                "probability": stage.probability,
                "label_ids": await _labels_left(session, form),
                "value_amount": prospect.value.amount if prospect.value else None,
                "value_currency": prospect.value.currency if prospect.value else None,
                "visible_to": "company",
                "custom_fields": got.values,
                "fields": _kept(prospect, got),
                **{name: prospect.attribution.get(name) for name in attribution.FIELDS},
            }
        ],
    )
    created.append(_created(DealCreated, deal.id, form, actor))
    if prospect.message or prospect.fields:
        note_id = await NoteRepository(session, actor).add_unsigned(
            content=_note_content(prospect), parent=Parent(ParentKind.deal, deal.id)
        )
        created.append(_created(NoteCreated, note_id, form, actor))
    await publish(session, *created)
    return deal.id


def _created(
    kind: type[DomainEvent], record_id: uuid.UUID, form: CapturingForm, actor: Caller
) -> DomainEvent:
    return kind(id=record_id, company_id=form.company_id, actor=actor, source=ChangeSource.capture)


async def _labels_left(session: AsyncSession, form: CapturingForm) -> list[uuid.UUID]:
    """The form's labels that still exist, in the form's order."""
    if not form.label_ids:
        return []
    existing = await existing_label_ids(session, form.company_id, form.label_ids)
    return [label_id for label_id in form.label_ids if label_id in existing]


def _note_content(prospect: Prospect) -> str:
    """The captured message and fields as escaped HTML (notes hold a safe HTML subset)."""
    parts = []
    if prospect.message:
        parts.append(f"<p>{html.escape(prospect.message)}</p>")
    if prospect.fields:
        items = "".join(
            f"<li>{html.escape(name)}: {html.escape(str(value))}</li>"
            for name, value in prospect.fields.items()
        )
        parts.append(f"<ul>{items}</ul>")
    return "".join(parts)
