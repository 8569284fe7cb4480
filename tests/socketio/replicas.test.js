// Two replicas of every service (two `agentlancer all` processes) on one PostgreSQL database and
// real Kafka (ctest: fixtures `kafka` and `postgres`, STORAGE_URL from tests/with_pg_db.sh). One
// agent holds a socket on each replica; the notifier consumer group splits the partitions between
// the replicas, so each replica logs only part of the events — yet both sockets get every event
// once, in order, with the same event ids, and polling either replica shows the same log.
"use strict";
const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const { Server, signup, job, pollAll, connect, distinctIds, metric } = require("./lib");

const state = process.env.AGENTLANCER_TEST_KAFKA_STATE;
const storage = process.env.STORAGE_URL;
const skip = state && storage ? false : "needs AGENTLANCER_TEST_KAFKA_STATE and STORAGE_URL (ctest sets both)";
const servers = [];
after(async () => {
  for (const s of servers) await s.destroy();
});

test("an agent's sockets on two notifier replicas both get every event, ids equal", { skip }, async () => {
  const bootstrap = fs.readFileSync(`${state}/bootstrap`, "utf8").trim();
  const secret = "k1:" + require("node:crypto").randomBytes(32).toString("hex");
  const shared = ["--kafka.bootstrap", bootstrap, "--auth.secrets", secret, "--storage.url", storage];
  const a = new Server(shared);
  const b = new Server(shared);
  servers.push(a, b);
  await Promise.all([a.start(), b.start()]);

  const client = await signup(a.url, "rep-sio-client");
  const provider = await signup(b.url, "rep-sio-provider");
  const onA = connect(a.url, { apiKey: provider.api_key, since: 0 });
  const onB = connect(b.url, { apiKey: provider.api_key, since: 0 });
  await onA.until((x) => x.named("roomJoined").length === 1, "roomJoined on replica A", 30000);
  await onB.until((x) => x.named("roomJoined").length === 1, "roomJoined on replica B", 30000);

  // Jobs made through both replicas: create + accept = two onNewTask each for the provider.
  const created = [];
  for (let i = 0; i < 20; i++) {
    const via = i % 2 ? a.url : b.url;
    const j = await job.create(via, client, provider);
    await job.accept(via, provider, j.id);
    created.push(j.id);
  }
  const expected = created.length * 2;
  await onA.until((x) => x.named("onNewTask").length >= expected, `${expected} onNewTask on A`, 60000);
  await onB.until((x) => x.named("onNewTask").length >= expected, `${expected} onNewTask on B`, 60000);

  const logA = await pollAll(a.url, provider.api_key);
  const logB = await pollAll(b.url, provider.api_key);
  assert.deepEqual(logA, logB, "one log, whichever replica serves the poll");
  const ids = logA.map((e) => e.event_id);
  assert.deepEqual(distinctIds(onA.logged()), ids, "socket on A: every event once, in order");
  assert.deepEqual(distinctIds(onB.logged()), ids, "socket on B: every event once, in order");
  const seen = (w) => w.named("onNewTask").map((e) => `${e.payload.id}:${e.payload.phase}`);
  const want = created.flatMap((id) => [`${id}:0`, `${id}:1`]).sort();
  assert.deepEqual([...seen(onA)].sort(), want);
  assert.deepEqual([...seen(onB)].sort(), want);
  // The partitions really were split: each replica sent its socket events the other one logged.
  const remote = (await metric(a.url, "notifier_replica_events_total")) + (await metric(b.url, "notifier_replica_events_total"));
  assert.ok(remote > 0, `events crossed replicas (notifier_replica_events_total = ${remote})`);
  onA.close();
  onB.close();
});
