#pragma once
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/auth/api_key.hpp"
#include "common/config/config.hpp"
#include "common/http/server.hpp"
#include "common/kafka/kafka.hpp"
#include "common/service/module.hpp"
#include "common/service/rate_limit.hpp"

namespace al {

// Every configuration key of the binary, with defaults and descriptions (the documented table).
std::vector<ConfigEntry> all_config_entries();

// What the binary is (agentlancer_build_info, --version); tests and tools that build a Host
// without the generated build info get "dev".
struct BuildInfo {
  std::string version = "dev";
  std::string commit = "unknown";
};

// Every process also serves GET /openapi.yaml: this document, embedded at build time.
std::string_view openapi_document();

// Hosts one or more service modules in this process: config, clock, auth, metrics, the embedded
// broker when no bootstrap is configured, one HTTP server for all their routes, and a graceful
// stop. `services` is {"all"} or a list of "thread-service", "job-service".
class Host {
 public:
  Host(const Config& config, std::vector<std::string> services, const Clock& clock = SystemClock::instance(),
       BuildInfo build = {});
  ~Host();

  void start();  // prepare(), then serve: the modules start and the server accepts
  // Builds the services and their routes; nothing is started and nothing listens.
  void prepare();
  unsigned short port() const { return server_->port(); }
  const std::string& kafka_bootstrap() const { return bootstrap_; }
  kafka::EmbeddedCluster* embedded_cluster() { return embedded_.get(); }
  const auth::ApiKeyAuthority& auth() const { return *auth_; }
  Metrics& metrics() { return metrics_; }
  const http::Router& router() const { return router_; }
  // Stops accepting, drains in-flight requests (bounded), stops the modules. Idempotent.
  void stop();
  // Blocks until SIGINT/SIGTERM, then stops.
  void run_until_signal();

 private:
  const Config& config_;
  std::vector<std::string> services_;
  const Clock& clock_;
  BuildInfo build_;
  boost::asio::io_context io_{1};  // the primary context: acceptor, timers, scheduler
  std::vector<std::unique_ptr<boost::asio::io_context>> extra_io_;  // one per further I/O thread
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<AsioScheduler> scheduler_;
  Metrics metrics_;
  std::unique_ptr<auth::ApiKeyAuthority> auth_;
  std::unique_ptr<kafka::EmbeddedCluster> embedded_;
  std::string bootstrap_;
  std::unique_ptr<Runtime> runtime_;
  std::vector<std::unique_ptr<Module>> modules_;
  std::unique_ptr<rate_limit::Limiter> limiter_;
  http::Router router_;
  bool prepared_ = false;
  void serve();
  std::unique_ptr<http::Server> server_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace al
