// Distributed mode on real Kafka: thread-service, job-service and the notifier as separate
// processes. The notifier is killed (-9) while jobs keep being made, then restarted: it catches
// up from its committed offsets, the redelivered events add nothing to the log, and a connected
// socket.io client reconnects by itself and ends with every event exactly once.
"use strict";
const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const { Server, signup, job, pollAll, connect, distinctIds, sleep } = require("./lib");

const state = process.env.AGENTLANCER_TEST_KAFKA_STATE;
const skip = state ? false : "AGENTLANCER_TEST_KAFKA_STATE not set (ctest starts Kafka and sets it)";
const servers = [];
after(async () => {
  for (const s of servers) await s.destroy();
});

test("kill -9 the notifier mid-stream: nothing lost, nothing twice", { skip }, async () => {
  const bootstrap = fs.readFileSync(`${state}/bootstrap`, "utf8").trim();
  // The same key material everywhere: every service verifies API keys locally.
  const secret = "k1:" + require("node:crypto").randomBytes(32).toString("hex");
  const kafka = ["--kafka.bootstrap", bootstrap, "--auth.secrets", secret];
  const threads = new Server(kafka, "thread-service");
  const jobs = new Server(kafka, "job-service");
  const notifier = new Server(kafka, "notifier");
  servers.push(threads, jobs, notifier);
  await Promise.all([threads.start(), jobs.start(), notifier.start()]);

  const client = await signup(threads.url, "dist-client");
  const provider = await signup(threads.url, "dist-provider");
  let lastSeen = 0;
  const watcher = connect(notifier.url, (cb) => cb({ apiKey: provider.api_key, since: lastSeen }), {
    reconnection: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
  });
  watcher.socket.onAny((name, payload) => {
    if (payload && typeof payload.event_id === "number" && payload.event_id > lastSeen) lastSeen = payload.event_id;
  });
  await watcher.until((x) => x.named("roomJoined").length === 1, "roomJoined", 30000);

  // Jobs keep coming (create + accept: two onNewTask each) through the notifier's death.
  const created = [];
  let producing = true;
  const producer = (async () => {
    while (producing) {
      const j = await job.create(jobs.url, client, provider);
      await job.accept(jobs.url, provider, j.id);
      created.push(j.id);
      await sleep(20);
    }
  })();
  await watcher.until((x) => x.named("onNewTask").length >= 10, "live events before the kill", 30000);
  const beforeKill = created.length;
  await notifier.kill();
  await sleep(1000);
  const madeWhileDown = created.length;
  assert.ok(madeWhileDown > beforeKill, "jobs were made while the notifier was down");
  await notifier.start();
  await watcher.until((x) => x.named("roomJoined").length >= 2, "reconnected after the restart", 60000);
  await sleep(1000);
  producing = false;
  await producer;
  assert.ok(created.length > madeWhileDown, "and after the restart");

  const expected = created.length * 2;
  await watcher.until((x) => x.named("onNewTask").length >= expected, `${expected} onNewTask`, 60000);
  await sleep(500);  // anything duplicated would arrive now
  const log = await pollAll(notifier.url, provider.api_key);
  const cloudIds = log.map((e) => e.cloudevent_id);
  assert.equal(new Set(cloudIds).size, cloudIds.length, "each event once in the log despite redelivery");
  assert.deepEqual(distinctIds(watcher.logged()), log.map((e) => e.event_id), "the socket saw every logged event once, in order");
  const seen = watcher.named("onNewTask").map((e) => `${e.payload.id}:${e.payload.phase}`);
  assert.deepEqual([...seen].sort(), created.flatMap((id) => [`${id}:0`, `${id}:1`]).sort());
  watcher.close();
});
