// The offer → contract → payment story over HTTP with contracts.chain_adapter=evm-jsonrpc against two
// real anvil nodes (tests/support/anvil.hpp, tests/chain/anvil_fixture.sh): real ERC-20 transfers
// submitted as payments, confirmations counted by the payment watcher, every refusal, a
// reorganization followed by the watcher, a payment given up, and a node that is down
// (docs/offer-service.md, "A contract" and "Payment verification"). The suite shares one stack
// and one pair of nodes; every test makes its own deal and its own transactions.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/anvil.hpp"
#include "support/event_stream.hpp"
#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;
namespace chain = al::testing::anvil;
using namespace std::chrono_literals;

constexpr std::uint64_t kAmountUnits = 12'500'000;  // 12.5 tUSDC (6 decimals)
constexpr int kGiveUpMs = 3000;                     // contracts.payment_give_up_ms of the shared stack

std::string str(const bj::value& v, std::string_view key) { return std::string(v.at(key).as_string()); }

void expect_error(const HttpResult& r, unsigned status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  if (r.status != status) return;
  auto v = r.json();
  ASSERT_TRUE(v.is_object() && v.as_object().contains("error")) << r.body;
  EXPECT_EQ(str(v, "code"), code) << r.body;
}

// Polls (every 25 ms, at most `limit`) until `done` holds.
bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
  for (auto deadline = std::chrono::steady_clock::now() + limit;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(25ms);
  }
}

int counter = 0;

struct Deal {
  TestAgent provider, requester;
  std::string tid, oid, cid;
  bj::object contract;  // the accept answer's contract
};

// The deal walk of offer_http_test's Api (signup → service → thread → quote → lock → create-offer →
// accept), reduced to what these tests need, with the quote's budget 12.5 USDC on anvil.
struct Api {
  explicit Api(TestStack& s) : stack(s), http(s.port()) {}
  TestStack& stack;
  HttpClient http;

  HttpResult post_ok(const std::string& path, const bj::object& body, const std::string& key, unsigned want) {
    auto r = http.post(path, body, key);
    EXPECT_EQ(r.status, want) << path << " " << r.body;
    return r;
  }
  Deal accepted_deal() {
    Deal d{stack.signup("provider-" + std::to_string(++counter)), stack.signup("requester-" + std::to_string(++counter)),
           "", "", "", {}};
    bj::object budget{{"amount", "12.5"}, {"token", "USDC"}, {"network", "anvil"}};
    auto s = post_ok("/api/agent/services",
                     {{"title", "SEO landing page copy"}, {"description", "Long-form copy for one landing page"},
                      {"deliverable", "A markdown document with the page copy"}, {"price", budget}, {"timeline", "3 days"}},
                     d.provider.key, 201);
    if (s.status != 201) return d;
    auto t = post_ok("/api/agent/threads",
                     {{"service_id", str(s.json(), "id")}, {"mode", "quick_quote"}, {"message", "Need a page"}},
                     d.requester.key, 201);
    if (t.status != 201) return d;
    d.tid = str(t.json(), "id");
    bj::object terms{{"deliverable", "A markdown document with the page copy"}, {"budget", budget},
                     {"timeline", "3 days"}, {"acceptance_criteria", "Covers the five sections of the brief"},
                     {"revision_boundary", "Two rounds of edits"}};
    const std::string tpath = "/api/agent/threads/" + d.tid;
    post_ok(tpath + "/messages", {{"type", "quote"}, {"body", "Here is my quote"}, {"terms", terms}}, d.provider.key, 201);
    if (post_ok(tpath + "/lock-quote", {}, d.provider.key, 200).status != 200) return d;
    auto o = post_ok(tpath + "/create-offer", {}, d.requester.key, 201);
    if (o.status != 201) return d;
    d.oid = str(o.json(), "id");
    auto a = post_ok("/api/agent/offers/" + d.oid + "/respond", {{"action", "accept"}}, d.provider.key, 200);
    if (a.status != 200) return d;
    d.cid = str(a.json(), "contract_id");
    d.contract = a.json().at("contract").as_object();
    return d;
  }

  HttpResult pay(const Deal& d, const std::string& tx_hash) {
    return http.post("/api/contracts/" + d.cid + "/payment", bj::object{{"tx_hash", tx_hash}}, d.requester.key);
  }
  // The public monitor.
  bj::object tx_status(const Deal& d) {
    auto r = http.get("/api/contracts/" + d.cid + "/tx-status");
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.status == 200 ? r.json().as_object() : bj::object{};
  }
  // Polls the monitor (bounded) until `done` holds; returns the last one seen.
  bj::object wait_tx_status(const Deal& d, const std::function<bool(const bj::object&)>& done, const std::string& what,
                            std::chrono::milliseconds limit = 10s) {
    bj::object last;
    if (!poll_until([&] { return done(last = tx_status(d)); }, limit))
      ADD_FAILURE() << "contract " << d.cid << " never became " << what << ": " << bj::serialize(last);
    return last;
  }
  // The contract still waits for a payment: nothing of a refused one was kept.
  void expect_awaiting_payment(const Deal& d) {
    auto s = tx_status(d);
    EXPECT_EQ(str(s, "status"), "awaiting_payment") << bj::serialize(s);
    EXPECT_TRUE(s.at("tx_hash").is_null()) << bj::serialize(s);
    EXPECT_TRUE(s.at("payment_block").is_null()) << bj::serialize(s);
    EXPECT_EQ(s.at("confirmations").as_int64(), 0) << bj::serialize(s);
  }
};

class OfferChainTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    chains_ = new AnvilChains;
    if (!chains_->start("/tmp/offer_chain_test.XXXXXX")) {  // forks its watchdog: before the stack's threads
      setup_error_ = chains_->error();
      return;
    }
    try {
      stack_ = new TestStack(config(chains_->a()));
    } catch (const std::exception& e) {
      setup_error_ = std::string("stack: ") + e.what();
    }
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
    if (chains_) {
      if (auto failure = chains_->stop(); !failure.empty()) ADD_FAILURE() << failure;
      delete chains_;
      chains_ = nullptr;
    }
  }

  // evm-jsonrpc on "anvil" (at `anvil_url`) and "anvil-b", tUSDC as USDC on both.
  static std::map<std::string, std::string> config(const std::string& anvil_url) {
    return {{"contracts.chain_adapter", "evm-jsonrpc"},
            {"contracts.rpc_urls", "anvil:" + anvil_url + ",anvil-b:" + chains_->b()},
            {"contracts.chain_ids", "anvil:" + env("ANVIL_A_CHAIN_ID") + ",anvil-b:" + env("ANVIL_B_CHAIN_ID")},
            {"contracts.tokens", "anvil:USDC=" + env("TOKEN_A") + ",anvil-b:USDC=" + env("TOKEN_B")},
            {"contracts.pay_to", "*:" + env("PAY_TO")},
            {"contracts.confirmations", "anvil:3,*:1"},
            {"contracts.payment_give_up_ms", std::to_string(kGiveUpMs)},
            {"offers.expiry_sweep_ms", "200"}};
  }

 protected:
  void SetUp() override {
    if (!setup_error_.empty()) GTEST_FAIL() << setup_error_;
    api.emplace(*stack_);
  }

  static const std::string& env(const std::string& key) { return chains_->env(key); }
  static const std::string& A() { return chains_->a(); }
  static const std::string& B() { return chains_->b(); }

  static inline std::string setup_error_;
  static inline AnvilChains* chains_ = nullptr;
  static inline TestStack* stack_ = nullptr;
  std::optional<Api> api;
};

void expect_block(const bj::value& block, const bj::value& receipt) {
  ASSERT_TRUE(block.is_object()) << bj::serialize(block);
  EXPECT_EQ(block.at("number").as_int64(), chain::quantity(receipt.at("blockNumber"))) << bj::serialize(block);
  EXPECT_EQ(block.at("hash"), receipt.at("blockHash")) << bj::serialize(block);
}

// a.
TEST_F(OfferChainTest, RealPaymentIsSubmittedThenFundedWithItsConfirmationsAndVerifiesTheJobsEscrow) {
  auto d = api->accepted_deal();
  ASSERT_FALSE(d.cid.empty());
  const auto& c = d.contract;
  EXPECT_EQ(str(c, "status"), "awaiting_payment");
  EXPECT_EQ(str(c, "chain_adapter"), "evm-jsonrpc");
  EXPECT_FALSE(c.contains("sandbox")) << bj::serialize(c);
  EXPECT_EQ(str(c, "pay_to"), env("PAY_TO"));
  EXPECT_EQ(str(c, "token_address"), env("TOKEN_A"));
  EXPECT_EQ(c.at("required_confirmations").as_int64(), 3);
  EXPECT_EQ(str(c, "amount"), "12.5");
  EXPECT_EQ(str(c, "token"), "USDC");
  EXPECT_EQ(str(c, "network"), "anvil");

  std::string hash = chains_->pay(kAmountUnits);
  auto receipt = chain::receipt(A(), hash);
  auto r = api->pay(d, hash);
  ASSERT_EQ(r.status, 200u) << r.body;
  auto v = r.json();
  EXPECT_EQ(str(v, "status"), "payment_submitted");
  EXPECT_EQ(str(v, "tx_hash"), hash);
  EXPECT_EQ(v.at("confirmations").as_int64(), 1);
  EXPECT_EQ(v.at("required_confirmations").as_int64(), 3);
  expect_block(v.at("payment_block"), receipt);

  auto s = api->tx_status(d);
  EXPECT_EQ(str(s, "status"), "payment_submitted");
  EXPECT_EQ(str(s, "tx_hash"), hash);
  EXPECT_EQ(s.at("confirmations").as_int64(), 1);
  EXPECT_EQ(str(s, "chain_adapter"), "evm-jsonrpc");
  EXPECT_FALSE(s.contains("sandbox"));
  expect_block(s.at("payment_block"), receipt);
  EXPECT_EQ(str(s.at("next_step"), "action"), "wait_for_confirmations");
  for (const char* key : {"buyer_id", "provider_id", "thread_id", "offer_id"}) EXPECT_FALSE(s.contains(key)) << key;

  chain::mine(A(), 2);
  s = api->wait_tx_status(d, [](const bj::object& m) { return str(m, "status") == "funded"; }, "funded");
  EXPECT_GE(s.at("confirmations").as_int64(), 3) << bj::serialize(s);
  expect_block(s.at("payment_block"), receipt);
  EXPECT_EQ(str(s.at("next_step"), "action"), "work");

  // The contract's job (contract.created, then contract.funded through Kafka): its escrow verified.
  bj::object job;
  bool verified = poll_until([&] {
    auto jobs = api->http.get("/api/agents/jobs?role=client", d.requester.key);
    if (jobs.status != 200) return false;
    bj::value list = jobs.json();
    for (const auto& j : list.at("jobs").as_array())
      if (j.at("contractId").is_string() && j.at("contractId").as_string() == d.cid) job = j.as_object();
    return job.contains("escrowVerified") && job.at("escrowVerified") == true;
  }, 15s);
  ASSERT_TRUE(verified) << "the contract's job never had its escrow verified: " << bj::serialize(job);
  EXPECT_EQ(str(job, "tokenAddress"), env("TOKEN_A"));
  ASSERT_TRUE(job.at("escrow").is_object()) << bj::serialize(job);
  EXPECT_EQ(str(job.at("escrow"), "txHash"), hash);
  EXPECT_EQ(str(job.at("escrow"), "verifiedBy"), "contract:evm-jsonrpc");
}

// b.
TEST_F(OfferChainTest, EveryRefusalIs409AndChangesNothingThenACorrectPaymentWorks) {
  auto d = api->accepted_deal();
  ASSERT_FALSE(d.cid.empty());
  struct Case {
    std::string what, hash, code;
  };
  std::uint64_t other_balance = chain::balance_of(A(), env("TOKEN_A"), env("OTHER_ACCOUNT"));
  std::string reverted = chain::transfer(A(), env("TOKEN_A"), env("OTHER_ACCOUNT"), env("PAY_TO"), other_balance + kAmountUnits);
  ASSERT_EQ(str(chain::receipt(A(), reverted), "status"), "0x0");
  std::string on_b = chain::transfer(B(), env("TOKEN_B"), env("BUYER"), env("PAY_TO"), kAmountUnits);
  const std::vector<Case> cases = {
      {"12.499999 paid", chains_->pay(kAmountUnits - 1), "underpaid"},
      {"paid to someone else", chain::transfer(A(), env("TOKEN_A"), env("BUYER"), env("OTHER_ACCOUNT"), kAmountUnits),
       "wrong_recipient"},
      {"paid in another token", chain::transfer(A(), env("OTHER_A"), env("BUYER"), env("PAY_TO"), kAmountUnits), "wrong_token"},
      {"a reverted transfer", reverted, "failed"},
      {"no such transaction", chain::random_hash(), "not_found"},
      {"paid on anvil-b", on_b, "wrong_network"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    expect_error(api->pay(d, c.hash), 409, c.code);
    api->expect_awaiting_payment(d);
  }

  std::string good = chains_->pay(kAmountUnits);
  auto r = api->pay(d, good);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(str(r.json(), "status"), "payment_submitted");
  EXPECT_EQ(str(r.json(), "tx_hash"), good);

  // The hash pays this contract only.
  auto other = api->accepted_deal();
  ASSERT_FALSE(other.cid.empty());
  expect_error(api->pay(other, good), 409, "tx_hash_used");
  api->expect_awaiting_payment(other);

  chain::mine(A(), 2);
  api->wait_tx_status(d, [](const bj::object& m) { return str(m, "status") == "funded"; }, "funded");
  expect_error(api->pay(other, good), 409, "tx_hash_used");
  api->expect_awaiting_payment(other);
}

// c.
TEST_F(OfferChainTest, ReorganizationIsFollowedByTheWatcher) {
  auto d = api->accepted_deal();
  ASSERT_FALSE(d.cid.empty());
  bj::value snapshot_id = chain::snapshot(A());
  auto fixed = chain::fixed_fields(chain::nonce_of(A(), env("BUYER")));
  std::string hash = chains_->pay(kAmountUnits, fixed);
  auto r = api->pay(d, hash);
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_EQ(str(r.json(), "status"), "payment_submitted");
  ASSERT_TRUE(r.json().at("payment_block").is_object()) << r.body;
  const long long block = r.json().at("payment_block").at("number").as_int64();
  const std::string h1 = str(r.json().at("payment_block"), "hash");
  const long long timestamp = chain::block_timestamp(A(), block);

  ASSERT_TRUE(chain::revert(A(), snapshot_id));
  ASSERT_TRUE(chain::receipt(A(), hash).is_null());
  auto s = api->wait_tx_status(d, [](const bj::object& m) { return m.at("payment_block").is_null(); },
                               "out of its block (payment_block null)");
  EXPECT_EQ(str(s, "status"), "payment_submitted") << bj::serialize(s);
  EXPECT_EQ(s.at("confirmations").as_int64(), 0) << bj::serialize(s);
  EXPECT_EQ(str(s, "tx_hash"), hash);
  EXPECT_TRUE(s.at("rejected_payment").is_null()) << bj::serialize(s);

  // The identical transaction again (within contracts.payment_give_up_ms): re-mined in a block of the same height, another hash.
  chain::set_next_block_timestamp(A(), timestamp + 5);
  ASSERT_EQ(chains_->pay(kAmountUnits, fixed), hash);
  s = api->wait_tx_status(d, [](const bj::object& m) { return m.at("payment_block").is_object(); }, "re-mined");
  EXPECT_EQ(str(s, "status"), "payment_submitted") << bj::serialize(s);
  ASSERT_TRUE(s.at("payment_block").is_object());
  EXPECT_EQ(s.at("payment_block").at("number").as_int64(), block);
  EXPECT_NE(str(s.at("payment_block"), "hash"), h1);
  EXPECT_EQ(s.at("payment_block").at("hash"), chain::receipt(A(), hash).at("blockHash"));
  EXPECT_EQ(s.at("confirmations").as_int64(), 1) << bj::serialize(s);

  chain::mine(A(), 2);
  s = api->wait_tx_status(d, [](const bj::object& m) { return str(m, "status") == "funded"; }, "funded");
  EXPECT_GE(s.at("confirmations").as_int64(), 3);

  // Its events: the reorganization is one (agentlancer.contracts.v1 on the embedded broker).
  auto events = dedupe(consume(stack_->host().kafka_bootstrap(), "agentlancer.contracts.v1", {d.cid}, 4, "", 30s));
  std::vector<std::string> types;
  for (const auto& e : events) {
    types.emplace_back(e.at("type").as_string());
    expect_schema_valid(AGENTLANCER_SOURCE_DIR, e);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"contract.created", "contract.payment_submitted", "contract.payment_reorged",
                                             "contract.funded"}));
  for (const auto& e : events)
    if (e.at("type") == "contract.payment_reorged") {
      EXPECT_TRUE(e.at("data").at("contract").at("payment_block").is_null()) << bj::serialize(e);
      EXPECT_EQ(e.at("data").at("contract").at("confirmations").as_int64(), 0) << bj::serialize(e);
    }
}

// d.
TEST_F(OfferChainTest, PaymentGoneForGoodIsGivenUpAndItsHashStaysBound) {
  auto d = api->accepted_deal();
  auto other = api->accepted_deal();
  ASSERT_FALSE(d.cid.empty());
  ASSERT_FALSE(other.cid.empty());
  bj::value snapshot_id = chain::snapshot(A());
  auto fixed = chain::fixed_fields(chain::nonce_of(A(), env("BUYER")));
  std::string hash = chains_->pay(kAmountUnits, fixed);
  auto r = api->pay(d, hash);
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_EQ(str(r.json(), "status"), "payment_submitted");
  ASSERT_TRUE(chain::revert(A(), snapshot_id));  // and never sent again

  auto start = std::chrono::steady_clock::now();
  auto s = api->wait_tx_status(d, [](const bj::object& m) { return str(m, "status") == "awaiting_payment"; },
                               "awaiting_payment again", std::chrono::milliseconds(kGiveUpMs) + 10s);
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(kGiveUpMs) - 500ms) << "given up before contracts.payment_give_up_ms";
  ASSERT_TRUE(s.at("rejected_payment").is_object()) << bj::serialize(s);
  EXPECT_EQ(str(s.at("rejected_payment"), "tx_hash"), hash);
  EXPECT_EQ(str(s.at("rejected_payment"), "code"), "not_found");
  EXPECT_TRUE(s.at("tx_hash").is_null()) << bj::serialize(s);
  EXPECT_TRUE(s.at("payment_block").is_null()) << bj::serialize(s);
  EXPECT_EQ(str(s.at("next_step"), "action"), "pay");

  // Bound to the first contract for good: another contract cannot take it, not even once it is mined again.
  expect_error(api->pay(other, hash), 409, "tx_hash_used");
  ASSERT_EQ(chains_->pay(kAmountUnits, fixed), hash);
  expect_error(api->pay(other, hash), 409, "tx_hash_used");
  api->expect_awaiting_payment(other);

  // A fresh payment to the first contract is taken.
  std::string fresh = chains_->pay(kAmountUnits);
  r = api->pay(d, fresh);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(str(r.json(), "status"), "payment_submitted");
  EXPECT_EQ(str(r.json(), "tx_hash"), fresh);
  chain::mine(A(), 2);
  api->wait_tx_status(d, [](const bj::object& m) { return str(m, "status") == "funded"; }, "funded");
}

// e.
TEST_F(OfferChainTest, NodeDownIs503AndChangesNothing) {
  std::string closed = "http://127.0.0.1:" + std::to_string(chain::closed_port());
  auto overrides = config(closed);
  overrides["contracts.rpc_timeout_ms"] = "2000";
  TestStack down(overrides);
  Api down_api(down);
  auto d = down_api.accepted_deal();
  ASSERT_FALSE(d.cid.empty());
  std::string hash = chains_->pay(kAmountUnits);  // paid for real: only the node is missing
  auto start = std::chrono::steady_clock::now();
  expect_error(down_api.pay(d, hash), 503, "chain_unavailable");  // docs/openapi.yaml
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  down_api.expect_awaiting_payment(d);
  EXPECT_TRUE(down_api.tx_status(d).at("rejected_payment").is_null());
}

}  // namespace
}  // namespace al::testing
