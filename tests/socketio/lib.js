// Shared helpers for the socket.io peer tests: start the real agentlancer binary, call its HTTP
// API, and connect stock socket.io-client sockets that record what they receive.
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { io } = require("socket.io-client");

// The binary the Server class starts (tests against a running cluster need none).
const BIN = process.env.AGENTLANCER_BIN;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One agentlancer process on a free port: "all" (every service, embedded broker) or one service.
class Server {
  constructor(args = [], mode = "all") {
    this.args = args;
    this.mode = mode;
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "agentlancer-sio-"));
    this.port = 0;
    this.proc = null;
    this.log = "";
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
  async start() {
    if (!this.port) this.port = await freePort();
    // Every test agent signs up from 127.0.0.1: the per-address signup limit is for the public.
    const args = [this.mode, "--port", String(this.port), "--data_dir", this.dataDir, "--http.access_log", "false",
                  "--rate_limit.signup", "10000/1m", ...this.args];
    if (!BIN) throw new Error("AGENTLANCER_BIN must name the agentlancer binary");
    this.proc = spawn(BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.proc.stderr.on("data", (d) => {
      this.log = (this.log + d.toString()).slice(-20000);
    });
    this.exited = new Promise((resolve) => this.proc.once("exit", (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`${this.url}/readyz`);
        if (r.status === 200) return this;
      } catch (_) {
        /* not listening yet */
      }
      await sleep(100);
    }
    throw new Error(`server not ready on ${this.url}\n${this.log}`);
  }
  // SIGTERM and wait: the server drains and closes sockets gracefully.
  async stop() {
    if (!this.proc) return null;
    const proc = this.proc;
    this.proc = null;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30000);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
  // kill -9: no drain, no goodbye.
  async kill() {
    if (!this.proc) return null;
    const proc = this.proc;
    this.proc = null;
    proc.kill("SIGKILL");
    return this.exited;
  }
  async destroy() {
    await this.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

async function api(base, method, route, body, key) {
  const headers = { "content-type": "application/json" };
  if (key) headers["x-api-key"] = key;
  const r = await fetch(base + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = text;
  }
  return { status: r.status, body: json, headers: r.headers };
}

async function expectStatus(promise, status) {
  const r = await promise;
  if (r.status !== status) throw new Error(`expected HTTP ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function signup(base, name) {
  return expectStatus(api(base, "POST", "/api/agent/signup", { name }), 201);
}

const TOKEN = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const randomHash = () => "0x" + [...Array(64)].map(() => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");

// The provider-side walk of one job, step by step.
const job = {
  create: (base, client, provider, extra = {}) =>
    expectStatus(
      api(base, "POST", "/api/agents/jobs", { providerId: provider.agent_id, serviceRequirement: "translate", budget: "10", tokenAddress: TOKEN, ...extra }, client.api_key),
      201,
    ),
  accept: (base, provider, id) => expectStatus(api(base, "POST", `/api/agents/providers/jobs/${id}/accept`, { accept: true }, provider.api_key), 204),
  escrow: (base, client, id) => expectStatus(api(base, "POST", `/api/agents/jobs/${id}/escrow`, { txHash: randomHash() }, client.api_key), 200),
  negotiate: (base, provider, id) =>
    expectStatus(api(base, "POST", `/api/agents/providers/jobs/${id}/negotiation`, { accept: true, content: "deal" }, provider.api_key), 204),
  deliver: (base, provider, id, deliverable) =>
    expectStatus(api(base, "POST", `/api/agents/providers/jobs/${id}/deliverable`, { deliverable }, provider.api_key), 204),
  evaluate: (base, client, id) => expectStatus(api(base, "POST", `/api/agents/jobs/${id}/evaluate`, { accept: true }, client.api_key), 204),
};

// The whole per-agent log by polling.
async function pollAll(base, key, since = 0) {
  const out = [];
  for (;;) {
    const page = await expectStatus(api(base, "GET", `/api/agent/events?since_id=${since}&limit=500`, undefined, key), 200);
    out.push(...page.events);
    if (page.events.length === 0) return out;
    since = page.next_since_id;
  }
}

// A stock socket.io-client socket that records every event (acknowledging those that ask). With
// the client's default transports: long-polling first, then the upgrade to a WebSocket; pass
// `{ transports: ["websocket"] }` (WEBSOCKET_ONLY) or `["polling"]` for one transport only.
function connect(base, auth, options = {}) {
  const socket = io(base, { path: "/ws/agent", auth, reconnection: false, forceNew: true, ...options });
  const record = { socket, events: [], errors: [], disconnects: [], waiters: [] };
  const check = () => {
    record.waiters = record.waiters.filter((w) => {
      if (!w.predicate(record)) return true;
      clearTimeout(w.timer);
      w.resolve();
      return false;
    });
  };
  socket.onAny((name, ...args) => {
    const last = args[args.length - 1];
    const ack = typeof last === "function" ? last : null;
    record.events.push({ name, payload: args[0], hasAck: ack !== null, at: performance.now() });
    if (ack) ack(true);
    check();
  });
  socket.on("connect_error", (err) => {
    record.errors.push({ message: err.message, data: err.data });
    check();
  });
  socket.on("disconnect", (reason, details) => {
    record.disconnects.push({ reason, details });
    check();
  });
  record.until = (predicate, what, timeoutMs = 20000) =>
    new Promise((resolve, reject) => {
      if (predicate(record)) return resolve();
      const w = { predicate, resolve };
      w.timer = setTimeout(() => {
        record.waiters = record.waiters.filter((x) => x !== w);
        const seen = record.events.map((e) => `${e.name}#${e.payload && e.payload.event_id}`).join(" ");
        reject(new Error(`timed out waiting for ${what}; seen: ${seen}; errors: ${JSON.stringify(record.errors)}`));
      }, timeoutMs);
      record.waiters.push(w);
    });
  record.named = (name) => record.events.filter((e) => e.name === name);
  record.logged = () => record.events.filter((e) => e.payload && typeof e.payload.event_id === "number");
  record.close = () => socket.close();
  return record;
}

// Event ids as the socket saw them, each once (onNewTask and onEvaluate share the id of the one
// logged event they come from).
function distinctIds(events) {
  const ids = [];
  for (const e of events) if (ids[ids.length - 1] !== e.payload.event_id) ids.push(e.payload.event_id);
  return ids;
}

async function metric(base, name) {
  const r = await fetch(`${base}/metrics`);
  const text = await r.text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(" ")[1]) : NaN;
}

// Runs the README's watch snippet verbatim against `base` (the embedded stack or the cluster's
// gateway) as a provider, creates and accepts a job for it, and waits until the snippet printed
// both events.
async function runReadmeWatchSnippet(base) {
  const assert = require("node:assert/strict");
  const readme = fs.readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
  const block = readme.split("<!-- watch:start -->")[1].split("<!-- watch:end -->")[0];
  const code = block.replace(/^\s*```js\s*\n/, "").replace(/```\s*$/, "");
  assert.match(code, /require\("socket.io-client"\)/);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "watch-")), "watch.js");
  fs.writeFileSync(file, code);

  const client = await signup(base, "readme-client");
  const provider = await signup(base, "readme-provider");
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, BASE: base, AGENTLANCER_KEY: provider.api_key, NODE_PATH: path.join(__dirname, "node_modules") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const seen = (text) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`snippet did not print ${text}; printed: ${out}`)), 20000);
      const check = () => {
        if (out.includes(text)) {
          clearTimeout(timer);
          resolve();
        } else setTimeout(check, 50);
      };
      check();
    });
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  try {
    await seen("joined, log head");
    const created = await job.create(base, client, provider);
    await seen(`onNewTask ${created.id} REQUEST`);
    await job.accept(base, provider, created.id);
    await seen(`onNewTask ${created.id} NEGOTIATION`);
  } finally {
    child.kill();
  }
}

const WEBSOCKET_ONLY = Object.freeze({ transports: ["websocket"] });

module.exports = { WEBSOCKET_ONLY, Server, api, signup, job, pollAll, connect, distinctIds, metric, sleep, expectStatus, runReadmeWatchSnippet };
