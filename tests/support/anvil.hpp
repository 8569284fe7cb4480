#pragma once
// Two real local Ethereum chains for tests: tests/chain/anvil_fixture.sh (anvil A, chain id 31337,
// and anvil B, 31338, with ERC-20 test tokens of 6 decimals deployed), a watchdog that stops them
// however the test process ends, and the test's own synchronous JSON-RPC client and chain recipes
// (independent of the code under test). Needs AGENTLANCER_SOURCE_DIR (the repository root).
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "common/chain/uint256.hpp"
#include "http_client.hpp"

namespace al::testing {

namespace anvil {
namespace json = boost::json;

// Runs a shell command, returning (exit status, combined output).
inline std::pair<int, std::string> run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

inline std::string hex_u64(std::uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
  return buffer;
}

// A 32-byte ABI word: an address (0x + 40 hex) or a number, left-padded with zeros.
inline std::string word_address(const std::string& address) { return std::string(24, '0') + address.substr(2); }
inline std::string word_u64(std::uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return std::string(48, '0') + buffer;
}

// A JSON-RPC quantity ("0x…").
inline long long quantity(const json::value& v) { return std::stoll(std::string(v.as_string()), nullptr, 16); }

// A random 0x + 64 hex hash (no such transaction anywhere).
inline std::string random_hash() {
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
inline int closed_port() {
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

// One synchronous JSON-RPC call to a node over a fresh connection (the test's own Beast client, so
// that its setup does not depend on the code under test); throws on an error.
inline json::value rpc(const std::string& url, const std::string& method, json::array params = {}) {
  // The fixture's nodes are http://127.0.0.1:<port>.
  HttpClient client(static_cast<unsigned short>(std::stoi(url.substr(url.rfind(':') + 1))));
  auto response = client.post(
      "/", json::object{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", std::move(params)}});
  if (response.status != 200) throw std::runtime_error(method + ": HTTP " + std::to_string(response.status));
  json::value reply = response.json();
  if (const auto* error = reply.as_object().if_contains("error"); error && !error->is_null())
    throw std::runtime_error(method + ": " + json::serialize(*error));
  return reply.at("result");
}

inline json::value receipt(const std::string& url, const std::string& hash) {
  json::array params;
  params.push_back(json::string(hash));
  return rpc(url, "eth_getTransactionReceipt", std::move(params));
}

// anvil's automine mines a sent transaction asynchronously: eth_sendTransaction often returns
// before the block exists (a receipt asked for right after is null about half the time).
inline json::value wait_receipt(const std::string& url, const std::string& hash) {
  using namespace std::chrono_literals;
  for (auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
    json::value r = receipt(url, hash);
    if (!r.is_null()) return r;
    std::this_thread::sleep_for(5ms);
  }
  throw std::runtime_error("transaction " + hash + " was not mined within 10 s");
}

// eth_sendTransaction from an unlocked dev account; returns the tx hash once it is mined (unless
// `mined` is false). `extra` adds fields.
inline std::string send(const std::string& url, const std::string& from, const std::string& to, const std::string& data,
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

inline std::string transfer_data(const std::string& to, std::uint64_t amount) {
  return "0xa9059cbb" + word_address(to) + word_u64(amount);
}

// token.transfer(to, amount) sent by `from` (amount in base units); returns the tx hash.
inline std::string transfer(const std::string& url, const std::string& token, const std::string& from, const std::string& to,
                            std::uint64_t amount, json::object extra = {}, bool mined = true) {
  return send(url, from, token, transfer_data(to, amount), std::move(extra), mined);
}

// token.balanceOf(owner) in base units.
inline std::uint64_t balance_of(const std::string& url, const std::string& token, const std::string& owner) {
  json::array params{json::object{{"to", token}, {"data", "0x70a08231" + word_address(owner)}}, "latest"};
  auto value = al::chain::Uint256::from_hex(std::string(rpc(url, "eth_call", std::move(params)).as_string()));
  if (!value) throw std::runtime_error("balanceOf: malformed reply");
  return std::stoull(value->to_decimal());
}

inline void mine(const std::string& url, int blocks) {
  json::array params;
  params.push_back(json::string(hex_u64(static_cast<std::uint64_t>(blocks))));
  rpc(url, "anvil_mine", std::move(params));
}

inline void set_automine(const std::string& url, bool on) {
  json::array params;
  params.push_back(on);
  rpc(url, "evm_setAutomine", std::move(params));
}

// evm_snapshot: the id to give revert (which consumes it).
inline json::value snapshot(const std::string& url) { return rpc(url, "evm_snapshot"); }
inline bool revert(const std::string& url, const json::value& snapshot_id) {
  json::array params{snapshot_id};
  return rpc(url, "evm_revert", std::move(params)).as_bool();
}

// The account's next nonce ("0x…", latest block).
inline std::string nonce_of(const std::string& url, const std::string& account) {
  json::array params{json::string(account), json::string("latest")};
  return std::string(rpc(url, "eth_getTransactionCount", std::move(params)).as_string());
}

inline long long block_timestamp(const std::string& url, long long number) {
  json::array params{json::string(hex_u64(static_cast<std::uint64_t>(number))), false};
  return quantity(rpc(url, "eth_getBlockByNumber", std::move(params)).at("timestamp"));
}

inline void set_next_block_timestamp(const std::string& url, long long timestamp) {
  json::array params{timestamp};
  rpc(url, "evm_setNextBlockTimestamp", std::move(params));
}

// Fields that make a transaction reproducible: sent again after a revert, it has the same hash
// (with the same nonce; the re-mined block differs when its timestamp does).
inline json::object fixed_fields(const std::string& nonce) {
  return {{"nonce", nonce}, {"maxFeePerGas", "0x77359400"}, {"maxPriorityFeePerGas", "0x3b9aca00"}};
}
}  // namespace anvil

// The fixture's two nodes in one state directory: start() once per suite (before starting any
// thread: it forks the watchdog), stop() after (also done by the destructor).
class AnvilChains {
 public:
  AnvilChains() = default;
  AnvilChains(const AnvilChains&) = delete;
  AnvilChains& operator=(const AnvilChains&) = delete;
  ~AnvilChains() { stop(); }

  // Starts both nodes in a fresh directory made from `tmpl` (mkdtemp). Returns false with error()
  // set when anything is missing.
  bool start(const std::string& tmpl = "/tmp/anvil_chains.XXXXXX") {
    std::string dir = tmpl;
    if (!::mkdtemp(dir.data())) {
      error_ = "mkdtemp failed";
      return false;
    }
    state_dir_ = dir;
    script_ = std::string(AGENTLANCER_SOURCE_DIR) + "/tests/chain/anvil_fixture.sh";
    auto [status, output] = anvil::run("bash '" + script_ + "' start '" + state_dir_ + "'");
    if (status != 0) {
      error_ = "anvil_fixture.sh start failed (status " + std::to_string(status) + "):\n" + output;
      return false;
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
      if (env_[key].empty()) error_ += std::string("chain.env lacks ") + key + "\n";
    return error_.empty();
  }

  // Stops the nodes and removes the state directory; returns the fixture's output when its stop failed.
  std::string stop() {
    std::string failure;
    if (!state_dir_.empty()) {
      auto [status, output] = anvil::run("bash '" + script_ + "' stop '" + state_dir_ + "'");
      if (status != 0) failure = "anvil_fixture.sh stop failed:\n" + output;
      std::error_code ec;
      std::filesystem::remove_all(state_dir_, ec);
      state_dir_.clear();
    }
    if (watchdog_pid_ > 0) {  // nothing left for it to stop
      ::close(watchdog_fd_);
      ::waitpid(watchdog_pid_, nullptr, 0);
      watchdog_pid_ = -1;
      watchdog_fd_ = -1;
    }
    return failure;
  }

  const std::string& error() const { return error_; }
  const std::string& state_dir() const { return state_dir_; }
  // A chain.env value: ANVIL_A_URL ANVIL_B_URL ANVIL_A_CHAIN_ID ANVIL_B_CHAIN_ID BUYER OTHER_ACCOUNT
  // PAY_TO TOKEN_A OTHER_A TOKEN_B (addresses lowercase).
  const std::string& env(const std::string& key) const {
    static const std::string none;
    auto it = env_.find(key);
    return it == env_.end() ? none : it->second;
  }
  const std::string& a() const { return env("ANVIL_A_URL"); }
  const std::string& b() const { return env("ANVIL_B_URL"); }

  // BUYER pays `amount` base units of TOKEN_A to PAY_TO on A; returns the tx hash (once mined, unless not `mined`).
  std::string pay(std::uint64_t amount, boost::json::object extra = {}, bool mined = true) const {
    return anvil::transfer(a(), env("TOKEN_A"), env("BUYER"), env("PAY_TO"), amount, std::move(extra), mined);
  }

 private:
  // A child that stops the nodes once this process is gone, however it ends (an ASan abort or a
  // crash skips the suite's teardown): it waits for EOF on a pipe only this process can write to.
  void start_watchdog() {
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

  std::string error_;
  std::string state_dir_, script_;
  std::map<std::string, std::string> env_;
  int watchdog_fd_ = -1;
  pid_t watchdog_pid_ = -1;
};

}  // namespace al::testing
