#pragma once
// Delivers each agent's log to its webhook endpoints: per endpoint in event order, one request in
// flight, retried on the configured schedule, the endpoint leased in the database so that with
// N notifier replicas each delivery is made by one of them. Requests run on the dispatcher's own
// I/O thread (never the consumer's or the HTTP server's); database work runs on the workers.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock/clock.hpp"
#include "common/metrics/metrics.hpp"
#include "common/service/worker_pool.hpp"
#include "common/storage/database.hpp"
#include "storage/webhook_store.hpp"
#include "webhooks/webhook_rules.hpp"

namespace al::notifier::webhooks {

struct Settings {
  std::vector<Cidr> allowed;
  std::chrono::milliseconds timeout{10'000};
  std::vector<long long> schedule{0};
  Millis disable_after = 5LL * 24 * 3600 * 1000;
  int max_concurrency = 32;
  std::chrono::milliseconds poll_interval{200};
  std::string user_agent = "agentlancer-webhooks";
};

// What a request to an endpoint came to.
struct Outcome {
  bool delivered = false;
  std::optional<long long> response_code;
  std::optional<std::string> error;
  long long latency_us = 0;
};

class Dispatcher {
 public:
  // Runs in the unit of work that disables a failing endpoint; returns what to do after the commit.
  using OnDisabled = std::function<std::function<void()>(storage::Connection&, const webhook_store::Endpoint&, Millis)>;
  // The log row (the polling row) of the agent's entry, as sent.
  using RenderRow = std::function<std::string(const std::string& payload, long long event_id)>;

  Dispatcher(storage::Database& db, WorkerPool& workers, const Clock& clock, Settings settings, Metrics& metrics,
             RenderRow render, OnDisabled on_disabled);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void start();
  void stop();
  // New entries were logged: look for due endpoints now rather than at the next poll.
  void wake();

  const Settings& settings() const { return settings_; }

 private:
  struct Job {
    webhook_store::Endpoint endpoint;
    long long event_id = 0;
    std::string webhook_id, type, body;
    std::string traceparent;  // of the event ("" when it has none)
  };
  void arm_poll();
  void scan();
  void claim(const std::string& id);
  void send(std::shared_ptr<Job> job);
  void finish(std::shared_ptr<Job> job, Outcome outcome);

  storage::Database& db_;
  WorkerPool& workers_;
  const Clock& clock_;
  const Settings settings_;
  Metrics& metrics_;
  RenderRow render_;
  OnDisabled on_disabled_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // https endpoints: the system's CAs, host name checked
  boost::asio::io_context io_;
  boost::asio::steady_timer poll_timer_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> scanning_{false};
  std::atomic<bool> rescan_{false};
  std::atomic<int> in_flight_{0};  // claimed or being sent
  std::atomic<int> pending_{0};    // scans and units of work that will call back into this object
};

// One POST of `body` to `url`, resolved and checked against `allowed` at the time of the request
// (only the checked addresses are connected to; no redirect is followed). Used by the dispatcher
// and exposed for tests.
struct WebhookRequest {
  std::string url, body, user_agent, webhook_id, signature;
  std::string traceparent;  // sent when not empty: the receiver continues the event's trace
  long long timestamp = 0;
};

// Resolves `host` (a name or an address literal) and checks every address; the addresses when all
// may be reached, else the error (`url_not_allowed: …` or `url_unresolvable`).
struct Resolution {
  std::vector<boost::asio::ip::address> addresses;
  std::string error;       // empty when the addresses may be used
  std::string refused;     // the first refused address (for the message)
  bool unresolvable = false;
};
Resolution resolve_checked(const std::string& host, const std::vector<Cidr>& allowed);

}  // namespace al::notifier::webhooks
