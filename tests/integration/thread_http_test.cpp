// thread-service over HTTP against the real embedded stack (docs/thread-service.md): service
// listings, negotiation threads, the 401 → 404 → 403 → 400 → 409/422 order, pagination, tx-status
// and the quote_to_offer_next_step rows, whose curls are run for real with /bin/sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>
#include <thread>
#include <tuple>

#include "support/curl_steps.hpp"
#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;
using boost::beast::http::verb;

const std::string kNotMember = "Not authorized to access this thread";
const std::string kProviderKey = "<PROVIDER_AGENT_API_KEY>";
const std::string kRequesterKey = "<REQUESTER_AGENT_API_KEY>";
const std::vector<std::string> kAllTerms = {"deliverable", "budget.amount", "budget.token", "budget.network",
                                            "timeline",    "acceptance_criteria", "revision_boundary"};

std::string str(const bj::value& v, std::string_view key) { return std::string(v.at(key).as_string()); }

bool absent_or_null(const bj::object& o, std::string_view key) {
  return !o.contains(key) || o.at(key).is_null();
}

std::set<std::string> string_set(const bj::value& arr) {
  std::set<std::string> out;
  for (const auto& v : arr.as_array()) out.insert(std::string(v.as_string()));
  return out;
}

std::vector<std::string> ids_of(const bj::value& arr) {
  std::vector<std::string> out;
  for (const auto& v : arr.as_array()) out.push_back(str(v, "id"));
  return out;
}

bj::object complete_terms() {
  return {{"deliverable", "A markdown document with the page copy"},
          {"budget", bj::object{{"amount", "25.00"}, {"token", "USDC"}, {"network", "base"}}},
          {"timeline", "3 days"},
          {"acceptance_criteria", "Covers the five sections of the brief"},
          {"revision_boundary", "Two rounds of edits"}};
}

// Missing budget.network, acceptance_criteria and revision_boundary.
bj::object partial_terms() {
  return {{"deliverable", "A markdown document"},
          {"budget", bj::object{{"amount", "20"}, {"token", "USDC"}}},
          {"timeline", "2 days"}};
}

class ThreadHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new TestStack(); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  HttpClient http{stack_->port()};

  static std::string base() { return "http://127.0.0.1:" + std::to_string(stack_->port()); }
  static int next() { return ++counter_; }
  TestAgent agent(const std::string& role) { return stack_->signup(role + "-" + std::to_string(next())); }

  static bj::object service_body(const std::string& title = "SEO landing page copy") {
    return {{"title", title},
            {"description", "Long-form copy for one landing page"},
            {"deliverable", "A markdown document with the page copy"},
            {"price", bj::object{{"amount", "25.00"}, {"token", "USDC"}, {"network", "base"}}},
            {"timeline", "3 days"},
            {"tags", bj::array{"seo", "copywriting"}}};
  }
  bj::object create_service(const TestAgent& owner, bj::object body) {
    auto r = http.post("/api/agent/services", body, owner.key);
    EXPECT_EQ(r.status, 201u) << r.body;
    if (r.status != 201) return {};
    return r.json().as_object();
  }
  bj::object create_service(const TestAgent& owner) { return create_service(owner, service_body()); }
  HttpResult patch(const std::string& target, const std::string& body, const std::string& key) {
    std::map<std::string, std::string> h;
    if (!key.empty()) h["x-api-key"] = key;
    return http.request(verb::patch, target, body, h);
  }
  HttpResult deactivate(const std::string& id, const std::string& key) {
    return http.post("/api/agent/services/" + id + "/deactivate", "{}", key);
  }

  HttpResult open(const TestAgent& who, const std::string& service_id, const std::string& message = "Need a page") {
    return http.post("/api/agent/threads",
                     bj::object{{"service_id", service_id}, {"mode", "quick_quote"}, {"message", message}}, who.key);
  }
  std::string open_thread(const TestAgent& who, const std::string& service_id) {
    auto r = open(who, service_id);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(r.json(), "id") : "";
  }
  static std::string tpath(const std::string& id, const std::string& rest = "") {
    return "/api/agent/threads/" + id + rest;
  }
  HttpResult message(const std::string& tid, const TestAgent& who, const std::string& type,
                     const std::string& body, std::optional<bj::object> terms = std::nullopt) {
    bj::object b{{"type", type}, {"body", body}};
    if (terms) b["terms"] = *terms;
    return http.post(tpath(tid, "/messages"), b, who.key);
  }
  HttpResult lock(const std::string& tid, const TestAgent& who, const std::string& body = "{}") {
    return http.post(tpath(tid, "/lock-quote"), body, who.key);
  }
  // A 422 from lock-quote with its code.
  static void expect_lock_422(const HttpResult& r, const std::string& code, const std::string& what) {
    EXPECT_EQ(r.status, 422u) << what << " -> " << r.body;
    if (r.status != 422) return;
    EXPECT_EQ(str(r.json(), "code"), code) << what << " -> " << r.body;
    EXPECT_TRUE(r.json().at("details").is_array()) << r.body;
  }
  HttpResult close(const std::string& tid, const TestAgent& who, const std::string& body = "{}") {
    return http.post(tpath(tid, "/close"), body, who.key);
  }
  bj::object thread(const std::string& tid, const TestAgent& who, const std::string& query = "") {
    auto r = http.get(tpath(tid, query), who.key);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.status == 200 ? r.json().as_object() : bj::object{};
  }
  bj::object tx_status(const std::string& tid, const TestAgent& who) {
    auto r = http.get(tpath(tid, "/tx-status"), who.key);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.status == 200 ? r.json().as_object() : bj::object{};
  }

  // A provider with a service and a requester with a thread open on it.
  struct Deal {
    TestAgent provider, requester;
    bj::object service;
    std::string tid;
  };
  Deal deal() {
    Deal d{agent("provider"), agent("requester"), {}, ""};
    d.service = create_service(d.provider);
    d.tid = open_thread(d.requester, str(d.service, "id"));
    return d;
  }
  std::string post_quote(const Deal& d, const bj::object& terms) {
    auto r = message(d.tid, d.provider, "quote", "Here is my quote", terms);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.status == 201 ? str(r.json().at("message"), "id") : "";
  }
  Deal locked_deal() {
    auto d = deal();
    post_quote(d, complete_terms());
    auto r = lock(d.tid, d.provider);
    EXPECT_EQ(r.status, 200u) << r.body;
    return d;
  }

  // Walks a paged list to its end; fails on a repeated cursor or more than max_pages pages.
  std::vector<std::string> walk(const std::string& path, const std::string& list_key, const std::string& key,
                                int* pages = nullptr, int max_pages = 200) {
    std::vector<std::string> ids;
    std::string cursor;
    std::set<std::string> seen_cursors;
    for (int page = 0; page < max_pages; ++page) {
      std::string sep = path.find('?') == std::string::npos ? "?" : "&";
      auto r = http.get(path + (cursor.empty() ? "" : sep + "cursor=" + url_encode(cursor)), key);
      EXPECT_EQ(r.status, 200u) << path << " " << r.body;
      if (r.status != 200) break;
      auto v = r.json().as_object();
      for (auto& id : ids_of(v.at(list_key))) ids.push_back(id);
      if (pages) *pages = page + 1;
      if (v.at("next_cursor").is_null()) return ids;
      cursor = str(v, "next_cursor");
      EXPECT_TRUE(seen_cursors.insert(cursor).second) << "cursor repeated: " << cursor;
    }
    ADD_FAILURE() << "pagination did not end: " << path;
    return ids;
  }

  static void expect_validation_400(const HttpResult& r, const std::string& what, const std::string& field = "") {
    EXPECT_EQ(r.status, 400u) << what << " -> " << r.body;
    EXPECT_LT(r.status, 500u) << what;
    if (r.status != 400) return;
    auto v = r.json().as_object();
    EXPECT_TRUE(v.at("error").is_string()) << r.body;
    EXPECT_TRUE(v.contains("code")) << r.body;
    if (field.empty()) return;
    ASSERT_TRUE(v.contains("details") && v.at("details").is_array()) << what << " " << r.body;
    bool found = false;
    for (const auto& d : v.at("details").as_array()) {
      EXPECT_TRUE(d.as_object().contains("message")) << r.body;
      if (str(d, "field").find(field) != std::string::npos) found = true;
    }
    EXPECT_TRUE(found) << what << ": no detail for " << field << " in " << r.body;
  }

  // The shape of quote_to_offer_next_step for a member (viewer) whose key placeholder is `mine`.
  void expect_next_step(const bj::object& ns, const std::string& status, const std::string& actor, bool you_act,
                        const std::string& action, const std::string& mine, const std::string& theirs,
                        const std::string& tid) {
    EXPECT_EQ(str(ns, "status"), status) << bj::serialize(ns);
    EXPECT_EQ(str(ns, "actor"), actor) << bj::serialize(ns);
    EXPECT_EQ(ns.at("you_act").as_bool(), you_act) << bj::serialize(ns);
    EXPECT_EQ(str(ns, "action"), action) << bj::serialize(ns);
    EXPECT_TRUE(ns.at("description").is_string() && !ns.at("description").as_string().empty()) << bj::serialize(ns);
    const char* curl_key = you_act ? "copy_paste_curl" : "monitor_curl";
    ASSERT_TRUE(ns.contains(curl_key) && ns.at(curl_key).is_string()) << bj::serialize(ns);
    std::string curl = str(ns, curl_key);
    EXPECT_EQ(curl.rfind("curl ", 0), 0u) << curl;
    EXPECT_NE(curl.find(base() + "/api/agent/threads"), std::string::npos) << "not absolute on the stack: " << curl;
    EXPECT_NE(curl.find(mine), std::string::npos) << curl;
    EXPECT_EQ(curl.find(theirs), std::string::npos) << curl;
    EXPECT_NE(curl.find(tid), std::string::npos) << curl;
    if (!you_act) {
      EXPECT_TRUE(absent_or_null(ns, "copy_paste_curl")) << bj::serialize(ns);
    } else {
      EXPECT_EQ(str(ns, "method"), "POST") << bj::serialize(ns);
    }
  }

  static inline TestStack* stack_ = nullptr;
  static inline int counter_ = 0;
};

// ===================================== services =====================================

TEST_F(ThreadHttpTest, CreateServiceReturns201WithEveryField) {
  auto p = agent("provider");
  auto body = service_body();
  body["tags"] = bj::array{"SEO", "Copy-Writing"};
  auto r = http.post("/api/agent/services", body, p.key);
  ASSERT_EQ(r.status, 201u) << r.body;
  auto s = r.json().as_object();
  EXPECT_EQ(str(s, "id").rfind("svc_", 0), 0u) << r.body;
  EXPECT_EQ(str(s, "provider_id"), p.id);
  EXPECT_EQ(str(s, "title"), "SEO landing page copy");
  EXPECT_EQ(str(s, "description"), "Long-form copy for one landing page");
  EXPECT_EQ(str(s, "deliverable"), "A markdown document with the page copy");
  ASSERT_TRUE(s.at("price").at("amount").is_string()) << r.body;
  EXPECT_DOUBLE_EQ(std::stod(str(s.at("price"), "amount")), 25.0);
  EXPECT_EQ(str(s.at("price"), "token"), "USDC");
  EXPECT_EQ(str(s.at("price"), "network"), "base");
  EXPECT_EQ(str(s, "timeline"), "3 days");
  EXPECT_EQ(s.at("tags"), (bj::value(bj::array{"seo", "copy-writing"})));
  EXPECT_EQ(s.at("active"), bj::value(true));
  EXPECT_NE(str(s, "created_at").find('T'), std::string::npos);
  EXPECT_NE(str(s, "updated_at").find('T'), std::string::npos);
  auto qq = s.at("quick_quote").as_object();
  EXPECT_EQ(str(qq, "method"), "POST");
  EXPECT_EQ(str(qq, "endpoint"), "/api/agent/threads");
  EXPECT_EQ(str(qq, "copy_paste_curl"),
            "curl -sS -X POST " + base() +
                "/api/agent/threads -H 'content-type: application/json' -H 'x-api-key: <REQUESTER_AGENT_API_KEY>' "
                "-d '{\"service_id\":\"" + str(s, "id") + "\",\"mode\":\"quick_quote\",\"message\":\"<WHAT_YOU_NEED>\"}'");
  // The public GET shows the same service.
  auto g = http.get("/api/services/" + str(s, "id"));
  ASSERT_EQ(g.status, 200u) << g.body;
  EXPECT_EQ(g.json(), bj::value(s));
}

TEST_F(ThreadHttpTest, CreateServiceAcceptsNumericAmountAndAnswersItAsString) {
  auto p = agent("provider");
  auto body = service_body();
  body["price"] = bj::object{{"amount", 12.5}, {"token", "0x" + std::string(40, 'a')}, {"network", "base-sepolia"}};
  body.erase("tags");
  auto s = create_service(p, body);
  ASSERT_FALSE(s.empty());
  ASSERT_TRUE(s.at("price").at("amount").is_string()) << bj::serialize(s);
  EXPECT_DOUBLE_EQ(std::stod(str(s.at("price"), "amount")), 12.5);
  EXPECT_EQ(str(s.at("price"), "token"), "0x" + std::string(40, 'a'));
  EXPECT_EQ(str(s.at("price"), "network"), "base-sepolia");
  EXPECT_EQ(s.at("tags"), bj::value(bj::array{}));
  EXPECT_EQ(s.at("active"), bj::value(true));
}

TEST_F(ThreadHttpTest, QuickQuoteCurlOfAServiceOpensAThreadWhenRun) {
  auto p = agent("provider");
  auto req = agent("requester");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(run_curl(str(s.at("quick_quote"), "copy_paste_curl"), kRequesterKey, req.key), 201);
  auto list = http.get("/api/agent/threads?mode=outgoing", req.key);
  ASSERT_EQ(list.status, 200u) << list.body;
  ASSERT_EQ(list.json().at("threads").as_array().size(), 1u) << list.body;
  EXPECT_EQ(str(list.json().at("threads").as_array()[0], "service_id"), str(s, "id"));
}

TEST_F(ThreadHttpTest, CreateServiceValidationErrorsAre400WithDetails) {
  auto p = agent("provider");
  auto without = [](std::string field) {
    auto b = service_body();
    b.erase(field);
    return b;
  };
  auto with = [](std::string field, bj::value v) {
    auto b = service_body();
    b[field] = std::move(v);
    return b;
  };
  auto price = [](bj::value amount, bj::value token, bj::value network) {
    auto b = service_body();
    b["price"] = bj::object{{"amount", amount}, {"token", token}, {"network", network}};
    return b;
  };
  bj::array eleven;
  for (int i = 0; i < 11; ++i) eleven.push_back(bj::value("t" + std::to_string(i)));
  const std::vector<std::tuple<std::string, bj::object, std::string>> cases = {
      {"missing title", without("title"), "title"},
      {"missing description", without("description"), "description"},
      {"missing deliverable", without("deliverable"), "deliverable"},
      {"missing price", without("price"), "price"},
      {"missing timeline", without("timeline"), "timeline"},
      {"empty title", with("title", ""), "title"},
      {"title too long", with("title", bj::value(std::string(201, 'x'))), "title"},
      {"description too long", with("description", bj::value(std::string(5001, 'x'))), "description"},
      {"unknown field", with("colour", "blue"), "colour"},
      {"title not a string", with("title", 5), "title"},
      {"zero amount", price("0", "USDC", "base"), "amount"},
      {"negative amount", price("-1", "USDC", "base"), "amount"},
      {"non-numeric amount", price("abc", "USDC", "base"), "amount"},
      {"amount is an object", price(bj::object{}, "USDC", "base"), "amount"},
      {"network upper case", price("1", "USDC", "Base"), "network"},
      {"network with a space", price("1", "USDC", "base net"), "network"},
      {"network empty", price("1", "USDC", ""), "network"},
      {"token with a space", price("1", "US DC", "base"), "token"},
      {"eleven tags", with("tags", eleven), "tags"},
      {"tag with a space", with("tags", bj::array{"a b"}), "tags"},
      {"tag too long", with("tags", bj::array{bj::value(std::string(33, 'a'))}), "tags"},
      {"tags not an array", with("tags", "seo"), "tags"},
  };
  for (const auto& [what, body, field] : cases)
    expect_validation_400(http.post("/api/agent/services", body, p.key), what, field);
  // Nothing was created.
  auto own = http.get("/api/agent/services", p.key);
  ASSERT_EQ(own.status, 200u) << own.body;
  EXPECT_TRUE(own.json().at("services").as_array().empty()) << own.body;
}

TEST_F(ThreadHttpTest, MalformedOrNonObjectJsonIs400NeverServerError) {
  auto p = agent("provider");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  for (std::string body : {"{\"title\":", "not json", "[]", "\"x\"", "42", "null", "{\"price\":[1]}", "\xff\xfe", ""}) {
    auto r = http.post("/api/agent/services", body, p.key);
    expect_validation_400(r, "POST " + body);
    auto pr = patch("/api/agent/services/" + str(s, "id"), body, p.key);
    expect_validation_400(pr, "PATCH " + body);
  }
}

TEST_F(ThreadHttpTest, ServiceRoutesWithoutOrWithABadKeyAre401) {
  auto p = agent("provider");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  std::string id = str(s, "id");
  for (std::string key : {"", "al_not_a_real_key"}) {
    EXPECT_EQ(http.post("/api/agent/services", service_body(), key).status, 401u) << key;
    EXPECT_EQ(http.post("/api/agent/services", "{", key).status, 401u) << "401 before the body";
    EXPECT_EQ(http.get("/api/agent/services", key).status, 401u);
    EXPECT_EQ(patch("/api/agent/services/" + id, R"({"title":"x"})", key).status, 401u);
    EXPECT_EQ(deactivate(id, key).status, 401u);
  }
  EXPECT_EQ(http.get("/api/services/" + id).status, 200u);  // public
}

TEST_F(ThreadHttpTest, PatchByOwnerUpdatesOnlyTheGivenFields) {
  auto p = agent("provider");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  auto r = patch("/api/agent/services/" + str(s, "id"),
                 R"({"title":"New title","price":{"amount":"30","token":"USDC","network":"base"},"tags":["NEW"]})", p.key);
  ASSERT_EQ(r.status, 200u) << r.body;
  auto u = r.json().as_object();
  EXPECT_EQ(str(u, "id"), str(s, "id"));
  EXPECT_EQ(str(u, "title"), "New title");
  EXPECT_DOUBLE_EQ(std::stod(str(u.at("price"), "amount")), 30.0);
  EXPECT_EQ(u.at("tags"), bj::value(bj::array{"new"}));
  EXPECT_EQ(u.at("description"), s.at("description"));
  EXPECT_EQ(u.at("deliverable"), s.at("deliverable"));
  EXPECT_EQ(u.at("timeline"), s.at("timeline"));
  EXPECT_EQ(u.at("created_at"), s.at("created_at"));
  EXPECT_EQ(u.at("provider_id"), s.at("provider_id"));
  auto g = http.get("/api/services/" + str(s, "id"));
  ASSERT_EQ(g.status, 200u);
  EXPECT_EQ(str(g.json(), "title"), "New title");
}

TEST_F(ThreadHttpTest, PatchValidationIs400) {
  auto p = agent("provider");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  std::string path = "/api/agent/services/" + str(s, "id");
  expect_validation_400(patch(path, "{}", p.key), "empty subset");
  expect_validation_400(patch(path, R"({"colour":"blue"})", p.key), "unknown field", "colour");
  expect_validation_400(patch(path, R"({"price":{"amount":"0","token":"USDC","network":"base"}})", p.key), "zero amount",
                        "amount");
  expect_validation_400(patch(path, R"({"title":""})", p.key), "empty title", "title");
  // A price replaces the stored one as a whole: every part of it is required.
  expect_validation_400(patch(path, R"({"price":{}})", p.key), "empty price", "price.amount");
  expect_validation_400(patch(path, R"({"price":{"amount":"3","token":"USDC"}})", p.key), "price without network",
                        "price.network");
  EXPECT_EQ(str(http.get("/api/services/" + str(s, "id")).json(), "title"), str(s, "title"));
}

TEST_F(ThreadHttpTest, PatchByAnotherAgentIs403AndChangesNothing) {
  auto p = agent("provider");
  auto other = agent("other");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  auto r = patch("/api/agent/services/" + str(s, "id"), R"({"title":"Hijacked"})", other.key);
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_FALSE(r.error().empty());
  EXPECT_EQ(deactivate(str(s, "id"), other.key).status, 403u);
  auto g = http.get("/api/services/" + str(s, "id"));
  ASSERT_EQ(g.status, 200u);
  EXPECT_EQ(str(g.json(), "title"), str(s, "title"));
  EXPECT_EQ(g.json().at("active"), bj::value(true));
}

TEST_F(ThreadHttpTest, UnknownServiceIdIs404) {
  auto p = agent("provider");
  for (std::string id : {"svc_doesnotexist", "nonsense"}) {
    auto r = patch("/api/agent/services/" + id, R"({"title":"x"})", p.key);
    EXPECT_EQ(r.status, 404u) << id << " " << r.body;
    EXPECT_FALSE(r.error().empty());
    EXPECT_EQ(deactivate(id, p.key).status, 404u) << id;
    EXPECT_EQ(http.get("/api/services/" + id).status, 404u) << id;
    EXPECT_EQ(http.get("/api/services/" + id, p.key).status, 404u) << id;
  }
}

TEST_F(ThreadHttpTest, DeactivateIsIdempotent) {
  auto p = agent("provider");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  auto r = deactivate(str(s, "id"), p.key);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("active"), bj::value(false));
  EXPECT_EQ(str(r.json(), "id"), str(s, "id"));
  auto again = deactivate(str(s, "id"), p.key);
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(again.json().at("active"), bj::value(false));
  EXPECT_EQ(http.get("/api/services/" + str(s, "id")).status, 404u);
  // No body is like `{}`; whitespace alone is not JSON.
  EXPECT_EQ(http.post("/api/agent/services/" + str(s, "id") + "/deactivate", "", p.key).status, 200u);
  expect_validation_400(http.post("/api/agent/services/" + str(s, "id") + "/deactivate", " \n", p.key), "whitespace body");
}

TEST_F(ThreadHttpTest, InactiveServiceIs404PubliclyButVisibleToItsOwner) {
  auto p = agent("provider");
  auto other = agent("other");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  ASSERT_EQ(deactivate(str(s, "id"), p.key).status, 200u);
  std::string path = "/api/services/" + str(s, "id");
  EXPECT_EQ(http.get(path).status, 404u);
  EXPECT_EQ(http.get(path, other.key).status, 404u);
  auto own = http.get(path, p.key);
  ASSERT_EQ(own.status, 200u) << own.body;
  EXPECT_EQ(own.json().at("active"), bj::value(false));
  EXPECT_EQ(str(own.json(), "id"), str(s, "id"));
}

TEST_F(ThreadHttpTest, PublicListShowsActiveServicesOnlyNewestFirst) {
  auto p = agent("provider");
  std::string tag = "active-" + std::to_string(next());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto b = service_body("Listing " + std::to_string(i));
    b["tags"] = bj::array{bj::value(tag)};
    auto s = create_service(p, b);
    ASSERT_FALSE(s.empty());
    ids.push_back(str(s, "id"));
  }
  ASSERT_EQ(deactivate(ids[1], p.key).status, 200u);
  auto r = http.get("/api/services?tag=" + tag);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(ids_of(r.json().at("services")), (std::vector<std::string>{ids[2], ids[0]}));
  EXPECT_TRUE(r.json().at("next_cursor").is_null());
  auto listed = r.json();
  for (const auto& s : listed.at("services").as_array()) {
    EXPECT_EQ(s.at("active"), bj::value(true));
    EXPECT_TRUE(s.as_object().contains("quick_quote"));
  }
  // The unfiltered list never shows the inactive one either.
  auto all = walk("/api/services?limit=100", "services", "");
  EXPECT_EQ(std::count(all.begin(), all.end(), ids[1]), 0);
  EXPECT_EQ(std::count(all.begin(), all.end(), ids[0]), 1);
  EXPECT_EQ(std::count(all.begin(), all.end(), ids[2]), 1);
}

TEST_F(ThreadHttpTest, PublicListFiltersByExactTag) {
  auto p = agent("provider");
  std::string n = std::to_string(next());
  auto a = service_body("Tagged A");
  a["tags"] = bj::array{bj::value("alpha-" + n), "shared"};
  auto b = service_body("Tagged B");
  b["tags"] = bj::array{bj::value("alpha-" + n + "-x")};
  auto sa = create_service(p, a);
  auto sb = create_service(p, b);
  ASSERT_FALSE(sa.empty());
  ASSERT_FALSE(sb.empty());
  auto r = http.get("/api/services?tag=alpha-" + n);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(ids_of(r.json().at("services")), std::vector<std::string>{str(sa, "id")});
  r = http.get("/api/services?tag=alpha-" + n + "-x");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(ids_of(r.json().at("services")), std::vector<std::string>{str(sb, "id")});
  r = http.get("/api/services?tag=nothing-has-this-tag");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_TRUE(r.json().at("services").as_array().empty());
}

TEST_F(ThreadHttpTest, PublicListSearchesWithQCaseInsensitively) {
  auto p = agent("provider");
  std::string w = "zorblax" + std::to_string(next());
  auto in_title = service_body("Title with " + w + " inside");
  auto in_description = service_body("Plain");
  in_description["description"] = "A description mentioning " + w;
  auto in_deliverable = service_body("Plain");
  in_deliverable["deliverable"] = "Ships " + w + " files";
  auto in_tag = service_body("Plain");
  in_tag["tags"] = bj::array{bj::value(w + "-tag")};
  auto none = service_body("Unrelated");
  std::vector<std::string> expected;
  for (auto* b : {&in_title, &in_description, &in_deliverable, &in_tag}) {
    auto s = create_service(p, *b);
    ASSERT_FALSE(s.empty());
    expected.insert(expected.begin(), str(s, "id"));  // newest first
  }
  ASSERT_FALSE(create_service(p, none).empty());
  std::string upper = w;
  for (auto& c : upper) c = static_cast<char>(std::toupper(c));
  for (const auto& q : {w, upper}) {
    auto r = http.get("/api/services?q=" + q);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(ids_of(r.json().at("services")), expected) << q;
  }
  // tag and q together.
  auto r = http.get("/api/services?q=" + w + "&tag=" + w + "-tag");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(ids_of(r.json().at("services")), std::vector<std::string>{expected[0]});
}

TEST_F(ThreadHttpTest, PublicListCursorPaginationVisitsEveryServiceOnce) {
  auto p = agent("provider");
  std::string tag = "page-" + std::to_string(next());
  std::vector<std::string> created;
  for (int i = 0; i < 5; ++i) {
    auto b = service_body("Paged " + std::to_string(i));
    b["tags"] = bj::array{bj::value(tag)};
    auto s = create_service(p, b);
    ASSERT_FALSE(s.empty());
    created.insert(created.begin(), str(s, "id"));
  }
  int pages = 0;
  auto ids = walk("/api/services?limit=2&tag=" + tag, "services", "", &pages);
  EXPECT_EQ(ids, created);  // newest first, none missing, none repeated
  EXPECT_EQ(pages, 3);
  auto first = http.get("/api/services?limit=2&tag=" + tag);
  EXPECT_EQ(first.json().at("services").as_array().size(), 2u);
  // Default limit covers the 5.
  auto all = http.get("/api/services?tag=" + tag);
  EXPECT_EQ(ids_of(all.json().at("services")), created);
}

TEST_F(ThreadHttpTest, PublicListRejectsBadQueryParameters) {
  for (const std::string& q : std::vector<std::string>{"limit=0", "limit=101", "limit=abc", "limit=-1",
                                                       "q=" + std::string(101, 'a'), "q="}) {
    auto r = http.get("/api/services?" + q);
    EXPECT_EQ(r.status, 400u) << q << " " << r.body;
    EXPECT_FALSE(r.error().empty()) << q;
  }
  EXPECT_EQ(http.get("/api/services?limit=100").status, 200u);
  EXPECT_EQ(http.get("/api/services?limit=1").status, 200u);
}

TEST_F(ThreadHttpTest, OwnServicesListIncludesInactiveAndPaginates) {
  auto p = agent("provider");
  auto other = agent("other");
  ASSERT_FALSE(create_service(other).empty());
  std::vector<std::string> created;
  for (int i = 0; i < 5; ++i) {
    auto s = create_service(p, service_body("Own " + std::to_string(i)));
    ASSERT_FALSE(s.empty());
    created.insert(created.begin(), str(s, "id"));
  }
  ASSERT_EQ(deactivate(created[1], p.key).status, 200u);
  int pages = 0;
  auto ids = walk("/api/agent/services?limit=2", "services", p.key, &pages);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), std::set<std::string>(created.begin(), created.end()));
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_EQ(pages, 3);
  auto r = http.get("/api/agent/services", p.key);
  ASSERT_EQ(r.status, 200u);
  bool saw_inactive = false;
  auto listed = r.json();
  for (const auto& s : listed.at("services").as_array()) {
    EXPECT_EQ(str(s, "provider_id"), p.id);
    if (str(s, "id") == created[1]) {
      saw_inactive = true;
      EXPECT_EQ(s.at("active"), bj::value(false));
    }
  }
  EXPECT_TRUE(saw_inactive);
  EXPECT_EQ(http.get("/api/agent/services?limit=0", p.key).status, 400u);
}

// ===================================== threads =====================================

TEST_F(ThreadHttpTest, OpenThreadReturns201Negotiating) {
  auto p = agent("provider");
  auto req = agent("requester");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  auto r = open(req, str(s, "id"), "I need a landing page");
  ASSERT_EQ(r.status, 201u) << r.body;
  auto t = r.json().as_object();
  EXPECT_EQ(str(t, "id").rfind("thr_", 0), 0u) << r.body;
  EXPECT_EQ(str(t, "service_id"), str(s, "id"));
  EXPECT_EQ(str(t, "service_title"), str(s, "title"));
  EXPECT_EQ(str(t, "mode"), "quick_quote");
  EXPECT_EQ(str(t, "status"), "negotiating");
  EXPECT_EQ(str(t, "role"), "requester");
  EXPECT_EQ(str(t, "requester_id"), req.id);
  EXPECT_EQ(str(t, "provider_id"), p.id);
  EXPECT_EQ(t.at("message_count"), bj::value(1));
  for (const char* k : {"latest_quote", "locked_terms", "locked_quote_message_id", "locked_message_seq",
                        "quote_locked_at", "offer", "contract", "closed_reason"})
    EXPECT_TRUE(t.contains(k) && t.at(k).is_null()) << k << " " << r.body;
  EXPECT_FALSE(str(t, "created_at").empty());
  EXPECT_FALSE(str(t, "updated_at").empty());
  EXPECT_TRUE(t.at("quote_to_offer_next_step").is_object()) << r.body;
  // The provider sees the same thread in its own role, with the opening message.
  auto g = thread(str(t, "id"), p);
  EXPECT_EQ(str(g, "role"), "provider");
  ASSERT_EQ(g.at("messages").as_array().size(), 1u);
  EXPECT_EQ(str(g.at("messages").as_array()[0], "body"), "I need a landing page");
  EXPECT_EQ(str(g.at("messages").as_array()[0], "sender_role"), "requester");
  EXPECT_EQ(str(g.at("messages").as_array()[0], "sender_id"), req.id);
}

TEST_F(ThreadHttpTest, OpenThreadOnOwnServiceIs422) {
  auto p = agent("provider");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  auto r = open(p, str(s, "id"));
  EXPECT_EQ(r.status, 422u) << r.body;
  EXPECT_FALSE(r.error().empty());
  EXPECT_TRUE(http.get("/api/agent/threads", p.key).json().at("threads").as_array().empty());
}

TEST_F(ThreadHttpTest, OpenThreadOnUnknownServiceIs404) {
  auto req = agent("requester");
  auto r = open(req, "svc_doesnotexist");
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_FALSE(r.error().empty());
}

TEST_F(ThreadHttpTest, OpenThreadOnInactiveServiceIs409) {
  auto p = agent("provider");
  auto req = agent("requester");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  ASSERT_EQ(deactivate(str(s, "id"), p.key).status, 200u);
  auto r = open(req, str(s, "id"));
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_FALSE(r.error().empty());
}

TEST_F(ThreadHttpTest, OpenThreadValidationIs400) {
  auto p = agent("provider");
  auto req = agent("requester");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  std::string sid = str(s, "id");
  expect_validation_400(
      http.post("/api/agent/threads", bj::object{{"service_id", sid}, {"mode", "auction"}, {"message", "hi"}}, req.key),
      "bad mode", "mode");
  expect_validation_400(http.post("/api/agent/threads", bj::object{{"service_id", sid}, {"message", "hi"}}, req.key),
                        "missing mode", "mode");
  expect_validation_400(
      http.post("/api/agent/threads", bj::object{{"service_id", sid}, {"mode", "quick_quote"}}, req.key),
      "missing message", "message");
  expect_validation_400(
      http.post("/api/agent/threads", bj::object{{"mode", "quick_quote"}, {"message", "hi"}}, req.key),
      "missing service_id", "service_id");
  expect_validation_400(http.post("/api/agent/threads",
                                  bj::object{{"service_id", sid}, {"mode", "quick_quote"}, {"message", "hi"}, {"x", 1}},
                                  req.key),
                        "unknown field", "x");
  expect_validation_400(http.post("/api/agent/threads",
                                  bj::object{{"service_id", sid}, {"mode", "quick_quote"},
                                             {"message", std::string(10001, 'm')}},
                                  req.key),
                        "message too long", "message");
  for (std::string body : {"{", "[]", "7", ""}) expect_validation_400(http.post("/api/agent/threads", body, req.key), body);
  EXPECT_TRUE(http.get("/api/agent/threads", req.key).json().at("threads").as_array().empty());
}

TEST_F(ThreadHttpTest, ThreadRoutesWithoutOrWithABadKeyAre401) {
  auto d = deal();
  for (std::string key : {"", "al_not_a_real_key"}) {
    for (const std::string& tid : {d.tid, std::string("thr_doesnotexist")}) {
      EXPECT_EQ(http.get(tpath(tid), key).status, 401u) << tid;
      EXPECT_EQ(http.get(tpath(tid, "/tx-status"), key).status, 401u) << tid;
      EXPECT_EQ(http.post(tpath(tid, "/messages"), "{", key).status, 401u) << tid;
      EXPECT_EQ(http.post(tpath(tid, "/lock-quote"), "{}", key).status, 401u) << tid;
      EXPECT_EQ(http.post(tpath(tid, "/close"), "{}", key).status, 401u) << tid;
    }
    EXPECT_EQ(http.get("/api/agent/threads", key).status, 401u);
    EXPECT_EQ(http.post("/api/agent/threads", "{", key).status, 401u);
  }
}

TEST_F(ThreadHttpTest, BothMembersPostMessages) {
  auto d = deal();
  auto r = message(d.tid, d.provider, "text", "What tone do you want?");
  ASSERT_EQ(r.status, 201u) << r.body;
  auto m = r.json().at("message").as_object();
  EXPECT_EQ(str(m, "id").rfind("msg_", 0), 0u) << r.body;
  EXPECT_EQ(str(m, "sender_id"), d.provider.id);
  EXPECT_EQ(str(m, "sender_role"), "provider");
  EXPECT_EQ(str(m, "type"), "text");
  EXPECT_EQ(str(m, "body"), "What tone do you want?");
  EXPECT_TRUE(m.at("terms").is_null());
  EXPECT_EQ(r.json().at("thread").at("message_count"), bj::value(2));
  EXPECT_EQ(str(r.json().at("thread"), "role"), "provider");
  long long seq = m.at("seq").as_int64();

  r = message(d.tid, d.requester, "scope", "Friendly, 800 words");
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(str(r.json().at("message"), "sender_role"), "requester");
  EXPECT_EQ(str(r.json().at("message"), "sender_id"), d.requester.id);
  EXPECT_EQ(r.json().at("message").at("seq").as_int64(), seq + 1);
  EXPECT_EQ(str(r.json().at("thread"), "role"), "requester");
  r = message(d.tid, d.provider, "milestone", "Draft by Tuesday");
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(r.json().at("thread").at("message_count"), bj::value(4));
  EXPECT_EQ(thread(d.tid, d.requester).at("message_count"), bj::value(4));
}

TEST_F(ThreadHttpTest, QuoteWithPartialTermsIsAcceptedAndReportsMissingTerms) {
  auto d = deal();
  auto r = message(d.tid, d.provider, "quote", "A first quote", partial_terms());
  ASSERT_EQ(r.status, 201u) << r.body;
  auto m = r.json().at("message").as_object();
  EXPECT_EQ(str(m, "type"), "quote");
  EXPECT_EQ(str(m.at("terms"), "deliverable"), "A markdown document");
  auto lq = r.json().at("thread").at("latest_quote").as_object();
  EXPECT_EQ(str(lq, "message_id"), str(m, "id"));
  EXPECT_EQ(lq.at("complete"), bj::value(false));
  EXPECT_EQ(string_set(lq.at("missing_terms")),
            (std::set<std::string>{"budget.network", "acceptance_criteria", "revision_boundary"}));
  EXPECT_EQ(lq.at("terms"), m.at("terms"));
  // The requester may quote too (negotiating).
  auto rq = message(d.tid, d.requester, "quote", "Counter", bj::object{{"timeline", "1 day"}});
  ASSERT_EQ(rq.status, 201u) << rq.body;
  EXPECT_EQ(str(rq.json().at("thread").at("latest_quote"), "message_id"), str(rq.json().at("message"), "id"));
}

TEST_F(ThreadHttpTest, TermsOnANonQuoteMessageAre400) {
  auto d = deal();
  for (std::string type : {"text", "scope", "milestone"})
    expect_validation_400(message(d.tid, d.provider, type, "body", complete_terms()), type, "terms");
  EXPECT_EQ(thread(d.tid, d.provider).at("message_count"), bj::value(1));
}

TEST_F(ThreadHttpTest, QuoteWithoutTermsIs400) {
  auto d = deal();
  expect_validation_400(message(d.tid, d.provider, "quote", "no terms"), "quote without terms", "terms");
  expect_validation_400(http.post(tpath(d.tid, "/messages"), R"({"type":"quote","body":"x","terms":null})", d.provider.key),
                        "quote with null terms", "terms");
  auto bad_terms = complete_terms();
  bad_terms["budget"] = bj::object{{"amount", "-5"}, {"token", "USDC"}, {"network", "base"}};
  expect_validation_400(message(d.tid, d.provider, "quote", "x", bad_terms), "negative budget", "amount");
  auto unknown = complete_terms();
  unknown["price"] = "1";
  expect_validation_400(message(d.tid, d.provider, "quote", "x", unknown), "unknown term", "price");
  auto long_deliverable = complete_terms();
  long_deliverable["deliverable"] = std::string(2001, 'd');
  expect_validation_400(message(d.tid, d.provider, "quote", "x", long_deliverable), "deliverable too long", "deliverable");
  for (const char* term : {"deliverable", "timeline", "acceptance_criteria", "revision_boundary"}) {
    auto empty = complete_terms();
    empty[term] = "";
    expect_validation_400(message(d.tid, d.provider, "quote", "x", empty), std::string("empty ") + term, term);
  }
  EXPECT_EQ(thread(d.tid, d.provider).at("message_count"), bj::value(1));
}

TEST_F(ThreadHttpTest, MessageBodyAndTypeLimits) {
  auto d = deal();
  auto ok = message(d.tid, d.requester, "text", std::string(10000, 'b'));
  EXPECT_EQ(ok.status, 201u) << ok.body.substr(0, 300);
  expect_validation_400(message(d.tid, d.requester, "text", std::string(10001, 'b')), "10,001 chars", "body");
  expect_validation_400(message(d.tid, d.requester, "text", ""), "empty body", "body");
  expect_validation_400(message(d.tid, d.requester, "offer", "hi"), "unknown type", "type");
  expect_validation_400(http.post(tpath(d.tid, "/messages"), R"({"type":"text"})", d.requester.key), "missing body",
                        "body");
  expect_validation_400(http.post(tpath(d.tid, "/messages"), R"({"type":"text","body":"x","extra":1})", d.requester.key),
                        "unknown field", "extra");
  for (std::string body : {"{", "[]", "\"text\"", ""})
    expect_validation_400(http.post(tpath(d.tid, "/messages"), body, d.requester.key), "malformed " + body);
  EXPECT_EQ(thread(d.tid, d.requester).at("message_count"), bj::value(2));
}

TEST_F(ThreadHttpTest, OversizedHttpBodyIsRefusedWithoutServerError) {
  auto d = deal();
  HttpClient big(stack_->port());
  std::string body = R"({"type":"text","body":")" + std::string(2 * 1024 * 1024, 'x') + "\"}";
  auto r = big.post(tpath(d.tid, "/messages"), body, d.requester.key);
  EXPECT_EQ(r.status, 413u) << r.body;  // http.body_limit (1 MiB) answers before the handler
  EXPECT_EQ(r.error(), "Request body too large");
  EXPECT_EQ(thread(d.tid, d.requester).at("message_count"), bj::value(1));
  EXPECT_EQ(http.get("/healthz").status, 200u);
}

TEST_F(ThreadHttpTest, LockQuoteByRequesterIs403) {
  auto d = deal();
  post_quote(d, complete_terms());
  auto r = lock(d.tid, d.requester);
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_FALSE(r.error().empty());
  EXPECT_EQ(str(thread(d.tid, d.provider), "status"), "negotiating");
}

TEST_F(ThreadHttpTest, LockQuoteWithMissingTermsIs422NamingEach) {
  auto d = deal();
  post_quote(d, partial_terms());
  auto r = lock(d.tid, d.provider);
  ASSERT_EQ(r.status, 422u) << r.body;
  auto v = r.json().as_object();
  EXPECT_EQ(str(v, "code"), "missing_terms");
  std::set<std::string> fields;
  for (const auto& det : v.at("details").as_array()) {
    EXPECT_TRUE(det.as_object().contains("message")) << r.body;
    fields.insert(str(det, "field"));
  }
  for (std::string missing : {"budget.network", "acceptance_criteria", "revision_boundary"}) {
    EXPECT_NE(r.error().find(missing), std::string::npos) << missing << " not in: " << r.error();
    bool found = std::any_of(fields.begin(), fields.end(), [&](const std::string& f) {
      return f == missing || (f.size() > missing.size() && f.ends_with("." + missing));
    });
    EXPECT_TRUE(found) << missing << " not in details: " << r.body;
  }
  EXPECT_EQ(fields.size(), 3u) << r.body;
  for (std::string present : {"deliverable", "timeline", "budget.amount", "budget.token"})
    EXPECT_EQ(fields.count(present), 0u) << present;
  EXPECT_EQ(str(thread(d.tid, d.provider), "status"), "negotiating");
}

TEST_F(ThreadHttpTest, LockQuoteWithoutAnyQuoteIs422NoQuote) {
  auto d = deal();
  auto r = lock(d.tid, d.provider);
  ASSERT_EQ(r.status, 422u) << r.body;
  EXPECT_EQ(str(r.json(), "code"), "no_quote");
  EXPECT_FALSE(r.error().empty());
  // "listing all of them": details carry one {field, message} per term.
  ASSERT_TRUE(r.json().as_object().contains("details")) << r.body;
  std::set<std::string> fields;
  auto v = r.json();
  for (const auto& det : v.at("details").as_array()) {
    EXPECT_TRUE(det.as_object().contains("message")) << r.body;
    fields.insert(str(det, "field"));
  }
  for (const auto& term : kAllTerms) {
    bool found = std::any_of(fields.begin(), fields.end(), [&](const std::string& f) {
      return f == term || (f.size() > term.size() && f.ends_with("." + term));
    });
    EXPECT_TRUE(found) << term << " not in details: " << r.body;
  }
  EXPECT_EQ(fields.size(), kAllTerms.size()) << r.body;
  EXPECT_EQ(str(thread(d.tid, d.provider), "status"), "negotiating");
}

TEST_F(ThreadHttpTest, LockQuoteLocksTheCompleteQuoteAndRepeatsAre200) {
  auto d = deal();
  auto q = message(d.tid, d.provider, "quote", "Final quote", complete_terms());
  ASSERT_EQ(q.status, 201u) << q.body;
  auto quote_msg = q.json().at("message").as_object();
  EXPECT_EQ(q.json().at("thread").at("latest_quote").at("complete"), bj::value(true));
  EXPECT_TRUE(q.json().at("thread").at("latest_quote").at("missing_terms").as_array().empty());
  auto r = lock(d.tid, d.provider);
  ASSERT_EQ(r.status, 200u) << r.body;
  auto t = r.json().as_object();
  EXPECT_EQ(str(t, "status"), "quote_locked");
  EXPECT_EQ(str(t, "role"), "provider");
  EXPECT_EQ(t.at("locked_terms"), quote_msg.at("terms"));
  EXPECT_EQ(str(t.at("locked_terms"), "acceptance_criteria"), "Covers the five sections of the brief");
  EXPECT_EQ(str(t.at("locked_terms").at("budget"), "network"), "base");
  EXPECT_EQ(str(t, "locked_quote_message_id"), str(quote_msg, "id"));
  EXPECT_TRUE(t.at("quote_locked_at").is_string());
  auto again = lock(d.tid, d.provider);
  ASSERT_EQ(again.status, 200u) << again.body;
  auto t2 = again.json().as_object();
  for (const char* k : {"id", "status", "locked_terms", "locked_quote_message_id", "quote_locked_at", "updated_at",
                        "message_count"})
    EXPECT_EQ(t2.at(k), t.at(k)) << k;
  EXPECT_EQ(str(thread(d.tid, d.requester), "status"), "quote_locked");
}

TEST_F(ThreadHttpTest, LockQuoteTakesTheLatestQuoteNotAnEarlierCompleteOne) {
  auto d = deal();
  post_quote(d, complete_terms());
  post_quote(d, partial_terms());
  auto r = lock(d.tid, d.provider);
  EXPECT_EQ(r.status, 422u) << r.body;
  EXPECT_EQ(str(r.json(), "code"), "missing_terms");
  auto newer = complete_terms();
  newer["timeline"] = "5 days";
  std::string id = post_quote(d, newer);
  r = lock(d.tid, d.provider);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(str(r.json(), "locked_quote_message_id"), id);
  EXPECT_EQ(str(r.json().at("locked_terms"), "timeline"), "5 days");
}

TEST_F(ThreadHttpTest, LockQuoteAnswersWhichMessageItLockedInTheResponseAndTheEvent) {
  auto d = deal();
  auto q = message(d.tid, d.provider, "quote", "Final quote", complete_terms());
  ASSERT_EQ(q.status, 201u) << q.body;
  auto quote_msg = q.json().at("message").as_object();
  EXPECT_EQ(q.json().at("thread").at("latest_quote").at("seq"), quote_msg.at("seq"));
  EXPECT_EQ(str(q.json().at("thread").at("latest_quote"), "sender_role"), "provider");
  EXPECT_EQ(q.json().at("thread").at("latest_quote").at("lockable"), bj::value(true));
  auto r = lock(d.tid, d.provider, "");  // an empty body is the same as {}
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("locked_message_seq"), quote_msg.at("seq"));
  EXPECT_EQ(str(r.json(), "locked_quote_message_id"), str(quote_msg, "id"));
  EXPECT_EQ(thread(d.tid, d.requester).at("locked_message_seq"), quote_msg.at("seq"));
  // The thread.quote_locked event names it too (read from the provider's event log).
  bj::object locked_event;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (locked_event.empty() && std::chrono::steady_clock::now() < deadline) {
    auto events = http.get("/api/agent/events?since_id=0&limit=100", d.provider.key);
    ASSERT_EQ(events.status, 200u) << events.body;
    auto page = events.json();
    for (const auto& e : page.at("events").as_array())
      if (e.at("type") == "thread.quote_locked" && e.at("subject") == bj::value(d.tid)) locked_event = e.as_object();
    if (locked_event.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(locked_event.empty()) << "no thread.quote_locked event for " << d.tid;
  EXPECT_EQ(locked_event.at("data").at("locked_message_seq"), quote_msg.at("seq"));
  EXPECT_EQ(locked_event.at("data").at("quote_message_id"), quote_msg.at("id"));
}

TEST_F(ThreadHttpTest, ARequestersQuoteIsACounterProposalThatCannotBeLocked) {
  auto d = deal();
  auto counter = message(d.tid, d.requester, "quote", "I can pay 20", [] {
    auto t = complete_terms();
    t["budget"].as_object()["amount"] = "20";
    return t;
  }());
  ASSERT_EQ(counter.status, 201u) << counter.body;  // accepted as a message
  auto counter_seq = counter.json().at("message").at("seq").as_int64();
  auto latest = counter.json().at("thread").at("latest_quote").as_object();
  EXPECT_EQ(str(latest, "sender_role"), "requester");
  EXPECT_EQ(latest.at("complete"), bj::value(true));
  EXPECT_EQ(latest.at("lockable"), bj::value(false));
  EXPECT_EQ(tx_status(d.tid, d.provider).at("terms_complete"), bj::value(false));

  // Neither the latest quote nor the counter by its seq can be locked.
  auto none = lock(d.tid, d.provider);
  expect_lock_422(none, "no_quote", "only a requester's quote");
  EXPECT_NE(none.error().find("requester's quote (seq " + std::to_string(counter_seq) + ") is a counter-proposal"),
            std::string::npos) << none.body;
  auto named = lock(d.tid, d.provider, "{\"message_seq\":" + std::to_string(counter_seq) + "}");
  expect_lock_422(named, "not_provider_quote", "the requester's quote by seq");
  EXPECT_NE(named.error().find("is the requester's quote"), std::string::npos) << named.body;
  EXPECT_EQ(str(thread(d.tid, d.requester), "status"), "negotiating");

  // The provider is told to answer with its own quote, prefilled with the requester's terms…
  auto ns = thread(d.tid, d.provider).at("quote_to_offer_next_step").as_object();
  expect_next_step(ns, "negotiating", "provider", true, "post_quote", kProviderKey, kRequesterKey, d.tid);
  EXPECT_NE(str(ns, "description").find("counter-proposal"), std::string::npos) << bj::serialize(ns);
  EXPECT_EQ(tx_status(d.tid, d.provider).at("next_action"), ns);
  auto payload = curl_payload(str(ns, "copy_paste_curl"));
  EXPECT_EQ(str(payload.at("terms").at("budget"), "amount"), "20");
  // …and posting it as is agrees to them: that quote is the provider's and locks.
  EXPECT_EQ(run_curl(str(ns, "copy_paste_curl"), kProviderKey, d.provider.key), 201);
  auto after = thread(d.tid, d.provider);
  EXPECT_EQ(str(after.at("latest_quote"), "sender_role"), "provider");
  EXPECT_EQ(str(after.at("quote_to_offer_next_step"), "action"), "lock_quote");
  auto locked = lock(d.tid, d.provider);
  ASSERT_EQ(locked.status, 200u) << locked.body;
  EXPECT_EQ(locked.json().at("locked_message_seq"), bj::value(counter_seq + 1));
  EXPECT_EQ(str(locked.json().at("locked_terms").at("budget"), "amount"), "20");
}

TEST_F(ThreadHttpTest, LockQuoteTakesTheProvidersLatestQuoteNotALaterCounter) {
  auto d = deal();
  std::string mine = post_quote(d, complete_terms());
  auto counter = message(d.tid, d.requester, "quote", "Faster?", bj::object{{"timeline", "1 day"}});
  ASSERT_EQ(counter.status, 201u) << counter.body;
  auto ns = thread(d.tid, d.provider).at("quote_to_offer_next_step").as_object();
  EXPECT_EQ(str(ns, "action"), "post_quote");  // answer the counter…
  EXPECT_NE(str(ns, "description").find("\"message_seq\":2"), std::string::npos) << bj::serialize(ns);  // …or keep mine
  auto r = lock(d.tid, d.provider);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(str(r.json(), "locked_quote_message_id"), mine);
  EXPECT_EQ(r.json().at("locked_message_seq"), bj::value(2));
  EXPECT_EQ(str(r.json().at("locked_terms"), "timeline"), "3 days");
}

TEST_F(ThreadHttpTest, LockQuoteNamesTheProvidersQuoteWithMessageSeq) {
  auto d = deal();
  std::string early = post_quote(d, complete_terms());  // seq 2
  post_quote(d, partial_terms());                        // seq 3
  ASSERT_EQ(message(d.tid, d.requester, "text", "Which one?").status, 201u);  // seq 4
  for (std::string body : {"{\"message_seq\":0}", "{\"message_seq\":\"2\"}", "{\"message_seq\":2.5}",
                           "{\"seq\":2}", "[2]"})
    expect_validation_400(lock(d.tid, d.provider, body), "lock-quote " + body);
  expect_lock_422(lock(d.tid, d.provider, R"({"message_seq":99})"), "message_not_found", "unknown seq");
  auto text = lock(d.tid, d.provider, R"({"message_seq":4})");
  expect_lock_422(text, "not_a_quote", "a text message");
  EXPECT_EQ(text.error(), "Message seq 4 is a text message, not a quote: only a quote can be locked");
  expect_lock_422(lock(d.tid, d.provider, R"({"message_seq":3})"), "missing_terms", "the incomplete quote");
  expect_lock_422(lock(d.tid, d.provider, R"({"message_seq":null})"), "missing_terms", "null = the latest");
  EXPECT_EQ(lock(d.tid, d.requester, R"({"message_seq":2})").status, 403u);
  EXPECT_EQ(str(thread(d.tid, d.provider), "status"), "negotiating");

  auto r = lock(d.tid, d.provider, R"({"message_seq":2})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(str(r.json(), "locked_quote_message_id"), early);
  EXPECT_EQ(r.json().at("locked_message_seq"), bj::value(2));
  EXPECT_EQ(str(r.json().at("locked_terms"), "timeline"), "3 days");
  EXPECT_EQ(str(r.json().at("locked_terms"), "revision_boundary"), "Two rounds of edits");
  // The same lock again is a 200 with the same thread; another quote cannot replace it.
  auto again = lock(d.tid, d.provider, R"({"message_seq":2})");
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(again.json().at("updated_at"), r.json().at("updated_at"));
  EXPECT_EQ(lock(d.tid, d.provider).status, 200u);
  auto other = lock(d.tid, d.provider, R"({"message_seq":3})");
  EXPECT_EQ(other.status, 409u) << other.body;
  EXPECT_EQ(other.error(), "Thread is quote_locked: the quote at seq 2 is already locked");
}

TEST_F(ThreadHttpTest, AfterLockQuoteAndScopeAre409TextAndMilestone201) {
  auto d = locked_deal();
  auto r = message(d.tid, d.provider, "quote", "Another quote", complete_terms());
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_FALSE(r.error().empty());
  EXPECT_EQ(message(d.tid, d.requester, "scope", "More scope").status, 409u);
  auto t = message(d.tid, d.requester, "text", "Thanks, creating the offer");
  EXPECT_EQ(t.status, 201u) << t.body;
  EXPECT_EQ(str(t.json().at("thread"), "status"), "quote_locked");
  EXPECT_EQ(message(d.tid, d.provider, "milestone", "Starting").status, 201u);
}

TEST_F(ThreadHttpTest, CloseByAMemberAndMessagesAfterCloseAre409) {
  for (bool by_provider : {false, true}) {
    auto d = deal();
    const auto& who = by_provider ? d.provider : d.requester;
    auto r = close(d.tid, who, R"({"reason":"no longer needed"})");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(str(r.json(), "status"), "closed");
    EXPECT_EQ(str(r.json(), "closed_reason"), "no longer needed");
    for (std::string type : {"text", "milestone", "scope"}) {
      auto m = message(d.tid, d.requester, type, "hello?");
      EXPECT_EQ(m.status, 409u) << type << " " << m.body;
    }
    EXPECT_EQ(message(d.tid, d.provider, "quote", "late", complete_terms()).status, 409u);
    EXPECT_EQ(lock(d.tid, d.provider).status, 409u);
    auto again = close(d.tid, by_provider ? d.requester : d.provider);
    EXPECT_EQ(again.status, 200u) << again.body;
    EXPECT_EQ(str(again.json(), "status"), "closed");
    EXPECT_EQ(thread(d.tid, d.requester).at("message_count"), bj::value(1));
  }
  // A quote_locked thread can be closed too; close validates its body.
  auto d = locked_deal();
  expect_validation_400(close(d.tid, d.requester, R"({"reason":5})"), "reason not a string", "reason");
  expect_validation_400(close(d.tid, d.requester, R"({"why":"x"})"), "unknown field", "why");
  auto r = close(d.tid, d.requester);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(str(r.json(), "status"), "closed");
}

// ================================== authorization ==================================

TEST_F(ThreadHttpTest, NonMemberGets403OnEveryThreadRouteBeforeTheBodyIsRead) {
  auto d = deal();
  auto stranger = agent("stranger");
  auto expect_403 = [&](const HttpResult& r, const std::string& what) {
    EXPECT_EQ(r.status, 403u) << what << " " << r.body;
    EXPECT_EQ(r.error(), kNotMember) << what;
  };
  expect_403(http.get(tpath(d.tid), stranger.key), "GET");
  expect_403(http.get(tpath(d.tid, "?limit=0"), stranger.key), "GET with a bad limit");
  expect_403(http.get(tpath(d.tid, "/tx-status"), stranger.key), "tx-status");
  expect_403(message(d.tid, stranger, "text", "hi"), "messages");
  for (std::string body : {"{", "[]", "", R"({"type":"bogus"})", R"({"type":"text","body":""})"}) {
    expect_403(http.post(tpath(d.tid, "/messages"), body, stranger.key), "messages " + body);
    expect_403(http.post(tpath(d.tid, "/lock-quote"), body, stranger.key), "lock-quote " + body);
    expect_403(http.post(tpath(d.tid, "/close"), body, stranger.key), "close " + body);
  }
  expect_403(lock(d.tid, stranger), "lock-quote");
  expect_403(close(d.tid, stranger), "close");
  EXPECT_EQ(str(thread(d.tid, d.requester), "status"), "negotiating");
  EXPECT_EQ(thread(d.tid, d.requester).at("message_count"), bj::value(1));
}

TEST_F(ThreadHttpTest, NonMemberGets403EvenWhenTheStateWouldBe409) {
  auto stranger = agent("stranger");
  auto locked = locked_deal();
  auto closed = deal();
  ASSERT_EQ(close(closed.tid, closed.requester).status, 200u);
  auto expect_403 = [&](const HttpResult& r, const std::string& what) {
    EXPECT_EQ(r.status, 403u) << what << " " << r.body;
    EXPECT_EQ(r.error(), kNotMember) << what;
  };
  expect_403(message(locked.tid, stranger, "quote", "q", complete_terms()), "quote on locked");
  expect_403(message(closed.tid, stranger, "text", "hi"), "text on closed");
  expect_403(lock(closed.tid, stranger), "lock on closed");
  expect_403(close(closed.tid, stranger), "close on closed");
  expect_403(http.get(tpath(closed.tid, "/tx-status"), stranger.key), "tx-status on closed");
  expect_403(http.get(tpath(locked.tid), stranger.key), "GET locked");
}

TEST_F(ThreadHttpTest, UnknownOrMalformedThreadIdIs404OnEveryRoute) {
  auto a = agent("member");
  for (std::string tid : {"thr_doesnotexist", "garbage", "thr_%20x"}) {
    for (const auto& r : {http.get(tpath(tid), a.key), http.get(tpath(tid, "/tx-status"), a.key),
                          http.post(tpath(tid, "/messages"), "{", a.key), message(tid, a, "text", "hi"),
                          http.post(tpath(tid, "/lock-quote"), "{}", a.key), http.post(tpath(tid, "/close"), "{", a.key)}) {
      EXPECT_EQ(r.status, 404u) << tid << " " << r.body;
      EXPECT_FALSE(r.error().empty()) << tid;
    }
  }
}

TEST_F(ThreadHttpTest, ListsReturnOnlyTheCallersThreadsByMode) {
  auto a = agent("a");
  auto b = agent("b");
  auto c = agent("c");
  auto stranger = agent("stranger");
  auto sa = create_service(a);
  auto sb = create_service(b);
  ASSERT_FALSE(sa.empty());
  ASSERT_FALSE(sb.empty());
  std::string a_to_b = open_thread(a, str(sb, "id"));  // a requester, b provider
  std::string b_to_a = open_thread(b, str(sa, "id"));  // b requester, a provider
  std::string c_to_b = open_thread(c, str(sb, "id"));  // not a's
  auto list = [&](const TestAgent& who, const std::string& query) {
    auto r = http.get("/api/agent/threads" + query, who.key);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.status == 200 ? r.json().as_object() : bj::object{{"threads", bj::array{}}, {"next_cursor", nullptr}};
  };
  auto out = list(a, "?mode=outgoing");
  EXPECT_EQ(ids_of(out.at("threads")), std::vector<std::string>{a_to_b});
  EXPECT_EQ(str(out.at("threads").as_array()[0], "role"), "requester");
  EXPECT_TRUE(out.at("threads").as_array()[0].as_object().contains("quote_to_offer_next_step"));
  auto in = list(a, "?mode=incoming");
  EXPECT_EQ(ids_of(in.at("threads")), std::vector<std::string>{b_to_a});
  EXPECT_EQ(str(in.at("threads").as_array()[0], "role"), "provider");
  EXPECT_EQ(ids_of(list(a, "").at("threads")), (std::vector<std::string>{b_to_a, a_to_b}));  // newest first
  EXPECT_EQ(ids_of(list(b, "?mode=incoming").at("threads")), (std::vector<std::string>{c_to_b, a_to_b}));
  EXPECT_EQ(ids_of(list(b, "?mode=outgoing").at("threads")), std::vector<std::string>{b_to_a});
  EXPECT_EQ(ids_of(list(b, "").at("threads")), (std::vector<std::string>{c_to_b, b_to_a, a_to_b}));
  EXPECT_EQ(ids_of(list(c, "").at("threads")), std::vector<std::string>{c_to_b});
  for (std::string q : {"", "?mode=outgoing", "?mode=incoming"}) {
    auto s = list(stranger, q);
    EXPECT_TRUE(s.at("threads").as_array().empty()) << q << " " << bj::serialize(s);
    EXPECT_TRUE(s.at("next_cursor").is_null());
  }
}

TEST_F(ThreadHttpTest, ListFiltersByStatus) {
  auto p = agent("provider");
  auto req = agent("requester");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  Deal locked{p, req, s, open_thread(req, str(s, "id"))};
  post_quote(locked, complete_terms());
  ASSERT_EQ(lock(locked.tid, p).status, 200u);
  std::string closed = open_thread(req, str(s, "id"));
  ASSERT_EQ(close(closed, req).status, 200u);
  std::string negotiating = open_thread(req, str(s, "id"));
  auto get = [&](const std::string& q) {
    auto r = http.get("/api/agent/threads" + q, req.key);
    EXPECT_EQ(r.status, 200u) << q << " " << r.body;
    return r.status == 200 ? ids_of(r.json().at("threads")) : std::vector<std::string>{};
  };
  EXPECT_EQ(get("?status=quote_locked"), std::vector<std::string>{locked.tid});
  EXPECT_EQ(get("?status=negotiating"), std::vector<std::string>{negotiating});
  EXPECT_EQ(get("?status=closed&mode=outgoing"), std::vector<std::string>{closed});
  EXPECT_EQ(get("?status=quote_locked,negotiating"), (std::vector<std::string>{negotiating, locked.tid}));
  EXPECT_TRUE(get("?status=offered").empty());
  EXPECT_TRUE(get("?status=quote_locked&mode=incoming").empty());
  auto pr = http.get("/api/agent/threads?mode=incoming&status=quote_locked,closed", p.key);
  ASSERT_EQ(pr.status, 200u) << pr.body;
  EXPECT_EQ(ids_of(pr.json().at("threads")), (std::vector<std::string>{closed, locked.tid}));
}

TEST_F(ThreadHttpTest, ListRejectsInvalidParameters) {
  auto a = agent("a");
  for (std::string q : {"mode=both", "mode=", "status=open", "status=negotiating,bogus", "limit=0", "limit=101",
                        "limit=abc", "cursor=not-a-cursor", "cursor=%00%01"}) {
    auto r = http.get("/api/agent/threads?" + q, a.key);
    EXPECT_EQ(r.status, 400u) << q << " " << r.body;
    EXPECT_FALSE(r.error().empty()) << q;
  }
  EXPECT_EQ(http.get("/api/agent/threads?limit=100", a.key).status, 200u);
}

TEST_F(ThreadHttpTest, ListPaginatesWithCursor) {
  auto p = agent("provider");
  auto req = agent("requester");
  auto s = create_service(p);
  ASSERT_FALSE(s.empty());
  std::vector<std::string> created;
  for (int i = 0; i < 5; ++i) created.insert(created.begin(), open_thread(req, str(s, "id")));
  int pages = 0;
  EXPECT_EQ(walk("/api/agent/threads?mode=outgoing&limit=2", "threads", req.key, &pages), created);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(walk("/api/agent/threads?limit=2", "threads", p.key), created);
}

// ============================ messages of a thread, tx-status ============================

TEST_F(ThreadHttpTest, GetThreadPaginatesMessagesOldestFirst) {
  auto d = deal();
  ASSERT_EQ(message(d.tid, d.provider, "text", "m2").status, 201u);
  ASSERT_EQ(message(d.tid, d.requester, "scope", "m3").status, 201u);
  ASSERT_EQ(message(d.tid, d.provider, "quote", "m4", partial_terms()).status, 201u);
  ASSERT_EQ(message(d.tid, d.requester, "milestone", "m5").status, 201u);
  std::vector<bj::object> all;
  std::string cursor;
  int pages = 0;
  for (; pages < 10; ++pages) {
    auto t = thread(d.tid, d.requester, "?limit=2" + (cursor.empty() ? "" : "&cursor=" + url_encode(cursor)));
    ASSERT_FALSE(t.empty());
    EXPECT_EQ(t.at("message_count"), bj::value(5));
    auto msgs = t.at("messages").as_array();
    EXPECT_LE(msgs.size(), 2u);
    for (const auto& m : msgs) all.push_back(m.as_object());
    if (t.at("next_message_cursor").is_null()) break;
    ASSERT_NE(str(t, "next_message_cursor"), cursor);
    cursor = str(t, "next_message_cursor");
  }
  EXPECT_EQ(pages + 1, 3);
  ASSERT_EQ(all.size(), 5u);
  const std::vector<std::string> bodies = {"Need a page", "m2", "m3", "m4", "m5"};
  const std::vector<std::string> types = {"text", "text", "scope", "quote", "milestone"};
  const std::vector<std::string> roles = {"requester", "provider", "requester", "provider", "requester"};
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& m = all[i];
    for (const char* k : {"id", "seq", "sender_id", "sender_role", "type", "body", "terms", "created_at"})
      EXPECT_TRUE(m.contains(k)) << k << " missing in " << bj::serialize(m);
    EXPECT_EQ(str(m, "body"), bodies[i]);
    EXPECT_EQ(str(m, "type"), types[i]);
    EXPECT_EQ(str(m, "sender_role"), roles[i]);
    EXPECT_EQ(str(m, "sender_id"), roles[i] == "provider" ? d.provider.id : d.requester.id);
    if (i > 0) {
      EXPECT_EQ(m.at("seq").as_int64(), all[i - 1].at("seq").as_int64() + 1);
    }
    if (types[i] == "quote") {
      EXPECT_TRUE(m.at("terms").is_object());
    } else {
      EXPECT_TRUE(m.at("terms").is_null()) << bj::serialize(m);
    }
  }
  // Default page holds all five; bad limit/cursor are 400.
  EXPECT_EQ(thread(d.tid, d.provider).at("messages").as_array().size(), 5u);
  EXPECT_TRUE(thread(d.tid, d.provider).at("next_message_cursor").is_null());
  for (std::string q : {"?limit=0", "?limit=101", "?limit=x", "?cursor=not-a-cursor"})
    EXPECT_EQ(http.get(tpath(d.tid, q), d.provider.key).status, 400u) << q;
}

TEST_F(ThreadHttpTest, TxStatusReportsTheDocumentedFieldsForEachStatus) {
  auto d = deal();
  auto check_fields = [&](const bj::object& s, const std::string& status, const std::string& role) {
    for (const char* k : {"thread_id", "status", "role", "service_id", "terms_complete", "locked_terms",
                          "quote_locked_at", "offer", "contract", "next_action", "proof_boundary"})
      EXPECT_TRUE(s.contains(k)) << k << " missing in " << bj::serialize(s);
    EXPECT_EQ(str(s, "thread_id"), d.tid);
    EXPECT_EQ(str(s, "status"), status);
    EXPECT_EQ(str(s, "role"), role);
    EXPECT_EQ(str(s, "service_id"), str(d.service, "id"));
    EXPECT_TRUE(s.at("offer").is_null());
    EXPECT_TRUE(s.at("contract").is_null());
    EXPECT_TRUE(s.at("proof_boundary").is_string() && !s.at("proof_boundary").as_string().empty());
  };
  auto same_as_thread = [&](const bj::object& s, const TestAgent& who) {
    EXPECT_EQ(s.at("next_action"), thread(d.tid, who).at("quote_to_offer_next_step"));
  };
  // negotiating, no quote.
  auto s = tx_status(d.tid, d.provider);
  check_fields(s, "negotiating", "provider");
  EXPECT_EQ(s.at("terms_complete"), bj::value(false));
  EXPECT_TRUE(s.at("locked_terms").is_null());
  EXPECT_TRUE(s.at("quote_locked_at").is_null());
  EXPECT_EQ(str(s.at("next_action"), "action"), "post_quote");
  same_as_thread(s, d.provider);
  s = tx_status(d.tid, d.requester);
  check_fields(s, "negotiating", "requester");
  EXPECT_EQ(str(s.at("next_action"), "action"), "post_quote");
  EXPECT_EQ(s.at("next_action").at("you_act"), bj::value(false));
  same_as_thread(s, d.requester);
  // negotiating, incomplete quote.
  post_quote(d, partial_terms());
  s = tx_status(d.tid, d.provider);
  EXPECT_EQ(s.at("terms_complete"), bj::value(false));
  EXPECT_EQ(str(s.at("next_action"), "action"), "post_quote");
  // negotiating, complete quote.
  post_quote(d, complete_terms());
  s = tx_status(d.tid, d.provider);
  check_fields(s, "negotiating", "provider");
  EXPECT_EQ(s.at("terms_complete"), bj::value(true));
  EXPECT_EQ(str(s.at("next_action"), "action"), "lock_quote");
  same_as_thread(s, d.provider);
  // quote_locked.
  auto locked = lock(d.tid, d.provider);
  ASSERT_EQ(locked.status, 200u) << locked.body;
  s = tx_status(d.tid, d.requester);
  check_fields(s, "quote_locked", "requester");
  EXPECT_EQ(s.at("terms_complete"), bj::value(true));
  EXPECT_EQ(s.at("locked_terms"), locked.json().at("locked_terms"));
  EXPECT_EQ(s.at("quote_locked_at"), locked.json().at("quote_locked_at"));
  EXPECT_EQ(str(s.at("next_action"), "action"), "create_offer");
  EXPECT_EQ(s.at("next_action").at("you_act"), bj::value(true));
  same_as_thread(s, d.requester);
  EXPECT_EQ(str(tx_status(d.tid, d.provider).at("next_action"), "action"), "create_offer");
  // closed.
  ASSERT_EQ(close(d.tid, d.provider).status, 200u);
  s = tx_status(d.tid, d.requester);
  check_fields(s, "closed", "requester");
  EXPECT_EQ(str(s.at("next_action"), "action"), "none");
  EXPECT_EQ(s.at("next_action").at("you_act"), bj::value(false));
  EXPECT_TRUE(absent_or_null(s.at("next_action").as_object(), "copy_paste_curl")) << bj::serialize(s);
  same_as_thread(s, d.requester);
}

// =============================== quote_to_offer_next_step ===============================

TEST_F(ThreadHttpTest, NextStepNegotiatingWithoutQuoteTellsTheProviderToPostAQuote) {
  auto d = deal();
  auto pt = thread(d.tid, d.provider);
  auto ns = pt.at("quote_to_offer_next_step").as_object();
  expect_next_step(ns, "negotiating", "provider", true, "post_quote", kProviderKey, kRequesterKey, d.tid);
  EXPECT_EQ(str(ns, "endpoint"), "/api/agent/threads/" + d.tid + "/messages");
  std::string curl = str(ns, "copy_paste_curl");
  EXPECT_EQ(curl.rfind("curl -sS -X POST " + base() + "/api/agent/threads/" + d.tid + "/messages ", 0), 0u) << curl;
  EXPECT_NE(curl.find("-H 'content-type: application/json'"), std::string::npos) << curl;
  EXPECT_NE(curl.find("-H 'x-api-key: <PROVIDER_AGENT_API_KEY>'"), std::string::npos) << curl;
  EXPECT_EQ(curl.find(d.provider.key), std::string::npos) << "never the real key";
  // The payload is a quote prefilled from the service, with <…> for what it cannot know.
  auto payload = curl_payload(curl);
  ASSERT_TRUE(payload.is_object()) << curl;
  EXPECT_EQ(str(payload, "type"), "quote");
  EXPECT_TRUE(payload.at("body").is_string());
  auto terms = payload.at("terms").as_object();
  EXPECT_EQ(terms.at("deliverable"), d.service.at("deliverable"));
  EXPECT_EQ(terms.at("budget"), d.service.at("price"));
  EXPECT_EQ(terms.at("timeline"), d.service.at("timeline"));
  for (const char* unknown : {"acceptance_criteria", "revision_boundary"}) {
    std::string v = str(terms, unknown);
    EXPECT_TRUE(v.starts_with("<") && v.ends_with(">")) << unknown << ": " << v;
  }
  // The same row on the requester's side: a monitor curl.
  auto rns = thread(d.tid, d.requester).at("quote_to_offer_next_step").as_object();
  expect_next_step(rns, "negotiating", "provider", false, "post_quote", kRequesterKey, kProviderKey, d.tid);
  // Run them.
  EXPECT_EQ(run_curl(str(rns, "monitor_curl"), kRequesterKey, d.requester.key), 200);
  EXPECT_EQ(run_curl(curl, kProviderKey, d.provider.key), 201);
  auto after = thread(d.tid, d.provider);
  EXPECT_EQ(after.at("message_count"), bj::value(2));
  EXPECT_EQ(str(after.at("latest_quote").at("terms"), "deliverable"), str(d.service, "deliverable"));
}

TEST_F(ThreadHttpTest, NextStepNegotiatingWithIncompleteQuoteIsStillPostQuote) {
  auto d = deal();
  post_quote(d, partial_terms());
  auto ns = thread(d.tid, d.provider).at("quote_to_offer_next_step").as_object();
  expect_next_step(ns, "negotiating", "provider", true, "post_quote", kProviderKey, kRequesterKey, d.tid);
  EXPECT_EQ(run_curl(str(ns, "copy_paste_curl"), kProviderKey, d.provider.key), 201);
}

TEST_F(ThreadHttpTest, NextStepNegotiatingWithCompleteQuoteTellsTheProviderToLock) {
  auto d = deal();
  post_quote(d, complete_terms());
  auto ns = thread(d.tid, d.provider).at("quote_to_offer_next_step").as_object();
  expect_next_step(ns, "negotiating", "provider", true, "lock_quote", kProviderKey, kRequesterKey, d.tid);
  EXPECT_EQ(str(ns, "endpoint"), "/api/agent/threads/" + d.tid + "/lock-quote");
  EXPECT_EQ(str(ns, "copy_paste_curl"),
            "curl -sS -X POST " + base() + "/api/agent/threads/" + d.tid +
                "/lock-quote -H 'content-type: application/json' -H 'x-api-key: <PROVIDER_AGENT_API_KEY>' -d '{}'");
  auto rns = thread(d.tid, d.requester).at("quote_to_offer_next_step").as_object();
  expect_next_step(rns, "negotiating", "provider", false, "lock_quote", kRequesterKey, kProviderKey, d.tid);
  EXPECT_EQ(run_curl(str(rns, "monitor_curl"), kRequesterKey, d.requester.key), 200);
  EXPECT_EQ(run_curl(str(ns, "copy_paste_curl"), kProviderKey, d.provider.key), 200);
  EXPECT_EQ(str(thread(d.tid, d.requester), "status"), "quote_locked");
}

TEST_F(ThreadHttpTest, NextStepQuoteLockedTellsTheRequesterToCreateTheOffer) {
  auto d = locked_deal();
  auto ns = thread(d.tid, d.requester).at("quote_to_offer_next_step").as_object();
  expect_next_step(ns, "quote_locked", "requester", true, "create_offer", kRequesterKey, kProviderKey, d.tid);
  EXPECT_EQ(str(ns, "endpoint"), "/api/agent/threads/" + d.tid + "/create-offer");
  // Its exact text, then run for real: offer-service creates the offer (201).
  EXPECT_EQ(str(ns, "copy_paste_curl"),
            "curl -sS -X POST " + base() + "/api/agent/threads/" + d.tid +
                "/create-offer -H 'content-type: application/json' -H 'x-api-key: <REQUESTER_AGENT_API_KEY>' -d '{}'");
  auto pns = thread(d.tid, d.provider).at("quote_to_offer_next_step").as_object();
  expect_next_step(pns, "quote_locked", "requester", false, "create_offer", kProviderKey, kRequesterKey, d.tid);
  EXPECT_EQ(run_curl(str(pns, "monitor_curl"), kProviderKey, d.provider.key), 200);
  EXPECT_EQ(run_curl(str(ns, "copy_paste_curl"), kRequesterKey, d.requester.key), 201);
  auto offers = http.get("/api/agent/offers?mode=outgoing", d.requester.key);
  ASSERT_EQ(offers.status, 200u) << offers.body;
  ASSERT_EQ(offers.json().at("offers").as_array().size(), 1u) << offers.body;
  EXPECT_EQ(str(offers.json().at("offers").as_array()[0], "thread_id"), d.tid);
  EXPECT_EQ(str(offers.json().at("offers").as_array()[0], "status"), "open");
}

TEST_F(ThreadHttpTest, NextStepOnListRowsMatchesTheThread) {
  auto d = locked_deal();
  auto out = http.get("/api/agent/threads?mode=outgoing", d.requester.key);
  ASSERT_EQ(out.status, 200u) << out.body;
  ASSERT_EQ(out.json().at("threads").as_array().size(), 1u);
  EXPECT_EQ(out.json().at("threads").as_array()[0].at("quote_to_offer_next_step"),
            thread(d.tid, d.requester).at("quote_to_offer_next_step"));
  auto in = http.get("/api/agent/threads?mode=incoming", d.provider.key);
  ASSERT_EQ(in.status, 200u) << in.body;
  ASSERT_EQ(in.json().at("threads").as_array().size(), 1u);
  auto pns = in.json().at("threads").as_array()[0].at("quote_to_offer_next_step").as_object();
  EXPECT_EQ(bj::value(pns), thread(d.tid, d.provider).at("quote_to_offer_next_step"));
  EXPECT_EQ(run_curl(str(pns, "monitor_curl"), kProviderKey, d.provider.key), 200);
}

TEST_F(ThreadHttpTest, NextStepClosedIsNone) {
  auto d = deal();
  ASSERT_EQ(close(d.tid, d.requester).status, 200u);
  for (const auto* who : {&d.requester, &d.provider}) {
    auto ns = thread(d.tid, *who).at("quote_to_offer_next_step").as_object();
    EXPECT_EQ(str(ns, "status"), "closed");
    EXPECT_EQ(str(ns, "action"), "none");
    EXPECT_EQ(ns.at("you_act"), bj::value(false));
    EXPECT_TRUE(absent_or_null(ns, "copy_paste_curl")) << bj::serialize(ns);
  }
}

}  // namespace
}  // namespace al::testing
