// job-service over HTTP against the real embedded stack: every row of seed 001's tables, the
// 401 → 400 → 403 → 409 order, idempotent repeats, concurrency, the client side and bad input.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/util/time_format.hpp"
#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;
using boost::beast::http::verb;

const std::string kToken = "0x" + std::string(40, '1');
const std::string kRecipient = "0x" + std::string(40, '2');

std::string tx_hash(int n) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "0x%064x", n);
  return buf;
}

class JobHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    clock_ = new TestClock(SystemClock::instance().now_ms());
    stack_ = new TestStack({{"job.agent_wait_ms", "3000"}, {"job.expiry_sweep_ms", "20"}}, clock_);
    client_ = new TestAgent(stack_->signup("client"));
    provider_ = new TestAgent(stack_->signup("provider"));
    stranger_ = new TestAgent(stack_->signup("stranger"));
    evaluator_ = new TestAgent(stack_->signup("evaluator"));
  }
  static void TearDownTestSuite() {
    delete stack_;
    delete clock_;
    delete client_;
    delete provider_;
    delete stranger_;
    delete evaluator_;
  }

  HttpClient http{stack_->port()};

  long long create_job(const std::string& budget = "10", std::optional<std::string> evaluator = std::nullopt,
                       std::optional<std::string> expires = std::nullopt) {
    bj::object body{{"providerId", provider_->id}, {"serviceRequirement", "translate a text"},
                    {"budget", budget}, {"tokenAddress", kToken}};
    if (evaluator) body["evaluatorId"] = *evaluator;
    if (expires) body["expiredAt"] = *expires;
    auto r = http.post("/api/agents/jobs", body, client_->key);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.json().at("id").as_int64();
  }
  bj::object job(long long id) {
    auto r = http.get("/api/agents/jobs/" + std::to_string(id), client_->key);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.json().as_object();
  }
  int phase(long long id) { return static_cast<int>(job(id).at("phase").as_int64()); }
  HttpResult provider(long long id, const std::string& action, const std::string& body, const std::string& key = "") {
    return http.post("/api/agents/providers/jobs/" + std::to_string(id) + "/" + action, body,
                     key.empty() ? provider_->key : key);
  }
  HttpResult escrow(long long id, const std::string& hash, const std::string& key = "") {
    return http.post("/api/agents/jobs/" + std::to_string(id) + "/escrow", bj::object{{"txHash", hash}},
                     key.empty() ? client_->key : key);
  }
  // A job in NEGOTIATION with escrow verified.
  long long negotiating_job() {
    long long id = create_job();
    EXPECT_EQ(provider(id, "accept", R"({"accept":true})").status, 204u);
    EXPECT_EQ(escrow(id, tx_hash(next_hash_++)).status, 200u);
    return id;
  }
  long long transaction_job() {
    long long id = negotiating_job();
    EXPECT_EQ(provider(id, "negotiation", R"({"accept":true})").status, 204u);
    return id;
  }

  static inline TestClock* clock_ = nullptr;
  static inline TestStack* stack_ = nullptr;
  static inline TestAgent* client_ = nullptr;
  static inline TestAgent* provider_ = nullptr;
  static inline TestAgent* stranger_ = nullptr;
  static inline TestAgent* evaluator_ = nullptr;
  static inline int next_hash_ = 1000;
};

// --- POST /api/agents/providers/jobs/[id]/accept ---

TEST_F(JobHttpTest, AcceptMovesRequestToNegotiation) {
  long long id = create_job();
  auto r = provider(id, "accept", R"({"accept":true})");
  EXPECT_EQ(r.status, 204u);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(phase(id), 1);
}

TEST_F(JobHttpTest, RejectMovesRequestToRejectedWithClaimPending) {
  long long id = create_job();
  EXPECT_EQ(provider(id, "accept", R"({"accept":false,"reason":"too busy"})").status, 204u);
  auto j = job(id);
  EXPECT_EQ(j.at("phase").as_int64(), 5);
  EXPECT_EQ(j.at("claimStatus").as_string(), "pending");
  EXPECT_EQ(j.at("rejectionReason").as_string(), "too busy");
}

TEST_F(JobHttpTest, AcceptIsIdempotentOncePastRequest) {
  long long id = create_job();
  EXPECT_EQ(provider(id, "accept", R"({"accept":true})").status, 204u);
  EXPECT_EQ(provider(id, "accept", R"({"accept":true})").status, 204u);
  EXPECT_EQ(provider(id, "accept", R"({"accept":false})").status, 204u);  // past phase 0: still 204, no change
  auto j = job(id);
  EXPECT_EQ(j.at("phase").as_int64(), 1);
  EXPECT_EQ(j.at("version").as_int64(), 2);  // created + accepted, nothing more
}

TEST_F(JobHttpTest, InvalidJobIdIs400) {
  for (std::string bad : {"abc", "-1", "0", "1.5", "99999999999999999999", "9223372036854775808", "1e3", "%20"}) {
    auto r = http.post("/api/agents/providers/jobs/" + bad + "/accept", R"({"accept":true})", provider_->key);
    EXPECT_EQ(r.status, 400u) << bad;
    EXPECT_EQ(r.error(), "Invalid job ID") << bad;
  }
  // The largest int64 is a valid id that simply does not exist.
  auto r = provider(9223372036854775807LL, "accept", R"({"accept":true})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.error(), "Job not found or not in REQUEST phase");
}

TEST_F(JobHttpTest, AcceptByNonProviderIs403) {
  long long id = create_job();
  for (const auto* who : {client_, stranger_}) {
    auto r = provider(id, "accept", R"({"accept":true})", who->key);
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(r.error(), "Not authorized to act on this job");
  }
  EXPECT_EQ(phase(id), 0);
}

TEST_F(JobHttpTest, AcceptOnMissingJobIs409) {
  auto r = provider(987654321, "accept", R"({"accept":true})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.error(), "Job not found or not in REQUEST phase");
}

// --- negotiation ---

TEST_F(JobHttpTest, NegotiationNeedsEscrowWhenBudgetPositive) {
  long long id = create_job("10");
  ASSERT_EQ(provider(id, "accept", R"({"accept":true})").status, 204u);
  auto r = provider(id, "negotiation", R"({"accept":true})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.error(), "Escrow not verified. Client must deposit escrow before work begins.");
  EXPECT_EQ(phase(id), 1);
  ASSERT_EQ(escrow(id, tx_hash(next_hash_++)).status, 200u);
  EXPECT_EQ(provider(id, "negotiation", R"({"accept":true,"content":"agreed"})").status, 204u);
  auto j = job(id);
  EXPECT_EQ(j.at("phase").as_int64(), 2);
  ASSERT_EQ(j.at("memos").as_array().size(), 1u);
  EXPECT_EQ(j.at("memos").as_array()[0].at("content").as_string(), "agreed");
}

TEST_F(JobHttpTest, NegotiationZeroBudgetNeedsNoEscrow) {
  long long id = create_job("0");
  ASSERT_EQ(provider(id, "accept", R"({"accept":true})").status, 204u);
  EXPECT_EQ(provider(id, "negotiation", R"({"accept":true})").status, 204u);
  EXPECT_EQ(phase(id), 2);
}

TEST_F(JobHttpTest, NegotiationRejectMovesToRejected) {
  long long id = create_job();
  ASSERT_EQ(provider(id, "accept", R"({"accept":true})").status, 204u);
  EXPECT_EQ(provider(id, "negotiation", R"({"accept":false,"content":"no deal"})").status, 204u);
  auto j = job(id);
  EXPECT_EQ(j.at("phase").as_int64(), 5);
  EXPECT_EQ(j.at("claimStatus").as_string(), "pending");
}

TEST_F(JobHttpTest, NegotiationWrongPhaseOrMissingIs409AndNonProvider403) {
  long long id = create_job();  // phase 0
  auto r = provider(id, "negotiation", R"({"accept":true})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.error(), "Job not found or not in NEGOTIATION phase");
  r = provider(987654321, "negotiation", R"({"accept":true})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.error(), "Job not found or not in NEGOTIATION phase");
  r = provider(id, "negotiation", R"({"accept":true})", client_->key);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.error(), "Not authorized to act on this job");
}

// --- requirement ---

TEST_F(JobHttpTest, RequirementInNegotiationAdvancesAtomically) {
  long long id = negotiating_job();
  EXPECT_EQ(provider(id, "requirement", R"({"content":"please send the source file"})").status, 204u);
  auto j = job(id);
  EXPECT_EQ(j.at("phase").as_int64(), 2);
  auto memos = j.at("memos").as_array();
  ASSERT_EQ(memos.size(), 1u);
  EXPECT_EQ(memos[0].at("type").as_int64(), 0);
  EXPECT_EQ(memos[0].at("requiresApproval").as_bool(), false);
  EXPECT_TRUE(memos[0].at("payableDetail").is_null());
}

TEST_F(JobHttpTest, RequirementWithPayableDetailIsPayableRequest) {
  long long id = transaction_job();
  bj::object body{{"content", "extra pages cost more"},
                  {"payableDetail", bj::object{{"amount", 2.5}, {"tokenAddress", kToken}, {"recipient", kRecipient}}}};
  EXPECT_EQ(provider(id, "requirement", bj::serialize(body)).status, 204u);
  auto j = job(id);
  EXPECT_EQ(j.at("phase").as_int64(), 2);  // stays in TRANSACTION
  bj::object memo = j.at("memos").as_array().back().as_object();
  EXPECT_EQ(memo.at("type").as_int64(), 6);
  EXPECT_EQ(memo.at("typeName").as_string(), "PAYABLE_REQUEST");
  EXPECT_EQ(memo.at("requiresApproval").as_bool(), true);
  EXPECT_EQ(memo.at("status").as_string(), "pending");
  EXPECT_EQ(memo.at("payableDetail").at("amount").as_string(), "2.5");
  EXPECT_EQ(memo.at("payableDetail").at("recipient").as_string(), kRecipient);
}

TEST_F(JobHttpTest, RequirementErrors) {
  long long id = create_job();
  ASSERT_EQ(provider(id, "accept", R"({"accept":true})").status, 204u);
  auto r = provider(id, "requirement", R"({"content":""})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.error(), "Validation error");
  r = provider(id, "requirement", R"({"content":"x"})", stranger_->key);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.error(), "Not authorized to act on this job");
  r = provider(id, "requirement", R"({"content":"x"})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.error(), "Escrow not verified. Client must deposit escrow before work begins.");
  long long fresh = create_job();  // phase 0
  r = provider(fresh, "requirement", R"({"content":"x"})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.error(), "Job not found or not in NEGOTIATION/TRANSACTION phase");
  r = provider(987654321, "requirement", R"({"content":"x"})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.error(), "Job not found or not in NEGOTIATION/TRANSACTION phase");
}

// --- deliverable ---

TEST_F(JobHttpTest, DeliverableMovesToEvaluationAndIsIdempotent) {
  long long id = transaction_job();
  EXPECT_EQ(provider(id, "deliverable", R"({"deliverable":{"type":"url","value":{"href":"https://example.test/x"}}})").status, 204u);
  auto j = job(id);
  EXPECT_EQ(j.at("phase").as_int64(), 3);
  // Seed: structured deliverables are JSON-serialized before storage.
  auto stored = bj::parse(j.at("deliverable").as_string());
  EXPECT_EQ(stored.at("type").as_string(), "url");
  EXPECT_EQ(provider(id, "deliverable", R"({"deliverable":"again"})").status, 204u);
  EXPECT_EQ(job(id).at("deliverable"), j.at("deliverable"));
  EXPECT_EQ(job(id).at("version"), j.at("version"));
}

TEST_F(JobHttpTest, DeliverableErrors) {
  long long id = negotiating_job();  // phase 1
  auto r = provider(id, "deliverable", R"({"deliverable":"x"})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.error(), "Job not found or not in TRANSACTION phase");
  r = provider(id, "deliverable", R"({"deliverable":"x"})", client_->key);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.error(), "Not authorized to act on this job");
  for (std::string bad : {R"({})", R"({"deliverable":""})", R"({"deliverable":5})", R"({"deliverable":{"value":1}})"}) {
    r = provider(id, "deliverable", bad);
    EXPECT_EQ(r.status, 400u) << bad;
  }
}

// --- the order 401 → 400 → 403 → 409 ---

TEST_F(JobHttpTest, ErrorOrder) {
  long long id = create_job();  // phase 0: negotiation would be a 409 for the provider
  std::string path = "/api/agents/providers/jobs/" + std::to_string(id) + "/negotiation";
  // 401 beats everything: no key / bad key with a bad id and a bad body.
  EXPECT_EQ(http.post("/api/agents/providers/jobs/abc/negotiation", "{", "").status, 401u);
  EXPECT_EQ(http.post("/api/agents/providers/jobs/abc/negotiation", "{", "alk.k1.agt_x.bad").status, 401u);
  // 400 beats 403: a stranger with a bad id or a bad body.
  EXPECT_EQ(http.post("/api/agents/providers/jobs/abc/negotiation", R"({"accept":true})", stranger_->key).status, 400u);
  EXPECT_EQ(http.post(path, R"({"accept":"yes"})", stranger_->key).status, 400u);
  // 403 beats 409: a stranger in the wrong phase.
  auto r = http.post(path, R"({"accept":true})", stranger_->key);
  EXPECT_EQ(r.status, 403u);
  // And the provider gets the 409.
  r = http.post(path, R"({"accept":true})", provider_->key);
  EXPECT_EQ(r.status, 409u);
}

TEST_F(JobHttpTest, MissingOrInvalidKeyIs401) {
  auto r = http.post("/api/agents/jobs", "{}", "");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.error(), "Missing x-api-key header");
  r = http.get("/api/agents/jobs", "alk.k1." + client_->id + ".forged");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.error(), "Invalid API key");
}

// --- concurrency: one transition wins ---

TEST_F(JobHttpTest, ConcurrentTransitionsNeverBothWin) {
  for (int round = 0; round < 5; ++round) {
    long long id = create_job();
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        HttpClient c(stack_->port());
        auto r = c.post("/api/agents/providers/jobs/" + std::to_string(id) + "/accept",
                        t % 2 ? R"({"accept":true})" : R"({"accept":false})", provider_->key);
        if (r.status == 204) ++ok;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), 8);  // all 204 (the seed's idempotency) ...
    auto j = job(id);
    EXPECT_EQ(j.at("version").as_int64(), 2);  // ... but exactly one transition happened
    int p = static_cast<int>(j.at("phase").as_int64());
    EXPECT_TRUE(p == 1 || p == 5);
  }
  // Concurrent negotiation accept/reject: exactly one 204, the others 409.
  long long id = negotiating_job();
  std::atomic<int> ok{0}, conflict{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      HttpClient c(stack_->port());
      auto r = c.post("/api/agents/providers/jobs/" + std::to_string(id) + "/negotiation",
                      t % 2 ? R"({"accept":true})" : R"({"accept":false})", provider_->key);
      if (r.status == 204) ++ok;
      if (r.status == 409) ++conflict;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflict.load(), 5);
}

// --- client side ---

TEST_F(JobHttpTest, CreateJobShapeAndOperationIdIsIdempotent) {
  bj::object body{{"providerId", provider_->id}, {"serviceRequirement", "summarize"}, {"budget", 12.25},
                  {"tokenAddress", kToken}, {"clientOperationId", "op-42"}};
  auto a = http.post("/api/agents/jobs", body, client_->key);
  ASSERT_EQ(a.status, 201u) << a.body;
  auto j = a.json().as_object();
  EXPECT_TRUE(j.at("id").is_int64());
  EXPECT_EQ(j.at("phase").as_int64(), 0);
  EXPECT_EQ(j.at("clientId").as_string(), client_->id);
  EXPECT_EQ(j.at("providerId").as_string(), provider_->id);
  EXPECT_EQ(j.at("budget").as_string(), "12.25");
  EXPECT_EQ(j.at("escrowVerified").as_bool(), false);
  EXPECT_EQ(j.at("claimStatus").as_string(), "none");
  EXPECT_TRUE(j.at("memos").as_array().empty());
  for (const char* key : {"evaluatorId", "tokenAddress", "deliverable", "expiredAt", "createdAt", "updatedAt"})
    EXPECT_TRUE(j.contains(key)) << key;
  auto b = http.post("/api/agents/jobs", body, client_->key);
  ASSERT_EQ(b.status, 201u);
  EXPECT_EQ(b.json().at("id"), j.at("id"));
  // The same operation id with other parameters is refused, not answered with the first job.
  body["budget"] = "99";
  auto c = http.post("/api/agents/jobs", body, client_->key);
  ASSERT_EQ(c.status, 422u) << c.body;
  EXPECT_EQ(c.json().at("code").as_string(), "client_operation_reused");
  EXPECT_EQ(c.json().at("details").as_array().at(0).at("field").as_string(), "clientOperationId");
}

TEST_F(JobHttpTest, CreateJobValidation) {
  auto r = http.post("/api/agents/jobs", bj::object{{"providerId", provider_->id}}, client_->key);
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.error(), "Validation error");
  EXPECT_GE(r.json().at("details").as_array().size(), 3u);  // every missing field named
  r = http.post("/api/agents/jobs",
                bj::object{{"providerId", provider_->id}, {"serviceRequirement", "x"}, {"budget", "-1"}, {"tokenAddress", kToken}},
                client_->key);
  EXPECT_EQ(r.status, 400u);
  r = http.post("/api/agents/jobs",
                bj::object{{"providerId", client_->id}, {"serviceRequirement", "x"}, {"budget", "1"}, {"tokenAddress", kToken}},
                client_->key);
  EXPECT_EQ(r.status, 400u);  // hiring yourself
  r = http.post("/api/agents/jobs",
                bj::object{{"providerId", "agt_nobody"}, {"serviceRequirement", "x"}, {"budget", "1"}, {"tokenAddress", kToken}},
                client_->key);
  EXPECT_EQ(r.status, 422u);
  EXPECT_NE(r.error().find("providerId"), std::string::npos);
}

TEST_F(JobHttpTest, GetJobPartiesOnly) {
  long long id = create_job();
  EXPECT_EQ(http.get("/api/agents/jobs/" + std::to_string(id), provider_->key).status, 200u);
  auto r = http.get("/api/agents/jobs/" + std::to_string(id), stranger_->key);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(http.get("/api/agents/jobs/987654321", client_->key).status, 404u);
  EXPECT_EQ(http.get("/api/agents/jobs/x1", client_->key).status, 400u);
}

TEST_F(JobHttpTest, ListJobsByRolePhaseWithCursor) {
  auto client = stack_->signup("lister");
  HttpClient c(stack_->port());
  std::vector<long long> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = c.post("/api/agents/jobs",
                    bj::object{{"providerId", provider_->id}, {"serviceRequirement", "job " + std::to_string(i)},
                               {"budget", "1"}, {"tokenAddress", kToken}},
                    client.key);
    ASSERT_EQ(r.status, 201u) << r.body;
    ids.push_back(r.json().at("id").as_int64());
  }
  ASSERT_EQ(provider(ids[0], "accept", R"({"accept":true})").status, 204u);
  std::vector<long long> seen;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    auto r = c.get("/api/agents/jobs?role=client&limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor), client.key);
    ASSERT_EQ(r.status, 200u) << r.body;
    auto page_json = r.json();
    for (const auto& j : page_json.at("jobs").as_array()) seen.push_back(j.at("id").as_int64());
    auto next = page_json.at("nextCursor");
    if (next.is_null()) break;
    cursor = std::string(next.as_string());
  }
  EXPECT_EQ(seen, (std::vector<long long>{ids[4], ids[3], ids[2], ids[1], ids[0]}));
  auto filtered = c.get("/api/agents/jobs?role=client&phase=1", client.key).json();
  ASSERT_EQ(filtered.at("jobs").as_array().size(), 1u);
  EXPECT_EQ(filtered.at("jobs").as_array()[0].at("id").as_int64(), ids[0]);
  EXPECT_EQ(c.get("/api/agents/jobs?role=provider", client.key).json().at("jobs").as_array().size(), 0u);
  EXPECT_EQ(c.get("/api/agents/jobs?role=boss", client.key).status, 400u);
  EXPECT_EQ(c.get("/api/agents/jobs?phase=9", client.key).status, 400u);
  EXPECT_EQ(c.get("/api/agents/jobs?limit=1000", client.key).status, 400u);
  EXPECT_EQ(c.get("/api/agents/jobs?color=red", client.key).status, 400u);
}

TEST_F(JobHttpTest, EscrowRules) {
  long long id = create_job();
  EXPECT_EQ(escrow(id, tx_hash(1), provider_->key).status, 403u);
  EXPECT_EQ(escrow(id, tx_hash(1), stranger_->key).status, 403u);
  EXPECT_EQ(escrow(id, "0x1234").status, 400u);
  auto zero = escrow(id, tx_hash(0));  // the sandbox reports the all-zero hash as not found
  EXPECT_EQ(zero.status, 409u);
  EXPECT_NE(zero.error().find("not found"), std::string::npos);
  auto ok = escrow(id, tx_hash(next_hash_));
  ASSERT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.json().at("escrowVerified").as_bool(), true);
  EXPECT_EQ(ok.json().at("escrow").at("verifiedBy").as_string(), "sandbox");
  EXPECT_EQ(escrow(id, tx_hash(next_hash_)).status, 200u);  // same hash again: idempotent
  long long other = create_job();
  auto reuse = escrow(other, tx_hash(next_hash_));  // one tx pays one job, ever
  EXPECT_EQ(reuse.status, 409u);
  ++next_hash_;
}

TEST_F(JobHttpTest, EvaluateByClientOrDesignatedEvaluator) {
  long long id = transaction_job();
  ASSERT_EQ(provider(id, "deliverable", R"({"deliverable":"done"})").status, 204u);
  std::string path = "/api/agents/jobs/" + std::to_string(id) + "/evaluate";
  EXPECT_EQ(http.post(path, R"({"accept":true})", provider_->key).status, 403u);
  EXPECT_EQ(http.post(path, R"({"accept":true})", client_->key).status, 204u);
  EXPECT_EQ(phase(id), 4);
  EXPECT_EQ(http.post(path, R"({"accept":true})", client_->key).status, 204u);   // idempotent
  EXPECT_EQ(http.post(path, R"({"accept":false})", client_->key).status, 409u);  // cannot flip

  // With an evaluator, the evaluator decides.
  bj::object body{{"providerId", provider_->id}, {"serviceRequirement", "x"}, {"budget", "0"},
                  {"tokenAddress", kToken}, {"evaluatorId", evaluator_->id}};
  auto r = http.post("/api/agents/jobs", body, client_->key);
  ASSERT_EQ(r.status, 201u) << r.body;
  long long e = r.json().at("id").as_int64();
  ASSERT_EQ(provider(e, "accept", R"({"accept":true})").status, 204u);
  ASSERT_EQ(provider(e, "negotiation", R"({"accept":true})").status, 204u);
  ASSERT_EQ(provider(e, "deliverable", R"({"deliverable":"d"})").status, 204u);
  std::string epath = "/api/agents/jobs/" + std::to_string(e) + "/evaluate";
  EXPECT_EQ(http.post(epath, R"({"accept":false,"reason":"x"})", client_->key).status, 403u);
  EXPECT_EQ(http.get("/api/agents/jobs/" + std::to_string(e), evaluator_->key).status, 200u);
  EXPECT_EQ(http.post(epath, R"({"accept":false,"reason":"missing part"})", evaluator_->key).status, 204u);
  auto j = job(e);
  EXPECT_EQ(j.at("phase").as_int64(), 5);
  EXPECT_EQ(j.at("claimStatus").as_string(), "pending");
}

TEST_F(JobHttpTest, PayableMemoApproval) {
  long long id = transaction_job();
  bj::object body{{"content", "pay the stock photo"},
                  {"payableDetail", bj::object{{"amount", "3"}, {"tokenAddress", kToken}, {"recipient", kRecipient}}}};
  ASSERT_EQ(provider(id, "requirement", bj::serialize(body)).status, 204u);
  long long memo = job(id).at("memos").as_array().back().at("id").as_int64();
  std::string path = "/api/agents/jobs/" + std::to_string(id) + "/memos/" + std::to_string(memo) + "/approve";
  EXPECT_EQ(http.post(path, R"({"approve":true})", provider_->key).status, 403u);
  EXPECT_EQ(http.post(path, R"({"approve":"yes"})", client_->key).status, 400u);
  EXPECT_EQ(http.post(path, R"({"approve":true,"reason":"fine"})", client_->key).status, 204u);
  EXPECT_EQ(job(id).at("memos").as_array().back().at("status").as_string(), "approved");
  EXPECT_EQ(http.post(path, R"({"approve":true})", client_->key).status, 204u);
  EXPECT_EQ(http.post(path, R"({"approve":false})", client_->key).status, 409u);
  auto missing = http.post("/api/agents/jobs/" + std::to_string(id) + "/memos/99999999/approve", R"({"approve":true})", client_->key);
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(missing.error(), "Memo not found");
}

// --- expiry (driven by the injected clock) ---

TEST_F(JobHttpTest, ExpiryMovesUnfinishedJobsToExpired) {
  Millis now = clock_->now_ms();
  long long lazy = create_job("10", std::nullopt, format_rfc3339(now + 60'000));
  long long swept = create_job("10", std::nullopt, format_rfc3339(now + 60'000));
  ASSERT_EQ(provider(lazy, "accept", R"({"accept":true})").status, 204u);
  clock_->advance(61'000);
  // The action finds the job expired: it is refused, and the expiry is kept.
  auto r = provider(lazy, "negotiation", R"({"accept":false})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(phase(lazy), 6);
  // The sweeper moves the other one without anyone touching it (bounded wait for the sweeper thread).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (phase(swept) != 6 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(phase(swept), 6);
}

// --- regressions found by schemathesis and manual probing ---

TEST_F(JobHttpTest, EncodedSlashNeverReachesAnotherRoute) {
  long long id = create_job();
  auto r = http.get("/api/agents/jobs/%2F", client_->key);
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.error(), "Invalid job ID");
  r = http.post("/api/agents/jobs/" + std::to_string(id) + "%2Fescrow", bj::object{{"txHash", tx_hash(77777)}}, client_->key);
  EXPECT_EQ(r.status, 405u);  // the GET /api/agents/jobs/{id} route, not escrow
  EXPECT_EQ(job(id).at("escrowVerified").as_bool(), false);
  r = http.post("/api/agents/providers/jobs/" + std::to_string(id) + "%2F/accept", R"({"accept":true})", provider_->key);
  EXPECT_EQ(r.status, 400u);  // "7/" is not a job id
}

TEST_F(JobHttpTest, ExpiredAtMustBeAFutureRfc3339Instant) {
  auto attempt = [&](const std::string& when) {
    return http.post("/api/agents/jobs",
                     bj::object{{"providerId", provider_->id}, {"serviceRequirement", "x"}, {"budget", "1"},
                                {"tokenAddress", kToken}, {"expiredAt", when}},
                     client_->key);
  };
  EXPECT_EQ(attempt("1970-01-01T00:00:00Z").status, 400u);       // the past (and 0)
  EXPECT_EQ(attempt("9999-12-31T23:59:59-23:59").status, 400u);  // year 10000 in UTC
  EXPECT_EQ(attempt("2026-02-29T00:00:00Z").status, 400u);       // no such day
  auto ok = attempt("9999-12-31T23:59:59Z");
  ASSERT_EQ(ok.status, 201u) << ok.body;
  EXPECT_EQ(ok.json().at("expiredAt").as_string(), "9999-12-31T23:59:59.000Z");
}

TEST_F(JobHttpTest, NumbersAreNeverSilentlyRounded) {
  auto attempt = [&](const std::string& budget_literal) {
    return http.post("/api/agents/jobs",
                     "{\"providerId\":\"" + provider_->id + "\",\"serviceRequirement\":\"x\",\"budget\":" +
                         budget_literal + ",\"tokenAddress\":\"" + kToken + "\"}",
                     client_->key);
  };
  for (std::string inexact : {"19999999999999999999", "0.10000000000000001", "1.00000000000000001", "1e400"}) {
    auto r = attempt(inexact);
    EXPECT_EQ(r.status, 400u) << inexact << " " << r.body;
    EXPECT_NE(r.error().find("exactly"), std::string::npos) << r.body;
  }
  for (auto [literal, stored] : std::vector<std::pair<std::string, std::string>>{
           {"0.1", "0.1"}, {"12.50", "12.5"}, {"1e2", "100"}, {"9007199254740993", "9007199254740993"},
           // 15 significant digits, though the double's exact value is 53088675528136302592.
           {"5.30886755281363e19", "53088675528136300000"}}) {
    auto r = attempt(literal);
    ASSERT_EQ(r.status, 201u) << literal << " " << r.body;
    EXPECT_EQ(r.json().at("budget").as_string(), stored);
  }
}

TEST_F(JobHttpTest, AProviderCannotBeTheEvaluatorOfItsOwnJob) {
  TestAgent self = stack_->signup("self-evaluating-provider");
  auto provider_jobs = [&] {
    auto r = http.get("/api/agents/jobs?role=provider", self.key);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.json().at("jobs").as_array().size();
  };
  auto body = [&](const std::string& requirement) {
    return bj::object{{"providerId", self.id}, {"serviceRequirement", requirement}, {"budget", "5"},
                      {"tokenAddress", kToken}, {"evaluatorId", self.id}};
  };
  for (const char* operation : {"", "self-evaluation-1"}) {
    auto b = body("grade my own work");
    if (*operation) b["clientOperationId"] = operation;
    auto r = http.post("/api/agents/jobs", b, client_->key);
    ASSERT_EQ(r.status, 422u) << r.body;
    EXPECT_EQ(r.error(), "evaluatorId must not be the provider: a provider cannot evaluate its own job");
    EXPECT_EQ(r.json().at("code"), "evaluator_is_provider");
    auto details = r.json().at("details").as_array();
    ASSERT_EQ(details.size(), 1u) << r.body;
    EXPECT_EQ(details[0].at("field"), "evaluatorId");
    EXPECT_EQ(details[0].at("message"), "must not be the provider");
  }
  // Shape problems are still 400 first.
  EXPECT_EQ(http.post("/api/agents/jobs", body(""), client_->key).status, 400u);
  EXPECT_EQ(provider_jobs(), 0u);  // nothing was created
  // The client naming itself, or another agent, is fine.
  for (const std::string& evaluator : {client_->id, evaluator_->id}) {
    auto b = body("graded by someone else");
    b["evaluatorId"] = evaluator;
    auto r = http.post("/api/agents/jobs", b, client_->key);
    EXPECT_EQ(r.status, 201u) << r.body;
  }
  EXPECT_EQ(provider_jobs(), 2u);
}

TEST_F(JobHttpTest, EmptyEvaluatorIdIsAValidationError) {
  auto r = http.post("/api/agents/jobs",
                     bj::object{{"providerId", provider_->id}, {"serviceRequirement", "x"}, {"budget", "1"},
                                {"tokenAddress", kToken}, {"evaluatorId", ""}},
                     client_->key);
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.error(), "Validation error");
}

// --- bad input never yields a 5xx ---

TEST_F(JobHttpTest, BadInputIs4xxNever5xx) {
  long long id = create_job();
  std::string base = "/api/agents/providers/jobs/" + std::to_string(id);
  std::vector<std::pair<std::string, std::string>> cases = {
      {base + "/accept", "{"},
      {base + "/accept", "[]"},
      {base + "/accept", "\"accept\""},
      {base + "/accept", ""},
      {base + "/accept", "null"},
      {base + "/accept", R"({"accept":1})"},
      {base + "/accept", R"({"accept":true,"extra":1})"},
      {base + "/accept", R"({"accept":true,"reason":42})"},
      {base + "/accept", std::string(100, '[') + std::string(100, ']')},
      {base + "/requirement", R"({"content":"x","payableDetail":{"amount":"abc","tokenAddress":"0x1","recipient":"r"}})"},
      {base + "/requirement", R"({"content":"x","payableDetail":{"amount":1e400,"tokenAddress":"0x1","recipient":"r"}})"},
      {base + "/requirement", R"({"content":"x","payableDetail":[]})"},
      {base + "/deliverable", R"({"deliverable":{"type":"a","value":1,"more":2}})"},
      {"/api/agents/jobs", R"({"providerId":5})"},
      {"/api/agents/jobs", R"({"providerId":"x","serviceRequirement":"y","budget":"1.0000000000000000001","tokenAddress":"0x"})"},
      {"/api/agents/jobs", R"({"providerId":"x","serviceRequirement":"y","budget":99999999999999999999999,"tokenAddress":"0x"})"},
      {"/api/agents/jobs", R"({"providerId":"x","serviceRequirement":"y","budget":"1","tokenAddress":"0x","expiredAt":"tomorrow"})"},
      {"/api/agents/jobs", "\xff\xfe"},
  };
  for (const auto& [path, body] : cases) {
    auto r = http.post(path, body, path.find("/providers/") != std::string::npos ? provider_->key : client_->key);
    EXPECT_GE(r.status, 400u) << path << " " << body;
    EXPECT_LT(r.status, 500u) << path << " " << body << " -> " << r.body;
    EXPECT_FALSE(r.error().empty()) << r.body;
  }
  // A body over the limit is refused with 413 and a JSON error.
  HttpClient big(stack_->port());
  auto r = big.post("/api/agents/jobs", std::string(2 * 1024 * 1024, 'x'), client_->key);
  EXPECT_EQ(r.status, 413u);
  EXPECT_EQ(r.error(), "Request body too large");
  // Unknown route and wrong method: JSON errors.
  EXPECT_EQ(http.get("/api/agents/nothing", client_->key).status, 404u);
  EXPECT_EQ(http.get(base + "/accept", provider_->key).status, 405u);
  // The server is still healthy.
  EXPECT_EQ(http.get("/healthz").status, 200u);
}

}  // namespace
}  // namespace al::testing
