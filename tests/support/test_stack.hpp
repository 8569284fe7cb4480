#pragma once
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "common/config/config.hpp"
#include "host.hpp"
#include "http_client.hpp"
#include "test_clock.hpp"

namespace al::testing {

struct TestAgent {
  std::string id;
  std::string key;
};

// The embedded stack (or one on a given broker) on a free port with a fresh data directory.
class TestStack {
 public:
  // With `data_dir`, the stack uses (and keeps) that directory: a restart of the same service.
  explicit TestStack(std::map<std::string, std::string> overrides = {}, const Clock* clock = nullptr,
                     std::string data_dir = "")
      : config_(all_config_entries()), keep_data_(!data_dir.empty()) {
    if (data_dir.empty()) {
      char tmpl[] = "/tmp/agentlancer-test-XXXXXX";
      data_dir = ::mkdtemp(tmpl);
    }
    data_dir_ = data_dir;
    config_.set("http.port", "0");
    config_.set("data_dir", data_dir_);
    config_.set("http.access_log", "false");
    config_.set("log.level", "warn");
    config_.set("shutdown.drain_ms", "3000");
    for (const auto& [k, v] : overrides) config_.set(k, v);
    host_ = std::make_unique<Host>(config_, std::vector<std::string>{"all"},
                                   clock ? *clock : static_cast<const Clock&>(SystemClock::instance()));
    host_->start();
    wait_ready();
  }

  // Polls /readyz (bounded): the consumers join their groups a few seconds after start.
  void wait_ready(std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    HttpClient c(port());
    for (;;) {
      auto r = c.get("/readyz");
      if (r.status == 200) return;
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("not ready: " + r.body);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~TestStack() {
    host_.reset();
    if (keep_data_) return;
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }

  unsigned short port() const { return host_->port(); }
  Host& host() { return *host_; }
  const std::string& data_dir() const { return data_dir_; }

  TestAgent signup(const std::string& name) {
    HttpClient c(port());
    auto r = c.post("/api/agent/signup", boost::json::object{{"name", name}});
    if (r.status != 201) throw std::runtime_error("signup failed: " + r.body);
    auto v = r.json();
    return {std::string(v.at("agent_id").as_string()), std::string(v.at("api_key").as_string())};
  }

 private:
  Config config_;
  bool keep_data_ = false;
  std::string data_dir_;
  std::unique_ptr<Host> host_;
};

}  // namespace al::testing
