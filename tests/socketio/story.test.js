// The whole story with stock socket.io-client peers (npm) watching both agents: service → thread →
// quote → lock → offer → accept → pay → the contract's job → deliverable → evaluate → contract
// completed, thread closed. Each agent's socket receives its events live, in the order of its log.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { Server, api, signup, pollAll, connect, expectStatus } = require("./lib");

let server;
before(async () => {
  server = await new Server([]).start();
});
after(async () => {
  await server.destroy();
});

const randomHash = () => "0x" + [...Array(64)].map(() => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");
const names = (r) => r.events.map((e) => e.name);

test("the full story reaches both agents' sockets live, in log order", async () => {
  const base = server.url;
  const requester = await signup(base, "story-requester");
  const provider = await signup(base, "story-provider");
  const r = connect(base, { apiKey: requester.api_key, since: 0 });
  const p = connect(base, { apiKey: provider.api_key, since: 0 });
  await Promise.all([r.until((x) => x.named("roomJoined").length === 1, "roomJoined"), p.until((x) => x.named("roomJoined").length === 1, "roomJoined")]);

  const service = await expectStatus(api(base, "POST", "/api/agent/services", {
    title: "Story copy", description: "Copy for the story", deliverable: "story.md",
    price: { amount: "12", token: "USDC", network: "base" }, timeline: "1 day",
  }, provider.api_key), 201);
  const thread = await expectStatus(api(base, "POST", "/api/agent/threads", { service_id: service.id, mode: "quick_quote", message: "Please" }, requester.api_key), 201);
  const terms = { deliverable: "story.md", budget: { amount: "12", token: "USDC", network: "base" }, timeline: "1 day",
    acceptance_criteria: "Reads well", revision_boundary: "One round" };
  await expectStatus(api(base, "POST", `/api/agent/threads/${thread.id}/messages`, { type: "quote", body: "12 USDC", terms }, provider.api_key), 201);
  await expectStatus(api(base, "POST", `/api/agent/threads/${thread.id}/lock-quote`, {}, provider.api_key), 200);
  const offer = await expectStatus(api(base, "POST", `/api/agent/threads/${thread.id}/create-offer`, {}, requester.api_key), 201);
  const accepted = await expectStatus(api(base, "POST", `/api/agent/offers/${offer.id}/respond`, { action: "accept" }, provider.api_key), 200);
  const contractId = accepted.contract_id;
  // The contract's job reaches the provider as onNewTask (phase 1 NEGOTIATION).
  await p.until((x) => x.named("onNewTask").some((e) => e.payload.contractId === contractId), "onNewTask for the contract's job");
  const jobId = p.named("onNewTask").find((e) => e.payload.contractId === contractId).payload.id;
  await expectStatus(api(base, "POST", `/api/contracts/${contractId}/payment`, { tx_hash: randomHash() }, requester.api_key), 200);
  await r.until((x) => x.named("job.escrow_verified").length === 1, "the job's escrow verified");
  await expectStatus(api(base, "POST", `/api/agents/providers/jobs/${jobId}/negotiation`, { accept: true, content: "deal" }, provider.api_key), 204);
  await expectStatus(api(base, "POST", `/api/agents/providers/jobs/${jobId}/deliverable`, { deliverable: "https://example.test/story.md" }, provider.api_key), 204);
  await r.until((x) => x.named("onEvaluate").length === 1, "onEvaluate for the requester");
  await expectStatus(api(base, "POST", `/api/agents/jobs/${jobId}/evaluate`, { accept: true }, requester.api_key), 204);
  // Events of different topics may arrive in either order (Kafka orders per aggregate): wait for all.
  const expected = ["thread.opened", "thread.quote_locked", "offer.created", "offer.accepted", "contract.created",
    "contract.funded", "contract.completed", "thread.status_changed", "thread.closed"];
  await Promise.all([r, p].map((rec) => rec.until((x) => expected.every((t) => names(x).includes(t)), "every story event")));

  for (const [who, rec] of [["requester", r], ["provider", p]]) {
    const phases = rec.named("onNewTask").filter((e) => e.payload.id === jobId).map((e) => e.payload.phase);
    assert.deepEqual(phases, [1, 2, 3, 4], `${who}: the contract's job from NEGOTIATION to COMPLETED`);
    // What the socket delivered is the agent's log: same ids, same order, nothing twice.
    const key = who === "requester" ? requester.api_key : provider.api_key;
    const logIds = (await pollAll(base, key)).map((e) => e.event_id);
    const distinct = (x) => {
      const ids = [];
      for (const e of x.logged()) if (ids[ids.length - 1] !== e.payload.event_id) ids.push(e.payload.event_id);
      return ids;
    };
    await rec.until((x) => distinct(x).length >= logIds.length, `${who}: the socket has caught up with the log`);
    const socketIds = distinct(rec).slice(0, logIds.length);
    assert.deepEqual(socketIds, logIds, `${who}: socket ids equal the polling log`);
    // Message text never travels in events.
    assert.ok(!JSON.stringify(rec.events).includes("Please"), `${who}: the opening message text is not in any event`);
  }
  // The offer and contract reached only their two parties: a third agent's socket sees none of it.
  const other = await signup(base, "story-other");
  const o = connect(base, { apiKey: other.api_key, since: 0 });
  await o.until((x) => x.named("roomJoined").length === 1, "roomJoined");
  await o.until((x) => x.named("agent.registered").length === 1, "its own registration");
  assert.deepEqual(names(o).filter((n) => n !== "roomJoined"), ["agent.registered"]);
  for (const rec of [r, p, o]) rec.close();
});
