#pragma once
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/config/config.hpp"
#include "common/storage/database.hpp"
#include "host.hpp"
#include "http_client.hpp"
#include "test_clock.hpp"

namespace al::testing {

struct TestAgent {
  std::string id;
  std::string key;
};

// The embedded stack (or one on a given broker) on a free port with a fresh data directory.
//
// Storage: SQLite files in the data directory, unless AGENTLANCER_TEST_PG_STATE names the state
// directory of the PostgreSQL test cluster (tests/pg_fixture.sh; ctest sets it for the `.pg` /
// `_pg` twins): then each stack gets a fresh database `t_<12 hex>` on that cluster and
// `storage.url` points at it (unless the test's overrides set `storage.url` themselves).
class TestStack {
 public:
  // With `data_dir`, the stack uses (and keeps) that directory: a restart of the same service.
  // On PostgreSQL it also reuses that service's database: its URL is kept in
  // `<data_dir>/storage.url`, written by the first stack on the directory.
  explicit TestStack(std::map<std::string, std::string> overrides = {}, const Clock* clock = nullptr,
                     std::string data_dir = "")
      : config_(all_config_entries()), keep_data_(!data_dir.empty()) {
    if (data_dir.empty()) {
      char tmpl[] = "/tmp/agentlancer-test-XXXXXX";
      const char* made = ::mkdtemp(tmpl);
      if (!made) throw std::runtime_error("mkdtemp failed for " + std::string(tmpl));
      data_dir = made;
    }
    data_dir_ = data_dir;
    try {
      config_.set("http.port", "0");
      config_.set("data_dir", data_dir_);
      config_.set("http.access_log", "false");
      config_.set("log.level", "warn");
      config_.set("shutdown.drain_ms", "3000");
      // Tests drive many agents from one address and key at full speed; the limits have their own test.
      config_.set("rate_limit.enabled", "false");
      if (!overrides.contains("storage.url")) use_test_postgres();
      for (const auto& [k, v] : overrides) config_.set(k, v);
      storage_url_ = config_.get("storage.url");
      host_ = std::make_unique<Host>(config_, std::vector<std::string>{"all"},
                                     clock ? *clock : static_cast<const Clock&>(SystemClock::instance()));
      host_->start();
      wait_ready();
    } catch (...) {
      // No destructor runs for a half-built stack: stop it and clean up what it made.
      host_.reset();
      cleanup();
      throw;
    }
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
    cleanup();
  }

  unsigned short port() const { return host_->port(); }
  Host& host() { return *host_; }
  const std::string& data_dir() const { return data_dir_; }
  // The effective `storage.url`: empty on SQLite (files in data_dir()), else a postgresql:// URL.
  const std::string& storage_url() const { return storage_url_; }

  TestAgent signup(const std::string& name) {
    HttpClient c(port());
    auto r = c.post("/api/agent/signup", boost::json::object{{"name", name}});
    if (r.status != 201) throw std::runtime_error("signup failed: " + r.body);
    auto v = r.json();
    return {std::string(v.at("agent_id").as_string()), std::string(v.at("api_key").as_string())};
  }

 private:
  static std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    return line;
  }

  static std::string random_db_name() {
    static const char* hex = "0123456789abcdef";
    std::random_device rd;
    std::mt19937_64 gen((static_cast<unsigned long long>(rd()) << 32) ^ rd());
    std::string name = "t_";
    for (int i = 0; i < 12; ++i) name.push_back(hex[gen() % 16]);
    return name;
  }

  // On the PostgreSQL test cluster: the database of this data directory (a restart), or a fresh one.
  void use_test_postgres() {
    const char* state = std::getenv("AGENTLANCER_TEST_PG_STATE");
    if (!state || !*state) return;
    const std::string url_file = data_dir_ + "/storage.url";
    std::string url;
    if (std::filesystem::exists(url_file)) {
      url = first_line(url_file);
      if (url.empty()) throw std::runtime_error(url_file + " is empty");
    } else {
      std::string admin = first_line(std::string(state) + "/url");
      if (admin.empty())
        throw std::runtime_error("no admin URL in " + std::string(state) +
                                 "/url: is the postgres fixture running? (tests/pg_fixture.sh start " + state + ")");
      std::string name = random_db_name();
      storage::create_postgres_database(admin, name);
      pg_admin_url_ = admin;
      pg_database_ = name;
      url = storage::postgres_url_for(admin, name);
      std::ofstream out(url_file, std::ios::trunc);
      out << url << "\n";
      if (!out.flush()) throw std::runtime_error("cannot write " + url_file);
    }
    config_.set("storage.url", url);
  }

  // The data directory and this stack's database go, unless the directory was given (kept).
  void cleanup() noexcept {
    if (keep_data_) return;
    if (!pg_database_.empty()) {
      try {
        storage::drop_postgres_database(pg_admin_url_, pg_database_);
      } catch (const std::exception& e) {
        std::cerr << "TestStack: could not drop database " << pg_database_ << ": " << e.what() << std::endl;
      }
      pg_database_.clear();
    }
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }

  Config config_;
  bool keep_data_ = false;
  std::string data_dir_;
  std::string storage_url_;
  std::string pg_admin_url_;  // set when this stack created its database
  std::string pg_database_;
  std::unique_ptr<Host> host_;
};

}  // namespace al::testing
