// The notifier restarts mid-stream: connected clients get a `closing` notice and a close they
// reconnect from, resume with `since`, and end up with every event exactly once, in order; the
// log has no duplicate entry although the restarted embedded broker redelivers.
"use strict";
const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const { Server, signup, job, pollAll, connect, distinctIds, sleep } = require("./lib");

const server = new Server();
after(async () => {
  await server.destroy();
});

test("restart mid-stream: no event lost, none twice, clients resume on their own", async () => {
  await server.start();
  const base = server.url;
  const client = await signup(base, "restart-client");
  const provider = await signup(base, "restart-provider");
  // auth as a function: every reconnect resumes after the last event this socket saw.
  let lastSeen = 0;
  const watcher = connect(base, (cb) => cb({ apiKey: provider.api_key, since: lastSeen }), {
    reconnection: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
  });
  watcher.socket.onAny((name, payload) => {
    if (payload && typeof payload.event_id === "number" && payload.event_id > lastSeen) lastSeen = payload.event_id;
  });
  await watcher.until((x) => x.named("roomJoined").length === 1, "roomJoined");

  const created = [];
  const makeJobs = async (n) => {
    for (let i = 0; i < n; i++) {
      const j = await job.create(base, client, provider);
      await job.accept(base, provider, j.id);
      created.push(j.id);
    }
  };
  await makeJobs(10);
  await watcher.until((x) => x.named("onNewTask").length === 20, "20 onNewTask before the restart");

  // Graceful stop while the client is connected; jobs keep being made right before it.
  const stopping = server.stop();
  await watcher.until((x) => x.named("closing").length === 1, "the closing notice", 15000);
  assert.equal(watcher.named("closing")[0].payload.reason, "shutdown");
  assert.equal(typeof watcher.named("closing")[0].payload.resume_since, "number");
  const stopped = await stopping;
  assert.equal(stopped.code, 0, "clean exit on SIGTERM");
  await watcher.until((x) => x.disconnects.length === 1, "disconnect");
  assert.equal(watcher.disconnects[0].reason, "transport close", "a transport close: socket.io-client reconnects by itself");

  // Events made while the notifier is down cannot exist (one process); restart and go on.
  await server.start();
  await watcher.until((x) => x.named("roomJoined").length === 2, "roomJoined after the restart", 30000);
  await makeJobs(10);
  await watcher.until((x) => x.named("onNewTask").length === 40, "40 onNewTask in all", 30000);
  await sleep(500);  // anything duplicated would arrive now

  const log = await pollAll(base, provider.api_key);
  const cloudIds = log.map((e) => e.cloudevent_id);
  assert.equal(new Set(cloudIds).size, cloudIds.length, "the log holds each event once despite redelivery");
  const ids = distinctIds(watcher.logged());
  assert.deepEqual(ids, log.map((e) => e.event_id), "the socket saw every logged event once, in order");
  // Every job's two phases, each once, in order per job (across jobs the log keeps the order in
  // which the notifier consumed them: Kafka orders per partition, i.e. per job).
  const seen = watcher.named("onNewTask").map((e) => `${e.payload.id}:${e.payload.phase}`);
  assert.deepEqual([...seen].sort(), created.flatMap((id) => [`${id}:0`, `${id}:1`]).sort());
  for (const id of created) assert.ok(seen.indexOf(`${id}:0`) < seen.indexOf(`${id}:1`), `job ${id} in order`);
  watcher.close();
});
