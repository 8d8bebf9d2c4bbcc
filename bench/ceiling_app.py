"""The ceiling of `make bench`: leadflow's hot questions answered with raw asyncpg.

A bare ASGI app, no framework, no validation beyond what the SQL needs, run by uvicorn
exactly as leadflow is (one worker, uvloop, httptools, no access log), on the same
database, with the same pool size (leadflow's default: 10 + 10 overflow). It answers the
same authorized question as leadflow: the bearer token's SHA-256 digest
(leadflow.auth.tokens.hash_token) is looked up and joined in the same statement, the
answer scoped to the token user's company, and it returns JSON of the same shape
(`LeadRead`, `DealRead`, `{"data", "next_cursor"}` pages with leadflow's cursors).

    GET  /api/v1/leads/{id}              lead by id (410 when converted)
    GET  /api/v1/leads?limit=&cursor=    the inbox, newest first, keyset paging
    GET  /api/v1/leads?email=            inbox leads whose prospect has this email (any case)
    GET  /api/v1/deals/{id}              deal by id, with `rotten` from its stage
    POST /api/v1/leads                   a single-row insert: {"title", "prospect"?}
    POST /api/v1/leads/{id}/convert      lead to deal as plain SQL, in one transaction

    BENCH_DATABASE_URL=postgresql://... uvicorn bench.ceiling_app:app
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import asyncpg

POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "10"))
POOL_MAX = int(os.environ.get("BENCH_POOL_MAX", str(POOL_SIZE * 2)))
PREFIX = "/api/v1/"

# The caller: user and company of the token, as leadflow.deps.current_caller finds them.
CALLER = """
caller AS (
    SELECT u.id AS user_id, u.company_id, u.role, u.group_id
    FROM api_token t JOIN app_user u ON u.id = t.user_id
    WHERE t.token_hash = $1
)"""
# leadflow.tenancy.visible_to_caller for leads and deals of the caller's company.
VISIBLE = """
    (c.role = 'admin' OR x.visible_to = 'company' OR x.owner_id = c.user_id
     OR (x.visible_to = 'group' AND c.group_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM app_user o WHERE o.id = x.owner_id AND o.group_id = c.group_id)))"""
LEAD_COLUMNS = """
    x.id, x.title, x.owner_id, x.person_id, x.organization_id, x.prospect_person_name,
    x.prospect_email, x.prospect_phone, x.prospect_phone_e164, x.prospect_organization_name,
    x.value_amount, x.value_currency, x.expected_close_date, x.label_ids, x.source,
    x.is_archived, x.archived_at, x.was_seen, x.visible_to, x.source_deal_id,
    x.fields::text AS fields, x.custom_fields::text AS custom_fields, x.utm_source,
    x.utm_medium, x.utm_campaign, x.utm_term, x.utm_content, x.channel, x.created_at,
    x.updated_at, x.converted_deal_id,
    (SELECT json_agg(json_build_object('rule_id', r.rule_id, 'name', cr.name,
                                       'since', r.since, 'blocked_reason', r.blocked_reason)
                     ORDER BY r.since)::text
     FROM lead_readiness r JOIN conversion_rule cr ON cr.id = r.rule_id
     WHERE r.lead_id = x.id) AS readiness"""
LEAD_BY_ID = f"""
WITH {CALLER}
SELECT {LEAD_COLUMNS}
FROM caller c JOIN lead x ON x.company_id = c.company_id AND x.id = $2
WHERE {VISIBLE}
"""


def _inbox(condition: str) -> str:
    """An inbox page; one statement per filter, so each gets a plan of its own. LATERAL:
    the caller is one row, the page one ordered index scan of the company's inbox."""
    return f"""
WITH {CALLER}
SELECT x.* FROM caller c CROSS JOIN LATERAL (
    SELECT {LEAD_COLUMNS}
    FROM lead x
    WHERE x.company_id = c.company_id AND NOT x.is_archived AND x.converted_deal_id IS NULL
      AND {VISIBLE}{condition}
    ORDER BY x.created_at DESC, x.id DESC
    LIMIT $2
) x
ORDER BY x.created_at DESC, x.id DESC
"""


INBOX_FIRST = _inbox("")
INBOX_AFTER = _inbox("\n  AND (x.created_at, x.id) < ($3::timestamptz, $4::uuid)")
INBOX_EMAIL = _inbox("\n  AND lower(x.prospect_email) = lower($3)")
DEAL_BY_ID = f"""
WITH {CALLER}
SELECT x.id, x.title, x.owner_id, x.person_id, x.organization_id, x.pipeline_id, x.stage_id,
       x.status, x.lost_reason, x.value_amount, x.value_currency, x.value_from_products,
       x.probability, x.expected_close_date, x.won_at, x.lost_at, x.closed_at,
       x.stage_changed_at, x.label_ids, x.visible_to, x.source_lead_id,
       x.fields::text AS fields, x.custom_fields::text AS custom_fields, x.utm_source,
       x.utm_medium, x.utm_campaign, x.utm_term, x.utm_content, x.channel, x.created_at,
       x.updated_at,
       (x.status = 'open' AND s.rotten_days IS NOT NULL
        AND coalesce(x.stage_changed_at, x.created_at)
            < now() - make_interval(days => s.rotten_days)) AS rotten
FROM caller c JOIN deal x ON x.company_id = c.company_id AND x.id = $2
JOIN stage s ON s.id = x.stage_id
WHERE {VISIBLE}
"""
DEAL_PAGE = f"""
WITH {CALLER}
SELECT x.* FROM caller c CROSS JOIN LATERAL (
    SELECT x.id, x.title, x.owner_id, x.person_id, x.organization_id, x.pipeline_id,
           x.stage_id, x.status, x.lost_reason, x.value_amount, x.value_currency,
           x.value_from_products, x.probability, x.expected_close_date, x.won_at, x.lost_at,
           x.closed_at, x.stage_changed_at, x.label_ids, x.visible_to, x.source_lead_id,
           x.fields::text AS fields, x.custom_fields::text AS custom_fields, x.utm_source,
           x.utm_medium, x.utm_campaign, x.utm_term, x.utm_content, x.channel, x.created_at,
           x.updated_at,
           (x.status = 'open' AND s.rotten_days IS NOT NULL
            AND coalesce(x.stage_changed_at, x.created_at)
                < now() - make_interval(days => s.rotten_days)) AS rotten
    FROM deal x JOIN stage s ON s.id = x.stage_id
    WHERE x.company_id = c.company_id AND x.converted_lead_id IS NULL AND {VISIBLE}
    ORDER BY x.created_at DESC, x.id DESC
    LIMIT $2
) x
ORDER BY x.created_at DESC, x.id DESC
"""
INSERT_LEAD = f"""
WITH {CALLER}
INSERT INTO lead AS x (
    id, company_id, title, owner_id, prospect_person_name, prospect_email,
    prospect_organization_name, source, visible_to
)
SELECT $2, c.company_id, $3, c.user_id, $4, $5, $6, 'api', 'company' FROM caller c
RETURNING {LEAD_COLUMNS}
"""
# The lead, locked, and the first stage of the company's first pipeline.
CONVERT_LOCK = f"""
WITH {CALLER}
SELECT x.id, c.company_id, c.user_id, x.title, x.owner_id, x.person_id, x.organization_id,
       x.value_amount, x.value_currency, x.expected_close_date, x.visible_to, x.label_ids,
       x.converted_deal_id, s.id AS stage_id, s.pipeline_id, s.probability
FROM caller c JOIN lead x ON x.company_id = c.company_id AND x.id = $2
CROSS JOIN LATERAL (
    SELECT st.id, st.pipeline_id, st.probability FROM pipeline p JOIN stage st
    ON st.pipeline_id = p.id WHERE p.company_id = c.company_id
    ORDER BY p.position, st.position LIMIT 1
) s
WHERE {VISIBLE}
FOR UPDATE OF x
"""
# Every write of a conversion in one statement: the deal, its changelog entry, the lead
# marked converted, its notes and activities moved, the conversion record.
CONVERT_WRITE = """
WITH deal AS (
    INSERT INTO deal (
        id, company_id, title, owner_id, person_id, organization_id, pipeline_id, stage_id,
        status, probability, value_amount, value_currency, expected_close_date, visible_to,
        label_ids, source_lead_id, stage_changed_at
    )
    VALUES ($1, $2, $4, $5, $6, $7, $8, $9, 'open', $10, $11, $12, $13, $14, '{}', $15, now())
    RETURNING *
), change AS (
    INSERT INTO deal_change (id, company_id, deal_id, field, old, new, user_id)
    SELECT gen_random_uuid(), $2, d.id, 'created', 'null'::jsonb,
           jsonb_build_object('title', d.title, 'stage_id', d.stage_id, 'status', d.status,
                              'owner_id', d.owner_id, 'value', CASE WHEN d.value_amount
                              IS NOT NULL THEN jsonb_build_object('amount',
                              d.value_amount::text, 'currency', d.value_currency) END),
           $3
    FROM deal d
), lead_update AS (
    UPDATE lead SET converted_deal_id = $1, converted_at = now(), updated_at = now()
    WHERE id = $15
), notes AS (
    UPDATE note SET deal_id = $1, lead_id = NULL WHERE lead_id = $15 RETURNING 1
), activities AS (
    UPDATE activity SET deal_id = $1, lead_id = NULL WHERE lead_id = $15 RETURNING 1
), counts AS (
    SELECT (SELECT count(*) FROM notes) AS notes, (SELECT count(*) FROM activities) AS activities
), conversion AS (
    INSERT INTO conversion (id, company_id, direction, lead_id, deal_id, status, moved, user_id)
    SELECT $16, $2, 'lead_to_deal', $15, $1, 'completed',
           jsonb_build_object('notes', k.notes, 'activities', k.activities), $3
    FROM counts k
    RETURNING created_at
)
SELECT d.*, k.notes, k.activities, (SELECT created_at FROM conversion) AS converted_at
FROM deal d, counts k
"""

_pool: asyncpg.Pool | None = None


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def _money(amount: Decimal | None, currency: str | None) -> dict[str, str] | None:
    if amount is None or currency is None:
        return None
    return {"amount": f"{amount:.2f}", "currency": currency}


def _lead(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "title": row["title"],
        "owner_id": _plain(row["owner_id"]),
        "person_id": _plain(row["person_id"]),
        "organization_id": _plain(row["organization_id"]),
        "prospect": {
            "person_name": row["prospect_person_name"],
            "email": row["prospect_email"],
            "phone": row["prospect_phone"],
            "phone_e164": row["prospect_phone_e164"],
            "organization_name": row["prospect_organization_name"],
        },
        "value": _money(row["value_amount"], row["value_currency"]),
        "expected_close_date": _plain(row["expected_close_date"]),
        "label_ids": [str(i) for i in row["label_ids"]],
        "source": row["source"],
        "is_archived": row["is_archived"],
        "archived_at": _plain(row["archived_at"]),
        "was_seen": row["was_seen"],
        "visible_to": row["visible_to"],
        "source_deal_id": _plain(row["source_deal_id"]),
        "readiness": json.loads(row["readiness"]) if row["readiness"] else [],
        "fields": json.loads(row["fields"]),
        "custom_fields": json.loads(row["custom_fields"]),
        **{name: row[name] for name in ATTRIBUTION},
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


ATTRIBUTION = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "channel")
DEAL_FIELDS = (
    "id", "title", "owner_id", "person_id", "organization_id", "pipeline_id", "stage_id",
    "status", "lost_reason", "value_from_products", "probability", "expected_close_date",
    "won_at", "lost_at", "closed_at", "stage_changed_at", "visible_to", "source_lead_id",
    "created_at", "updated_at", *ATTRIBUTION,
)  # fmt: skip


def _deal(row: asyncpg.Record, rotten: bool) -> dict[str, Any]:
    deal = {field: _plain(row[field]) for field in DEAL_FIELDS}
    deal["value"] = _money(row["value_amount"], row["value_currency"])
    deal["label_ids"] = [str(i) for i in row["label_ids"]]
    deal["fields"] = json.loads(row["fields"])
    deal["custom_fields"] = json.loads(row["custom_fields"])
    deal["rotten"] = rotten
    return deal


def _cursor(row: asyncpg.Record) -> str:
    """leadflow.pagination's cursor: base64url of `[created_at, id]`, unpadded."""
    raw = json.dumps([row["created_at"].isoformat(), str(row["id"])], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    key, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return datetime.fromisoformat(key), uuid.UUID(row_id)


async def _send(send: Any, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _token_hash(scope: dict[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return hashlib.sha256(value[7:].strip()).hexdigest()
    return None


async def _lifespan(receive: Any, send: Any) -> None:
    global _pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _pool = await asyncpg.create_pool(
                os.environ["BENCH_DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_MAX
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    assert _pool is not None
    path: str = scope["path"]
    if not path.startswith(PREFIX):  # /healthz, the readiness probe
        await _send(send, 200, {"status": "ok"})
        return
    token = _token_hash(scope)
    if token is None:
        await _send(send, 401, {"title": "Unauthorized"})
        return
    parts = path[len(PREFIX) :].split("/")
    method = scope["method"]
    if parts[0] == "leads" and len(parts) == 1 and method == "GET":
        query = dict(parse_qsl(scope["query_string"].decode()))
        await _inbox_page(send, token, query)
    elif parts[0] == "leads" and len(parts) == 1 and method == "POST":
        await _insert(send, token, json.loads(await _body(receive)))
    elif parts[0] == "leads" and len(parts) == 2 and method == "GET":
        await _lead_by_id(send, token, uuid.UUID(parts[1]))
    elif parts[0] == "leads" and len(parts) == 3 and parts[2] == "convert" and method == "POST":
        await _body(receive)
        await _convert(send, token, uuid.UUID(parts[1]))
    elif parts[0] == "deals" and len(parts) == 1 and method == "GET":
        query = dict(parse_qsl(scope["query_string"].decode()))
        await _deal_page(send, token, int(query.get("limit", "50")))
    elif parts[0] == "deals" and len(parts) == 2 and method == "GET":
        await _deal_by_id(send, token, uuid.UUID(parts[1]))
    else:
        await _send(send, 404, {"title": "Not Found"})


async def _lead_by_id(send: Any, token: str, lead_id: uuid.UUID) -> None:
    assert _pool is not None
    row = await _pool.fetchrow(LEAD_BY_ID, token, lead_id)
    if row is None:
        await _send(send, 404, {"title": "Not Found"})
    elif row["converted_deal_id"] is not None:
        await _send(
            send, 410, {"title": "Lead converted", "deal_id": str(row["converted_deal_id"])}
        )
    else:
        await _send(send, 200, _lead(row))


async def _inbox_page(send: Any, token: str, query: dict[str, str]) -> None:
    assert _pool is not None
    limit = int(query.get("limit", "50"))
    if "cursor" in query:
        rows = await _pool.fetch(INBOX_AFTER, token, limit + 1, *_uncursor(query["cursor"]))
    elif "email" in query:
        rows = await _pool.fetch(INBOX_EMAIL, token, limit + 1, query["email"])
    else:
        rows = await _pool.fetch(INBOX_FIRST, token, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    await _send(
        send,
        200,
        {"data": [_lead(r) for r in rows], "next_cursor": _cursor(rows[-1]) if more else None},
    )


async def _deal_page(send: Any, token: str, limit: int) -> None:
    """The first page of the deal list (the bench asks no other)."""
    assert _pool is not None
    rows = await _pool.fetch(DEAL_PAGE, token, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    data = [_deal(r, r["rotten"]) for r in rows]
    await _send(send, 200, {"data": data, "next_cursor": _cursor(rows[-1]) if more else None})


async def _deal_by_id(send: Any, token: str, deal_id: uuid.UUID) -> None:
    assert _pool is not None
    row = await _pool.fetchrow(DEAL_BY_ID, token, deal_id)
    if row is None:
        await _send(send, 404, {"title": "Not Found"})
    else:
        await _send(send, 200, _deal(row, row["rotten"]))


async def _insert(send: Any, token: str, body: dict[str, Any]) -> None:
    assert _pool is not None
    prospect = body.get("prospect") or {}
    row = await _pool.fetchrow(
        INSERT_LEAD,
        token,
        uuid.uuid4(),
        body["title"],
        prospect.get("person_name"),
        prospect.get("email"),
        prospect.get("organization_name"),
    )
    if row is None:
        await _send(send, 401, {"title": "Unauthorized"})
    else:
        await _send(send, 201, _lead(row))


async def _convert(send: Any, token: str, lead_id: uuid.UUID) -> None:
    assert _pool is not None
    async with _pool.acquire() as conn, conn.transaction():
        lead = await conn.fetchrow(CONVERT_LOCK, token, lead_id)
        if lead is None:
            await _send(send, 404, {"title": "Not Found"})
            return
        if lead["converted_deal_id"] is not None:
            await _send(send, 409, {"title": "Lead converted"})
            return
        deal_id, conversion_id = uuid.uuid4(), uuid.uuid4()
        row = await conn.fetchrow(
            CONVERT_WRITE,
            deal_id, lead["company_id"], lead["user_id"], lead["title"], lead["owner_id"],
            lead["person_id"], lead["organization_id"], lead["pipeline_id"], lead["stage_id"],
            lead["probability"], lead["value_amount"], lead["value_currency"],
            lead["expected_close_date"], lead["visible_to"], lead_id, conversion_id,
        )  # fmt: skip
    moved = {"notes": row["notes"], "activities": row["activities"]}
    await _send(
        send,
        201,
        {
            "conversion": {
                "id": str(conversion_id),
                "direction": "lead_to_deal",
                "lead_id": str(lead_id),
                "deal_id": str(deal_id),
                "status": "completed",
                "moved": moved,
                "created_at": row["converted_at"].isoformat(),
            },
            "deal": _deal(row, False),
        },
    )
