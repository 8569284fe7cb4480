// al::chain::EvmJsonRpcChain against two real anvil nodes (chain ids 31337 and 31338) with a real
// ERC-20 deployed (tests/chain/anvil_fixture.sh, TestToken.sol, 6 decimals). The suite shares one
// pair of nodes, so every test makes its own fresh transactions.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/chain/evm_jsonrpc.hpp"
#include "common/chain/json_rpc_client.hpp"
#include "support/anvil.hpp"

namespace {
namespace asio = boost::asio;
namespace json = boost::json;
using al::chain::PaymentCheck;
using al::chain::PaymentExpectation;
using al::testing::AnvilChains;
using namespace al::testing::anvil;  // rpc, receipt, transfer, send, mine, … (tests/support/anvil.hpp)
using namespace std::chrono_literals;

constexpr std::uint64_t kAmountUnits = 12'500'000;  // 12.5 with 6 decimals

// Sockets (any state) in this network namespace whose remote end is 127.0.0.1:port.
int connections_to(int port) {
  int count = 0;
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);
  char want[16];
  std::snprintf(want, sizeof want, "0100007F:%04X", port);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, local, remote;
    fields >> sl >> local >> remote;
    if (remote == want) ++count;
  }
  return count;
}

class EvmJsonRpcChain : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    chains_ = std::make_unique<AnvilChains>();
    if (!chains_->start("/tmp/evm_chain_test.XXXXXX")) {  // forks its watchdog: before the io thread starts
      setup_error_ = chains_->error();
      return;
    }
    io_ = std::make_unique<asio::io_context>();
    work_.emplace(io_->get_executor());
    thread_ = std::thread([] { io_->run(); });
  }

  static void TearDownTestSuite() {
    if (io_) {
      work_.reset();
      io_->stop();
      if (thread_.joinable()) thread_.join();
    }
    adapters_.clear();
    io_.reset();
    if (chains_) {
      if (auto failure = chains_->stop(); !failure.empty()) ADD_FAILURE() << failure;
      chains_.reset();
    }
  }

 protected:
  void SetUp() override {
    if (!setup_error_.empty()) GTEST_FAIL() << setup_error_;
  }

  static const std::string& env(const std::string& key) { return chains_->env(key); }
  static const std::string& A() { return chains_->a(); }
  static const std::string& B() { return chains_->b(); }

  // An adapter with networks "anvil" (A, 31337) and "anvil-b" (B, 31338), or the networks given.
  static al::chain::EvmJsonRpcChain& adapter(std::optional<std::vector<al::chain::EvmNetwork>> networks = std::nullopt,
                                             al::chain::JsonRpcOptions options = {}) {
    if (!networks)
      networks = std::vector<al::chain::EvmNetwork>{{"anvil", A(), std::stoll(env("ANVIL_A_CHAIN_ID"))},
                                                    {"anvil-b", B(), std::stoll(env("ANVIL_B_CHAIN_ID"))}};
    adapters_.push_back(std::make_unique<al::chain::EvmJsonRpcChain>(*io_, std::move(*networks), std::move(options)));
    return *adapters_.back();
  }

  static PaymentExpectation expect(const std::string& tx_hash, int required = 1, const std::string& amount = "12.5") {
    PaymentExpectation e;
    e.tx_hash = tx_hash;
    e.amount = *al::Decimal::parse(amount);
    e.token_address = env("TOKEN_A");
    e.pay_to = env("PAY_TO");
    e.network = "anvil";
    e.required_confirmations = required;
    return e;
  }

  // adapter.verify, waited for (at most `timeout`).
  static PaymentCheck verify(al::chain::ChainAdapter& a, const PaymentExpectation& e, std::chrono::milliseconds timeout = 20s) {
    auto promise = std::make_shared<std::promise<PaymentCheck>>();
    auto future = promise->get_future();
    a.verify(e, [promise](PaymentCheck c) { promise->set_value(std::move(c)); });
    if (future.wait_for(timeout) != std::future_status::ready) {
      ADD_FAILURE() << "verify did not answer within " << timeout.count() << " ms";
      PaymentCheck c;
      c.status = "<timeout>";
      return c;
    }
    return future.get();
  }

  static std::string pay(std::uint64_t amount = kAmountUnits, bool mined = true) {
    return chains_->pay(amount, {}, mined);
  }

  static void expect_mined(const PaymentCheck& c) {
    EXPECT_GT(c.block_number, 0) << c.message;
    EXPECT_EQ(c.block_hash.size(), 66u) << c.message;
    EXPECT_EQ(c.block_hash.rfind("0x", 0), 0u) << c.block_hash;
  }

  static inline std::string setup_error_;
  static inline std::unique_ptr<AnvilChains> chains_;
  static inline std::unique_ptr<asio::io_context> io_;
  static inline std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  static inline std::thread thread_;
  static inline std::vector<std::unique_ptr<al::chain::EvmJsonRpcChain>> adapters_;
};

// 1.
TEST_F(EvmJsonRpcChain, PaidExactlyIsVerified) {
  std::string hash = pay();
  auto r = receipt(A(), hash);
  auto c = verify(adapter(), expect(hash));
  EXPECT_EQ(c.status, "verified") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.confirmations, 1);
  EXPECT_EQ(c.required_confirmations, 1);
  expect_mined(c);
  EXPECT_EQ(c.block_number, quantity(r.at("blockNumber")));
  EXPECT_EQ(c.block_hash, std::string(r.at("blockHash").as_string()));
  EXPECT_FALSE(c.reorged);
  EXPECT_NE(c.message.find("12.5"), std::string::npos) << c.message;
  EXPECT_NE(c.message.find(std::to_string(c.block_number)), std::string::npos) << c.message;
}

// 2.
TEST_F(EvmJsonRpcChain, ConfirmationsRise) {
  std::string hash = pay();
  auto& a = adapter();
  auto c = verify(a, expect(hash, 3));
  EXPECT_EQ(c.status, "pending") << c.message;
  EXPECT_EQ(c.confirmations, 1);
  EXPECT_EQ(c.required_confirmations, 3);
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  expect_mined(c);
  EXPECT_NE(c.message.find("1 of 3"), std::string::npos) << c.message;
  const long long block = c.block_number;
  const std::string block_hash = c.block_hash;

  mine(A(), 1);
  c = verify(a, expect(hash, 3));
  EXPECT_EQ(c.status, "pending") << c.message;
  EXPECT_EQ(c.confirmations, 2);
  EXPECT_EQ(c.required_confirmations, 3);
  EXPECT_NE(c.message.find("2 of 3"), std::string::npos) << c.message;

  mine(A(), 1);
  c = verify(a, expect(hash, 3));
  EXPECT_EQ(c.status, "verified") << c.message;
  EXPECT_EQ(c.confirmations, 3);
  EXPECT_EQ(c.required_confirmations, 3);
  EXPECT_EQ(c.block_number, block);
  EXPECT_EQ(c.block_hash, block_hash);
  EXPECT_FALSE(c.reorged);

  mine(A(), 5);
  auto e = expect(hash, 3);
  e.seen_block_hash = block_hash;
  c = verify(a, e);
  EXPECT_EQ(c.status, "verified") << c.message;
  EXPECT_EQ(c.confirmations, 8);
  EXPECT_EQ(c.block_number, block);
  EXPECT_EQ(c.block_hash, block_hash);
  EXPECT_FALSE(c.reorged);
  EXPECT_NE(c.message.find("8 confirmations"), std::string::npos) << c.message;
}

// 3.
TEST_F(EvmJsonRpcChain, UnderpaidByOneBaseUnit) {
  std::string hash = pay(kAmountUnits - 1);
  auto c = verify(adapter(), expect(hash));
  EXPECT_EQ(c.status, "underpaid") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.required_confirmations, 1);
  expect_mined(c);
  EXPECT_FALSE(c.reorged);
  EXPECT_NE(c.message.find("12.499999"), std::string::npos) << c.message;
  EXPECT_NE(c.message.find("12.5"), std::string::npos) << c.message;
}

// 4.
TEST_F(EvmJsonRpcChain, OverpaidIsVerified) {
  std::string hash = pay(13'000'000);
  auto c = verify(adapter(), expect(hash));
  EXPECT_EQ(c.status, "verified") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.confirmations, 1);
  EXPECT_EQ(c.required_confirmations, 1);
  expect_mined(c);
  EXPECT_NE(c.message.find("13"), std::string::npos) << c.message;
}

// 5.
TEST_F(EvmJsonRpcChain, WrongRecipient) {
  std::string hash = transfer(A(), env("TOKEN_A"), env("BUYER"), env("OTHER_ACCOUNT"), kAmountUnits);
  auto c = verify(adapter(), expect(hash));
  EXPECT_EQ(c.status, "wrong_recipient") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.required_confirmations, 1);
  expect_mined(c);
  EXPECT_NE(c.message.find(env("OTHER_ACCOUNT")), std::string::npos) << c.message;
  EXPECT_NE(c.message.find(env("PAY_TO")), std::string::npos) << c.message;
}

// 6.
TEST_F(EvmJsonRpcChain, WrongToken) {
  std::string hash = transfer(A(), env("OTHER_A"), env("BUYER"), env("PAY_TO"), kAmountUnits);
  auto c = verify(adapter(), expect(hash));
  EXPECT_EQ(c.status, "wrong_token") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.required_confirmations, 1);
  expect_mined(c);
  EXPECT_NE(c.message.find(env("OTHER_A")), std::string::npos) << c.message;
  EXPECT_NE(c.message.find(env("TOKEN_A")), std::string::npos) << c.message;
}

// 7.
TEST_F(EvmJsonRpcChain, NativeCoinIsWrongToken) {
  std::string hash = send(A(), env("BUYER"), env("PAY_TO"), "", json::object{{"value", "0xde0b6b3a7640000"}});
  ASSERT_EQ(std::string(receipt(A(), hash).at("status").as_string()), "0x1");
  auto c = verify(adapter(), expect(hash));
  EXPECT_EQ(c.status, "wrong_token") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  expect_mined(c);
  EXPECT_NE(c.message.find("native"), std::string::npos) << c.message;
}

// 8.
TEST_F(EvmJsonRpcChain, SplitPaymentCountsEveryTransferToPayTo) {
  auto twice = [](const std::string& to1, std::uint64_t a1, const std::string& to2, std::uint64_t a2) {
    return send(A(), env("BUYER"), env("TOKEN_A"),
                "0xd6d7c2c0" + word_address(to1) + word_u64(a1) + word_address(to2) + word_u64(a2));
  };
  auto& a = adapter();
  std::string both = twice(env("PAY_TO"), 10'000'000, env("PAY_TO"), 2'500'000);
  ASSERT_EQ(receipt(A(), both).at("logs").as_array().size(), 2u);
  auto c = verify(a, expect(both));
  EXPECT_EQ(c.status, "verified") << c.message;
  EXPECT_EQ(c.confirmations, 1);
  expect_mined(c);
  EXPECT_NE(c.message.find("12.5"), std::string::npos) << c.message;

  std::string half = twice(env("PAY_TO"), 10'000'000, env("OTHER_ACCOUNT"), 2'500'000);
  c = verify(a, expect(half));
  EXPECT_EQ(c.status, "underpaid") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  expect_mined(c);
  EXPECT_NE(c.message.find("pays 10 "), std::string::npos) << c.message;
  EXPECT_NE(c.message.find("12.5"), std::string::npos) << c.message;
}

// 9.
TEST_F(EvmJsonRpcChain, RevertedTransactionFailed) {
  // Other tests pay OTHER_ACCOUNT a little: send more than whatever it holds now.
  std::uint64_t balance = balance_of(A(), env("TOKEN_A"), env("OTHER_ACCOUNT"));
  std::string hash = transfer(A(), env("TOKEN_A"), env("OTHER_ACCOUNT"), env("PAY_TO"), balance + kAmountUnits);
  auto r = receipt(A(), hash);
  ASSERT_EQ(std::string(r.at("status").as_string()), "0x0");
  auto c = verify(adapter(), expect(hash));
  EXPECT_EQ(c.status, "failed") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.block_number, quantity(r.at("blockNumber")));
  expect_mined(c);
  EXPECT_NE(c.message.find("status 0"), std::string::npos) << c.message;
}

// 10.
TEST_F(EvmJsonRpcChain, UnknownHashNotFound) {
  auto c = verify(adapter(), expect(random_hash()));
  EXPECT_EQ(c.status, "not_found") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.confirmations, 0);
  EXPECT_EQ(c.block_number, 0);
  EXPECT_TRUE(c.block_hash.empty());
  EXPECT_FALSE(c.reorged);
  EXPECT_NE(c.message.find("anvil"), std::string::npos) << c.message;
}

// 11.
TEST_F(EvmJsonRpcChain, PaidOnTheOtherChainIsWrongNetwork) {
  std::string hash = transfer(B(), env("TOKEN_B"), env("BUYER"), env("PAY_TO"), kAmountUnits);
  ASSERT_EQ(std::string(receipt(B(), hash).at("status").as_string()), "0x1");
  ASSERT_TRUE(receipt(A(), hash).is_null());
  auto c = verify(adapter(), expect(hash));
  EXPECT_EQ(c.status, "wrong_network") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.block_number, 0);
  EXPECT_FALSE(c.reorged);
  EXPECT_NE(c.message.find("anvil-b"), std::string::npos) << c.message;
}

// 12.
TEST_F(EvmJsonRpcChain, MempoolThenMined) {
  set_automine(A(), false);
  struct Restore {
    ~Restore() {
      try {
        set_automine(A(), true);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cannot restore automine: " << e.what();
      }
    }
  } restore;
  std::string hash = pay(kAmountUnits, /*mined=*/false);
  std::this_thread::sleep_for(200ms);  // automine is off: it must stay unmined
  ASSERT_TRUE(receipt(A(), hash).is_null());
  auto& a = adapter();
  auto c = verify(a, expect(hash));
  EXPECT_EQ(c.status, "pending") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.confirmations, 0);
  EXPECT_EQ(c.required_confirmations, 1);
  EXPECT_EQ(c.block_number, 0);
  EXPECT_TRUE(c.block_hash.empty());
  EXPECT_FALSE(c.reorged);
  EXPECT_NE(c.message.find("mempool"), std::string::npos) << c.message;

  rpc(A(), "evm_mine");
  c = verify(a, expect(hash));
  EXPECT_EQ(c.status, "verified") << c.message;
  EXPECT_EQ(c.confirmations, 1);
  expect_mined(c);
}

// 13.
TEST_F(EvmJsonRpcChain, ReorgDropsThenRemines) {
  auto& a = adapter();
  json::value snapshot_id = snapshot(A());
  json::object fixed = fixed_fields(nonce_of(A(), env("BUYER")));
  std::string hash = transfer(A(), env("TOKEN_A"), env("BUYER"), env("PAY_TO"), kAmountUnits, fixed);

  auto c = verify(a, expect(hash, 2));
  EXPECT_EQ(c.status, "pending") << c.message;
  EXPECT_EQ(c.confirmations, 1);
  EXPECT_EQ(c.required_confirmations, 2);
  expect_mined(c);
  EXPECT_FALSE(c.reorged);
  const std::string h1 = c.block_hash;
  const long long block = c.block_number;
  long long timestamp = block_timestamp(A(), block);

  ASSERT_TRUE(revert(A(), snapshot_id));
  ASSERT_TRUE(receipt(A(), hash).is_null());

  auto seen = expect(hash, 2);
  seen.seen_block_hash = h1;
  c = verify(a, seen);
  EXPECT_EQ(c.status, "not_found") << c.message;
  EXPECT_TRUE(c.reorged);
  EXPECT_EQ(c.confirmations, 0);
  EXPECT_EQ(c.block_number, 0);
  EXPECT_TRUE(c.block_hash.empty());
  EXPECT_NE(c.message.find("reorganization"), std::string::npos) << c.message;

  c = verify(a, expect(hash, 2));
  EXPECT_EQ(c.status, "not_found") << c.message;
  EXPECT_FALSE(c.reorged);
  EXPECT_EQ(c.block_number, 0);

  set_next_block_timestamp(A(), timestamp + 5);
  std::string again = transfer(A(), env("TOKEN_A"), env("BUYER"), env("PAY_TO"), kAmountUnits, fixed);
  ASSERT_EQ(again, hash);
  c = verify(a, seen);
  EXPECT_EQ(c.status, "pending") << c.message;
  EXPECT_TRUE(c.reorged);
  EXPECT_EQ(c.confirmations, 1);
  EXPECT_EQ(c.required_confirmations, 2);
  EXPECT_EQ(c.block_number, block);
  expect_mined(c);
  EXPECT_NE(c.block_hash, h1);
  const std::string h2 = c.block_hash;

  mine(A(), 1);
  auto seen2 = expect(hash, 2);
  seen2.seen_block_hash = h2;
  c = verify(a, seen2);
  EXPECT_EQ(c.status, "verified") << c.message;
  EXPECT_FALSE(c.reorged);
  EXPECT_EQ(c.confirmations, 2);
  EXPECT_EQ(c.block_number, block);
  EXPECT_EQ(c.block_hash, h2);
}

// 14.
TEST_F(EvmJsonRpcChain, UnreachableOrMisconfiguredNodeIsUnavailable) {
  std::string hash = pay();
  al::chain::JsonRpcOptions options;
  options.timeout = 2s;
  std::string closed = "http://127.0.0.1:" + std::to_string(closed_port());
  auto& down = adapter(std::vector<al::chain::EvmNetwork>{{"anvil", closed, 31337}}, options);
  auto start = std::chrono::steady_clock::now();
  auto c = verify(down, expect(hash), 10s);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(c.status, "unavailable") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.confirmations, 0);
  EXPECT_LT(elapsed, 5s);
  EXPECT_NE(c.message.find("anvil"), std::string::npos) << c.message;

  auto& wrong_chain = adapter(std::vector<al::chain::EvmNetwork>{{"anvil", A(), 1}}, options);
  c = verify(wrong_chain, expect(hash));
  EXPECT_EQ(c.status, "unavailable") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.confirmations, 0);
  EXPECT_NE(c.message.find("31337"), std::string::npos) << c.message;

  auto e = expect(hash);
  e.network = "base";
  c = verify(adapter(), e);
  EXPECT_EQ(c.status, "unavailable") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_NE(c.message.find("base"), std::string::npos) << c.message;
}

// 15.
TEST_F(EvmJsonRpcChain, MalformedHashIsInvalid) {
  auto c = verify(adapter(), expect("0x1234"));
  EXPECT_EQ(c.status, "invalid_hash") << c.message;
  EXPECT_EQ(c.adapter, "evm-jsonrpc");
  EXPECT_EQ(c.confirmations, 0);
  EXPECT_EQ(c.block_number, 0);
}

// 16.
TEST_F(EvmJsonRpcChain, ManyVerificationsReuseConnections) {
  std::string paid = pay();
  std::string under = pay(kAmountUnits - 1);
  std::string elsewhere = transfer(A(), env("TOKEN_A"), env("BUYER"), env("OTHER_ACCOUNT"), kAmountUnits);
  auto& a = adapter();
  ASSERT_EQ(verify(a, expect(paid)).status, "verified");  // warm: chain id and decimals cached

  const int port = std::stoi(A().substr(A().rfind(':') + 1));
  const int before = connections_to(port);
  for (int i = 0; i < 50; ++i) {
    auto c = verify(a, expect(paid));
    ASSERT_EQ(c.status, "verified") << "verification " << i << ": " << c.message;
    EXPECT_GE(c.confirmations, 1);
  }
  // Kept-alive connections: 50 checks (two requests each) open no new ones (a dropped one may be
  // replaced); without reuse this would be 100.
  EXPECT_LE(connections_to(port) - before, 2) << "connections to anvil A: " << before << " before, "
                                              << connections_to(port) << " after";

  const std::vector<std::pair<std::string, std::string>> cases = {
      {paid, "verified"}, {under, "underpaid"}, {elsewhere, "wrong_recipient"}, {random_hash(), "not_found"}};
  std::vector<std::future<PaymentCheck>> futures;
  std::vector<std::string> wanted;
  for (int i = 0; i < 20; ++i) {
    const auto& [hash, status] = cases[static_cast<std::size_t>(i) % cases.size()];
    auto promise = std::make_shared<std::promise<PaymentCheck>>();
    futures.push_back(promise->get_future());
    wanted.push_back(status);
    a.verify(expect(hash), [promise](PaymentCheck c) { promise->set_value(std::move(c)); });
  }
  for (std::size_t i = 0; i < futures.size(); ++i) {
    ASSERT_EQ(futures[i].wait_for(20s), std::future_status::ready) << "concurrent verification " << i;
    auto c = futures[i].get();
    EXPECT_EQ(c.status, wanted[i]) << "concurrent verification " << i << ": " << c.message;
    EXPECT_EQ(c.adapter, "evm-jsonrpc");
  }
}

}  // namespace

namespace {
// A node behind TLS and Basic auth, as hosted providers serve them: tests/chain/tls_proxy.js in
// front of anvil A with a certificate made for this run (SAN 127.0.0.1 and localhost).
class TlsNode {
 public:
  TlsNode(const std::string& dir, const std::string& upstream, const std::string& credentials) {
    cert_ = dir + "/rpc-cert.pem";
    std::string key = dir + "/rpc-key.pem";
    auto [cert_status, cert_output] = run(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost "
        "-addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' -days 2 -keyout '" + key + "' -out '" + cert_ + "'");
    if (cert_status != 0) throw std::runtime_error("openssl: " + cert_output);
    std::string out = dir + "/tls-proxy.out";
    auto [status, pid] = run("WATCH_PID=" + std::to_string(::getpid()) + " node '" AGENTLANCER_SOURCE_DIR
                                    "/tests/chain/tls_proxy.js' '" + cert_ + "' '" + key + "' '" + upstream + "' '" +
                                    credentials + "' > '" + out + "' 2>&1 & echo $!");
    if (status != 0) throw std::runtime_error("tls_proxy: " + pid);
    pid_ = std::stoi(pid);
    for (int i = 0; i < 100 && port_ == 0; ++i) {
      std::ifstream in(out);
      std::string line;
      if (std::getline(in, line) && line.rfind("{\"port\":", 0) == 0) port_ = std::stoi(line.substr(8));
      else std::this_thread::sleep_for(50ms);
    }
    if (port_ == 0) throw std::runtime_error("tls_proxy did not start");
  }
  ~TlsNode() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  int port() const { return port_; }
  const std::string& cert() const { return cert_; }

 private:
  std::string cert_;
  int pid_ = 0;
  int port_ = 0;
};

// 17.
TEST_F(EvmJsonRpcChain, HttpsNodeWithBasicAuthAndItsOwnCa) {
  TlsNode node(chains_->state_dir(), A(), "rpcuser:s3cret");
  std::string hash = pay();
  al::chain::JsonRpcOptions trusted;
  trusted.timeout = 3s;
  trusted.ca_file = node.cert();
  auto https = [&](const std::string& userinfo, const std::string& host) {
    return std::vector<al::chain::EvmNetwork>{
        {"anvil", "https://" + userinfo + host + ":" + std::to_string(node.port()) + "/", 31337}};
  };

  // Credentials in the URL become Basic authorization; the certificate is checked against the CA file
  // and the host name (localhost, and the IP address).
  auto c = verify(adapter(https("rpcuser:s3cret@", "localhost"), trusted), expect(hash));
  EXPECT_EQ(c.status, "verified") << c.message;
  expect_mined(c);
  c = verify(adapter(https("rpcuser:s3cret@", "127.0.0.1"), trusted), expect(hash));
  EXPECT_EQ(c.status, "verified") << c.message;

  // Without the credentials the node answers 401: unavailable, and the password never shows.
  c = verify(adapter(https("", "localhost"), trusted), expect(hash));
  EXPECT_EQ(c.status, "unavailable") << c.message;
  EXPECT_NE(c.message.find("401"), std::string::npos) << c.message;
  c = verify(adapter(https("rpcuser:wrong@", "localhost"), trusted), expect(hash));
  EXPECT_EQ(c.status, "unavailable") << c.message;
  EXPECT_EQ(c.message.find("wrong"), std::string::npos) << c.message;

  // A certificate nobody vouched for (the system CAs do not know this one) is refused.
  al::chain::JsonRpcOptions system_cas;
  system_cas.timeout = 3s;
  c = verify(adapter(https("rpcuser:s3cret@", "localhost"), system_cas), expect(hash));
  EXPECT_EQ(c.status, "unavailable") << c.message;
  EXPECT_NE(c.message.find("certificate"), std::string::npos) << c.message;
}
}  // namespace
