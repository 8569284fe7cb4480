// al::chain::EvmJsonRpcChain against two real anvil nodes (chain ids 31337 and 31338) with a real
// ERC-20 deployed (tests/chain/anvil_fixture.sh, TestToken.sol, 6 decimals). The suite shares one
// pair of nodes, so every test makes its own fresh transactions.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/chain/evm_jsonrpc.hpp"
#include "common/chain/json_rpc_client.hpp"

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using al::chain::PaymentCheck;
using al::chain::PaymentExpectation;
using namespace std::chrono_literals;

constexpr std::uint64_t kAmountUnits = 12'500'000;  // 12.5 with 6 decimals

// Runs a shell command, returning (exit status, combined output).
std::pair<int, std::string> run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string hex_u64(std::uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
  return buffer;
}

// A 32-byte ABI word: an address (0x + 40 hex) or a number, left-padded with zeros.
std::string word_address(const std::string& address) { return std::string(24, '0') + address.substr(2); }
std::string word_u64(std::uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return std::string(48, '0') + buffer;
}

long long quantity(const json::value& v) { return std::stoll(std::string(v.as_string()), nullptr, 16); }

std::string random_hash() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  std::string out = "0x";
  for (int i = 0; i < 4; ++i) {
    char buffer[17];
    std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(gen()));
    out += buffer;
  }
  return out;
}

// A loopback port nothing listens on (bound, then released).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

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
    char tmpl[] = "/tmp/evm_chain_test.XXXXXX";
    if (!::mkdtemp(tmpl)) {
      setup_error_ = "mkdtemp failed";
      return;
    }
    state_dir_ = tmpl;
    script_ = std::string(AGENTLANCER_SOURCE_DIR) + "/tests/chain/anvil_fixture.sh";
    auto [status, output] = run("bash '" + script_ + "' start '" + state_dir_ + "'");
    if (status != 0) {
      setup_error_ = "anvil_fixture.sh start failed (status " + std::to_string(status) + "):\n" + output;
      return;
    }
    start_watchdog();
    std::ifstream in(state_dir_ + "/chain.env");
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
    }
    for (const char* key : {"ANVIL_A_URL", "ANVIL_B_URL", "ANVIL_A_CHAIN_ID", "ANVIL_B_CHAIN_ID", "BUYER", "OTHER_ACCOUNT",
                            "PAY_TO", "TOKEN_A", "OTHER_A", "TOKEN_B"})
      if (env_[key].empty()) setup_error_ += std::string("chain.env lacks ") + key + "\n";
    io_ = std::make_unique<asio::io_context>();
    work_.emplace(io_->get_executor());
    thread_ = std::thread([] { io_->run(); });
  }

  // A child that stops the nodes once this process is gone, however it ends (an ASan abort or a
  // crash skips TearDownTestSuite): it waits for EOF on a pipe only this process can write to.
  // Forked before the io thread starts.
  static void start_watchdog() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[1]);
      char c;
      while (::read(fds[0], &c, 1) != 0) {
        if (errno != EINTR) break;
      }
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execlp("bash", "bash", "-c", "bash \"$0\" stop \"$1\"; rm -rf \"$1\"", script_.c_str(), state_dir_.c_str(),
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[0]);
    if (pid > 0) {
      watchdog_fd_ = fds[1];
      watchdog_pid_ = pid;
    } else {
      ::close(fds[1]);
    }
  }

  static void TearDownTestSuite() {
    if (io_) {
      work_.reset();
      io_->stop();
      if (thread_.joinable()) thread_.join();
    }
    adapters_.clear();
    io_.reset();
    if (!state_dir_.empty()) {
      auto [status, output] = run("bash '" + script_ + "' stop '" + state_dir_ + "'");
      if (status != 0) ADD_FAILURE() << "anvil_fixture.sh stop failed:\n" << output;
      std::error_code ec;
      std::filesystem::remove_all(state_dir_, ec);
    }
    if (watchdog_pid_ > 0) {  // nothing left for it to stop
      ::close(watchdog_fd_);
      ::waitpid(watchdog_pid_, nullptr, 0);
      watchdog_pid_ = -1;
    }
  }

 protected:
  void SetUp() override {
    if (!setup_error_.empty()) GTEST_FAIL() << setup_error_;
  }

  static const std::string& env(const std::string& key) { return env_[key]; }
  static const std::string& A() { return env_["ANVIL_A_URL"]; }
  static const std::string& B() { return env_["ANVIL_B_URL"]; }

  // One synchronous JSON-RPC call to a node over a fresh connection (the test's own Beast client, so
  // that its setup does not depend on the code under test); throws on an error.
  static json::value rpc(const std::string& url, const std::string& method, json::array params = {}) {
    auto hostport = url.substr(url.find("//") + 2);
    auto colon = hostport.find(':');
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(asio::ip::tcp::resolver(ioc).resolve(hostport.substr(0, colon), hostport.substr(colon + 1)));
    http::request<http::string_body> request{http::verb::post, "/", 11};
    request.set(http::field::host, hostport);
    request.set(http::field::content_type, "application/json");
    request.body() = json::serialize(json::object{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", std::move(params)}});
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    beast::error_code ec;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    json::value reply = json::parse(response.body());
    if (const auto* error = reply.as_object().if_contains("error"); error && !error->is_null())
      throw std::runtime_error(method + ": " + json::serialize(*error));
    return reply.at("result");
  }

  // An adapter with networks "anvil" (A, 31337) and "anvil-b" (B, 31338), or the networks given.
  static al::chain::EvmJsonRpcChain& adapter(std::optional<std::vector<al::chain::EvmNetwork>> networks = std::nullopt,
                                             al::chain::JsonRpcOptions options = {}) {
    if (!networks)
      networks = std::vector<al::chain::EvmNetwork>{{"anvil", A(), std::stoll(env_["ANVIL_A_CHAIN_ID"])},
                                                    {"anvil-b", B(), std::stoll(env_["ANVIL_B_CHAIN_ID"])}};
    adapters_.push_back(std::make_unique<al::chain::EvmJsonRpcChain>(*io_, std::move(*networks), std::move(options)));
    return *adapters_.back();
  }

  static PaymentExpectation expect(const std::string& tx_hash, int required = 1, const std::string& amount = "12.5") {
    PaymentExpectation e;
    e.tx_hash = tx_hash;
    e.amount = *al::Decimal::parse(amount);
    e.token_address = env_["TOKEN_A"];
    e.pay_to = env_["PAY_TO"];
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

  static json::value receipt(const std::string& url, const std::string& hash) {
    json::array params;
    params.push_back(json::string(hash));
    return rpc(url, "eth_getTransactionReceipt", std::move(params));
  }

  // anvil's automine mines a sent transaction asynchronously: eth_sendTransaction often returns
  // before the block exists (a receipt asked for right after is null about half the time).
  static json::value wait_receipt(const std::string& url, const std::string& hash) {
    for (auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
      json::value r = receipt(url, hash);
      if (!r.is_null()) return r;
      std::this_thread::sleep_for(5ms);
    }
    throw std::runtime_error("transaction " + hash + " was not mined within 10 s");
  }

  // eth_sendTransaction from an unlocked dev account; returns the tx hash once it is mined (unless
  // `mined` is false). `extra` adds fields.
  static std::string send(const std::string& url, const std::string& from, const std::string& to, const std::string& data,
                          json::object extra = {}, bool mined = true) {
    json::object tx{{"from", from}, {"to", to}, {"gas", "0x30000"}};
    if (!data.empty()) tx["data"] = data;
    for (auto& [k, v] : extra) tx[k] = v;
    json::array params;
    params.push_back(std::move(tx));
    std::string hash(rpc(url, "eth_sendTransaction", std::move(params)).as_string());
    if (mined) wait_receipt(url, hash);
    return hash;
  }

  static std::string transfer_data(const std::string& to, std::uint64_t amount) {
    return "0xa9059cbb" + word_address(to) + word_u64(amount);
  }

  // token.transfer(to, amount) sent by `from`; returns the tx hash.
  static std::string transfer(const std::string& url, const std::string& token, const std::string& from, const std::string& to,
                              std::uint64_t amount, json::object extra = {}, bool mined = true) {
    return send(url, from, token, transfer_data(to, amount), std::move(extra), mined);
  }

  static std::string pay(std::uint64_t amount = kAmountUnits, bool mined = true) {
    return transfer(A(), env_["TOKEN_A"], env_["BUYER"], env_["PAY_TO"], amount, {}, mined);
  }

  // token.balanceOf(owner) in base units.
  static std::uint64_t balance_of(const std::string& url, const std::string& token, const std::string& owner) {
    json::array params{json::object{{"to", token}, {"data", "0x70a08231" + word_address(owner)}}, "latest"};
    auto value = al::chain::Uint256::from_hex(std::string(rpc(url, "eth_call", std::move(params)).as_string()));
    if (!value) throw std::runtime_error("balanceOf: malformed reply");
    return std::stoull(value->to_decimal());
  }

  static void mine(const std::string& url, int blocks) {
    json::array params;
    params.push_back(json::string(hex_u64(static_cast<std::uint64_t>(blocks))));
    rpc(url, "anvil_mine", std::move(params));
  }

  static void set_automine(const std::string& url, bool on) {
    json::array params;
    params.push_back(on);
    rpc(url, "evm_setAutomine", std::move(params));
  }

  static void expect_mined(const PaymentCheck& c) {
    EXPECT_GT(c.block_number, 0) << c.message;
    EXPECT_EQ(c.block_hash.size(), 66u) << c.message;
    EXPECT_EQ(c.block_hash.rfind("0x", 0), 0u) << c.block_hash;
  }

  static inline std::string setup_error_;
  static inline std::string state_dir_, script_;
  static inline std::map<std::string, std::string> env_;
  static inline std::unique_ptr<asio::io_context> io_;
  static inline std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  static inline std::thread thread_;
  static inline int watchdog_fd_ = -1;
  static inline pid_t watchdog_pid_ = -1;
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
  json::value snapshot = rpc(A(), "evm_snapshot");
  json::array count_params{json::string(env("BUYER")), json::string("latest")};
  std::string nonce(rpc(A(), "eth_getTransactionCount", std::move(count_params)).as_string());
  json::object fixed{{"nonce", nonce}, {"maxFeePerGas", "0x77359400"}, {"maxPriorityFeePerGas", "0x3b9aca00"}};
  std::string hash = transfer(A(), env("TOKEN_A"), env("BUYER"), env("PAY_TO"), kAmountUnits, fixed);

  auto c = verify(a, expect(hash, 2));
  EXPECT_EQ(c.status, "pending") << c.message;
  EXPECT_EQ(c.confirmations, 1);
  EXPECT_EQ(c.required_confirmations, 2);
  expect_mined(c);
  EXPECT_FALSE(c.reorged);
  const std::string h1 = c.block_hash;
  const long long block = c.block_number;
  json::array block_params{json::string(hex_u64(static_cast<std::uint64_t>(block))), false};
  long long timestamp = quantity(rpc(A(), "eth_getBlockByNumber", std::move(block_params)).at("timestamp"));

  json::array revert_params{snapshot};
  ASSERT_TRUE(rpc(A(), "evm_revert", std::move(revert_params)).as_bool());
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

  json::array ts_params{timestamp + 5};
  rpc(A(), "evm_setNextBlockTimestamp", std::move(ts_params));
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
