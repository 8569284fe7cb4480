#pragma once
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/auth/api_key.hpp"
#include "common/clock/clock.hpp"
#include "common/config/config.hpp"
#include "common/http/router.hpp"
#include "common/metrics/metrics.hpp"
#include "common/service/query_params.hpp"
#include "common/service/result.hpp"
#include "common/service/worker_pool.hpp"
#include "common/storage/database.hpp"

namespace al {

// Runs a function later (on the worker pool in a Host); injected so use cases can wait (bounded)
// without blocking a thread and tests can drive the same code.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual void after(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
};

class AsioScheduler final : public Scheduler {
 public:
  explicit AsioScheduler(boost::asio::io_context& io) : io_(io) {}
  void after(std::chrono::milliseconds delay, std::function<void()> fn) override;

 private:
  boost::asio::io_context& io_;
};

// What every service gets from the process that hosts it.
struct Runtime {
  const Config& config;
  const Clock& clock;
  Metrics& metrics;
  const auth::ApiKeyAuthority& auth;
  boost::asio::io_context& io;  // I/O: sockets and their timers; never blocked
  // Work that may wait on the database (handlers, sweeps, backlog reads) runs here.
  WorkerPool& workers;
  Scheduler& scheduler;
  std::string kafka_bootstrap;
  bool embedded_kafka = false;  // the broker forgets everything on restart: replay the outbox
  std::string data_dir;
  // librdkafka settings every consumer of this process adds to its own (kafka.* config).
  std::map<std::string, std::string> consumer_settings;
  // librdkafka settings every outbox relay (producer) of this process adds to its own.
  std::map<std::string, std::string> producer_settings;
  // The base URL agents reach this deployment at (no trailing slash), for absolute URLs in
  // responses: `http.public_base_url`, else this process's own address and port.
  std::function<std::string()> public_base_url;
  // Where each service keeps its data (storage.* config): SQLite files or PostgreSQL schemas.
  storage::StorageSettings storage;
  // Outbox relays publish in Kafka transactions (fencing a replaced publisher): kafka.transactions.
  bool kafka_transactions = false;
  // This build's version (VERSION), e.g. for a User-Agent; "dev" when the host was not told.
  std::string version = "dev";
};

// A service hosted in a process (alone, or all together in the embedded default).
class Module {
 public:
  virtual ~Module() = default;
  virtual std::string name() const = 0;
  virtual void add_routes(http::Router& router) = 0;
  virtual void start() = 0;
  virtual void stop() = 0;
  // False with a reason when the store or the broker is not reachable (the broker only when
  // `check_broker`: a Kubernetes readiness probe leaves it out, the outbox absorbs an outage).
  virtual bool ready(std::string& reason, bool check_broker = true) = 0;
};

// Helpers shared by handlers.
std::optional<boost::json::object> read_json_object(const http::Request& request,
                                                    http::Response& error);

}  // namespace al
