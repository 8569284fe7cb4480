// Engine.IO long-polling and the upgrade to a WebSocket, against the real binary: a stock
// socket.io-client with its default options (polling first, then the upgrade) and one kept on
// polling get roomJoined, the backlog and live events exactly once and in log order; the
// protocol itself (handshake, sid tag, probe, overlapping polls, unknown sessions) by hand.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const WebSocket = require("ws");
const { Server, api, signup, job, pollAll, connect, metric, expectStatus } = require("./lib");

let server;
before(async () => {
  server = await new Server([]).start();
});
after(async () => {
  await server.destroy();
});

const RS = "\x1e";
const joined = (r) => r.until((x) => x.named("roomJoined").length === 1, "roomJoined");
// Every (name, event_id) a socket received: each logged event arrives once under each name it has.
const deliveries = (r) => r.logged().map((e) => `${e.name}#${e.payload.event_id}`);
const distinct = (ids) => ids.filter((id, i) => i === 0 || ids[i - 1] !== id);

// Engine.IO packets of a long-poll answer, and the socket.io events among them.
const packetsOf = (body) => body.split(RS);
function eventOf(packet) {
  const m = /^42(\d*)(\[.*)$/s.exec(packet);
  if (!m) return null;
  const [name, payload] = JSON.parse(m[2]);
  return { name, payload };
}

async function poll(url) {
  const r = await fetch(url);
  return { status: r.status, type: r.headers.get("content-type"), body: await r.text() };
}

async function send(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "content-type": "text/plain;charset=UTF-8" }, body });
  return { status: r.status, body: await r.text() };
}

async function handshake(base) {
  const r = await poll(`${base}/ws/agent/?EIO=4&transport=polling`);
  assert.equal(r.status, 200, r.body);
  assert.match(r.type, /^text\/plain/);
  assert.equal(r.body[0], "0");
  const open = JSON.parse(r.body.slice(1));
  return { open, url: `${base}/ws/agent/?EIO=4&transport=polling&sid=${encodeURIComponent(open.sid)}` };
}

test("default options: long-polling, then the upgrade; every event once, in order, across the switch", async () => {
  const base = server.url;
  const client = await signup(base, "poll-default-client");
  const provider = await signup(base, "poll-default-provider");
  for (let i = 0; i < 3; i++) await job.create(base, client, provider);  // a backlog

  // Events keep coming while the socket connects, joins and upgrades.
  let producing = true;
  const producer = (async () => {
    while (producing) await job.create(base, client, provider);
  })();
  const p = connect(base, { apiKey: provider.api_key, since: 0 });
  const transports = [];
  p.socket.io.on("open", () => {
    transports.push(p.socket.io.engine.transport.name);
    p.socket.io.engine.on("upgrade", (t) => transports.push(t.name));
  });
  const onTransport = [];
  p.socket.onAny(() => onTransport.push(p.socket.io.engine.transport.name));
  await joined(p);
  await p.until(() => transports.includes("websocket"), "the upgrade to a WebSocket");
  for (let i = 0; i < 3; i++) await job.create(base, client, provider);  // after the switch
  producing = false;
  await producer;

  const logIds = (await pollAll(base, provider.api_key)).map((e) => e.event_id);
  await p.until((x) => distinct(x.logged().map((e) => e.payload.event_id)).length >= logIds.length, "the socket caught up");
  assert.deepEqual(transports, ["polling", "websocket"], "opened on long-polling, upgraded once");
  assert.equal(p.socket.io.engine.transport.name, "websocket");
  assert.deepEqual(distinct(p.logged().map((e) => e.payload.event_id)), logIds, "the socket's ids are the log's, in order");
  const seen = deliveries(p);
  assert.equal(new Set(seen).size, seen.length, "no event twice");
  assert.equal(p.named("roomJoined").length, 1);
  assert.equal(onTransport[onTransport.length - 1], "websocket", "the last events came over the WebSocket");
  assert.ok((await metric(base, "notifier_ws_upgrades_total")) >= 1);
  p.close();
});

test("polling only: the whole job, backlog and live, then the key's revocation closes it", async () => {
  const base = server.url;
  const client = await signup(base, "poll-only-client");
  const provider = await signup(base, "poll-only-provider");
  const first = await job.create(base, client, provider);
  const extra = await expectStatus(api(base, "POST", "/api/agent/keys", {}, provider.api_key), 201);
  const p = connect(base, { apiKey: extra.api_key, since: 0 }, { transports: ["polling"] });
  await joined(p);
  assert.ok((await metric(base, "notifier_ws_polling_sessions")) >= 1);
  await p.until((x) => x.named("onNewTask").some((e) => e.payload.id === first.id), "the backlog's job");

  const created = await job.create(base, client, provider);
  await job.accept(base, provider, created.id);
  await job.escrow(base, client, created.id);
  await job.negotiate(base, provider, created.id);
  await job.deliver(base, provider, created.id, { type: "url", value: "https://example.com/polled.md" });
  await job.evaluate(base, client, created.id);
  const phases = () => p.named("onNewTask").filter((e) => e.payload.id === created.id).map((e) => e.payload.phase);
  await p.until(() => phases().includes(4), "the job completed, live");
  assert.deepEqual(phases(), [0, 1, 2, 3, 4], "every phase once, in order");
  const logIds = (await pollAll(base, provider.api_key)).map((e) => e.event_id);
  await p.until((x) => distinct(x.logged().map((e) => e.payload.event_id)).length >= logIds.length, "caught up");
  assert.deepEqual(distinct(p.logged().map((e) => e.payload.event_id)), logIds);
  const seen = deliveries(p);
  assert.equal(new Set(seen).size, seen.length, "no event twice");
  assert.equal(p.socket.io.engine.transport.name, "polling");

  await expectStatus(api(base, "DELETE", `/api/agent/keys/${extra.key_id}`, undefined, provider.api_key), 204);
  await p.until((x) => x.disconnects.length === 1, "closed on revocation");
  const closing = p.named("closing");
  assert.equal(closing.length, 1);
  assert.equal(closing[0].payload.reason, "key_revoked");
  assert.equal(p.disconnects[0].reason, "transport close");
});

test("the protocol by hand: sid tag, payload framing, probe, held poll ended, upgrade without loss", async () => {
  const base = server.url;
  const client = await signup(base, "poll-raw-client");
  const provider = await signup(base, "poll-raw-provider");
  await job.create(base, client, provider);

  const { open, url } = await handshake(base);
  assert.deepEqual(open.upgrades, ["websocket"]);
  assert.equal(open.maxPayload, 1000000);
  assert.ok(open.sid.startsWith(`p${server.port}.`), `the sid carries the node tag: ${open.sid}`);
  // CONNECT and a (spare) pong in one body, separated by the record separator.
  const posted = await send(url, `40${JSON.stringify({ apiKey: provider.api_key, since: 0 })}${RS}3`);
  assert.deepEqual(posted, { status: 200, body: "ok" });

  const received = [];  // [transport, event]
  let head = null;
  const take = (transport, packet) => {
    const e = eventOf(packet);
    if (!e) return;
    received.push([transport, e]);
    if (e.name === "roomJoined") head = e.payload.head_event_id;
  };
  const ids = () => distinct(received.filter(([, e]) => typeof e.payload?.event_id === "number").map(([, e]) => e.payload.event_id));
  while (head === null || ids().length < head) {
    const r = await poll(url);
    assert.equal(r.status, 200, r.body);
    packetsOf(r.body).forEach((packet) => take("polling", packet));
  }
  assert.ok(received.some(([, e]) => e.name === "roomJoined"));

  // A held poll, then the probe: the server answers 3probe and ends the held poll.
  const held = poll(url);
  const ws = new WebSocket(`${base.replace("http", "ws")}/ws/agent/?EIO=4&transport=websocket&sid=${encodeURIComponent(open.sid)}`);
  const frames = [];
  let wake = () => {};
  ws.on("message", (data) => {
    frames.push(data.toString());
    wake();
  });
  const frame = (predicate, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what}; frames: ${frames.join(" | ").slice(0, 500)}`)), 20000);
      const check = () => {
        const found = frames.find(predicate);
        if (found === undefined) return;
        clearTimeout(timer);
        wake = () => {};
        resolve(found);
      };
      wake = check;
      check();
    });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send("2probe");
  await frame((f) => f === "3probe", "3probe");
  const ended = await held;
  assert.equal(ended.status, 200);
  packetsOf(ended.body).forEach((packet) => take("polling", packet));

  // Events logged between the probe and the upgrade wait in the session's queue.
  const during = await job.create(base, client, provider);
  await new Promise((r) => setTimeout(r, 300));
  const meanwhile = await poll(url);  // a poll during the probe is answered at once
  assert.equal(meanwhile.status, 200);
  packetsOf(meanwhile.body).forEach((packet) => take("polling", packet));
  ws.send("5");
  const after = await job.create(base, client, provider);
  const over = (id) => received.filter(([, e]) => e.payload?.id === id).map(([t]) => t);
  const drainUntil = (done, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} over the WebSocket: ${JSON.stringify(ids())}`)), 20000);
      const check = () => {
        while (frames.length) take("websocket", frames.shift());
        if (done()) {
          clearTimeout(timer);
          resolve();
        } else setTimeout(check, 20);
      };
      check();
    });
  await drainUntil(() => over(after.id).length > 0, "event of the job created after the upgrade");
  const logIds = (await pollAll(base, provider.api_key)).map((e) => e.event_id);
  await drainUntil(() => ids().length >= logIds.length, "catching up with the log");
  assert.deepEqual(ids(), logIds, "polling then WebSocket: the log, in order");
  const names = received.filter(([, e]) => typeof e.payload?.event_id === "number").map(([, e]) => `${e.name}#${e.payload.event_id}`);
  assert.equal(new Set(names).size, names.length, "nothing twice across the switch");
  assert.ok(over(after.id).length > 0 && over(after.id).every((t) => t === "websocket"), "after the upgrade: the WebSocket");
  assert.ok(over(during.id).length > 0, "the job logged during the probe arrived");

  // The session moved: polling it now is refused; the WebSocket goes on.
  const stale = await poll(url);
  assert.equal(stale.status, 400);
  ws.close();
  await new Promise((r) => ws.once("close", r));
});

test("an overlapping poll ends the session; an unknown sid is refused; malformed payloads close", async () => {
  const base = server.url;
  const { url } = await handshake(base);
  const first = poll(url);
  await new Promise((r) => setTimeout(r, 200));  // the first GET is held by now
  const second = await poll(url);
  assert.equal(second.status, 400);
  const firstAnswer = await first;
  assert.equal(firstAnswer.body, "1", "the held poll is told the session closed");
  const gone = await poll(url);
  assert.equal(gone.status, 400);
  assert.equal(JSON.parse(gone.body).code, "unknown_session");
  const unknownPost = await send(`${base}/ws/agent/?EIO=4&transport=polling&sid=p1.nosuchsession`, "3");
  assert.equal(unknownPost.status, 400);

  const { url: other } = await handshake(base);
  const malformed = await send(other, `3${RS}${RS}3`);
  assert.equal(malformed.status, 400);
  assert.equal(JSON.parse(malformed.body).code, "bad_request");
  const closed = await poll(other);  // what is left: the Engine.IO CLOSE
  assert.equal(closed.status, 200);
  assert.equal(packetsOf(closed.body).pop(), "1");
});

test("SIGTERM: a long-polling client is told (closing: shutdown) at once, the held poll does not hold the drain", async () => {
  const base = server.url;
  const agent = await signup(base, "poll-shutdown");
  const p = connect(base, { apiKey: agent.api_key, since: 0 }, { transports: ["polling"] });
  await joined(p);
  await new Promise((r) => setTimeout(r, 300));  // its next GET is held
  const started = Date.now();
  await server.stop();
  const took = Date.now() - started;
  await p.until((x) => x.disconnects.length === 1, "disconnected");
  assert.equal(p.named("closing").length, 1);
  assert.equal(p.named("closing")[0].payload.reason, "shutdown");
  // The notice comes in the last poll; the CLOSE would need one more, which a server that stopped
  // accepting cannot take: either way socket.io-client reconnects by itself.
  assert.ok(["transport close", "transport error"].includes(p.disconnects[0].reason), p.disconnects[0].reason);
  assert.ok(took < 5000, `stopped in ${took} ms (shutdown.drain_ms is 10000)`);
  p.close();
});
