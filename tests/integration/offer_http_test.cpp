// offer-service over HTTP against the real embedded stack (docs/offer-service.md): create-offer
// from a locked quote (the projection arrives through Kafka; the server waits for it), the offer
// lists and their offer_response_next_step curls (run for real with /bin/sh), respond, the
// contract an accepted offer creates and its public monitor, the thread following the offer, and
// expiry with an injected clock.
#include <gtest/gtest.h>

#include <chrono>
#include <cctype>
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <regex>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "common/util/time_format.hpp"
#include "support/event_stream.hpp"
#include "support/curl_steps.hpp"
#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;

const std::string kNotThreadMember = "Not authorized to access this thread";
const std::string kOnlyRequester = "Only the requester can create the offer";
const std::string kOnlyProvider = "Only the provider can respond to this offer";
const std::string kProviderKey = "<PROVIDER_AGENT_API_KEY>";
const std::string kRequesterKey = "<REQUESTER_AGENT_API_KEY>";
// Payment instructions of the shared stack (per network, `*` for any other).
const std::string kPayToBase = "0x00000000000000000000000000000000000ba5e1";
const std::string kPayToOther = "0x000000000000000000000000000000000000d00d";

std::string str(const bj::value& v, std::string_view key) { return std::string(v.at(key).as_string()); }

bool absent_or_null(const bj::object& o, std::string_view key) { return !o.contains(key) || o.at(key).is_null(); }

std::vector<std::string> ids_of(const bj::value& arr) {
  std::vector<std::string> out;
  for (const auto& v : arr.as_array()) out.push_back(str(v, "id"));
  return out;
}

Millis time_of(const bj::value& v, std::string_view key) {
  auto t = v.at(key).is_string() ? parse_rfc3339(v.at(key).as_string()) : std::nullopt;
  EXPECT_TRUE(t.has_value()) << key << " is not an RFC 3339 time: " << bj::serialize(v);
  return t.value_or(0);
}

bj::object complete_terms(const std::string& network = "base") {
  return {{"deliverable", "A markdown document with the page copy"},
          {"budget", bj::object{{"amount", "25.00"}, {"token", "USDC"}, {"network", network}}},
          {"timeline", "3 days"},
          {"acceptance_criteria", "Covers the five sections of the brief"},
          {"revision_boundary", "Two rounds of edits"}};
}

int counter = 0;

// The calls and the deal set-up the tests make, against one stack.
struct Api {
  explicit Api(TestStack& s) : stack(s), http(s.port()) {}
  TestStack& stack;
  HttpClient http;

  std::string base() const { return "http://127.0.0.1:" + std::to_string(stack.port()); }
  TestAgent agent(const std::string& role) { return stack.signup(role + "-" + std::to_string(++counter)); }

  std::string create_service(const TestAgent& owner) {
    bj::object body{{"title", "SEO landing page copy"},
                    {"description", "Long-form copy for one landing page"},
                    {"deliverable", "A markdown document with the page copy"},
                    {"price", bj::object{{"amount", "25.00"}, {"token", "USDC"}, {"network", "base"}}},
                    {"timeline", "3 days"}};
    auto r = http.post("/api/agent/services", body, owner.key);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(r.json(), "id") : "";
  }
  std::string open_thread(const TestAgent& who, const std::string& service_id) {
    auto r = http.post("/api/agent/threads",
                       bj::object{{"service_id", service_id}, {"mode", "quick_quote"}, {"message", "Need a page"}},
                       who.key);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(r.json(), "id") : "";
  }
  static std::string tpath(const std::string& id, const std::string& rest = "") {
    return "/api/agent/threads/" + id + rest;
  }
  static std::string opath(const std::string& id, const std::string& rest = "") {
    return "/api/agent/offers/" + id + rest;
  }
  void post_quote(const std::string& tid, const TestAgent& provider, const bj::object& terms) {
    auto r = http.post(tpath(tid, "/messages"),
                       bj::object{{"type", "quote"}, {"body", "Here is my quote"}, {"terms", terms}}, provider.key);
    EXPECT_EQ(r.status, 201u) << r.body;
  }
  HttpResult lock(const std::string& tid, const TestAgent& provider) {
    return http.post(tpath(tid, "/lock-quote"), "{}", provider.key);
  }
  HttpResult create_offer(const std::string& tid, const TestAgent& who, const std::string& body = "{}") {
    return http.post(tpath(tid, "/create-offer"), body, who.key);
  }
  HttpResult respond(const std::string& oid, const TestAgent& who, const std::string& action) {
    return http.post(opath(oid, "/respond"), bj::object{{"action", action}}, who.key);
  }
  bj::object get_offer(const std::string& oid, const TestAgent& who) {
    auto r = http.get(opath(oid), who.key);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.status == 200 ? r.json().as_object() : bj::object{};
  }
  bj::object thread(const std::string& tid, const TestAgent& who) {
    auto r = http.get(tpath(tid), who.key);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.status == 200 ? r.json().as_object() : bj::object{};
  }
  // Polls the thread (bounded, ~10 s) until `done` holds; returns the last thread seen.
  bj::object wait_thread(const std::string& tid, const TestAgent& who, const std::function<bool(const bj::object&)>& done,
                         const std::string& what) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bj::object t;
    for (;;) {
      auto r = http.get(tpath(tid), who.key);
      if (r.status == 200) {
        t = r.json().as_object();
        if (done(t)) return t;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "thread never became " << what << ": " << r.status << " " << r.body;
        return t;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  bj::object wait_thread_status(const std::string& tid, const TestAgent& who, const std::string& status) {
    return wait_thread(tid, who, [&](const bj::object& t) { return str(t, "status") == status; }, status);
  }

  // A provider with a service and a requester with a thread on it, the provider's complete quote locked.
  struct Deal {
    TestAgent provider, requester;
    std::string service_id, tid;
    bj::object locked;  // the lock-quote answer (the thread)
  };
  Deal locked_deal(const std::string& network = "base") {
    Deal d{agent("provider"), agent("requester"), "", "", {}};
    d.service_id = create_service(d.provider);
    d.tid = open_thread(d.requester, d.service_id);
    post_quote(d.tid, d.provider, complete_terms(network));
    auto r = lock(d.tid, d.provider);
    EXPECT_EQ(r.status, 200u) << r.body;
    if (r.status == 200) d.locked = r.json().as_object();
    return d;
  }
  // A locked deal and its open offer (create-offer right after lock-quote).
  struct Offered : Deal {
    bj::object offer;  // the create-offer answer
    std::string oid;
  };
  Offered offered_deal(const std::string& network = "base") {
    Offered o{locked_deal(network), {}, ""};
    auto r = create_offer(o.tid, o.requester);
    EXPECT_EQ(r.status, 201u) << r.body;
    if (r.status == 201) {
      o.offer = r.json().as_object();
      o.oid = str(o.offer, "id");
    }
    return o;
  }

  // Walks a paged list to its end; fails on a repeated cursor or more than max_pages pages.
  std::vector<std::string> walk(const std::string& path, const std::string& key, int* pages = nullptr,
                                int max_pages = 50) {
    std::vector<std::string> ids;
    std::string cursor;
    std::set<std::string> seen_cursors;
    for (int page = 0; page < max_pages; ++page) {
      std::string sep = path.find('?') == std::string::npos ? "?" : "&";
      auto r = http.get(path + (cursor.empty() ? "" : sep + "cursor=" + url_encode(cursor)), key);
      EXPECT_EQ(r.status, 200u) << path << " " << r.body;
      if (r.status != 200) break;
      auto v = r.json().as_object();
      for (auto& id : ids_of(v.at("offers"))) ids.push_back(id);
      if (pages) *pages = page + 1;
      if (v.at("next_cursor").is_null()) return ids;
      cursor = str(v, "next_cursor");
      EXPECT_TRUE(seen_cursors.insert(cursor).second) << "cursor repeated: " << cursor;
    }
    ADD_FAILURE() << "pagination did not end: " << path;
    return ids;
  }
  std::vector<std::string> list(const TestAgent& who, const std::string& query) {
    auto r = http.get("/api/agent/offers" + query, who.key);
    EXPECT_EQ(r.status, 200u) << query << " " << r.body;
    return r.status == 200 ? ids_of(r.json().at("offers")) : std::vector<std::string>{};
  }
  // The row for `oid` in the caller's list (empty when absent).
  bj::object row(const TestAgent& who, const std::string& oid) {
    auto r = http.get("/api/agent/offers?limit=100", who.key);
    EXPECT_EQ(r.status, 200u) << r.body;
    if (r.status != 200) return {};
    auto v = r.json();
    for (const auto& o : v.at("offers").as_array())
      if (str(o, "id") == oid) return o.as_object();
    ADD_FAILURE() << oid << " not in the list of " << who.id << ": " << r.body;
    return {};
  }
};

void expect_error(const HttpResult& r, unsigned status, const std::string& message = "", const std::string& code = "") {
  EXPECT_EQ(r.status, status) << r.body;
  if (r.status != status) return;
  auto v = r.json();
  ASSERT_TRUE(v.is_object()) << r.body;
  ASSERT_TRUE(v.as_object().contains("error") && v.at("error").is_string()) << r.body;
  EXPECT_FALSE(v.at("error").as_string().empty()) << r.body;
  EXPECT_TRUE(v.as_object().contains("code")) << r.body;
  if (!message.empty()) {
    EXPECT_EQ(str(v, "error"), message) << r.body;
  }
  if (!code.empty()) {
    EXPECT_EQ(str(v, "code"), code) << r.body;
  }
}

// The shared stack: default projection wait (5 s), per-network payment instructions.
class OfferHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new TestStack(std::map<std::string, std::string>{
        {"contracts.pay_to", "base:" + kPayToBase + ",*:" + kPayToOther}, {"contracts.confirmations", "base:3,*:1"}});
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  Api api{*stack_};
  HttpClient& http = api.http;
  static inline TestStack* stack_ = nullptr;
};

// A stack whose create-offer waits only 300 ms for the projection: for answers that come after the wait.
class OfferShortWaitTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new TestStack(std::map<std::string, std::string>{{"offers.projection_wait_ms", "300"}});
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  Api api{*stack_};
  HttpClient& http = api.http;
  static inline TestStack* stack_ = nullptr;
};

// ===================================== create-offer =====================================

TEST_F(OfferHttpTest, CreateOfferRightAfterLockQuoteSucceedsTwentyTimes) {
  auto provider = api.agent("provider");
  auto requester = api.agent("requester");
  std::string sid = api.create_service(provider);
  ASSERT_FALSE(sid.empty());
  const Millis ttl = 259'200'000;  // offers.ttl_ms default: 72 h
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE("thread #" + std::to_string(i));
    std::string tid = api.open_thread(requester, sid);
    ASSERT_FALSE(tid.empty());
    api.post_quote(tid, provider, complete_terms());
    auto l = api.lock(tid, provider);
    ASSERT_EQ(l.status, 200u) << l.body;
    auto locked = l.json().as_object();
    Millis before = SystemClock::instance().now_ms();
    auto r = api.create_offer(tid, requester);  // no pause: the projection may still be on its way
    Millis after = SystemClock::instance().now_ms();
    ASSERT_EQ(r.status, 201u) << r.body;
    auto o = r.json().as_object();
    EXPECT_EQ(str(o, "id").rfind("off_", 0), 0u) << r.body;
    EXPECT_EQ(str(o, "status"), "open");
    EXPECT_EQ(str(o, "role"), "requester");
    EXPECT_EQ(str(o, "thread_id"), tid);
    EXPECT_EQ(str(o, "service_id"), sid);
    EXPECT_EQ(str(o, "requester_id"), requester.id);
    EXPECT_EQ(str(o, "provider_id"), provider.id);
    const auto& lt = locked.at("locked_terms");
    EXPECT_EQ(o.at("terms"), lt) << r.body;
    EXPECT_EQ(o.at("amount"), lt.at("budget").at("amount")) << r.body;
    EXPECT_EQ(str(o, "amount"), "25");
    EXPECT_EQ(o.at("token"), lt.at("budget").at("token"));
    EXPECT_EQ(o.at("network"), lt.at("budget").at("network"));
    EXPECT_EQ(str(o, "token"), "USDC");
    EXPECT_EQ(str(o, "network"), "base");
    EXPECT_EQ(o.at("quote_message_id"), locked.at("locked_quote_message_id")) << r.body;
    for (const char* k : {"decided_at", "decision_reason", "contract_id"})
      EXPECT_TRUE(o.contains(k) && o.at(k).is_null()) << k << " " << r.body;
    Millis created = time_of(o, "created_at");
    EXPECT_GE(created, before - 1000);
    EXPECT_LE(created, after + 1000);
    EXPECT_EQ(time_of(o, "expires_at"), created + ttl) << r.body;
    EXPECT_FALSE(str(o, "updated_at").empty());
    EXPECT_TRUE(o.at("offer_response_next_step").is_object()) << r.body;
    // The same offer comes back from GET.
    auto g = api.get_offer(str(o, "id"), requester);
    EXPECT_EQ(bj::value(g), bj::value(o));
  }
  EXPECT_EQ(api.list(requester, "?mode=outgoing&limit=100").size(), 20u);
}

TEST_F(OfferHttpTest, CreateOfferWithoutOrWithABadKeyIs401) {
  auto d = api.locked_deal();
  for (std::string key : {"", "al_not_a_real_key"}) {
    expect_error(http.post(Api::tpath(d.tid, "/create-offer"), "{}", key), 401);
    expect_error(http.post(Api::tpath(d.tid, "/create-offer"), "{", key), 401);  // before the body
    expect_error(http.post(Api::tpath("thr_doesnotexist", "/create-offer"), "{}", key), 401);
  }
  EXPECT_TRUE(api.list(d.requester, "").empty()) << "nothing was created";
}

TEST_F(OfferHttpTest, CreateOfferWithAMalformedOrNonEmptyBodyIs400) {
  auto d = api.locked_deal();
  for (std::string body : {"{", "not json", "[]", "\"x\"", "42", "null", R"({"amount":"1"})", R"({"colour":"blue"})",
                           "\xff\xfe", " \t\r\n"}) {
    SCOPED_TRACE(body);
    expect_error(api.create_offer(d.tid, d.requester, body), 400);
    // 400 comes before the thread is looked at.
    expect_error(api.create_offer("thr_doesnotexist", d.requester, body), 400);
  }
  EXPECT_TRUE(api.list(d.requester, "").empty()) << "nothing was created";
  // An empty body is accepted like `{}`.
  auto r = api.create_offer(d.tid, d.requester, "");
  EXPECT_EQ(r.status, 201u) << r.body;
}

TEST_F(OfferHttpTest, CreateOfferByANonMemberIs403) {
  auto d = api.locked_deal();
  auto stranger = api.agent("stranger");
  expect_error(api.create_offer(d.tid, stranger), 403, kNotThreadMember);
  EXPECT_TRUE(api.list(d.requester, "").empty());
  EXPECT_TRUE(api.list(stranger, "").empty());
  EXPECT_EQ(api.create_offer(d.tid, d.requester).status, 201u) << "the requester still can";
}

TEST_F(OfferHttpTest, CreateOfferByTheProviderIs403) {
  auto d = api.locked_deal();
  expect_error(api.create_offer(d.tid, d.provider), 403, kOnlyRequester);
  EXPECT_TRUE(api.list(d.provider, "").empty());
  EXPECT_EQ(api.create_offer(d.tid, d.requester).status, 201u) << "the requester still can";
}

TEST_F(OfferHttpTest, SecondCreateOfferIs409OfferExists) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto r = api.create_offer(o.tid, o.requester);
  expect_error(r, 409, "", "offer_exists");
  if (r.status == 409) {
    ASSERT_TRUE(r.json().at("details").is_object()) << r.body;
    EXPECT_EQ(str(r.json().at("details"), "offer_id"), o.oid) << r.body;
  }
  // Also once the offer is accepted.
  ASSERT_EQ(api.respond(o.oid, o.provider, "accept").status, 200u);
  r = api.create_offer(o.tid, o.requester);
  expect_error(r, 409, "", "offer_exists");
  if (r.status == 409) {
    EXPECT_EQ(str(r.json().at("details"), "offer_id"), o.oid) << r.body;
  }
  EXPECT_EQ(api.list(o.requester, "").size(), 1u);
}

TEST_F(OfferShortWaitTest, CreateOfferOnAnUnknownThreadIs404AfterTheBoundedWait) {
  auto requester = api.agent("requester");
  auto start = std::chrono::steady_clock::now();
  expect_error(api.create_offer("thr_doesnotexist", requester), 404, "Thread not found");
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  EXPECT_GE(waited.count(), 250) << "answered without waiting for the projection";
  EXPECT_LT(waited.count(), 4000) << "offers.projection_wait_ms=300 was not applied";
  // A malformed id is 404 too.
  expect_error(api.create_offer("nonsense", requester), 404);
  expect_error(api.create_offer("thr_", requester), 404);
}

TEST_F(OfferShortWaitTest, CreateOfferOnANegotiatingThreadIs409QuoteNotLocked) {
  auto provider = api.agent("provider");
  auto requester = api.agent("requester");
  std::string sid = api.create_service(provider);
  std::string tid = api.open_thread(requester, sid);
  ASSERT_FALSE(tid.empty());
  api.post_quote(tid, provider, complete_terms());  // a complete quote, but not locked
  // The projection may not have the thread yet (404 after 300 ms): ask again, bounded.
  HttpResult r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    r = api.create_offer(tid, requester);
  } while (r.status == 404 && std::chrono::steady_clock::now() < deadline);
  expect_error(r, 409,
               "Quote is not locked: the provider locks it first (POST /api/agent/threads/" + tid + "/lock-quote)",
               "quote_not_locked");
  EXPECT_TRUE(api.list(requester, "").empty());
  EXPECT_EQ(str(api.thread(tid, requester), "status"), "negotiating");
}

// ===================================== lists =====================================

TEST_F(OfferHttpTest, ListsShowOnlyTheCallersOffersNewestFirstByMode) {
  auto a = api.agent("a");
  auto b = api.agent("b");
  auto c = api.agent("c");
  auto stranger = api.agent("stranger");
  std::string sa = api.create_service(a);
  std::string sb = api.create_service(b);
  auto offer = [&](const TestAgent& requester, const TestAgent& provider, const std::string& sid) {
    std::string tid = api.open_thread(requester, sid);
    api.post_quote(tid, provider, complete_terms());
    EXPECT_EQ(api.lock(tid, provider).status, 200u);
    auto r = api.create_offer(tid, requester);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(r.json(), "id") : "";
  };
  std::string a_to_b = offer(a, b, sb);
  std::string c_to_a = offer(c, a, sa);
  std::string a_to_b2 = offer(a, b, sb);
  using V = std::vector<std::string>;
  EXPECT_EQ(api.list(a, "?mode=outgoing"), (V{a_to_b2, a_to_b}));
  EXPECT_EQ(api.list(a, "?mode=incoming"), (V{c_to_a}));
  EXPECT_EQ(api.list(a, ""), (V{a_to_b2, c_to_a, a_to_b}));
  EXPECT_EQ(api.list(b, "?mode=incoming"), (V{a_to_b2, a_to_b}));
  EXPECT_TRUE(api.list(b, "?mode=outgoing").empty());
  EXPECT_EQ(api.list(c, ""), (V{c_to_a}));
  EXPECT_TRUE(api.list(c, "?mode=incoming").empty());
  for (std::string q : {"", "?mode=outgoing", "?mode=incoming"}) {
    auto r = http.get("/api/agent/offers" + q, stranger.key);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_TRUE(r.json().at("offers").as_array().empty()) << q << " " << r.body;
    EXPECT_TRUE(r.json().at("next_cursor").is_null()) << r.body;
  }
  // Each row is in the caller's role.
  EXPECT_EQ(str(api.row(a, c_to_a), "role"), "provider");
  EXPECT_EQ(str(api.row(a, a_to_b), "role"), "requester");
  EXPECT_EQ(str(api.row(b, a_to_b), "role"), "provider");
  // 401 without a key.
  expect_error(http.get("/api/agent/offers"), 401);
}

TEST_F(OfferHttpTest, ListFiltersByStatus) {
  auto p = api.agent("provider");
  auto r = api.agent("requester");
  std::string sid = api.create_service(p);
  std::vector<std::string> oids;
  for (int i = 0; i < 3; ++i) {
    std::string tid = api.open_thread(r, sid);
    api.post_quote(tid, p, complete_terms());
    ASSERT_EQ(api.lock(tid, p).status, 200u);
    auto c = api.create_offer(tid, r);
    ASSERT_EQ(c.status, 201u) << c.body;
    oids.push_back(str(c.json(), "id"));
  }
  ASSERT_EQ(api.respond(oids[0], p, "accept").status, 200u);
  ASSERT_EQ(api.respond(oids[1], p, "reject").status, 200u);
  using V = std::vector<std::string>;
  EXPECT_EQ(api.list(r, "?status=accepted"), (V{oids[0]}));
  EXPECT_EQ(api.list(r, "?status=rejected"), (V{oids[1]}));
  EXPECT_EQ(api.list(r, "?status=open"), (V{oids[2]}));
  EXPECT_TRUE(api.list(r, "?status=inactive").empty());
  EXPECT_EQ(api.list(p, "?mode=incoming&status=open"), (V{oids[2]}));
  EXPECT_TRUE(api.list(p, "?mode=outgoing&status=open").empty());
  EXPECT_EQ(api.list(r, ""), (V{oids[2], oids[1], oids[0]}));
}

TEST_F(OfferHttpTest, ListPaginatesWithCursor) {
  auto p = api.agent("provider");
  auto r = api.agent("requester");
  std::string sid = api.create_service(p);
  std::vector<std::string> created;  // newest first
  for (int i = 0; i < 5; ++i) {
    std::string tid = api.open_thread(r, sid);
    api.post_quote(tid, p, complete_terms());
    ASSERT_EQ(api.lock(tid, p).status, 200u);
    auto c = api.create_offer(tid, r);
    ASSERT_EQ(c.status, 201u) << c.body;
    created.insert(created.begin(), str(c.json(), "id"));
  }
  int pages = 0;
  EXPECT_EQ(api.walk("/api/agent/offers?mode=outgoing&limit=2", r.key, &pages), created);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(api.walk("/api/agent/offers?limit=1", p.key, &pages), created);
  EXPECT_EQ(pages, 5);
  EXPECT_EQ(api.walk("/api/agent/offers?mode=incoming&status=open&limit=4", p.key, &pages), created);
  EXPECT_EQ(pages, 2);
  auto first = http.get("/api/agent/offers?limit=2", r.key);
  ASSERT_EQ(first.status, 200u);
  EXPECT_EQ(first.json().at("offers").as_array().size(), 2u);
  EXPECT_TRUE(first.json().at("next_cursor").is_string()) << first.body;
}

TEST_F(OfferHttpTest, ListRejectsInvalidParameters) {
  auto a = api.agent("a");
  for (std::string q : {"mode=both", "mode=", "mode=INCOMING", "status=pending", "status=", "limit=0", "limit=101",
                        "limit=abc", "limit=-1", "cursor=not-a-cursor", "cursor=%00%01"}) {
    auto r = http.get("/api/agent/offers?" + q, a.key);
    SCOPED_TRACE(q);
    expect_error(r, 400);
  }
  EXPECT_EQ(http.get("/api/agent/offers?limit=100", a.key).status, 200u);
  EXPECT_EQ(http.get("/api/agent/offers?limit=1&status=open&mode=incoming", a.key).status, 200u);
}

TEST_F(OfferHttpTest, OpenOfferRowsGiveTheProviderAcceptAndRejectCurlsAndTheRequesterAMonitor) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto prow = api.row(o.provider, o.oid);
  auto rrow = api.row(o.requester, o.oid);
  ASSERT_FALSE(prow.empty());
  ASSERT_FALSE(rrow.empty());
  // The provider's row.
  auto pns = prow.at("offer_response_next_step").as_object();
  EXPECT_EQ(str(pns, "status"), "open") << bj::serialize(pns);
  EXPECT_EQ(pns.at("you_act"), bj::value(true)) << bj::serialize(pns);
  for (const char* k : {"copy_paste_curl", "reject_curl"}) {
    SCOPED_TRACE(k);
    ASSERT_TRUE(pns.contains(k) && pns.at(k).is_string()) << bj::serialize(pns);
    std::string curl = str(pns, k);
    EXPECT_EQ(curl.rfind("curl ", 0), 0u) << curl;
    EXPECT_NE(curl.find(api.base() + "/api/agent/offers/" + o.oid + "/respond"), std::string::npos) << curl;
    EXPECT_NE(curl.find(kProviderKey), std::string::npos) << curl;
    EXPECT_EQ(curl.find(kRequesterKey), std::string::npos) << curl;
    EXPECT_EQ(curl.find(o.provider.key), std::string::npos) << "never the real key";
    auto payload = curl_payload(curl);
    ASSERT_TRUE(payload.is_object()) << curl;
    EXPECT_EQ(str(payload, "action"), std::string(k) == "reject_curl" ? "reject" : "accept") << curl;
  }
  // The requester's row: a monitor, nothing to act on.
  auto rns = rrow.at("offer_response_next_step").as_object();
  EXPECT_EQ(str(rns, "status"), "open") << bj::serialize(rns);
  EXPECT_EQ(rns.at("you_act"), bj::value(false)) << bj::serialize(rns);
  EXPECT_TRUE(absent_or_null(rns, "copy_paste_curl")) << bj::serialize(rns);
  EXPECT_TRUE(absent_or_null(rns, "reject_curl")) << bj::serialize(rns);
  ASSERT_TRUE(rns.contains("monitor_curl") && rns.at("monitor_curl").is_string()) << bj::serialize(rns);
  std::string monitor = str(rns, "monitor_curl");
  EXPECT_NE(monitor.find(api.base()), std::string::npos) << monitor;
  EXPECT_NE(monitor.find(o.oid), std::string::npos) << monitor;
  EXPECT_EQ(monitor.find(kProviderKey), std::string::npos) << monitor;
  // The GET of the offer carries the same step per viewer.
  EXPECT_EQ(api.get_offer(o.oid, o.provider).at("offer_response_next_step"), bj::value(pns));
  EXPECT_EQ(api.get_offer(o.oid, o.requester).at("offer_response_next_step"), bj::value(rns));
  // Run the monitor.
  EXPECT_EQ(run_curl(monitor, kRequesterKey, o.requester.key), 200);
}

TEST_F(OfferHttpTest, RunningTheProvidersAcceptCurlAcceptsTheOffer) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto pns = api.row(o.provider, o.oid).at("offer_response_next_step").as_object();
  auto rmonitor = str(api.row(o.requester, o.oid).at("offer_response_next_step"), "monitor_curl");
  EXPECT_EQ(run_curl(str(pns, "copy_paste_curl"), kProviderKey, o.provider.key), 200);
  auto after = api.get_offer(o.oid, o.requester);
  EXPECT_EQ(str(after, "status"), "accepted") << bj::serialize(after);
  ASSERT_TRUE(after.at("contract_id").is_string()) << bj::serialize(after);
  std::string cid = str(after, "contract_id");
  EXPECT_EQ(cid.rfind("ctr_", 0), 0u) << cid;
  EXPECT_FALSE(str(after, "decided_at").empty());
  EXPECT_EQ(run_curl(rmonitor, kRequesterKey, o.requester.key), 200) << "the offer monitor still answers";
  // Accepted: both sides get the contract's public monitor.
  for (const auto* who : {&o.provider, &o.requester}) {
    auto ns = api.row(*who, o.oid).at("offer_response_next_step").as_object();
    SCOPED_TRACE(bj::serialize(ns));
    EXPECT_EQ(str(ns, "status"), "accepted");
    EXPECT_TRUE(absent_or_null(ns, "copy_paste_curl"));
    EXPECT_TRUE(absent_or_null(ns, "reject_curl"));
    ASSERT_TRUE(ns.contains("monitor_curl") && ns.at("monitor_curl").is_string());
    std::string curl = str(ns, "monitor_curl");
    EXPECT_NE(curl.find(api.base() + "/api/contracts/" + cid + "/tx-status"), std::string::npos) << curl;
    EXPECT_EQ(run_curl(curl, "", ""), 200) << curl;
  }
}

TEST_F(OfferHttpTest, RunningTheProvidersRejectCurlRejectsTheOffer) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto pns = api.row(o.provider, o.oid).at("offer_response_next_step").as_object();
  EXPECT_EQ(run_curl(str(pns, "reject_curl"), kProviderKey, o.provider.key), 200);
  auto after = api.get_offer(o.oid, o.provider);
  EXPECT_EQ(str(after, "status"), "rejected") << bj::serialize(after);
  EXPECT_TRUE(after.at("contract_id").is_null()) << bj::serialize(after);
  EXPECT_FALSE(str(after, "decided_at").empty());
  // Rejected: the requester is pointed back at the thread.
  auto rns = api.row(o.requester, o.oid).at("offer_response_next_step").as_object();
  EXPECT_EQ(str(rns, "status"), "rejected") << bj::serialize(rns);
  EXPECT_TRUE(absent_or_null(rns, "copy_paste_curl")) << bj::serialize(rns);
  ASSERT_TRUE(rns.contains("monitor_curl") && rns.at("monitor_curl").is_string()) << bj::serialize(rns);
  std::string monitor = str(rns, "monitor_curl");
  EXPECT_NE(monitor.find(api.base() + "/api/agent/threads/" + o.tid + "/tx-status"), std::string::npos) << monitor;
  EXPECT_EQ(run_curl(monitor, kRequesterKey, o.requester.key), 200);
}

// ===================================== GET an offer =====================================

TEST_F(OfferHttpTest, GetOfferIs200ForMembers403ForOthers404ForUnknown) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto stranger = api.agent("stranger");
  auto as_requester = api.get_offer(o.oid, o.requester);
  EXPECT_EQ(str(as_requester, "id"), o.oid);
  EXPECT_EQ(str(as_requester, "role"), "requester");
  auto as_provider = api.get_offer(o.oid, o.provider);
  EXPECT_EQ(str(as_provider, "id"), o.oid);
  EXPECT_EQ(str(as_provider, "role"), "provider");
  EXPECT_EQ(as_provider.at("terms"), as_requester.at("terms"));
  expect_error(http.get(Api::opath(o.oid), stranger.key), 403);
  for (std::string id : {"off_doesnotexist", "nonsense", "off_"}) expect_error(http.get(Api::opath(id), o.requester.key), 404);
  expect_error(http.get(Api::opath(o.oid)), 401);
  expect_error(http.get(Api::opath(o.oid), "al_not_a_real_key"), 401);
}

// ===================================== respond =====================================

TEST_F(OfferHttpTest, RespondByTheRequesterIs403) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  for (std::string action : {"accept", "reject"}) expect_error(api.respond(o.oid, o.requester, action), 403, kOnlyProvider);
  EXPECT_EQ(str(api.get_offer(o.oid, o.requester), "status"), "open");
}

TEST_F(OfferHttpTest, RespondByANonMemberIs403BeforeTheBodyIsRead) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto stranger = api.agent("stranger");
  expect_error(api.respond(o.oid, stranger, "accept"), 403);
  for (std::string body : {"{", R"({"action":"maybe"})", "[]", ""})
    expect_error(http.post(Api::opath(o.oid, "/respond"), body, stranger.key), 403);
  EXPECT_EQ(str(api.get_offer(o.oid, o.requester), "status"), "open");
  // Without a key: 401; an unknown offer: 404.
  expect_error(http.post(Api::opath(o.oid, "/respond"), R"({"action":"accept"})"), 401);
  expect_error(api.respond("off_doesnotexist", o.provider, "accept"), 404);
}

TEST_F(OfferHttpTest, RespondWithABadActionOrBodyIs400) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  for (std::string body : {R"({"action":"maybe"})", R"({"action":"ACCEPT"})", R"({"action":""})", R"({"action":1})",
                           "{}", R"({"action":"accept","colour":"blue"})", "{", "[]", "null"}) {
    SCOPED_TRACE(body);
    expect_error(http.post(Api::opath(o.oid, "/respond"), body, o.provider.key), 400);
  }
  EXPECT_EQ(str(api.get_offer(o.oid, o.provider), "status"), "open");
  // A reason is allowed.
  auto r = http.post(Api::opath(o.oid, "/respond"), R"({"action":"reject","reason":"Too expensive"})", o.provider.key);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(str(r.json(), "status"), "rejected");
  EXPECT_EQ(str(r.json(), "decision_reason"), "Too expensive");
}

TEST_F(OfferHttpTest, AcceptTwiceReturns200Unchanged) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto first = api.respond(o.oid, o.provider, "accept");
  ASSERT_EQ(first.status, 200u) << first.body;
  auto a = first.json().as_object();
  EXPECT_EQ(str(a, "status"), "accepted");
  EXPECT_EQ(str(a, "role"), "provider");
  ASSERT_TRUE(a.at("contract_id").is_string()) << first.body;
  auto second = api.respond(o.oid, o.provider, "accept");
  ASSERT_EQ(second.status, 200u) << second.body;
  auto b = second.json().as_object();
  for (const char* k : {"id", "status", "contract_id", "decided_at", "updated_at", "expires_at", "terms"})
    EXPECT_EQ(b.at(k), a.at(k)) << k;
  EXPECT_EQ(api.get_offer(o.oid, o.requester).at("contract_id"), a.at("contract_id"));
}

TEST_F(OfferHttpTest, RejectAfterAcceptIs409OfferDecided) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  ASSERT_EQ(api.respond(o.oid, o.provider, "accept").status, 200u);
  expect_error(api.respond(o.oid, o.provider, "reject"), 409, "", "offer_decided");
  EXPECT_EQ(str(api.get_offer(o.oid, o.provider), "status"), "accepted");
}

TEST_F(OfferHttpTest, AcceptAfterRejectIs409AndRejectAgainIs200) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto first = api.respond(o.oid, o.provider, "reject");
  ASSERT_EQ(first.status, 200u) << first.body;
  auto again = api.respond(o.oid, o.provider, "reject");
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(again.json().at("updated_at"), first.json().at("updated_at"));
  expect_error(api.respond(o.oid, o.provider, "accept"), 409, "", "offer_decided");
  auto after = api.get_offer(o.oid, o.provider);
  EXPECT_EQ(str(after, "status"), "rejected");
  EXPECT_TRUE(after.at("contract_id").is_null());
}

// ===================================== the contract =====================================

TEST_F(OfferHttpTest, AcceptCreatesAContractWithPublicPaymentInstructions) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto r = api.respond(o.oid, o.provider, "accept");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto accepted = r.json().as_object();
  ASSERT_TRUE(accepted.at("contract_id").is_string()) << r.body;
  std::string cid = str(accepted, "contract_id");
  ASSERT_TRUE(accepted.contains("contract") && accepted.at("contract").is_object()) << r.body;
  EXPECT_EQ(str(accepted.at("contract"), "status"), "awaiting_payment") << r.body;
  auto t = http.get("/api/contracts/" + cid + "/tx-status");  // public: no key
  ASSERT_EQ(t.status, 200u) << t.body;
  auto c = t.json().as_object();
  EXPECT_EQ(str(c, "status"), "awaiting_payment");
  EXPECT_EQ(str(c, "amount"), "25");
  EXPECT_EQ(str(c, "token"), "USDC");
  EXPECT_EQ(str(c, "network"), "base");
  EXPECT_EQ(str(c, "pay_to"), kPayToBase);
  EXPECT_EQ(c.at("required_confirmations"), bj::value(3));
  EXPECT_EQ(c.at("confirmations"), bj::value(0));
  EXPECT_TRUE(c.contains("tx_hash") && c.at("tx_hash").is_null()) << t.body;
  EXPECT_EQ(str(c, "chain_adapter"), "sandbox");
  ASSERT_TRUE(c.contains("sandbox")) << t.body;
  EXPECT_FALSE(c.at("sandbox").is_null()) << t.body;
  EXPECT_TRUE(c.contains("next_step") && c.at("next_step").is_object()) << t.body;
  EXPECT_TRUE(c.at("proof_boundary").is_string() && !c.at("proof_boundary").as_string().empty()) << t.body;
  for (const std::string& secret : {o.tid, o.oid, o.requester.id, o.provider.id, o.requester.key, o.provider.key})
    EXPECT_EQ(t.body.find(secret), std::string::npos) << secret << " in " << t.body;
  // With a key it is the same answer.
  auto with_key = http.get("/api/contracts/" + cid + "/tx-status", o.requester.key);
  ASSERT_EQ(with_key.status, 200u);
  EXPECT_EQ(with_key.json().at("status"), c.at("status"));
  // Another network takes the `*` instructions.
  auto other = api.offered_deal("optimism");
  ASSERT_FALSE(other.oid.empty());
  auto r2 = api.respond(other.oid, other.provider, "accept");
  ASSERT_EQ(r2.status, 200u) << r2.body;
  auto t2 = http.get("/api/contracts/" + str(r2.json(), "contract_id") + "/tx-status");
  ASSERT_EQ(t2.status, 200u) << t2.body;
  EXPECT_EQ(str(t2.json(), "network"), "optimism");
  EXPECT_EQ(str(t2.json(), "pay_to"), kPayToOther);
  EXPECT_EQ(t2.json().at("required_confirmations"), bj::value(1));
}

TEST_F(OfferHttpTest, UnknownContractIs404) {
  for (std::string id : {"ctr_doesnotexist", "nonsense", "ctr_"}) {
    SCOPED_TRACE(id);
    expect_error(http.get("/api/contracts/" + id + "/tx-status"), 404);
  }
}

// ===================================== the thread follows =====================================

TEST_F(OfferHttpTest, ThreadBecomesOfferedAfterCreateOffer) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  auto t = api.wait_thread_status(o.tid, o.requester, "offered");
  ASSERT_EQ(str(t, "status"), "offered");
  ASSERT_TRUE(t.at("offer").is_object()) << bj::serialize(t);
  EXPECT_EQ(str(t.at("offer"), "id"), o.oid);
  EXPECT_EQ(str(t.at("offer"), "status"), "open");
  EXPECT_TRUE(t.at("contract").is_null());
  auto pt = api.thread(o.tid, o.provider);
  EXPECT_EQ(str(pt.at("quote_to_offer_next_step"), "action"), "respond_to_offer") << bj::serialize(pt);
}

TEST_F(OfferHttpTest, ThreadFollowsTheAcceptedOfferAndItsContract) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  api.wait_thread_status(o.tid, o.requester, "offered");
  auto r = api.respond(o.oid, o.provider, "accept");
  ASSERT_EQ(r.status, 200u) << r.body;
  std::string cid = str(r.json(), "contract_id");
  auto t = api.wait_thread(
      o.tid, o.requester,
      [](const bj::object& t) {
        return t.at("offer").is_object() && str(t.at("offer"), "status") == "accepted" && t.at("contract").is_object();
      },
      "accepted with a contract");
  EXPECT_EQ(str(t, "status"), "offered");
  ASSERT_TRUE(t.at("offer").is_object()) << bj::serialize(t);
  EXPECT_EQ(str(t.at("offer"), "id"), o.oid);
  EXPECT_EQ(str(t.at("offer"), "status"), "accepted");
  ASSERT_TRUE(t.at("contract").is_object()) << bj::serialize(t);
  EXPECT_EQ(str(t.at("contract"), "id"), cid);
  EXPECT_EQ(str(t.at("contract"), "status"), "awaiting_payment");
  auto ns = t.at("quote_to_offer_next_step").as_object();
  EXPECT_EQ(str(ns, "action"), "pay_contract") << bj::serialize(ns);
  ASSERT_TRUE(ns.at("monitor_curl").is_string()) << bj::serialize(ns);
  EXPECT_EQ(run_curl(str(ns, "monitor_curl"), "", ""), 200);
}

TEST_F(OfferHttpTest, ThreadGoesBackToNegotiatingAfterARejectAndCanBeOfferedAgain) {
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  api.wait_thread_status(o.tid, o.requester, "offered");
  ASSERT_EQ(api.respond(o.oid, o.provider, "reject").status, 200u);
  auto t = api.wait_thread_status(o.tid, o.provider, "negotiating");
  ASSERT_EQ(str(t, "status"), "negotiating");
  ASSERT_TRUE(t.at("offer").is_object()) << bj::serialize(t);
  EXPECT_EQ(str(t.at("offer"), "id"), o.oid);
  EXPECT_EQ(str(t.at("offer"), "status"), "rejected");
  // The provider locks again; the requester's new offer follows right after.
  auto l = api.lock(o.tid, o.provider);
  ASSERT_EQ(l.status, 200u) << l.body;
  EXPECT_EQ(str(l.json(), "status"), "quote_locked");
  auto r = api.create_offer(o.tid, o.requester);
  ASSERT_EQ(r.status, 201u) << r.body;
  std::string second = str(r.json(), "id");
  EXPECT_NE(second, o.oid);
  EXPECT_EQ(str(r.json(), "status"), "open");
  auto t2 = api.wait_thread(
      o.tid, o.requester,
      [&](const bj::object& t) { return str(t, "status") == "offered" && str(t.at("offer"), "id") == second; },
      "offered with the second offer");
  EXPECT_EQ(str(t2.at("offer"), "status"), "open");
  EXPECT_EQ(api.list(o.requester, ""), (std::vector<std::string>{second, o.oid}));
}

// ===================================== expiry =====================================

TEST(OfferExpiryTest, AnOpenOfferPastItsTtlBecomesInactiveAndTheThreadNegotiatesAgain) {
  TestClock clock(SystemClock::instance().now_ms());
  TestStack stack(std::map<std::string, std::string>{{"offers.ttl_ms", "60000"}, {"offers.expiry_sweep_ms", "50"}}, &clock);
  Api api(stack);
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  EXPECT_EQ(time_of(o.offer, "expires_at"), time_of(o.offer, "created_at") + 60'000) << bj::serialize(o.offer);
  api.wait_thread_status(o.tid, o.requester, "offered");
  // Not yet due: still open after a few sweeps.
  clock.advance(59'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(str(api.get_offer(o.oid, o.requester), "status"), "open");
  clock.advance(2'000);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bj::object offer;
  for (;;) {
    offer = api.get_offer(o.oid, o.requester);
    if (offer.empty() || str(offer, "status") == "inactive") break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "never inactive: " << bj::serialize(offer);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(str(offer, "status"), "inactive");
  EXPECT_TRUE(offer.at("contract_id").is_null());
  expect_error(api.respond(o.oid, o.provider, "accept"), 409, "Offer expired");
  expect_error(api.respond(o.oid, o.provider, "reject"), 409);
  EXPECT_EQ(str(api.get_offer(o.oid, o.provider), "status"), "inactive");
  auto t = api.wait_thread_status(o.tid, o.requester, "negotiating");
  EXPECT_EQ(str(t, "status"), "negotiating");
  ASSERT_TRUE(t.at("offer").is_object()) << bj::serialize(t);
  EXPECT_EQ(str(t.at("offer"), "status"), "inactive");
  EXPECT_EQ(api.list(o.requester, "?status=inactive"), std::vector<std::string>{o.oid});
}

TEST(OfferExpiryTest, RespondingPastExpiresAtBeforeTheSweeperIs409OfferExpired) {
  TestClock clock(SystemClock::instance().now_ms());
  // The sweeper never runs during the test: the respond itself finds the offer expired.
  TestStack stack(std::map<std::string, std::string>{{"offers.ttl_ms", "60000"}, {"offers.expiry_sweep_ms", "3600000"}}, &clock);
  Api api(stack);
  auto o = api.offered_deal();
  ASSERT_FALSE(o.oid.empty());
  api.wait_thread_status(o.tid, o.requester, "offered");
  clock.advance(60'001);
  expect_error(api.respond(o.oid, o.provider, "accept"), 409, "Offer expired");
  auto after = api.get_offer(o.oid, o.provider);
  EXPECT_EQ(str(after, "status"), "inactive") << bj::serialize(after);
  EXPECT_TRUE(after.at("contract_id").is_null());
  auto t = api.wait_thread_status(o.tid, o.requester, "negotiating");
  EXPECT_EQ(str(t.at("offer"), "status"), "inactive");
}

// --- payment (POST /api/contracts/{id}/payment, sandbox chain) ---

std::string random_hash(int seed) {
  char buf[67];
  std::snprintf(buf, sizeof buf, "0x%064llx", 0x5eed0000ULL + static_cast<unsigned long long>(seed) * 7919ULL +
                                                  static_cast<unsigned long long>(::getpid()) * 104729ULL);
  return buf;
}

struct Contracted {
  Api::Offered deal;
  std::string cid;
};

Contracted accepted_deal(Api& api) {
  Contracted c{api.offered_deal(), ""};
  auto r = api.respond(c.deal.oid, c.deal.provider, "accept");
  EXPECT_EQ(r.status, 200u) << r.body;
  if (r.status == 200) c.cid = str(r.json(), "contract_id");
  return c;
}

HttpResult pay(Api& api, const std::string& cid, const TestAgent& who, const std::string& body) {
  return api.http.post("/api/contracts/" + cid + "/payment", body, who.key);
}

TEST_F(OfferHttpTest, PaymentByTheBuyerFundsTheContractOnceAndTheThreadFollows) {
  auto c = accepted_deal(api);
  ASSERT_FALSE(c.cid.empty());
  std::string hash = random_hash(1);
  auto r = pay(api, c.cid, c.deal.requester, bj::serialize(bj::object{{"tx_hash", hash}}));
  ASSERT_EQ(r.status, 200u) << r.body;
  auto v = r.json().as_object();
  EXPECT_EQ(str(v, "status"), "funded");
  EXPECT_EQ(str(v, "tx_hash"), hash);
  EXPECT_EQ(v.at("confirmations").as_int64(), v.at("required_confirmations").as_int64());
  EXPECT_EQ(str(v, "chain_adapter"), "sandbox");
  // The same hash again: unchanged.
  r = pay(api, c.cid, c.deal.requester, bj::serialize(bj::object{{"tx_hash", hash}}));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(str(r.json(), "status"), "funded");
  // Another hash for a funded contract: refused.
  expect_error(pay(api, c.cid, c.deal.requester, bj::serialize(bj::object{{"tx_hash", random_hash(2)}})), 409, "",
               "contract_not_awaiting_payment");
  // The public monitor shows it; the thread follows the contract.
  auto monitor = api.http.get("/api/contracts/" + c.cid + "/tx-status");
  ASSERT_EQ(monitor.status, 200u);
  EXPECT_EQ(str(monitor.json(), "status"), "funded");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string contract_status;
  while (std::chrono::steady_clock::now() < deadline) {
    auto t = api.thread(c.deal.tid, c.deal.requester);
    if (t.contains("contract") && t.at("contract").is_object()) contract_status = str(t.at("contract"), "status");
    if (contract_status == "funded") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(contract_status, "funded");
}

TEST_F(OfferHttpTest, OneTxHashPaysOneContractEver) {
  auto first = accepted_deal(api);
  auto second = accepted_deal(api);
  std::string hash = random_hash(3);
  ASSERT_EQ(pay(api, first.cid, first.deal.requester, bj::serialize(bj::object{{"tx_hash", hash}})).status, 200u);
  expect_error(pay(api, second.cid, second.deal.requester, bj::serialize(bj::object{{"tx_hash", hash}})), 409,
               "Transaction hash already used for another contract", "tx_hash_used");
  // Upper case is the same hash.
  std::string upper = hash;
  for (std::size_t i = 2; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
  expect_error(pay(api, second.cid, second.deal.requester, bj::serialize(bj::object{{"tx_hash", upper}})), 409, "",
               "tx_hash_used");
  EXPECT_EQ(str(api.http.get("/api/contracts/" + second.cid + "/tx-status").json(), "status"), "awaiting_payment");
}

TEST_F(OfferHttpTest, PaymentRefusalsComeInOrderAndChangeNothing) {
  auto c = accepted_deal(api);
  auto stranger = api.agent("stranger");
  std::string body = bj::serialize(bj::object{{"tx_hash", random_hash(4)}});
  expect_error(api.http.post("/api/contracts/" + c.cid + "/payment", body, ""), 401);
  expect_error(pay(api, "ctr_doesnotexist", c.deal.requester, body), 404, "Contract not found");
  // 403 before the body is looked at.
  expect_error(pay(api, c.cid, stranger, "{not json"), 403, "Not authorized to act on this contract", "forbidden");
  expect_error(pay(api, c.cid, c.deal.provider, body), 403, "Only the buyer can submit the payment", "forbidden");
  expect_error(pay(api, c.cid, c.deal.requester, "{not json"), 400);
  expect_error(pay(api, c.cid, c.deal.requester, R"({"tx_hash":"0x1234"})"), 400, "Validation error");
  expect_error(pay(api, c.cid, c.deal.requester, bj::serialize(bj::object{{"tx_hash", random_hash(5)}, {"extra", 1}})), 400);
  // The sandbox reports the all-zero hash as not found: refused with that status.
  expect_error(pay(api, c.cid, c.deal.requester, bj::serialize(bj::object{{"tx_hash", "0x" + std::string(64, '0')}})), 409,
               "", "not_found");
  EXPECT_EQ(str(api.http.get("/api/contracts/" + c.cid + "/tx-status").json(), "status"), "awaiting_payment");
}

TEST_F(OfferHttpTest, RetriedAcceptReturnsThePaymentInstructionsAgain) {
  auto o = api.offered_deal();
  auto first = api.respond(o.oid, o.provider, "accept");
  ASSERT_EQ(first.status, 200u) << first.body;
  auto again = api.respond(o.oid, o.provider, "accept");
  ASSERT_EQ(again.status, 200u) << again.body;
  ASSERT_TRUE(again.json().as_object().contains("contract")) << again.body;
  EXPECT_EQ(again.json().at("contract"), first.json().at("contract"));
}

TEST_F(OfferHttpTest, OfferAndContractEventsMatchTheirSchemas) {
  auto accepted = accepted_deal(api);
  ASSERT_EQ(pay(api, accepted.cid, accepted.deal.requester, bj::serialize(bj::object{{"tx_hash", random_hash(6)}})).status, 200u);
  auto rejected = api.offered_deal();
  ASSERT_EQ(api.respond(rejected.oid, rejected.provider, "reject").status, 200u);
  const std::string bootstrap = stack_->host().kafka_bootstrap();
  auto offers = dedupe(consume(bootstrap, "agentlancer.offers.v1", {accepted.deal.oid, rejected.oid}, 4));
  auto contracts = dedupe(consume(bootstrap, "agentlancer.contracts.v1", {accepted.cid}, 3));
  std::vector<std::string> offer_types, contract_types;
  for (const auto& e : offers) {
    offer_types.emplace_back(e.at("type").as_string());
    EXPECT_EQ(e.at("source"), "offer-service");
    expect_schema_valid(AGENTLANCER_SOURCE_DIR, e);
  }
  for (const auto& e : contracts) {
    contract_types.emplace_back(e.at("type").as_string());
    expect_schema_valid(AGENTLANCER_SOURCE_DIR, e);
  }
  std::sort(offer_types.begin(), offer_types.end());
  EXPECT_EQ(offer_types, (std::vector<std::string>{"offer.accepted", "offer.created", "offer.created", "offer.rejected"}));
  EXPECT_EQ(contract_types, (std::vector<std::string>{"contract.created", "contract.payment_submitted", "contract.funded"}));
  ASSERT_EQ(contracts.size(), 3u);
  EXPECT_EQ(contracts[2].at("data").at("contract").at("status"), "funded");
  EXPECT_EQ(contracts[0].at("seq").as_int64(), 1);
  EXPECT_EQ(contracts[2].at("seq").as_int64(), 3);
}

// The whole story after the offer: the contract becomes the provider's job (phase NEGOTIATION,
// escrow not verified), the payment verifies its escrow, the job runs to COMPLETED, the contract
// follows and the thread closes — all through Kafka.
TEST_F(OfferHttpTest, ContractBecomesAJobWhoseCompletionClosesContractAndThread) {
  auto c = accepted_deal(api);
  ASSERT_FALSE(c.cid.empty());
  auto poll = [&](const std::function<bool()>& done, const char* what) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "timed out waiting for " << what;
    return false;
  };
  bj::object job;
  auto find_job = [&] {
    auto r = api.http.get("/api/agents/jobs?role=client", c.deal.requester.key);
    if (r.status != 200) return false;
    bj::value list = r.json();
    for (const auto& j : list.at("jobs").as_array())
      if (j.at("contractId").is_string() && j.at("contractId").as_string() == c.cid) {
        job = j.as_object();
        return true;
      }
    return false;
  };
  ASSERT_TRUE(poll(find_job, "the job made from the contract"));
  EXPECT_EQ(job.at("phase").as_int64(), 1);
  EXPECT_EQ(job.at("escrowVerified"), false);
  EXPECT_EQ(str(job, "providerId"), c.deal.provider.id);
  EXPECT_EQ(str(job, "budget"), str(c.deal.offer, "amount"));
  EXPECT_EQ(str(job, "tokenAddress"), str(c.deal.offer, "token_address"));
  const std::string job_path = "/api/agents/jobs/" + std::to_string(job.at("id").as_int64());
  const std::string provider_path = "/api/agents/providers/jobs/" + std::to_string(job.at("id").as_int64());
  // Before the payment the escrow gate holds.
  EXPECT_EQ(api.http.post(provider_path + "/negotiation", R"({"accept":true})", c.deal.provider.key).status, 409u);
  ASSERT_EQ(pay(api, c.cid, c.deal.requester, bj::serialize(bj::object{{"tx_hash", random_hash(7)}})).status, 200u);
  ASSERT_TRUE(poll([&] { return api.http.get(job_path, c.deal.requester.key).json().at("escrowVerified") == true; },
                   "the escrow verified by the contract's payment"));
  ASSERT_EQ(api.http.post(provider_path + "/negotiation", R"({"accept":true})", c.deal.provider.key).status, 204u);
  ASSERT_EQ(api.http.post(provider_path + "/deliverable", R"({"deliverable":"https://example.test/doc.md"})", c.deal.provider.key).status, 204u);
  ASSERT_EQ(api.http.post(job_path + "/evaluate", R"({"accept":true})", c.deal.requester.key).status, 204u);
  ASSERT_TRUE(poll([&] { return str(api.http.get("/api/contracts/" + c.cid + "/tx-status").json(), "status") == "completed"; },
                   "the contract to complete"));
  bj::object thread;
  ASSERT_TRUE(poll([&] {
    thread = api.thread(c.deal.tid, c.deal.requester);
    return thread.contains("status") && str(thread, "status") == "closed";
  }, "the thread to close"));
  EXPECT_EQ(str(thread, "closed_reason"), "contract_completed");
  const std::string bootstrap = stack_->host().kafka_bootstrap();
  auto contracts = dedupe(consume(bootstrap, "agentlancer.contracts.v1", {c.cid}, 4));
  ASSERT_EQ(contracts.size(), 4u);
  EXPECT_EQ(contracts[3].at("type"), "contract.completed");
  for (const auto& e : contracts) expect_schema_valid(AGENTLANCER_SOURCE_DIR, e);
  auto jobs = dedupe(consume(bootstrap, "agentlancer.jobs.v1", {std::to_string(job.at("id").as_int64())}, 1, c.deal.requester.id));
  ASSERT_FALSE(jobs.empty());
  EXPECT_EQ(jobs[0].at("data").at("change").at("action"), "contract");
  expect_schema_valid(AGENTLANCER_SOURCE_DIR, jobs[0]);
}

TEST_F(OfferHttpTest, OfferInATokenNotPayableHereIs409) {
  auto d = api.locked_deal("fantom");  // no USDC address registered for that network
  expect_error(api.create_offer(d.tid, d.requester), 409, "", "token_not_supported");
}

// --- ops (public, aggregate only) ---

// The shape of a JSON value: objects by key, arrays by their first element, scalars by kind.
bj::value key_tree(const bj::value& v) {
  if (v.is_object()) {
    bj::object out;
    for (const auto& [k, x] : v.get_object()) out[k] = key_tree(x);
    return out;
  }
  if (v.is_array()) {
    bj::array out;
    if (!v.get_array().empty()) out.push_back(key_tree(v.get_array()[0]));
    return out;
  }
  if (v.is_string()) return "string";
  if (v.is_bool()) return "bool";
  if (v.is_null()) return "null";
  return "number";
}

TEST_F(OfferHttpTest, QuoteToOfferHandoffHasTheSeedsShapeLiveFiguresAndNoPrivateIds) {
  // Some state: a locked quote waiting, an open offer, an accepted (and paid) one.
  auto waiting = api.locked_deal();
  auto open = api.offered_deal();
  auto paid = accepted_deal(api);
  ASSERT_EQ(pay(api, paid.cid, paid.deal.requester, bj::serialize(bj::object{{"tx_hash", random_hash(9)}})).status, 200u);
  // The projection of the waiting thread arrives through Kafka.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto r = api.http.get("/api/ops/quote-to-offer-handoff");  // no key: public
  ASSERT_EQ(r.status, 200u) << r.body;
  auto doc = r.json();
  std::ifstream seed_file(std::string(AGENTLANCER_SOURCE_DIR) + "/tests/fixtures/seed_000_quote_to_offer_handoff.json");
  std::stringstream seed_text;
  seed_text << seed_file.rdbuf();
  auto seed = bj::parse(seed_text.str());
  EXPECT_EQ(key_tree(doc), key_tree(seed)) << "live: " << bj::serialize(key_tree(doc));
  EXPECT_EQ(doc.at("window"), "24h");
  const auto& snap = doc.at("current_quote_to_offer_snapshot");
  EXPECT_GE(snap.at("current_quote_locked_threads").as_int64(), 1);
  EXPECT_GE(snap.at("current_open_offers").as_int64(), 1);
  EXPECT_GE(snap.at("current_accepted_offers").as_int64(), 1);
  EXPECT_EQ(snap.at("offer_summary").at("total_offers").as_int64(),
            snap.at("offer_summary").at("open_offers").as_int64() + snap.at("offer_summary").at("accepted_offers").as_int64() +
                snap.at("offer_summary").at("rejected_offers").as_int64() +
                snap.at("offer_summary").at("inactive_offers").as_int64());
  EXPECT_GE(doc.at("observed").at("offers_created").as_int64(), 2);
  EXPECT_EQ(doc.at("action_packet"), doc.at("quote_to_offer_action_packet"));
  EXPECT_EQ(doc.at("status"), "current_quote_locked_thread_waiting_for_offer_creation_or_blocker_feedback");
  std::string base = "http://127.0.0.1:" + std::to_string(stack_->port());
  EXPECT_EQ(doc.at("action_packet").at("endpoints").at("create_offer_template").as_string(),
            base + "/api/agent/threads/{thread_id}/create-offer");
  // Never an id of a thread, offer, contract, message, service or agent — neither these nor any other.
  std::regex private_id("(thr|off|ctr|msg|svc|agt)_[a-z2-7]{8,}");
  EXPECT_FALSE(std::regex_search(r.body, private_id)) << r.body;
  for (const auto& id : {waiting.tid, open.oid, paid.cid, paid.deal.requester.id, paid.deal.provider.id})
    EXPECT_EQ(r.body.find(id), std::string::npos) << id;
  // A window of 7 days, and bad windows.
  EXPECT_EQ(api.http.get("/api/ops/quote-to-offer-handoff?window=7d").json().at("window"), "7d");
  for (std::string bad : {"0h", "31d", "24", "1w", "abc"})
    expect_error(api.http.get("/api/ops/quote-to-offer-handoff?window=" + bad), 400, "Validation error");
  expect_error(api.http.get("/api/ops/quote-to-offer-handoff?foo=1"), 400);
}

TEST_F(OfferHttpTest, FeedbackIsValidatedRedactedAndRateLimited) {
  // The seed's own blocker-feedback example, sent as its copy_paste_sequence says.
  auto seed_example = api.http.post(
      "/api/public/feedback",
      std::string(R"({"surface":"/api/agent/threads/{thread_id}/create-offer","sentiment":"blocked","category":"checkout",)"
                  R"("message":"Quote-to-offer blocked because reason=thread_lookup. No secrets included."})"));
  ASSERT_EQ(seed_example.status, 201u) << seed_example.body;
  EXPECT_EQ(seed_example.json().at("raw_message_stored"), true);
  EXPECT_TRUE(seed_example.json().at("redacted").as_array().empty());
  // A key and a private key in the message: stored redacted, and the answer says so.
  auto agent = api.agent("feedback");
  auto leaky = api.http.post("/api/public/feedback",
                             bj::serialize(bj::object{{"surface", "/api/agent/threads/thr_abcdefghijkl234567/create-offer"},
                                                      {"sentiment", "blocked"},
                                                      {"category", "api"},
                                                      {"message", "my key is " + agent.key + " and 0x" + std::string(64, 'a')}}));
  ASSERT_EQ(leaky.status, 201u) << leaky.body;
  EXPECT_EQ(leaky.json().at("raw_message_stored"), false);
  EXPECT_EQ(leaky.body.find(agent.key), std::string::npos) << leaky.body;
  EXPECT_EQ(str(leaky.json(), "surface"), "/api/agent/threads/{thread_id}/create-offer");
  // A bare BIP-39 seed phrase, numbered as wallets print it: redacted; ordinary prose full of
  // wordlist words ("please", "review", "budget", "again", "able", "about") is stored as sent.
  const std::string phrase =
      "1. legal 2. winner 3. thank 4. year 5. wave 6. sausage 7. worth 8. useful 9. legal 10. winner 11. thank 12. yellow";
  auto seed = api.http.post("/api/public/feedback",
                            bj::serialize(bj::object{{"surface", "/api/contracts/{contract_id}/payment"},
                                                     {"sentiment", "blocked"},
                                                     {"category", "payment"},
                                                     {"message", "Payment fails, wallet words: " + phrase}}));
  ASSERT_EQ(seed.status, 201u) << seed.body;
  EXPECT_EQ(seed.json().at("raw_message_stored"), false);
  EXPECT_EQ(seed.json().at("redacted"), bj::value(bj::array{"seed_phrase"}));
  EXPECT_EQ(str(seed.json(), "stored_message"), "Payment fails, wallet words: 1. [redacted:seed_phrase]");
  EXPECT_EQ(seed.body.find("sausage"), std::string::npos) << seed.body;
  const std::string prose =
      "Please review the final draft again: I am able to pay the budget above about noon, also before Friday.";
  auto plain = api.http.post("/api/public/feedback",
                             bj::serialize(bj::object{{"surface", "/api/agent/offers"},
                                                      {"sentiment", "neutral"},
                                                      {"category", "docs"},
                                                      {"message", prose}}));
  ASSERT_EQ(plain.status, 201u) << plain.body;
  EXPECT_EQ(plain.json().at("raw_message_stored"), true);
  EXPECT_TRUE(plain.json().at("redacted").as_array().empty());
  EXPECT_EQ(str(plain.json(), "stored_message"), prose);
  // Bad input: 400, never 5xx.
  expect_error(api.http.post("/api/public/feedback", std::string(R"({"surface":"x","sentiment":"angry","category":"nope","message":""})")), 400,
               "Validation error");
  expect_error(api.http.post("/api/public/feedback", std::string("{oops")), 400);
  // The limit (10 a minute per address; 6 used above): the 5th of these is refused with Retry-After.
  HttpResult last;
  for (int i = 0; i < 5; ++i)
    last = api.http.post("/api/public/feedback",
                         std::string(R"({"surface":"/api/services","sentiment":"neutral","category":"discovery","message":"ok"})"));
  expect_error(last, 429, "", "rate_limited");
  EXPECT_TRUE(last.headers.count("retry-after") || last.headers.count("Retry-After")) << "no Retry-After";
}

TEST_F(OfferHttpTest, TrafficSummaryCountsTheFunnelWithoutIds) {
  auto paid = accepted_deal(api);
  ASSERT_EQ(pay(api, paid.cid, paid.deal.requester, bj::serialize(bj::object{{"tx_hash", random_hash(11)}})).status, 200u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // thread events reach offer-service
  auto r = api.http.get("/api/ops/traffic-summary?window=24h");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto v = r.json();
  std::vector<std::string> stages;
  std::vector<long long> counts;
  for (const auto& f : v.at("funnel").as_array()) {
    stages.emplace_back(f.at("stage").as_string());
    counts.push_back(f.at("count").as_int64());
  }
  EXPECT_EQ(stages, (std::vector<std::string>{"thread_opened", "quote_locked", "offer_created", "offer_accepted",
                                              "payment_submitted", "payment_confirmed"}));
  for (long long c : counts) EXPECT_GE(c, 1);
  EXPECT_EQ(v.at("negotiation").at("offer_created").as_int64(), counts[2]);
  EXPECT_EQ(v.at("payment").at("payment_confirmed").as_int64(), counts[5]);
  EXPECT_TRUE(v.at("leading_dropoff").is_string());
  EXPECT_FALSE(std::regex_search(r.body, std::regex("(thr|off|ctr|msg|svc|agt)_[a-z2-7]{8,}"))) << r.body;
  expect_error(api.http.get("/api/ops/traffic-summary?window=2y"), 400);
}

TEST_F(OfferHttpTest, FirstPaymentHandoffAndSessionJourneysAreAggregatesWithoutIds) {
  auto waiting = accepted_deal(api);  // accepted, not paid
  auto paid = accepted_deal(api);
  ASSERT_EQ(pay(api, paid.cid, paid.deal.requester, bj::serialize(bj::object{{"tx_hash", random_hash(13)}})).status, 200u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto handoff = api.http.get("/api/ops/first-payment-handoff");
  ASSERT_EQ(handoff.status, 200u) << handoff.body;
  auto h = handoff.json();
  EXPECT_GE(h.at("current_contract_snapshot").at("awaiting_payment_contracts").as_int64(), 1);
  EXPECT_GE(h.at("current_contract_snapshot").at("funded_contracts").as_int64(), 1);
  EXPECT_EQ(h.at("status"), "accepted_contract_waiting_for_buyer_payment");
  auto journeys = api.http.get("/api/ops/session-journeys?window=1h");
  ASSERT_EQ(journeys.status, 200u) << journeys.body;
  auto j = journeys.json();
  EXPECT_GE(j.at("reached").at("payment_confirmed").as_int64(), 1);
  EXPECT_GE(j.at("reached").at("thread_opened").as_int64(), j.at("reached").at("quote_locked").as_int64());
  EXPECT_FALSE(j.at("median_minutes").at("acceptance_to_payment").is_null());
  std::regex private_id("(thr|off|ctr|msg|svc|agt)_[a-z2-7]{8,}");
  for (const auto* body : {&handoff.body, &journeys.body}) EXPECT_FALSE(std::regex_search(*body, private_id)) << *body;
  EXPECT_EQ(handoff.body.find(waiting.cid), std::string::npos);
  expect_error(api.http.get("/api/ops/session-journeys?window=forever"), 400);
}

}  // namespace
}  // namespace al::testing
