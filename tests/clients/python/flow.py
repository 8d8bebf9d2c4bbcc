"""The core front-end flow with the client `openapi-python-client` generates from
openapi/openapi.json, and no hand-written type: company, lead, inbox, preview, convert
(answered 409 `duplicate-contacts`, then with the choice), move, win, board.

Run by tests/clients/run against a live `leadflow serve` (LEADFLOW_URL, LEADFLOW_ADMIN_TOKEN),
and checked with `mypy --strict` beside the generated package.
"""

from __future__ import annotations

import os
import uuid

from leadflow_client import AuthenticatedClient
from leadflow_client.api.companies_and_users import companies_create
from leadflow_client.api.contacts import persons_create
from leadflow_client.api.conversion import leads_convert, leads_convert_preview
from leadflow_client.api.deals import deals_update, pipelines_board
from leadflow_client.api.leads import leads_create, leads_list
from leadflow_client.api.pipelines_and_stages import pipelines_list, stages_list
from leadflow_client.models import (
    BoardRead,
    CompanyCreate,
    CompanyCreated,
    ConversionPreview,
    DealReadOutput,
    DealUpdate,
    DuplicateContactsProblem,
    ExistingContact,
    LeadConversionCreate,
    LeadConverted,
    LeadCreate,
    LeadReadOutput,
    MoneyInput,
    PageLeadRead,
    PagePipelineRead,
    PageStageRead,
    PersonCreate,
    PersonReadOutput,
    Prospect,
)


def main() -> None:
    base_url = os.environ["LEADFLOW_URL"]
    operator = AuthenticatedClient(base_url=base_url, token=os.environ["LEADFLOW_ADMIN_TOKEN"])
    company = companies_create.sync(
        client=operator,
        body=CompanyCreate(name="Acme", admin_email=f"py-{uuid.uuid4().hex[:8]}@example.com"),
    )
    assert isinstance(company, CompanyCreated), company
    api = AuthenticatedClient(base_url=base_url, token=company.api_token)

    person = persons_create.sync(
        client=api, body=PersonCreate(name="Ada Lovelace", emails=["ada@example.com"])
    )
    assert isinstance(person, PersonReadOutput), person

    lead = leads_create.sync(
        client=api,
        body=LeadCreate(
            title="Ada: 40 valves",
            prospect=Prospect(person_name="Ada Lovelace", email="ada@example.com"),
            value=MoneyInput(amount="1500.00", currency="EUR"),
        ),
    )
    assert isinstance(lead, LeadReadOutput), lead
    assert lead.source == "api"

    inbox = leads_list.sync(client=api)
    assert isinstance(inbox, PageLeadRead), inbox
    assert [item.id for item in inbox.data] == [lead.id]

    # The body is optional, but this generator encodes an omitted optional body as UNSET.
    preview = leads_convert_preview.sync(lead.id, client=api, body=LeadConversionCreate())
    assert isinstance(preview, ConversionPreview), preview
    assert [candidate.id for candidate in preview.duplicates.person] == [person.id]

    # Without a choice: 409 duplicate-contacts, a typed body that lists the candidates.
    refused = leads_convert.sync(lead.id, client=api, body=LeadConversionCreate())
    assert isinstance(refused, DuplicateContactsProblem), refused
    assert refused.type_ == "https://leadflow.dev/problems/duplicate-contacts"
    chosen = refused.duplicates.person[0].id

    converted = leads_convert.sync(
        lead.id, client=api, body=LeadConversionCreate(person=ExistingContact(id=chosen))
    )
    assert isinstance(converted, LeadConverted), converted
    deal = converted.deal
    assert deal.person_id == person.id

    pipelines = pipelines_list.sync(client=api)
    assert isinstance(pipelines, PagePipelineRead), pipelines
    pipeline = next(p for p in pipelines.data if p.is_default)
    stages = stages_list.sync(client=api, pipeline_id=pipeline.id)
    assert isinstance(stages, PageStageRead), stages
    later = next(stage for stage in stages.data if stage.id != deal.stage_id)

    moved = deals_update.sync(deal.id, client=api, body=DealUpdate(stage_id=later.id))
    assert isinstance(moved, DealReadOutput), moved
    assert moved.stage_id == later.id

    won = deals_update.sync(deal.id, client=api, body=DealUpdate(status="won"))
    assert isinstance(won, DealReadOutput), won
    assert won.status == "won" and won.won_at is not None

    board = pipelines_board.sync(pipeline.id, client=api)
    assert isinstance(board, BoardRead), board
    assert all(deal.id not in [d.id for d in column.deals] for column in board.stages)
    print(f"python client flow: lead {lead.id} -> deal {deal.id}, won; board read")


if __name__ == "__main__":
    main()
