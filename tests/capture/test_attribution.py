"""Campaign attribution (`utm_*`, `channel`): accepted by POST/PATCH /leads, a signed
capture and the hosted page (from its own URL), shown by LeadRead, filtering GET /leads,
and carried to the deal at conversion and back to the lead."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx

from leadflow.capture.signing import Keyring
from tests.capture.helpers import capture, create_form
from tests.factories import API, Actor, create_company, create_lead, create_stage

NEWS = {
    "utm_source": "newsletter",
    "utm_medium": "email",
    "utm_campaign": "spring_sale",
    "utm_term": "brass valves",
    "utm_content": "header_link",
    "channel": "email",
}
NONE = dict.fromkeys(NEWS)


def _attribution(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record[name] for name in NEWS}


async def _get(client: httpx.AsyncClient, actor: Actor, path: str, **params: Any) -> Any:
    response = await client.get(f"{API}{path}", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_post_patch_and_get_lead_round_trip_attribution(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)

    lead = await create_lead(client, admin, **NEWS)
    assert _attribution(lead) == NEWS
    assert _attribution(await _get(client, admin, f"/leads/{lead['id']}")) == NEWS

    patched = await client.patch(
        f"{API}/leads/{lead['id']}",
        json={"utm_campaign": "summer", "channel": None},
        headers=admin.headers,
    )
    assert patched.status_code == 200, patched.text
    expected = {**NEWS, "utm_campaign": "summer", "channel": None}
    assert _attribution(patched.json()) == expected
    assert _attribution(await _get(client, admin, f"/leads/{lead['id']}")) == expected

    plain = await create_lead(client, admin)
    assert _attribution(plain) == NONE


async def test_attribution_values_are_bounded(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)

    too_long = await client.post(
        f"{API}/leads",
        json={"title": "T", "prospect": {"person_name": "Ana"}, "utm_source": "x" * 256},
        headers=admin.headers,
    )
    blank = await create_lead(client, admin, utm_source="  ", channel=" paid_search ")

    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["loc"] == ["body", "utm_source"]
    assert blank["utm_source"] is None
    assert blank["channel"] == "paid_search"


async def test_get_leads_filters_by_each_attribution_field(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    news = await create_lead(client, admin, **NEWS)
    other = {name: f"other {name}" for name in NEWS}
    await create_lead(client, admin, **other)
    await create_lead(client, admin)

    for name, value in NEWS.items():
        found = await _get(client, admin, "/leads", **{name: value})
        assert [lead["id"] for lead in found["data"]] == [news["id"]], name
    both = await _get(client, admin, "/leads", utm_source="newsletter", utm_campaign="other")
    assert both["data"] == []
    archived = await _get(client, admin, "/leads", archived="true", utm_source="newsletter")
    assert archived["data"] == []
    # Exact match: another case is another value.
    assert (await _get(client, admin, "/leads", utm_source="Newsletter"))["data"] == []


async def test_a_signed_capture_carries_attribution_from_the_body_or_its_fields(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    direct = await capture(client, form, {"person_name": "Ana", **NEWS})
    via_fields = await capture(
        client,
        form,
        {"person_name": "Bo", "utm_source": "ads", "fields": {"utm_campaign": "spring"}},
    )

    assert direct.status_code == 201, direct.text
    lead = await _get(client, admin, f"/leads/{direct.json()['lead_id']}")
    assert _attribution(lead) == NEWS
    other = await _get(client, admin, f"/leads/{via_fields.json()['lead_id']}")
    assert other["utm_source"] == "ads"
    assert other["utm_campaign"] == "spring"
    assert other["utm_medium"] is None


async def test_a_deal_form_capture_gives_the_deal_attribution(client: httpx.AsyncClient) -> None:
    admin = await create_company(client)
    pipelines = await _get(client, admin, "/pipelines")
    stage = await create_stage(client, admin, pipelines["data"][0]["id"])
    form = await create_form(client, admin, creates="deal", stage_id=stage["id"])

    answer = await capture(client, form, {"person_name": "Ana", **NEWS})

    assert answer.status_code == 201, answer.text
    deal = await _get(client, admin, f"/deals/{answer.json()['deal_id']}")
    assert _attribution(deal) == NEWS


async def test_the_hosted_page_carries_its_url_attribution_into_the_lead(
    client: httpx.AsyncClient, keyring: Keyring
) -> None:
    admin = await create_company(client)
    form = await create_form(client, admin)

    page = await client.get(
        f"/f/{form['id']}",
        params={"utm_source": "news", "utm_campaign": "x", "other": "ignored", "channel": ""},
    )

    assert page.status_code == 200
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    assert hidden.pop("token")
    assert hidden == {"utm_source": "news", "utm_campaign": "x"}
    token = keyring.page_token(uuid.UUID(form["id"]), int(time.time() - 10))
    sent = await client.post(
        f"/f/{form['id']}", data={"name": "Ana Page", "token": token, **hidden}
    )
    assert sent.status_code == 303
    leads = await _get(client, admin, "/leads", utm_source="news")
    assert [lead["prospect"]["person_name"] for lead in leads["data"]] == ["Ana Page"]
    assert leads["data"][0]["utm_campaign"] == "x"
    assert leads["data"][0]["channel"] is None


async def test_conversion_carries_attribution_to_the_deal_and_back(
    client: httpx.AsyncClient,
) -> None:
    admin = await create_company(client)
    lead = await create_lead(client, admin, **NEWS)

    converted = await client.post(
        f"{API}/leads/{lead['id']}/convert", json={}, headers=admin.headers
    )

    assert converted.status_code == 201, converted.text
    deal_id = converted.json()["deal"]["id"]
    assert _attribution(await _get(client, admin, f"/deals/{deal_id}")) == NEWS
    back = await client.post(f"{API}/deals/{deal_id}/convert", headers=admin.headers)
    assert back.status_code == 201, back.text
    new_lead = await _get(client, admin, f"/leads/{back.json()['lead']['id']}")
    assert _attribution(new_lead) == NEWS
