// Against the running local cluster (`make cluster`: two replicas of every service behind the
// nginx gateway): the README's watch snippet, run verbatim through the gateway, and an agent's
// sockets held through the gateway (so on either notifier replica) each get every event once, in
// order, with the same ids as the polled log. ctest runs it from tests/fault/cluster_test.sh
// with CLUSTER_BASE set.
"use strict";
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { signup, job, pollAll, connect, distinctIds, runReadmeWatchSnippet } = require("./lib");

const base = process.env.CLUSTER_BASE;
const skip = base ? false : "needs CLUSTER_BASE (the gateway of a running cluster)";

test("the README's watch snippet, verbatim, through the gateway", { skip }, async () => {
  await runReadmeWatchSnippet(base);
});

test("an agent's sockets through the gateway get every event once, in order", { skip }, async () => {
  const client = await signup(base, "cluster-sio-client");
  const provider = await signup(base, "cluster-sio-provider");
  const sockets = [0, 1, 2, 3].map(() => connect(base, { apiKey: provider.api_key, since: 0 }));
  for (const s of sockets) await s.until((x) => x.named("roomJoined").length === 1, "roomJoined", 30000);
  const created = [];
  for (let i = 0; i < 10; i++) {
    const j = await job.create(base, client, provider);
    await job.accept(base, provider, j.id);
    created.push(j.id);
  }
  for (const s of sockets) await s.until((x) => x.named("onNewTask").length >= 20, "20 onNewTask", 60000);
  const ids = (await pollAll(base, provider.api_key)).map((e) => e.event_id);
  for (const s of sockets) assert.deepEqual(distinctIds(s.logged()), ids, "every event once, in log order");
  for (const s of sockets) s.close();
});
