// A stock socket.io-client (npm) against GET /ws/agent of the real binary: the job walk-through,
// reconnecting with `since`, bad keys, the per-agent connection limit, the endpoint's HTTP answers.
// Sockets connect with the client's defaults (long-polling, then the WebSocket upgrade) unless a
// test pins WEBSOCKET_ONLY.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const WebSocket = require("ws");
const { Server, api, signup, job, pollAll, connect, distinctIds, metric, runReadmeWatchSnippet, WEBSOCKET_ONLY } = require("./lib");

let server;
before(async () => {
  // Short heartbeats and connect timeout, so that their enforcement shows within the test (the
  // socket.io-client sockets answer pings all along). The connect timeout ends before the first
  // unanswered ping would (400 + 400 ms): a silent socket is closed for the missing CONNECT, not
  // by two timers at the same instant (a 1006 under load in one CI run).
  server = await new Server([
    "--notifier.ws.max_connections_per_agent", "5",
    "--notifier.ws.ping_interval_ms", "400",
    "--notifier.ws.ping_timeout_ms", "400",
    "--notifier.ws.connect_timeout_ms", "600",
  ]).start();
});
after(async () => {
  await server.destroy();
});

const joined = (r) => r.until((x) => x.named("roomJoined").length === 1, "roomJoined");
const phases = (events) => events.filter((e) => e.name === "onNewTask").map((e) => e.payload.phase);

test("a job through every phase: onNewTask to both parties, onEvaluate with the deliverable to the client", async () => {
  const base = server.url;
  const client = await signup(base, "sio-client");
  const provider = await signup(base, "sio-provider");
  // One party with the client's defaults, the other on a WebSocket only: the same story.
  const c = connect(base, { apiKey: client.api_key, since: 0 });
  const p = connect(base, { apiKey: provider.api_key, since: 0 }, WEBSOCKET_ONLY);
  await Promise.all([joined(c), joined(p)]);
  const room = c.named("roomJoined")[0];
  assert.equal(room.payload.agent_id, client.agent_id);
  assert.equal(room.payload.since, 0);
  assert.ok(room.hasAck, "roomJoined asks for an acknowledgement (ACP-style handlers call it)");

  const created = await job.create(base, client, provider);
  await job.accept(base, provider, created.id);
  await job.escrow(base, client, created.id);
  await job.negotiate(base, provider, created.id);
  const deliverable = { type: "url", value: "https://example.com/out.md" };
  await job.deliver(base, provider, created.id, deliverable);
  await c.until((x) => x.named("onEvaluate").length === 1, "onEvaluate");
  await job.evaluate(base, client, created.id);
  await Promise.all([
    c.until((x) => phases(x.events).includes(4), "client onNewTask phase 4"),
    p.until((x) => phases(x.events).includes(4), "provider onNewTask phase 4"),
  ]);

  for (const [who, r] of [["client", c], ["provider", p]]) {
    assert.deepEqual(phases(r.events), [0, 1, 2, 3, 4], `${who} sees every phase once, in order`);
    for (const e of r.named("onNewTask")) {
      assert.equal(e.payload.id, created.id);
      assert.ok(Array.isArray(e.payload.memos), "the full job with its memos");
      assert.equal(typeof e.payload.event_id, "number");
      assert.ok(e.hasAck);
    }
    const logged = r.logged();
    for (let i = 1; i < logged.length; i++)
      assert.ok(logged[i].payload.event_id >= logged[i - 1].payload.event_id, `${who}: event ids never go back`);
    // Exactly the agent's log: the same event ids as the polling API, in the same order.
    const polled = await pollAll(base, who === "client" ? client.api_key : provider.api_key);
    assert.deepEqual(distinctIds(logged), polled.map((e) => e.event_id), `${who}: socket and polling agree`);
  }
  assert.equal(p.named("onEvaluate").length, 0, "the provider does not evaluate");
  const evaluate = c.named("onEvaluate")[0];
  assert.equal(evaluate.payload.phase, 3);
  assert.equal(evaluate.payload.phaseName, "EVALUATION");
  assert.deepEqual(JSON.parse(evaluate.payload.deliverable), deliverable, "onEvaluate carries the deliverable content");
  const atEvaluation = c.named("onNewTask").find((e) => e.payload.phase === 3);
  assert.equal(evaluate.payload.event_id, atEvaluation.payload.event_id, "both come from the one logged event");
  // Other events by their CloudEvent type, with the polling row as payload.
  const escrow = p.named("job.escrow_verified");
  assert.equal(escrow.length, 1);
  assert.equal(escrow[0].payload.subject, String(created.id));
  assert.equal(escrow[0].payload.data.job.escrowVerified, true);
  // Several 400 ms heartbeats went by: socket.io-client answered them all.
  assert.equal(c.disconnects.length + p.disconnects.length, 0);
  c.close();
  p.close();
});

test("a designated evaluator gets onEvaluate, the client then only onNewTask", async () => {
  const base = server.url;
  const client = await signup(base, "ev-client");
  const provider = await signup(base, "ev-provider");
  const evaluator = await signup(base, "ev-evaluator");
  const e = connect(base, { apiKey: evaluator.api_key, since: 0 });
  const c = connect(base, { apiKey: client.api_key, since: 0 });
  await Promise.all([joined(e), joined(c)]);
  const created = await job.create(base, client, provider, { evaluatorId: evaluator.agent_id });
  await job.accept(base, provider, created.id);
  await job.escrow(base, client, created.id);
  await job.negotiate(base, provider, created.id);
  await job.deliver(base, provider, created.id, "done");
  await e.until((x) => x.named("onEvaluate").length === 1, "evaluator onEvaluate");
  await c.until((x) => phases(x.events).includes(3), "client phase 3");
  assert.equal(e.named("onEvaluate")[0].payload.deliverable, "done");
  assert.equal(e.named("onNewTask").length, 0, "the evaluator is not a party of the task");
  assert.equal(c.named("onEvaluate").length, 0);
  e.close();
  c.close();
});

test("reconnecting with since gets exactly the missed events, in order, then live ones", async () => {
  const base = server.url;
  const client = await signup(base, "re-client");
  const provider = await signup(base, "re-provider");
  const first = connect(base, { apiKey: provider.api_key, since: 0 });
  await joined(first);
  const created = await job.create(base, client, provider);
  await job.accept(base, provider, created.id);
  await first.until((x) => phases(x.events).includes(1), "phase 1 live");
  const last = Math.max(...first.logged().map((e) => e.payload.event_id));
  first.close();

  // While it is away: escrow, terms accepted, deliverable.
  await job.escrow(base, client, created.id);
  await job.negotiate(base, provider, created.id);
  await job.deliver(base, provider, created.id, "away");
  // Wait until the log has them all (escrow_verified, 1→2, the deliverable memo, 2→3).
  const atEvaluation = (events) => events.some((e) => e.type === "job.phase_changed" && e.data.job.phase === 3);
  let missed = [];
  for (let i = 0; i < 200 && !atEvaluation(missed); i++) {
    missed = await pollAll(base, provider.api_key, last);
    if (!atEvaluation(missed)) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(atEvaluation(missed) && missed.length >= 4, `events logged while away: ${missed.map((e) => e.type)}`);

  const again = connect(base, { apiKey: provider.api_key, since: last });
  await joined(again);
  const room = again.named("roomJoined")[0].payload;
  assert.equal(room.since, last);
  await again.until((x) => x.logged().length >= missed.length, "the missed events");
  assert.deepEqual(distinctIds(again.logged()), missed.map((e) => e.event_id), "exactly the missed events, in order");
  assert.deepEqual(
    again.logged().map((e) => (e.name === "onNewTask" ? `onNewTask:${e.payload.phase}` : e.name)),
    missed.map((e) => (e.type === "job.phase_changed" ? `onNewTask:${e.data.job.phase}` : e.type)),
  );

  // Then live.
  await job.evaluate(base, client, created.id);
  await again.until((x) => phases(x.events).includes(4), "live phase 4");
  const ids = distinctIds(again.logged());
  assert.equal(new Set(ids).size, ids.length, "no event twice");
  assert.ok(ids.every((id) => id > last));
  again.close();
});

test("a bad, missing or malformed key is refused with connect_error, never a silent hang", async () => {
  const base = server.url;
  const agent = await signup(base, "bad-key");
  const cases = [
    [{ apiKey: "alk.k1.agt_nobody.forged" }, "unauthorized", /Invalid API key/],
    [{}, "unauthorized", /Missing API key/],
    [{ apiKey: agent.api_key, since: -3 }, "invalid_since", /Invalid since/],
    [{ apiKey: agent.api_key, since: "abc" }, "invalid_since", /Invalid since/],
  ];
  for (const [auth, code, message] of cases) {
    const r = connect(base, auth);
    await r.until((x) => x.errors.length === 1, `connect_error for ${JSON.stringify(auth)}`, 5000);
    assert.match(r.errors[0].message, message);
    assert.equal(r.errors[0].data.code, code);
    assert.equal(r.named("roomJoined").length, 0);
    r.close();
  }
  const ok = connect(base, { apiKey: agent.api_key, since: "0" });
  await joined(ok);
  ok.close();
});

test("at most 5 connections per agent: the 6th is refused clearly, a freed slot can be reused", async () => {
  const base = server.url;
  const agent = await signup(base, "many");
  const open = [];
  for (let i = 0; i < 5; i++) {
    const r = connect(base, { apiKey: agent.api_key });
    await joined(r);
    open.push(r);
  }
  const sixth = connect(base, { apiKey: agent.api_key });
  await sixth.until((x) => x.errors.length === 1, "connect_error for the 6th", 5000);
  assert.equal(sixth.errors[0].data.code, "connection_limit");
  assert.match(sixth.errors[0].message, /Too many connections for this agent \(limit 5\)/);
  sixth.close();
  // Another agent is not affected.
  const other = await signup(base, "other");
  const o = connect(base, { apiKey: other.api_key });
  await joined(o);
  o.close();
  open[0].close();
  let seventh;
  for (let attempt = 0; attempt < 50; attempt++) {
    seventh = connect(base, { apiKey: agent.api_key });
    await seventh.until((x) => x.errors.length > 0 || x.named("roomJoined").length > 0, "an answer", 5000);
    if (seventh.named("roomJoined").length > 0) break;
    seventh.close();
    await new Promise((r) => setTimeout(r, 50));  // the server has not seen the close yet
  }
  assert.equal(seventh.named("roomJoined").length, 1, "a slot freed by a close is available again");
  seventh.close();
  for (const r of open.slice(1)) r.close();
});

test("the endpoint's HTTP answers: 426 without the upgrade, clear errors for other transports and versions", async () => {
  const base = server.url;
  const plain = await api(base, "GET", "/ws/agent/?EIO=4&transport=websocket");
  assert.equal(plain.status, 426);
  assert.equal(plain.body.code, "upgrade_required");
  const other = await api(base, "GET", "/ws/agent/?EIO=4&transport=flashsocket");
  assert.equal(other.status, 400);
  assert.equal(other.body.code, "transport_unsupported");
  const old = await api(base, "GET", "/ws/agent/?EIO=3&transport=polling");
  assert.equal(old.status, 400);
  assert.equal(old.body.code, "unsupported_protocol");
  const oldWs = await api(base, "GET", "/ws/agent/?EIO=3&transport=websocket");
  assert.equal(oldWs.status, 426);
  // The upgrade of a session this server does not hold.
  const status = await new Promise((resolve, reject) => {
    const ws = new WebSocket(base.replace("http", "ws") + "/ws/agent/?EIO=4&transport=websocket&sid=p1.nosuchsession");
    ws.once("unexpected-response", (_req, res) => resolve(res.statusCode));
    ws.once("open", () => reject(new Error("upgraded an unknown session")));
    ws.once("error", () => {});
  });
  assert.equal(status, 400);
  // A refusal reaches a long-polling-only client as connect_error, like a WebSocket one.
  const polling = connect(base, { apiKey: "x" }, { transports: ["polling"] });
  await polling.until((x) => x.errors.length === 1, "connect_error on polling", 5000);
  assert.equal(polling.errors[0].data.code, "unauthorized");
  polling.close();
});

// A raw WebSocket peer (npm `ws`) that speaks Engine.IO by hand, to send what no client should.
function raw(base) {
  const ws = new WebSocket(base.replace("http", "ws") + "/ws/agent/?EIO=4&transport=websocket");
  const r = { ws, frames: [], closed: null };
  r.opened = new Promise((resolve, reject) => {
    ws.once("error", reject);
    ws.on("message", (data) => {
      r.frames.push(data.toString());
      if (r.frames.length === 1) resolve(r.frames[0]);
    });
  });
  r.closing = new Promise((resolve) => ws.once("close", (code, reason) => resolve((r.closed = { code, reason: reason.toString() }))));
  return r;
}

test("malformed, binary and oversized frames close that socket cleanly; the server carries on", async () => {
  const base = server.url;
  const cases = [
    ["an unknown Engine.IO type", (ws) => ws.send("9hello"), 1002],
    ["a malformed socket.io packet", (ws) => ws.send("4x{"), 1002],
    ["a binary frame", (ws) => ws.send(Buffer.from([1, 2, 3])), 1002],
    ["a frame over maxPayload", (ws) => ws.send("4" + "2".repeat(1_000_001)), 1009],
  ];
  for (const [what, send, code] of cases) {
    const r = raw(base);
    const open = JSON.parse((await r.opened).slice(1));
    assert.equal(open.maxPayload, 1000000);
    assert.deepEqual(open.upgrades, []);
    send(r.ws);
    const closed = await r.closing;
    assert.equal(closed.code, code, what);
  }
  const ready = await api(base, "GET", "/readyz");
  assert.equal(ready.status, 200, "still serving");
});

test("a socket that never sends CONNECT, or never answers a ping, is closed", async () => {
  const base = server.url;
  const silent = raw(base);
  await silent.opened;
  const closed = await silent.closing;
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /CONNECT/);

  const agent = await signup(base, "no-pong");
  const deaf = raw(base);
  await deaf.opened;
  deaf.ws.send(`40${JSON.stringify({ apiKey: agent.api_key })}`);
  await deaf.closing;  // pings ("2") arrive and go unanswered
  assert.ok(deaf.frames.includes("2"), "the server pinged");
  assert.ok(deaf.frames.some((f) => f.startsWith("40{")), "it had connected");
  assert.ok((await metric(base, "notifier_ws_ping_timeouts_total")) >= 1);
});

test("the README's watch snippet, run verbatim, prints the job's events", async () => {
  await runReadmeWatchSnippet(server.url);
});
