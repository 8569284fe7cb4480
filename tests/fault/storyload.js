// The fault suite's client load: whole stories (signup → service → thread → quote → lock → offer →
// accept → payment (sandbox) → the contract's job → negotiation → deliverable → evaluate →
// contract completed) started at a fixed rate through the gateway, each agent watched by a stock
// socket.io-client socket that reconnects by itself and resumes with `since` = the last event id
// it saw. Faults happen meanwhile (tests/fault/fault_suite.sh); a step that meets one is retried
// (after a GET that tells whether the first attempt took effect) and every error is recorded by
// kind, never hidden.
//
//   node storyload.js --base URL --phase NAME --seconds S --rate STORIES_PER_S --out FILE [--stop-file F]
//
// Runs stories for S seconds (or until F exists), waits for them to finish and for every socket to catch up with its
// agent's log, and writes FILE (JSON): every request (route, status or error kind, the 2xx
// writes' request ids), the agents with their keys, and the ids each socket received.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { io } = require(path.join(__dirname, "..", "socketio", "node_modules", "socket.io-client"));

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const BASE = arg("base");
const PHASE = arg("phase", "load");
const SECONDS = Number(arg("seconds", "20"));
const RATE = Number(arg("rate", "1"));
const OUT = arg("out");
const STEP_DEADLINE_MS = Number(arg("step-deadline-ms", "120000"));
const MAX_IN_FLIGHT = Number(arg("max-in-flight", "80"));
// Stops starting stories when this file appears (the fault is over), or after --seconds at most.
const STOP_FILE = arg("stop-file");
if (!BASE || !OUT) {
  console.error("usage: storyload.js --base URL --phase NAME --seconds S --rate R --out FILE");
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TOKEN = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const hex = (n) => [...Array(n)].map(() => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");

// ---- requests ------------------------------------------------------------------------------------
const requests = []; // {phase, at, method, route, service, status, kind, ms, write, request_id}
let requestCounter = 0;
const runId = hex(6);

async function call(service, method, route, path_, body, key) {
  const requestId = `fs-${PHASE}-${runId}-${++requestCounter}`;
  const headers = { "content-type": "application/json", "x-request-id": requestId };
  if (key) headers["x-api-key"] = key;
  const started = performance.now();
  const record = { at: Date.now(), method, route, service, request_id: requestId, write: method !== "GET" };
  try {
    const r = await fetch(BASE + path_, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20000),
    });
    const text = await r.text();
    record.status = r.status;
    record.kind = r.status < 300 ? "ok" : `http_${r.status}`;
    record.ms = performance.now() - started;
    requests.push(record);
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (_) {
      json = text;
    }
    return { status: r.status, body: json };
  } catch (e) {
    record.status = 0;
    record.kind = e.name === "TimeoutError" ? "timeout" : `network_${(e.cause && e.cause.code) || e.name}`;
    record.ms = performance.now() - started;
    requests.push(record);
    return { status: 0, body: null, error: e };
  }
}

const transient = (r) => r.status === 0 || r.status === 502 || r.status === 503 || r.status === 504 || r.status === 500;

class StoryError extends Error {}

// A write step: `send` until it answers `want`; after a transient failure (or a conflict that the
// first, unanswered attempt may have caused) `probe` (GETs) tells whether it already took effect and
// returns its result. Fails the story after STEP_DEADLINE_MS.
async function step(what, send, want, probe, story) {
  const deadline = Date.now() + STEP_DEADLINE_MS;
  let uncertain = false;
  let last = null;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    if (uncertain && probe) {
      const done = await probe();
      if (done !== undefined && done !== null && done !== false) return done;
    }
    last = await send();
    if (last.status === want) return last.body;
    if (transient(last) || ((last.status === 409 || last.status === 404) && (uncertain || story.lagging(what)))) {
      uncertain = true;
      story.retries++;
      await sleep(Math.min(2000, 200 * (attempt + 1)));
      continue;
    }
    throw new StoryError(`${what}: HTTP ${last.status} ${JSON.stringify(last.body)}`);
  }
  throw new StoryError(`${what}: not done within ${STEP_DEADLINE_MS} ms (last: HTTP ${last && last.status} ${JSON.stringify(last && last.body)})`);
}

// Waits (GET polling) until `check` returns a value.
async function until(what, check) {
  const deadline = Date.now() + STEP_DEADLINE_MS;
  while (Date.now() < deadline) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    await sleep(300);
  }
  throw new StoryError(`${what}: not seen within ${STEP_DEADLINE_MS} ms`);
}

// ---- sockets -------------------------------------------------------------------------------------
const agents = []; // {agent_id, api_key, role, story}
const sockets = []; // per agent: {agent_id, ids: [], connects, errors, socket}

function watch(agent) {
  const w = { agent_id: agent.agent_id, ids: [], connects: 0, connect_errors: 0, disconnects: [], redelivered: 0 };
  const last = () => (w.ids.length ? w.ids[w.ids.length - 1] : 0);
  // Stock client, stock reconnection; each (re)connect resumes after the last id it saw.
  w.socket = io(BASE, {
    path: "/ws/agent",
    transports: ["websocket"],
    auth: (cb) => cb({ apiKey: agent.api_key, since: last() }),
    reconnectionDelay: 200,
    reconnectionDelayMax: 2000,
  });
  w.socket.on("connect", () => w.connects++);
  w.socket.on("connect_error", () => w.connect_errors++);
  w.socket.on("disconnect", (reason) => w.disconnects.push(reason));
  w.socket.onAny((name, ...args) => {
    const ack = args.length && typeof args[args.length - 1] === "function" ? args[args.length - 1] : null;
    if (ack) ack(true);
    const payload = args[0];
    if (!payload || typeof payload.event_id !== "number") return;
    // onNewTask/onEvaluate come with the id of the one logged event they belong to: count it once.
    if (payload.event_id === last()) return;
    if (payload.event_id < last()) {
      w.redelivered++;
      return;
    }
    w.ids.push(payload.event_id);
  });
  sockets.push(w);
  return w;
}

// ---- one story -----------------------------------------------------------------------------------
const stories = []; // {n, started, finished, ok, error, retries, ms}

async function signup(story, role) {
  const agent = await step(
    `signup ${role}`,
    () => call("thread-service", "POST", "/api/agent/signup", "/api/agent/signup", { name: `fs-${PHASE}-${story.n}-${role}` }),
    201,
    null,
    story,
  );
  const a = { agent_id: agent.agent_id, api_key: agent.api_key, role, story: story.n, phase: PHASE };
  agents.push(a);
  watch(a);
  return a;
}

async function runStory(story) {
  const t0 = performance.now();
  const R = await signup(story, "requester");
  const P = await signup(story, "provider");
  const price = { amount: "12", token: "USDC", network: "base" };
  const service = await step(
    "create service",
    () => call("thread-service", "POST", "/api/agent/services", "/api/agent/services", {
      title: `Fault story ${story.n}`, description: "Copy under faults", deliverable: "story.md", price, timeline: "1 day",
    }, P.api_key),
    201, null, story,
  );
  const thread = await step(
    "open thread",
    () => call("thread-service", "POST", "/api/agent/threads", "/api/agent/threads", { service_id: service.id, mode: "quick_quote", message: "Please" }, R.api_key),
    201, null, story,
  );
  const tpath = `/api/agent/threads/${thread.id}`;
  const getThread = async (key) => {
    const r = await call("thread-service", "GET", "/api/agent/threads/{id}", tpath, undefined, key);
    return r.status === 200 ? r.body : null;
  };
  const terms = { deliverable: "story.md", budget: price, timeline: "1 day", acceptance_criteria: "Reads well", revision_boundary: "One round" };
  await step(
    "post quote",
    () => call("thread-service", "POST", "/api/agent/threads/{id}/messages", `${tpath}/messages`, { type: "quote", body: "12 USDC", terms }, P.api_key),
    201,
    async () => ((await getThread(P.api_key)) || {}).latest_quote || null,
    story,
  );
  await step(
    "lock quote",
    () => call("thread-service", "POST", "/api/agent/threads/{id}/lock-quote", `${tpath}/lock-quote`, {}, P.api_key),
    200,
    async () => ((await getThread(P.api_key)) || {}).locked_quote_message_id || null,
    story,
  );
  const offer = await step(
    "create offer",
    () => call("offer-service", "POST", "/api/agent/threads/{id}/create-offer", `${tpath}/create-offer`, {}, R.api_key),
    201,
    async () => {
      const r = await call("offer-service", "GET", "/api/agent/offers", "/api/agent/offers?limit=5", undefined, R.api_key);
      const list = r.status === 200 ? r.body.offers || r.body.items || [] : [];
      return list.find((o) => o.thread_id === thread.id) || null;
    },
    story,
  );
  const opath = `/api/agent/offers/${offer.id}`;
  const accepted = await step(
    "accept offer",
    () => call("offer-service", "POST", "/api/agent/offers/{id}/respond", `${opath}/respond`, { action: "accept" }, P.api_key),
    200,
    async () => {
      const r = await call("offer-service", "GET", "/api/agent/offers/{id}", opath, undefined, P.api_key);
      return r.status === 200 && r.body.contract_id ? r.body : null;
    },
    story,
  );
  const contractId = accepted.contract_id;
  const job = await until("the contract's job", async () => {
    const r = await call("job-service", "GET", "/api/agents/jobs", "/api/agents/jobs?role=provider", undefined, P.api_key);
    return r.status === 200 ? r.body.jobs.find((j) => j.contractId === contractId) : null;
  });
  const jpath = `/api/agents/jobs/${job.id}`;
  const getJob = async () => {
    const r = await call("job-service", "GET", "/api/agents/jobs/{id}", jpath, undefined, R.api_key);
    return r.status === 200 ? r.body : null;
  };
  const txHash = "0x" + hex(64);
  const cpath = `/api/contracts/${contractId}`;
  const txStatus = async () => {
    const r = await call("offer-service", "GET", "/api/contracts/{id}/tx-status", `${cpath}/tx-status`, undefined, undefined);
    return r.status === 200 ? r.body : null;
  };
  await step(
    "pay",
    () => call("offer-service", "POST", "/api/contracts/{id}/payment", `${cpath}/payment`, { tx_hash: txHash }, R.api_key),
    200,
    async () => {
      const s = await txStatus();
      return s && s.tx_hash === txHash ? s : null;
    },
    story,
  );
  await until("the job's escrow verified", async () => ((await getJob()) || {}).escrowVerified || null);
  const phaseAtLeast = (n) => async () => {
    const j = await getJob();
    return j && j.phase >= n && j.phase <= 4 ? j : null;
  };
  await step(
    "negotiation",
    () => call("job-service", "POST", "/api/agents/providers/jobs/{id}/negotiation", `/api/agents/providers/jobs/${job.id}/negotiation`, { accept: true, content: "deal" }, P.api_key),
    204, phaseAtLeast(2), story,
  );
  await step(
    "deliverable",
    () => call("job-service", "POST", "/api/agents/providers/jobs/{id}/deliverable", `/api/agents/providers/jobs/${job.id}/deliverable`, { deliverable: `https://example.test/${story.n}.md` }, P.api_key),
    204, phaseAtLeast(3), story,
  );
  await step(
    "evaluate",
    () => call("job-service", "POST", "/api/agents/jobs/{id}/evaluate", `${jpath}/evaluate`, { accept: true }, R.api_key),
    204, phaseAtLeast(4), story,
  );
  await until("the contract completed", async () => {
    const s = await txStatus();
    return s && s.status === "completed" ? s : null;
  });
  story.ms = performance.now() - t0;
  story.contract_id = contractId;
  story.job_id = job.id;
  story.thread_id = thread.id;
}

// ---- the run -------------------------------------------------------------------------------------
async function pollLog(agent) {
  const ids = [];
  let since = 0;
  for (let guard = 0; guard < 1000; guard++) {
    const r = await call("notifier", "GET", "/api/agent/events", `/api/agent/events?since_id=${since}&limit=500`, undefined, agent.api_key);
    if (r.status !== 200) {
      await sleep(500);
      continue;
    }
    if (r.body.events.length === 0) return ids;
    for (const e of r.body.events) ids.push(e.event_id);
    since = r.body.next_since_id;
  }
  return ids;
}

// `fn` over `items`, at most `width` at a time (the gateway is shared with the load).
async function inBatches(items, width, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all([...Array(Math.min(width, items.length))].map(async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

async function main() {
  const inFlight = new Set();
  const started = Date.now();
  let n = 0;
  let skipped = 0;
  const interval = 1000 / RATE;
  // Open loop: a story starts every 1/RATE s whether or not the earlier ones are done.
  while (Date.now() - started < SECONDS * 1000 && !(STOP_FILE && fs.existsSync(STOP_FILE))) {
    const due = started + n * interval;
    if (Date.now() < due) await sleep(due - Date.now());
    n++;
    if (inFlight.size >= MAX_IN_FLIGHT) {
      skipped++;
      continue;
    }
    const story = { n, started: Date.now(), ok: false, retries: 0, lagging: () => false };
    // Right after the lock, the offer service may not have the thread's projection yet (Kafka).
    story.lagging = (what) => what === "create offer";
    stories.push(story);
    const p = runStory(story)
      .then(() => (story.ok = true))
      .catch((e) => (story.error = e instanceof StoryError ? e.message : String(e.stack || e)))
      .finally(() => {
        story.finished = Date.now();
        inFlight.delete(p);
      });
    inFlight.add(p);
  }
  await Promise.all([...inFlight]);

  // Quiesce: every socket caught up with its agent's log, and nothing new arrives for 2 s.
  const catchUpDeadline = Date.now() + 90000;
  let lastCount = -1;
  let stableSince = Date.now();
  let heads = [];
  while (Date.now() < catchUpDeadline) {
    heads = await inBatches(agents, 16, async (a) => {
      const ids = await pollLog(a);
      return ids.length ? ids[ids.length - 1] : 0;
    });
    const behind = sockets.filter((w, i) => (w.ids.length ? w.ids[w.ids.length - 1] : 0) < heads[i]).length;
    const count = sockets.reduce((s, w) => s + w.ids.length, 0);
    if (count !== lastCount) {
      lastCount = count;
      stableSince = Date.now();
    }
    if (behind === 0 && Date.now() - stableSince >= 2000) break;
    await sleep(500);
  }
  // The log may grow after this (a consumer still working through a backlog): the checker holds
  // each socket to its agent's log as it was when the socket closed.
  sockets.forEach((w, i) => (w.log_head = heads[i] || 0));
  for (const w of sockets) w.socket.close();

  const out = {
    phase: PHASE,
    base: BASE,
    seconds: SECONDS,
    rate: RATE,
    started,
    finished: Date.now(),
    skipped,
    stories: stories.map(({ lagging, ...s }) => s),
    agents,
    sockets: sockets.map(({ socket, ...w }) => w),
    requests,
  };
  fs.writeFileSync(OUT, JSON.stringify(out));
  const ok = stories.filter((s) => s.ok).length;
  console.log(`storyload ${PHASE}: ${stories.length} stories started, ${ok} completed, ${requests.length} requests`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
