// One stalled socket must not slow anyone else: it is disconnected once its writes stop making
// progress, the agent's other socket and the other party keep receiving everything (bursts larger
// than the send queue come from the log), and the stalled client resumes with `since` to exactly
// what it missed.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { Server, signup, job, pollAll, connect, distinctIds, metric, sleep, WEBSOCKET_ONLY } = require("./lib");

let server;
before(async () => {
  // A small queue (bursts beyond it are read from the log) and a short stall timeout.
  server = await new Server(["--notifier.ws.send_queue_bytes", "262144", "--notifier.ws.stall_timeout_ms", "2000"]).start();
});
after(async () => {
  await server.destroy();
});

test("a stalled client is disconnected (slow_consumer) while the others get every event; it resumes with since", async () => {
  const base = server.url;
  const client = await signup(base, "slow-client");
  const provider = await signup(base, "slow-provider");
  // On a WebSocket from the start: the test stalls its TCP socket.
  const slow = connect(base, { apiKey: provider.api_key, since: 0 }, WEBSOCKET_ONLY);
  const fast = connect(base, { apiKey: provider.api_key, since: 0 });
  const other = connect(base, { apiKey: client.api_key, since: 0 });
  await Promise.all([slow, fast, other].map((r) => r.until((x) => x.named("roomJoined").length === 1, "roomJoined")));
  await slow.until((x) => x.named("agent.registered").length === 1, "its own agent.registered");

  // Stall: stop reading from the TCP socket (the kernel buffers fill, then the server's queue).
  const tcp = slow.socket.io.engine.transport.ws._socket;
  tcp.pause();

  const requirement = "x".repeat(20000);
  const createdAt = new Map();
  const latencies = [];
  fast.socket.on("onNewTask", (payload) => {
    if (payload.phase === 0 && createdAt.has(payload.id)) latencies.push(performance.now() - createdAt.get(payload.id));
  });
  let created = 0;
  while (created < 1500 && (await metric(base, "notifier_ws_slow_consumer_closes_total")) < 1) {
    const batch = await Promise.all(
      [...Array(10)].map(async () => {
        const j = await job.create(base, client, provider, { serviceRequirement: requirement });
        createdAt.set(j.id, performance.now());
        return j;
      }),
    );
    created += batch.length;
  }
  assert.ok((await metric(base, "notifier_ws_slow_consumer_closes_total")) >= 1, `slow consumer not detected after ${created} jobs`);

  // The agent's other socket and the other party got every event while the slow one stalled.
  const onNewTask = (r) => r.named("onNewTask").length;
  await fast.until((x) => onNewTask(x) === created, `fast socket: ${created} onNewTask`);
  await other.until((x) => onNewTask(x) === created, `other party: ${created} onNewTask`);
  assert.ok(tcp.isPaused(), "all of that happened while the slow client was still stalled");
  latencies.sort((a, b) => a - b);
  console.log(
    `${created} jobs; fast socket receipt after the HTTP 201: p50 ${latencies[Math.floor(latencies.length / 2)].toFixed(1)} ms, ` +
      `max ${latencies[latencies.length - 1].toFixed(1)} ms (reported, not asserted)`,
  );

  // Resume reading: what was buffered arrives, then the connection is gone.
  tcp.resume();
  await slow.until((x) => x.disconnects.length === 1, "the slow socket's disconnect", 15000);
  const closing = slow.named("closing");
  if (closing.length) assert.equal(closing[0].payload.reason, "slow_consumer");  // sent when the socket could still take it
  const seen = distinctIds(slow.logged());
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], "in order, no duplicates");
  const lastSeen = seen.length ? seen[seen.length - 1] : 0;
  const log = await pollAll(base, provider.api_key);
  assert.ok(lastSeen < log[log.length - 1].event_id, "the stalled socket really missed events");

  const resumed = connect(base, { apiKey: provider.api_key, since: lastSeen });
  const expected = log.filter((e) => e.event_id > lastSeen).map((e) => e.event_id);
  await resumed.until((x) => distinctIds(x.logged()).length >= expected.length, `${expected.length} missed events`);
  assert.deepEqual(distinctIds(resumed.logged()), expected, "exactly what it missed, in order");
  assert.deepEqual([...distinctIds(slow.logged()), ...distinctIds(resumed.logged())], log.map((e) => e.event_id));
  for (const r of [fast, other, resumed, slow]) r.close();
  await sleep(10);
});
