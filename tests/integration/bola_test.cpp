// Broken object-level authorization over the real embedded stack: a matrix with one entry per
// route of the running host's route table (Host::router().list()). A route the matrix does not
// know (a new one) fails the test by name, and so does an entry whose route is gone. Each entry
// is public (documented `security: []`, answered without a key), self-scoped (the caller only
// ever sees or creates its own items) or owned: the resource is made by its parties, then a
// stranger and every wrong role send a valid request and get the documented refusal, while the
// owner's read-back and every party's event log stay as they were.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "common/auth/api_key.hpp"
#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;
using boost::beast::http::verb;

const std::string kToken = "0x" + std::string(40, '1');
const std::string kRecipient = "0x" + std::string(40, '2');

std::string str(const bj::value& v, std::string_view key) { return std::string(v.at(key).as_string()); }

std::string hash_of(int n) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "0x%016llx%048x", static_cast<unsigned long long>(::getpid()) * 7919ULL + 0xb01a, n);
  return buf;
}

bj::object complete_terms() {
  return {{"deliverable", "A markdown document with the page copy"},
          {"budget", bj::object{{"amount", "25.00"}, {"token", "USDC"}, {"network", "base"}}},
          {"timeline", "3 days"},
          {"acceptance_criteria", "Covers the five sections of the brief"},
          {"revision_boundary", "Two rounds of edits"}};
}

// Every request the matrix sends goes through here: the closing summary counts them.
struct Counted {
  explicit Counted(unsigned short port) : http(port) {}
  HttpClient http;
  int sent = 0;
  HttpResult send(verb method, const std::string& target, const std::string& body, const std::string& key) {
    ++sent;
    std::map<std::string, std::string> h;
    if (!key.empty()) h["x-api-key"] = key;
    return http.request(method, target, body, h);
  }
  HttpResult get(const std::string& target, const std::string& key = "") { return send(verb::get, target, "", key); }
  HttpResult post(const std::string& target, const std::string& body, const std::string& key) {
    return send(verb::post, target, body, key);
  }
  HttpResult post(const std::string& target, const bj::object& body, const std::string& key) {
    return post(target, bj::serialize(body), key);
  }
};

class BolaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new TestStack(); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  Counted api{stack_->port()};
  std::vector<TestAgent> agents_;  // everyone whose event log must not move
  std::map<unsigned, int> refusals_;

  TestAgent agent(const std::string& role) {
    agents_.push_back(stack_->signup("bola-" + role + "-" + std::to_string(agents_.size())));
    return agents_.back();
  }

  // --- making the resources as their owners ---

  std::string service(const TestAgent& owner) {
    bj::object body{{"title", "SEO landing page copy"},
                    {"description", "Long-form copy for one landing page"},
                    {"deliverable", "A markdown document with the page copy"},
                    {"price", bj::object{{"amount", "25.00"}, {"token", "USDC"}, {"network", "base"}}},
                    {"timeline", "3 days"}};
    auto r = api.post("/api/agent/services", body, owner.key);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(r.json(), "id") : "svc_missing";
  }
  std::string thread(const TestAgent& requester, const std::string& service_id) {
    auto r = api.post("/api/agent/threads",
                      bj::object{{"service_id", service_id}, {"mode", "quick_quote"}, {"message", "Need a page"}},
                      requester.key);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(r.json(), "id") : "thr_missing";
  }
  void quote(const std::string& tid, const TestAgent& provider) {
    auto r = api.post("/api/agent/threads/" + tid + "/messages",
                      bj::object{{"type", "quote"}, {"body", "Here is my quote"}, {"terms", complete_terms()}},
                      provider.key);
    EXPECT_EQ(r.status, 201u) << r.body;
  }
  void lock(const std::string& tid, const TestAgent& provider) {
    auto r = api.post("/api/agent/threads/" + tid + "/lock-quote", "{}", provider.key);
    EXPECT_EQ(r.status, 200u) << r.body;
  }
  std::string offer(const std::string& tid, const TestAgent& requester) {
    auto r = api.post("/api/agent/threads/" + tid + "/create-offer", "{}", requester.key);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(r.json(), "id") : "off_missing";
  }
  std::string contract(const std::string& oid, const TestAgent& provider) {
    auto r = api.post("/api/agent/offers/" + oid + "/respond", bj::object{{"action", "accept"}}, provider.key);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.status == 200 ? str(r.json(), "contract_id") : "ctr_missing";
  }
  // A job of `client` for `provider` judged by `evaluator`, driven to `phase` (0 … 3) by its parties.
  std::string job(const TestAgent& client, const TestAgent& provider, const TestAgent& evaluator, int phase,
                  const std::string& budget = "0") {
    auto r = api.post("/api/agents/jobs",
                      bj::object{{"providerId", provider.id}, {"serviceRequirement", "translate a text"},
                                 {"budget", budget}, {"tokenAddress", kToken}, {"evaluatorId", evaluator.id}},
                      client.key);
    EXPECT_EQ(r.status, 201u) << r.body;
    if (r.status != 201) return "1";
    std::string id = std::to_string(r.json().at("id").as_int64());
    const std::string p = "/api/agents/providers/jobs/" + id;
    if (phase >= 1) {
      EXPECT_EQ(api.post(p + "/accept", R"({"accept":true})", provider.key).status, 204u);
    }
    if (phase >= 2) {
      EXPECT_EQ(api.post(p + "/negotiation", R"({"accept":true})", provider.key).status, 204u);
    }
    if (phase >= 3) {
      EXPECT_EQ(api.post(p + "/deliverable", R"({"deliverable":"done"})", provider.key).status, 204u);
    }
    return id;
  }

  // --- event logs ---

  // How many events each agent's log holds (pages through next_since_id).
  std::map<std::string, long long> event_counts() {
    std::map<std::string, long long> out;
    for (const auto& a : agents_) {
      long long since = 0, n = 0;
      for (int page = 0; page < 100; ++page) {
        auto r = api.get("/api/agent/events?limit=500&since_id=" + std::to_string(since), a.key);
        EXPECT_EQ(r.status, 200u) << r.body;
        if (r.status != 200) break;
        auto v = r.json();
        auto count = static_cast<long long>(v.at("events").as_array().size());
        n += count;
        if (count == 0 || v.at("next_since_id").is_null()) break;
        since = v.at("next_since_id").as_int64();
      }
      out[a.id] = n;
    }
    return out;
  }
  // The logs once they stop moving (events arrive through Kafka after the request): bounded.
  std::map<std::string, long long> settled_event_counts() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    auto last = event_counts();
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(700));
      auto now = event_counts();
      if (now == last || std::chrono::steady_clock::now() > deadline) return now;
      last = std::move(now);
    }
  }

  static inline TestStack* stack_ = nullptr;
};

// One attempt on an owned resource: who sends it and the status the API documents for them.
struct Attempt {
  std::string who;
  TestAgent agent;
  unsigned expected;
  std::string error;  // the answer's `error`, exactly (seed 001's for the job actions)
};

struct Entry {
  enum class Kind { Public, SelfScoped, Owned } kind;
  // Public: the request sent without a key. Owned: the request every attempt sends.
  verb method = verb::get;
  std::string target;
  std::string body;
  std::vector<Attempt> attempts;           // Owned
  std::function<std::string()> read_back;  // Owned: the owner's view of the resource
  std::function<void()> check;             // SelfScoped
};

std::string key_of(const http::Router::Listed& r) {
  return r.method + " " + r.pattern + (r.upgrade ? " [upgrade]" : "");
}

TEST_F(BolaTest, EveryRouteRefusesStrangersAndWrongRolesWithoutAnEffect) {
  // The parties, each resource with its own, so one refusal cannot hide behind another's state.
  auto stranger = agent("stranger");
  // The provider the stranger's own creates involve (its thread's, its job's).
  const TestAgent hired = agent("hired");
  const std::string hired_svc = service(hired);
  auto svc_owner = agent("svc-owner");
  const std::string svc = service(svc_owner);
  const std::string hidden_svc = service(svc_owner);
  EXPECT_EQ(api.post("/api/agent/services/" + hidden_svc + "/deactivate", "{}", svc_owner.key).status, 200u);

  auto t_provider = agent("t-provider"), t_requester = agent("t-requester");
  const std::string tid = thread(t_requester, service(t_provider));
  quote(tid, t_provider);

  auto l_provider = agent("l-provider"), l_requester = agent("l-requester");
  const std::string locked_tid = thread(l_requester, service(l_provider));
  quote(locked_tid, l_provider);
  lock(locked_tid, l_provider);

  auto o_provider = agent("o-provider"), o_requester = agent("o-requester");
  const std::string o_tid = thread(o_requester, service(o_provider));
  quote(o_tid, o_provider);
  lock(o_tid, o_provider);
  const std::string oid = offer(o_tid, o_requester);

  auto c_provider = agent("c-provider"), c_buyer = agent("c-buyer");
  const std::string c_tid = thread(c_buyer, service(c_provider));
  quote(c_tid, c_provider);
  lock(c_tid, c_provider);
  const std::string cid = contract(offer(c_tid, c_buyer), c_provider);

  auto client = agent("client"), provider = agent("provider"), evaluator = agent("evaluator");
  const std::string requested = job(client, provider, evaluator, 0, "10");
  const std::string negotiating = job(client, provider, evaluator, 1);
  const std::string transacting = job(client, provider, evaluator, 2);
  EXPECT_EQ(api.post("/api/agents/providers/jobs/" + transacting + "/requirement",
                     bj::object{{"content", "pay the stock photo"},
                                {"payableDetail", bj::object{{"amount", "3"}, {"tokenAddress", kToken}, {"recipient", kRecipient}}}},
                     provider.key)
                .status,
            204u);
  auto job_view = api.get("/api/agents/jobs/" + transacting, client.key);
  ASSERT_EQ(job_view.status, 200u) << job_view.body;
  const std::string memo = std::to_string(job_view.json().at("memos").as_array().back().at("id").as_int64());
  const std::string evaluating = job(client, provider, evaluator, 3);

  // A webhook endpoint whose body cannot move by itself: registered once its owner's log holds its
  // signup event, filtered on a type that never reaches that owner (no attempt, no skip).
  auto wh_owner = agent("wh-owner");
  for (int i = 0; i < 200 && event_counts()[wh_owner.id] == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  const std::string kQuietHook = R"({"url":"http://127.0.0.1:9/bola","event_types":["contract.refunded"]})";
  auto made_hook = api.post("/api/agent/webhooks", kQuietHook, wh_owner.key);
  ASSERT_EQ(made_hook.status, 201u) << made_hook.body;
  const std::string wh = "/api/agent/webhooks/" + str(made_hook.json(), "id");

  auto view = [this](const std::string& target, const TestAgent& owner) {
    return [this, target, key = owner.key] {
      auto r = api.get(target, key);
      EXPECT_EQ(r.status, 200u) << target << " " << r.body;
      return r.body;
    };
  };
  auto thread_view = [&](const std::string& t) { return view("/api/agent/threads/" + t, t_requester); };
  auto job_of = [&](const std::string& id) { return view("/api/agents/jobs/" + id, client); };
  const std::string jobs = "/api/agents/jobs/", pjobs = "/api/agents/providers/jobs/";
  auto as = [](std::string who, const TestAgent& a, unsigned status, std::string error) {
    return Attempt{std::move(who), a, status, std::move(error)};
  };
  const std::string kJob = "Not authorized to act on this job", kThread = "Not authorized to access this thread",
                    kOffer = "Not authorized to access this offer", kService = "Not authorized to modify this service";

  // A list (or log) read with the stranger's key shows none of `foreign` and, if given, `own`.
  auto self_list = [&](std::string target, std::vector<std::string> foreign, std::string own = "") {
    return [&, target, foreign, own] {
      auto r = api.get(target, stranger.key);
      ASSERT_EQ(r.status, 200u) << target << " " << r.body;
      for (const auto& f : foreign) EXPECT_EQ(r.body.find(f), std::string::npos) << target << " shows " << f;
      if (!own.empty()) {
        EXPECT_NE(r.body.find(own), std::string::npos) << target << " misses the caller's own " << own;
      }
    };
  };
  // A create made with the stranger's key belongs to the stranger; its id is kept for the lists.
  std::string own_service, own_thread, own_job;
  auto self_create = [&](std::string target, std::function<bj::object()> body, std::string* id_out) {
    return [&, target, body, id_out] {
      auto r = api.post(target, body(), stranger.key);
      ASSERT_EQ(r.status, 201u) << target << " " << r.body;
      EXPECT_NE(r.body.find(stranger.id), std::string::npos) << target << " not made as the caller: " << r.body;
      auto v = r.json();
      *id_out = v.at("id").is_string() ? str(v, "id") : std::to_string(v.at("id").as_int64());
    };
  };

  using K = Entry::Kind;
  std::map<std::string, Entry> matrix;
  auto pub = [&](std::string route, verb m, std::string target, std::string body = "") {
    matrix[route] = Entry{K::Public, m, std::move(target), std::move(body), {}, {}, {}};
  };
  auto self = [&](std::string route, std::function<void()> check) {
    matrix[route] = Entry{K::SelfScoped, verb::get, "", "", {}, {}, std::move(check)};
  };
  auto owned = [&](std::string route, verb m, std::string target, std::string body, std::vector<Attempt> attempts,
                   std::function<std::string()> read_back) {
    matrix[route] = Entry{K::Owned, m, std::move(target), std::move(body), std::move(attempts), std::move(read_back), {}};
  };

  // --- public (docs/openapi.yaml `security: []`) ---
  pub("GET /healthz", verb::get, "/healthz");
  pub("GET /readyz", verb::get, "/readyz");
  pub("GET /metrics", verb::get, "/metrics");
  pub("GET /openapi.yaml", verb::get, "/openapi.yaml");
  pub("POST /api/agent/signup", verb::post, "/api/agent/signup", R"({"name":"bola-public-signup"})");
  pub("GET /api/services", verb::get, "/api/services");
  pub("POST /api/public/feedback", verb::post, "/api/public/feedback",
      R"({"surface":"/api/agent/threads","sentiment":"confused","category":"docs","message":"bola matrix"})");
  pub("GET /api/ops/quote-to-offer-handoff", verb::get, "/api/ops/quote-to-offer-handoff");
  pub("GET /api/ops/traffic-summary", verb::get, "/api/ops/traffic-summary");
  pub("GET /api/ops/first-payment-handoff", verb::get, "/api/ops/first-payment-handoff");
  pub("GET /api/ops/session-journeys", verb::get, "/api/ops/session-journeys");
  pub("GET /api/contracts/{id}/tx-status", verb::get, "/api/contracts/" + cid + "/tx-status");
  // Without the upgrade the socket route answers 426 to anyone; the upgrade entry checks scoping.
  pub("GET /ws/agent", verb::get, "/ws/agent?EIO=4&transport=websocket");
  // Engine.IO long-polling: packets for a session; without one (or with a stranger's sid,
  // unguessable) it is 400 unknown_session. The API key travels inside, in socket.io's CONNECT.
  pub("POST /ws/agent", verb::post, "/ws/agent?EIO=4&transport=polling&sid=p1.unknown", "40");

  // --- self-scoped: creates as the caller, lists of the caller's own ---
  self("POST /api/agent/services", self_create("/api/agent/services", [] {
         return bj::object{{"title", "Stranger's own service"},
                           {"description", "Its own"},
                           {"deliverable", "A document"},
                           {"price", bj::object{{"amount", "5"}, {"token", "USDC"}, {"network", "base"}}},
                           {"timeline", "1 day"}};
       }, &own_service));
  self("POST /api/agent/threads", self_create("/api/agent/threads", [&] {
         return bj::object{{"service_id", hired_svc}, {"mode", "quick_quote"}, {"message", "Need a page too"}};
       }, &own_thread));
  self("POST /api/agents/jobs", self_create("/api/agents/jobs", [&] {
         return bj::object{{"providerId", hired.id}, {"serviceRequirement", "its own job"}, {"budget", "0"},
                           {"tokenAddress", kToken}};
       }, &own_job));
  self("GET /api/agent/me", [&] {
    auto r = api.get("/api/agent/me", stranger.key);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_NE(r.body.find(stranger.id), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find(svc_owner.id), std::string::npos) << r.body;
  });
  self("POST /api/agent/keys", [&] {
    auto r = api.post("/api/agent/keys", std::string(), stranger.key);
    ASSERT_EQ(r.status, 201u) << r.body;
    auto made = r.json();
    EXPECT_EQ(str(made, "created_by"), auth::ApiKeyAuthority::key_id(stranger.key));
    auto me = api.get("/api/agent/me", str(made, "api_key"));
    EXPECT_NE(me.body.find(stranger.id), std::string::npos) << "the new key is not the caller's: " << me.body;
  });
  std::string own_hook;
  self("POST /api/agent/webhooks", [&] {
    auto r = api.post("/api/agent/webhooks", kQuietHook, stranger.key);
    ASSERT_EQ(r.status, 201u) << r.body;
    own_hook = str(r.json(), "id");
    auto mine = api.get("/api/agent/webhooks/" + own_hook, stranger.key);
    EXPECT_EQ(mine.status, 200u) << "the new endpoint is not the caller's: " << mine.body;
  });
  // The lists run after the creates and the refusals, in a pass of their own below.
  std::vector<std::string> lists = {"GET /api/agent/services", "GET /api/agent/threads", "GET /api/agent/offers",
                                    "GET /api/agents/jobs", "GET /api/agent/events", "GET /api/agent/keys",
                                    "GET /api/agent/webhooks"};
  self("GET /api/agent/webhooks", [&] { self_list("/api/agent/webhooks", {wh.substr(wh.rfind('/') + 1)}, own_hook)(); });
  self("GET /api/agent/keys", [&] {
    std::vector<std::string> foreign;
    for (const auto& a : agents_)
      if (a.id != stranger.id) foreign.push_back(auth::ApiKeyAuthority::key_id(a.key));
    self_list("/api/agent/keys", foreign, auth::ApiKeyAuthority::key_id(stranger.key))();
  });
  self("GET /api/agent/services", [&] { self_list("/api/agent/services", {svc, hidden_svc}, own_service)(); });
  self("GET /api/agent/threads", [&] { self_list("/api/agent/threads", {tid, locked_tid, o_tid, c_tid}, own_thread)(); });
  self("GET /api/agent/offers", [&] { self_list("/api/agent/offers", {oid})(); });
  self("GET /api/agents/jobs", [&] {
    for (std::string role : {"client", "provider"}) {
      auto r = api.get("/api/agents/jobs?role=" + role + "&limit=100", stranger.key);
      ASSERT_EQ(r.status, 200u) << r.body;
      auto listed = r.json();
      for (const auto& j : listed.at("jobs").as_array()) {
        auto id = std::to_string(j.at("id").as_int64());
        EXPECT_TRUE(id == own_job) << "the stranger's " << role << " list shows job " << id;
      }
    }
  });
  self("GET /api/agent/events", [&] {
    self_list("/api/agent/events?limit=500", {tid, locked_tid, o_tid, c_tid, oid, cid, svc, t_requester.id})();
  });

  // --- owned: every attempt as a stranger and as each wrong role, with a valid body ---
  const std::string svcs = "/api/services/", asvcs = "/api/agent/services/", threads = "/api/agent/threads/";
  const std::string offers = "/api/agent/offers/", contracts = "/api/contracts/";
  const std::string kOnlyRequester = "Only the requester can create the offer";
  const std::string kOnlyProviderLocks = "Only the provider can lock the quote";
  const std::string kOnlyProviderResponds = "Only the provider can respond to this offer";
  const std::string kContract = "Not authorized to act on this contract";
  const std::string kOnlyBuyer = "Only the buyer can submit the payment";

  owned("GET /api/services/{id}", verb::get, svcs + hidden_svc, "",
        {as("stranger (inactive service)", stranger, 404u, "Service not found")},
        view(svcs + hidden_svc, svc_owner));
  owned("PATCH /api/agent/services/{id}", verb::patch, asvcs + svc, R"({"title":"Hijacked"})",
        {as("stranger", stranger, 403u, kService), as("another provider", t_provider, 403u, kService)},
        view(svcs + svc, svc_owner));
  owned("POST /api/agent/services/{id}/deactivate", verb::post, asvcs + svc + "/deactivate", "{}",
        {as("stranger", stranger, 403u, kService)}, view(svcs + svc, svc_owner));

  const std::vector<Attempt> not_member = {as("stranger", stranger, 403u, kThread)};
  owned("DELETE /api/agent/keys/{key_id}", verb::delete_, "/api/agent/keys/" + auth::ApiKeyAuthority::key_id(svc_owner.key),
        "", {as("stranger", stranger, 404u, "API key not found")}, view("/api/agent/me", svc_owner));
  owned("GET /api/agent/threads/{id}", verb::get, threads + tid, "", not_member, thread_view(tid));
  const std::vector<Attempt> not_hook_owner = {as("stranger", stranger, 404u, "Webhook endpoint not found")};
  owned("GET /api/agent/webhooks/{id}", verb::get, wh, "", not_hook_owner, view(wh, wh_owner));
  owned("PATCH /api/agent/webhooks/{id}", verb::patch, wh, R"({"description":"hijacked","enabled":false})", not_hook_owner,
        view(wh, wh_owner));
  owned("DELETE /api/agent/webhooks/{id}", verb::delete_, wh, "", not_hook_owner, view(wh, wh_owner));
  owned("POST /api/agent/webhooks/{id}/rotate-secret", verb::post, wh + "/rotate-secret", "{}", not_hook_owner,
        view(wh, wh_owner));
  owned("POST /api/agent/webhooks/{id}/replay", verb::post, wh + "/replay", R"({"since_event_id":0})", not_hook_owner,
        view(wh, wh_owner));
  owned("GET /api/agent/webhooks/{id}/deliveries", verb::get, wh + "/deliveries", "", not_hook_owner, view(wh, wh_owner));
  owned("GET /api/agent/threads/{id}/tx-status", verb::get, threads + tid + "/tx-status", "", not_member,
        thread_view(tid));
  owned("POST /api/agent/threads/{id}/messages", verb::post, threads + tid + "/messages",
        R"({"type":"text","body":"let me in"})", not_member, thread_view(tid));
  owned("POST /api/agent/threads/{id}/lock-quote", verb::post, threads + tid + "/lock-quote", "{}",
        {as("stranger", stranger, 403u, kThread), as("requester", t_requester, 403u, kOnlyProviderLocks)},
        thread_view(tid));
  owned("POST /api/agent/threads/{id}/close", verb::post, threads + tid + "/close", "{}", not_member,
        thread_view(tid));
  owned("POST /api/agent/threads/{id}/create-offer", verb::post, threads + locked_tid + "/create-offer", "{}",
        {as("stranger", stranger, 403u, kThread), as("provider", l_provider, 403u, kOnlyRequester)},
        view(threads + locked_tid, l_requester));
  owned("GET /api/agent/offers/{id}", verb::get, offers + oid, "", {as("stranger", stranger, 403u, kOffer)},
        view(offers + oid, o_provider));
  owned("POST /api/agent/offers/{id}/respond", verb::post, offers + oid + "/respond", R"({"action":"accept"})",
        {as("stranger", stranger, 403u, kOffer), as("requester", o_requester, 403u, kOnlyProviderResponds)},
        view(offers + oid, o_provider));
  owned("POST /api/contracts/{id}/payment", verb::post, contracts + cid + "/payment",
        bj::serialize(bj::object{{"tx_hash", hash_of(1)}}),
        {as("stranger", stranger, 403u, kContract), as("provider", c_provider, 403u, kOnlyBuyer)},
        [contract = view(contracts + cid + "/tx-status", c_buyer), thread = view(threads + c_tid, c_buyer)] {
          return contract() + thread();
        });

  // Seed 001: a non-provider gets 403 before any phase check.
  const std::vector<Attempt> not_provider = {as("stranger", stranger, 403u, kJob), as("client", client, 403u, kJob),
                                             as("evaluator", evaluator, 403u, kJob)};
  owned("POST /api/agents/providers/jobs/{id}/accept", verb::post, pjobs + requested + "/accept",
        R"({"accept":true})", not_provider, job_of(requested));
  owned("POST /api/agents/providers/jobs/{id}/negotiation", verb::post, pjobs + negotiating + "/negotiation",
        R"({"accept":true})", not_provider, job_of(negotiating));
  owned("POST /api/agents/providers/jobs/{id}/requirement", verb::post, pjobs + negotiating + "/requirement",
        R"({"content":"send the source file"})", not_provider, job_of(negotiating));
  owned("POST /api/agents/providers/jobs/{id}/deliverable", verb::post, pjobs + transacting + "/deliverable",
        R"({"deliverable":"not mine"})", not_provider, job_of(transacting));
  owned("GET /api/agents/jobs/{id}", verb::get, jobs + requested, "",
        {as("stranger", stranger, 403u, "Not authorized to view this job")}, job_of(requested));
  const std::vector<Attempt> not_client = {as("stranger", stranger, 403u, kJob), as("provider", provider, 403u, kJob),
                                           as("evaluator", evaluator, 403u, kJob)};
  owned("POST /api/agents/jobs/{id}/escrow", verb::post, jobs + requested + "/escrow",
        bj::serialize(bj::object{{"txHash", hash_of(2)}}), not_client, job_of(requested));
  owned("POST /api/agents/jobs/{id}/evaluate", verb::post, jobs + evaluating + "/evaluate", R"({"accept":true})",
        {as("stranger", stranger, 403u, kJob), as("provider", provider, 403u, kJob),
         as("client (an evaluator is named)", client, 403u, kJob)},
        job_of(evaluating));
  owned("POST /api/agents/jobs/{id}/memos/{memoId}/approve", verb::post,
        jobs + transacting + "/memos/" + memo + "/approve", R"({"approve":true})", not_client, job_of(transacting));

  // The socket: checked on its own below (the stranger's socket carries none of the owners' events).
  matrix["GET /ws/agent [upgrade]"] = Entry{K::SelfScoped, verb::get, "", "", {}, {}, [] {}};

  // --- the matrix against the route table ---
  std::set<std::string> routes;
  for (const auto& r : stack_->host().router().list()) routes.insert(key_of(r));
  for (const auto& r : routes) EXPECT_TRUE(matrix.contains(r)) << "route without a BOLA matrix entry: " << r;
  for (const auto& [r, e] : matrix) EXPECT_TRUE(routes.contains(r)) << "matrix entry for a route that is gone: " << r;

  // The stranger's own creates first: the lists below look for what they made, and the event
  // logs are compared from here on, the stranger's included.
  const std::vector<std::string> creates = {"POST /api/agent/services", "POST /api/agent/threads", "POST /api/agents/jobs",
                                           "POST /api/agent/keys"};
  for (const auto& route : creates) {
    SCOPED_TRACE(route);
    if (routes.contains(route)) matrix.at(route).check();
  }
  const auto events_before = settled_event_counts();
  int attempts = 0;
  for (auto& [route, e] : matrix) {
    SCOPED_TRACE(route);
    if (!routes.contains(route)) continue;
    switch (e.kind) {
      case K::Public: {
        auto r = api.send(e.method, e.target, e.body, "");
        EXPECT_NE(r.status, 401u) << r.body;
        EXPECT_NE(r.status, 403u) << r.body;
        EXPECT_LT(r.status, route == "GET /ws/agent" || route == "POST /ws/agent" ? 500u : 400u) << r.body;
        break;
      }
      case K::SelfScoped:
        if (std::find(lists.begin(), lists.end(), route) == lists.end() &&
            std::find(creates.begin(), creates.end(), route) == creates.end())
          e.check();
        break;
      case K::Owned:
        for (const auto& a : e.attempts) {
          SCOPED_TRACE(a.who);
          const std::string before = e.read_back();
          auto r = api.send(e.method, e.target, e.body, a.agent.key);
          ++attempts;
          ++refusals_[r.status];
          EXPECT_EQ(r.status, a.expected) << r.body;
          EXPECT_EQ(r.error(), a.error) << r.body;
          EXPECT_EQ(e.read_back(), before) << "the refused request changed the resource";
        }
        break;
    }
  }
  for (const auto& route : lists) {
    SCOPED_TRACE(route);
    matrix.at(route).check();
  }

  // The refusals published nothing: every party's log, the stranger's too, holds what it held.
  auto events_after = settled_event_counts();
  for (const auto& a : agents_) {
    EXPECT_EQ(events_after[a.id], events_before.at(a.id)) << "events appeared for " << a.id;
  }

  // --- the socket: the stranger's key joins the stranger's room only ---
  namespace ws = boost::beast::websocket;
  namespace net = boost::asio;
  net::io_context io;
  ws::stream<boost::beast::tcp_stream> sock(io);
  sock.next_layer().connect(net::ip::tcp::endpoint(net::ip::address_v4::loopback(), stack_->port()));
  sock.handshake("127.0.0.1", "/ws/agent/?EIO=4&transport=websocket");
  ++api.sent;
  sock.text(true);
  boost::beast::flat_buffer open;
  sock.read(open);
  ASSERT_EQ(boost::beast::buffers_to_string(open.data()).substr(0, 1), "0");
  sock.write(net::buffer(std::string("40") + bj::serialize(bj::object{{"apiKey", stranger.key}, {"since", 0}})));
  // While it listens, the owners of the thread talk: an event for both of them.
  ASSERT_EQ(api.post("/api/agent/threads/" + tid + "/messages", R"({"type":"text","body":"still there?"})",
                     t_requester.key)
                .status,
            201u);
  std::vector<std::string> frames;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (std::chrono::steady_clock::now() < deadline) {
    boost::beast::flat_buffer buf;
    bool done = false;
    boost::system::error_code ec;
    sock.async_read(buf, [&](boost::system::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    io.restart();
    io.run_until(deadline);
    if (!done) {
      sock.next_layer().cancel();
      io.restart();
      io.run();
      break;
    }
    if (ec) break;
    frames.push_back(boost::beast::buffers_to_string(buf.data()));
  }
  bool joined_own_room = false, own_event = false;
  for (const auto& f : frames) {
    joined_own_room = joined_own_room || (f.find("roomJoined") != std::string::npos && f.find(stranger.id) != std::string::npos);
    own_event = own_event || f.find("agent.registered") != std::string::npos;
    for (const auto& foreign : {tid, t_requester.id, t_provider.id, oid, cid})
      EXPECT_EQ(f.find(foreign), std::string::npos) << "the stranger's socket carried " << foreign << ": " << f;
  }
  EXPECT_TRUE(joined_own_room) << frames.size() << " frames";
  EXPECT_TRUE(own_event) << "the stranger's own backlog did not arrive";
  // The owners did get that message's event: the socket missed it for its scope, not for lack of it.
  auto owner_events = settled_event_counts();
  EXPECT_GT(owner_events[t_requester.id], events_after[t_requester.id]);

  int refused = 0;
  std::string by_status;
  for (const auto& [status, n] : refusals_) {
    refused += n;
    by_status += " " + std::to_string(status) + "=" + std::to_string(n);
  }
  std::cout << "BOLA matrix: " << routes.size() << " routes covered, " << api.sent << " requests sent, " << attempts
            << " unauthorized attempts, refusals by status:" << by_status << " (" << refused << ")" << std::endl;
}

}  // namespace
}  // namespace al::testing
