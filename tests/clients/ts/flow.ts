// The core front-end flow with types openapi-typescript generates from
// openapi/openapi.json and openapi-fetch, compiled under `strict`, no cast and no
// hand-written type: company, lead, inbox, preview, convert (answered 409
// `duplicate-contacts`, then with the choice), move, win, board.
// Run by tests/clients/run against a live `leadflow serve` (LEADFLOW_URL, LEADFLOW_ADMIN_TOKEN).
import createClient from "openapi-fetch";
import type { paths } from "./build/leadflow.js";

function fail(message: string, detail?: unknown): never {
  throw new Error(`${message}: ${JSON.stringify(detail)}`);
}

const baseUrl = process.env["LEADFLOW_URL"] ?? fail("LEADFLOW_URL is not set");
const adminToken = process.env["LEADFLOW_ADMIN_TOKEN"] ?? fail("LEADFLOW_ADMIN_TOKEN is not set");

const operator = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${adminToken}` },
});
const created = await operator.POST("/api/v1/companies", {
  body: { name: "Acme", admin_email: `ts-${Date.now()}@example.com` },
});
if (!created.data) fail("companies_create", created.error);

const api = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${created.data.api_token}` },
});

const person = await api.POST("/api/v1/persons", {
  body: { name: "Grace Hopper", emails: ["grace@example.com"] },
});
if (!person.data) fail("persons_create", person.error);

const lead = await api.POST("/api/v1/leads", {
  body: {
    title: "Grace: 12 pumps",
    prospect: { person_name: "Grace Hopper", email: "grace@example.com" },
    value: { amount: "900.00", currency: "EUR" },
  },
});
if (!lead.data) fail("leads_create", lead.error);
const leadId = lead.data.id;

const inbox = await api.GET("/api/v1/leads", { params: { query: { limit: 10 } } });
if (!inbox.data) fail("leads_list", inbox.error);
if (!inbox.data.data.some((item) => item.id === leadId)) fail("the inbox lacks the lead");

const path = { lead_id: leadId };
const preview = await api.POST("/api/v1/leads/{lead_id}/convert/preview", { params: { path } });
if (!preview.data) fail("leads_convert_preview", preview.error);
if (preview.data.duplicates.person[0]?.id !== person.data.id) fail("no duplicate", preview.data);

// Without a choice: 409 duplicate-contacts. `error` is the union of the operation's
// problems; its constant `type` narrows it to the one that carries `duplicates`.
const refused = await api.POST("/api/v1/leads/{lead_id}/convert", { params: { path } });
if (refused.error?.type !== "https://leadflow.dev/problems/duplicate-contacts") {
  fail("expected 409 duplicate-contacts", refused.error);
}
const candidate = refused.error.duplicates.person[0] ?? fail("no candidate", refused.error);

const converted = await api.POST("/api/v1/leads/{lead_id}/convert", {
  params: { path },
  body: { person: { id: candidate.id } },
});
if (!converted.data) fail("leads_convert", converted.error);
const deal = converted.data.deal;
if (deal.person_id !== person.data.id) fail("the deal's person", deal);

// Converting again: 410 is not documented here; 409 lead-converted names the deal.
const again = await api.POST("/api/v1/leads/{lead_id}/convert", { params: { path } });
if (again.error?.type !== "https://leadflow.dev/problems/lead-converted") {
  fail("expected 409 lead-converted", again.error);
}
if (again.error.deal_id !== deal.id) fail("lead-converted names another deal", again.error);

const stages = await api.GET("/api/v1/stages", {
  params: { query: { pipeline_id: deal.pipeline_id } },
});
if (!stages.data) fail("stages_list", stages.error);
const later = stages.data.data.find((stage) => stage.id !== deal.stage_id) ?? fail("one stage");

const dealPath = { params: { path: { deal_id: deal.id } } };
const moved = await api.PATCH("/api/v1/deals/{deal_id}", { ...dealPath, body: { stage_id: later.id } });
if (moved.data?.stage_id !== later.id) fail("deals_update (move)", moved.error);

const won = await api.PATCH("/api/v1/deals/{deal_id}", { ...dealPath, body: { status: "won" } });
if (won.data?.status !== "won") fail("deals_update (win)", won.error);

const board = await api.GET("/api/v1/pipelines/{pipeline_id}/board", {
  params: { path: { pipeline_id: deal.pipeline_id } },
});
if (!board.data) fail("pipelines_board", board.error);
if (board.data.stages.some((column) => column.deals.some((d) => d.id === deal.id))) {
  fail("a won deal is not on the board", board.data);
}
console.log(`typescript client flow: lead ${leadId} -> deal ${deal.id}, won; board read`);
