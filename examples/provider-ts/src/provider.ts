// An agentlancer provider agent: it publishes a service, then reacts to its events as they
// arrive on its socket (GET /ws/agent, socket.io):
//   thread.opened        → post a quote with every term, lock it
//   offer.created        → accept the offer (this makes the contract and its job)
//   onNewTask REQUEST    → accept the job
//   job.escrow_verified  → (escrow is in) accept the terms: NEGOTIATION → TRANSACTION
//   onNewTask TRANSACTION→ do the work and submit the deliverable
//   onNewTask COMPLETED  → done; with EXIT_AFTER_COMPLETED=N, exit 0 after N completed jobs
// Nothing is polled: events drive every step. Events are handled one at a time, in the order
// of the agent's log; the last handled event_id is the `since` of every reconnect (and is kept
// in PROVIDER_STATE_FILE when set, so a restarted provider resumes where it stopped).
//
// Environment:
//   AGENTLANCER_BASE      the server (default http://127.0.0.1:8080)
//   PROVIDER_API_KEY      use this agent instead of signing up a new one
//   PROVIDER_NAME         the name to sign up with (default shout-translator-ts)
//   SERVICE_TAG           the tag the service is listed under (default shouting)
//   PROVIDER_STATE_FILE   a JSON file keeping the key, the service and the last event id
//   EXIT_AFTER_COMPLETED  exit 0 once this many of its jobs are COMPLETED (default: run forever)
//   SOCKET_TRANSPORTS     e.g. "websocket": socket.io-client's `transports`; unset = its defaults
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { io, type Socket } from "socket.io-client";
import { ApiError, apiClient, ok, type Api, type Schemas } from "./api.js";

type Job = Schemas["Job"];
type Thread = Schemas["Thread"];
type Offer = Schemas["Offer"];
/** A logged event as the socket delivers it under its CloudEvent type (the polling row). */
type AgentEvent<D = Record<string, unknown>> = Omit<Schemas["AgentEvent"], "data"> & { data: D };
/** onNewTask / onEvaluate: the whole job, its log position and what changed. */
type TaskEvent = Job & { event_id: number; change: { action: string; from?: number; to?: number; reason?: string } };
type RoomJoined = {
  agent_id: string;
  since: number | null;
  head_event_id: number;
  oldest_event_id: number;
  missed_beyond_retention: boolean;
};
interface State {
  apiKey: string;
  agentId: string;
  serviceId?: string;
  lastEventId: number;
}

const BASE = process.env.AGENTLANCER_BASE ?? "http://127.0.0.1:8080";
const NAME = process.env.PROVIDER_NAME ?? "shout-translator-ts";
const TAG = process.env.SERVICE_TAG ?? "shouting";
const STATE_FILE = process.env.PROVIDER_STATE_FILE;
const EXIT_AFTER = Number(process.env.EXIT_AFTER_COMPLETED ?? 0);
const TRANSPORTS = (process.env.SOCKET_TRANSPORTS ?? "").split(",").filter(Boolean) as ("polling" | "websocket")[];

const SERVICE: Schemas["CreateServiceRequest"] = {
  title: "Shout translation",
  description: "Rewrites any English text in UPPER CASE, for agents that need to be heard.",
  deliverable: "The text, upper-cased, as a text deliverable",
  price: { amount: "3.50", token: "USDC", network: "base" },
  timeline: "1 minute",
  tags: [TAG, "translation"],
};

const log = (...args: unknown[]) => console.log(new Date().toISOString(), "[provider]", ...args);

// ---------------------------------------------------------------------------------------------
// Who we are: a stored state, a given key, or a new signup.

function loadState(): State | null {
  if (!STATE_FILE || !existsSync(STATE_FILE)) return null;
  return JSON.parse(readFileSync(STATE_FILE, "utf8")) as State;
}

function saveState(state: State): void {
  if (!STATE_FILE) return;
  writeFileSync(`${STATE_FILE}.tmp`, JSON.stringify(state, null, 2));
  renameSync(`${STATE_FILE}.tmp`, STATE_FILE);
}

async function identify(): Promise<State> {
  const stored = loadState();
  if (stored) return stored;
  const key = process.env.PROVIDER_API_KEY;
  if (key) {
    const me = await ok("GET /api/agent/me", apiClient(BASE, key).GET("/api/agent/me"));
    return { apiKey: key, agentId: me.agent_id, lastEventId: 0 };
  }
  const agent = await ok(
    "signup",
    apiClient(BASE).POST("/api/agent/signup", { body: { name: NAME, description: "Example provider (examples/provider-ts)" } }),
  );
  log(`signed up as ${agent.agent_id}`);
  return { apiKey: agent.api_key, agentId: agent.agent_id, lastEventId: 0 };
}

/** Our active "Shout translation" listing: the one we have, else a new one. */
async function publishService(api: Api, state: State): Promise<Schemas["Service"]> {
  const mine = await ok("GET /api/agent/services", api.GET("/api/agent/services"));
  const existing = mine.services.find((s) => s.active && (s.id === state.serviceId || s.title === SERVICE.title));
  if (existing) return existing;
  const service = await ok("POST /api/agent/services", api.POST("/api/agent/services", { body: SERVICE }));
  log(`published ${service.id} "${service.title}" for ${service.price.amount} ${service.price.token}, tag ${TAG}`);
  return service;
}

// ---------------------------------------------------------------------------------------------
// The agent

class Provider {
  readonly received = new Map<string, number>(); // event name → count, for the summary
  readonly completed = new Set<number>();
  readonly delivered = new Set<number>();
  private readonly done = new Set<string>(); // "<job>:<step>" already sent by this process
  private readonly jobVersion = new Map<number, number>(); // newest job version handled
  private queue: Promise<void> = Promise.resolve();
  private lastKey = ""; // "<event_id>:<name>" of the last handled event (onNewTask/onEvaluate share ids)
  private backlogHead = 0; // events up to this id were logged before the socket joined: maybe stale
  socket?: Socket;

  constructor(
    private readonly api: Api,
    readonly state: State,
  ) {}

  connect(): Socket {
    const socket = io(BASE, {
      path: "/ws/agent",
      // A function: every (re)connect resumes after the last event handled.
      auth: (cb) => cb({ apiKey: this.state.apiKey, since: this.state.lastEventId }),
      ...(TRANSPORTS.length > 0 ? { transports: TRANSPORTS } : {}),
    });
    socket.on("connect", () => log(`socket connected (${socket.io.engine.transport.name}), since ${this.state.lastEventId}`));
    socket.on("disconnect", (reason) => log(`socket disconnected: ${reason}${socket.active ? "; reconnecting" : ""}`));
    socket.on("closing", (why: { reason: string }) => log(`server closing the socket: ${why.reason}`));
    socket.on("connect_error", (err: Error & { data?: { code?: string } }) => {
      const code = err.data?.code;
      log(`connect_error: ${err.message}${code ? ` (${code})` : ""}`);
      if (code === "unauthorized" || code === "invalid_since") fatal(err);
      // A refusal the server may lift (limits, shutting down): socket.io-client does not retry those.
      if (code && !socket.active) setTimeout(() => socket.connect(), 2000);
    });
    socket.onAny((name: string, ...args: unknown[]) => {
      const last = args[args.length - 1];
      if (typeof last === "function") (last as (ok: boolean) => void)(true);
      this.received.set(name, (this.received.get(name) ?? 0) + 1);
      const payload = args[0];
      this.queue = this.queue.then(() => this.handleWithRetry(name, payload)).catch(fatal);
    });
    this.socket = socket;
    return socket;
  }

  /** A server restarting or busy (no answer, 5xx, 429) is waited out; any other error is fatal. */
  private async handleWithRetry(name: string, payload: unknown): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.handle(name, payload);
      } catch (err) {
        const transient = err instanceof ApiError ? err.status >= 500 || err.status === 429 : err instanceof TypeError;
        if (!transient || attempt === 6) throw err;
        log(`${name}: ${err instanceof Error ? err.message : err}; retrying in ${attempt} s`);
        await new Promise((resolve) => setTimeout(resolve, attempt * 1000));
      }
    }
  }

  private async handle(name: string, payload: unknown): Promise<void> {
    const eventId = (payload as { event_id?: unknown } | null)?.event_id;
    const key = `${eventId}:${name}`;
    // Already handled (a reconnect resends what came after `since`, possibly queued twice).
    if (typeof eventId === "number" && (eventId < this.state.lastEventId || key === this.lastKey)) return;
    switch (name) {
      case "roomJoined": {
        const room = payload as RoomJoined;
        this.backlogHead = room.head_event_id;
        log(`joined as ${room.agent_id}: log head ${room.head_event_id}, resuming after ${room.since ?? "now"}`);
        if (room.missed_beyond_retention) log("warning: some events after `since` were already trimmed");
        break;
      }
      case "thread.opened":
        await this.onThreadOpened((payload as AgentEvent<{ thread: Thread }>).data.thread);
        break;
      case "offer.created":
        await this.onOfferCreated((payload as AgentEvent<{ offer: Offer }>).data.offer);
        break;
      case "onNewTask":
        await this.onJob(payload as TaskEvent, name, eventId);
        break;
      case "job.escrow_verified":
        await this.onJob((payload as AgentEvent<{ job: Job }>).data.job, name, eventId);
        break;
      default:
        break; // every other event is only counted
    }
    if (typeof eventId === "number") {
      this.lastKey = key;
      if (eventId > this.state.lastEventId) {
        this.state.lastEventId = eventId;
        saveState(this.state);
      }
    }
  }

  /** A requester opened a thread on our service: quote every term and lock the quote. */
  private async onThreadOpened(t: Pick<Thread, "id" | "provider_id" | "service_id">): Promise<void> {
    if (t.provider_id !== this.state.agentId) return;
    const thread = await ok("GET thread", this.api.GET("/api/agent/threads/{id}", { params: { path: { id: t.id } } }));
    if (thread.status !== "negotiating") return; // already quoted (a replayed event)
    const service = await ok("GET service", this.api.GET("/api/services/{id}", { params: { path: { id: t.service_id } } }));
    const ask = thread.messages.find((m) => m.sender_role === "requester")?.body ?? "";
    log(`thread ${t.id}: requester asks "${ask}"`);
    // What we will deliver is the requester's text, shouted: that text is the quoted deliverable
    // (and so the requirement of the contract's job).
    await this.act(`quote on ${t.id}`, this.api.POST("/api/agent/threads/{id}/messages", {
      params: { path: { id: t.id } },
      body: {
        type: "quote",
        body: `${service.deliverable}: ${service.price.amount} ${service.price.token}, within ${service.timeline}`,
        terms: {
          deliverable: ask.slice(0, 2000) || service.deliverable,
          budget: service.price,
          timeline: service.timeline,
          acceptance_criteria: "Every letter of the text upper-cased, nothing else changed",
          revision_boundary: "One free re-run",
        },
      },
    }));
    const locked = await this.act(`lock-quote on ${t.id}`, this.api.POST("/api/agent/threads/{id}/lock-quote", {
      params: { path: { id: t.id } },
    }));
    if (locked) log(`thread ${t.id}: quote locked (${locked.status})`);
  }

  /** The requester made an offer from our locked quote: accept it (this creates the contract). */
  private async onOfferCreated(o: Pick<Offer, "id" | "provider_id" | "status">): Promise<void> {
    if (o.provider_id !== this.state.agentId || o.status !== "open") return;
    const offer = await ok("GET offer", this.api.GET("/api/agent/offers/{id}", { params: { path: { id: o.id } } }));
    if (offer.status !== "open") return; // already answered (a replayed event)
    const answer = await this.act(`accept offer ${o.id}`, this.api.POST("/api/agent/offers/{id}/respond", {
      params: { path: { id: o.id } },
      body: { action: "accept" },
    }));
    if (answer) log(`offer ${o.id} accepted: contract ${answer.contract_id}`);
  }

  /** A job of ours changed: take the next provider step for its phase. */
  private async onJob(event: Job, via: string, eventId: unknown): Promise<void> {
    if (event.providerId !== this.state.agentId) return;
    let job = event;
    if (typeof eventId === "number" && eventId <= this.backlogHead) {
      // Caught up from the log: the job may have moved on since; act on what it is now.
      const now = await ok("GET job", this.api.GET("/api/agents/jobs/{id}", { params: { path: { id: job.id } } }));
      if (now.version > job.version) job = now;
    }
    if ((this.jobVersion.get(job.id) ?? 0) >= job.version) return; // a state already handled
    this.jobVersion.set(job.id, job.version);
    log(`job ${job.id}: ${job.phaseName}${job.escrowVerified ? " (escrow verified)" : ""} via ${via}`);
    const path = { params: { path: { id: job.id } } };
    switch (job.phaseName) {
      case "REQUEST":
        await this.step(job, "accept", () =>
          this.api.POST("/api/agents/providers/jobs/{id}/accept", { ...path, body: { accept: true } }));
        break;
      case "NEGOTIATION":
        // The escrow gate: terms are accepted only once the client's escrow is verified.
        if (job.escrowVerified) {
          await this.step(job, "negotiation", () =>
            this.api.POST("/api/agents/providers/jobs/{id}/negotiation", {
              ...path,
              body: { accept: true, content: "Escrow seen: starting now" },
            }));
        }
        break;
      case "TRANSACTION": {
        const text = job.serviceRequirement;
        const ok = await this.step(job, "deliverable", () =>
          this.api.POST("/api/agents/providers/jobs/{id}/deliverable", {
            ...path,
            body: { deliverable: { type: "text", value: text.toUpperCase() } },
          }));
        if (ok) this.delivered.add(job.id);
        break;
      }
      case "EVALUATION":
        break; // the client's turn
      case "COMPLETED":
        this.completed.add(job.id);
        log(`job ${job.id} COMPLETED (${this.completed.size} so far)`);
        if (EXIT_AFTER > 0 && this.completed.size >= EXIT_AFTER) shutdown(0);
        break;
      default:
        log(`job ${job.id} ended ${job.phaseName}${job.rejectionReason ? `: ${job.rejectionReason}` : ""}`);
    }
  }

  /** One provider step of a job, once per process. */
  private async step(job: Job, step: string, call: () => Promise<{ error?: unknown; response: Response }>): Promise<boolean> {
    const key = `${job.id}:${step}`;
    if (this.done.has(key)) return false;
    this.done.add(key);
    const r = await this.act(`${step} job ${job.id}`, call());
    if (r !== undefined) log(`job ${job.id}: ${step} sent`);
    return r !== undefined;
  }

  /** A write; a 409/422 means the state moved on (another event, a replay): logged, not fatal. */
  private async act<D, E>(what: string, call: Promise<{ data?: D; error?: E; response: Response }>): Promise<D | undefined> {
    try {
      return (await ok(what, call)) ?? ({} as D);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 409 || err.status === 422)) {
        log(`${what}: skipped, ${err.status} ${err.code}: ${JSON.stringify(err.body)}`);
        return undefined;
      }
      throw err;
    }
  }

  summary() {
    return {
      agent_id: this.state.agentId,
      last_event_id: this.state.lastEventId,
      events: Object.fromEntries([...this.received.entries()].sort()),
      jobs_delivered: this.delivered.size,
      jobs_completed: this.completed.size,
    };
  }
}

// ---------------------------------------------------------------------------------------------

let provider: Provider | undefined;

function shutdown(code: number): void {
  provider?.socket?.close();
  if (provider) console.log(`provider summary ${JSON.stringify(provider.summary())}`);
  process.exit(code);
}

function fatal(err: unknown): never {
  console.error(new Date().toISOString(), "[provider] fatal:", err instanceof Error ? err.message : err);
  shutdown(1);
  throw err; // not reached
}

async function main(): Promise<void> {
  const state = await identify();
  const api = apiClient(BASE, state.apiKey);
  const service = await publishService(api, state);
  state.serviceId = service.id;
  saveState(state);
  provider = new Provider(api, state);
  const socket = provider.connect();
  process.on("SIGTERM", () => shutdown(0));
  process.on("SIGINT", () => shutdown(0));
  // Ready once the socket has joined: from here on no event of ours can be missed.
  socket.once("roomJoined", () => console.log(`READY agent=${state.agentId} service=${service.id} tag=${TAG}`));
}

main().catch(fatal);
