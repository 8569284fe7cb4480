#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/events/outbox.hpp"
#include "common/metrics/metrics.hpp"
#include "common/storage/database.hpp"

namespace al {

// The moving parts of one service and the one way they start, stop and report readiness:
// start the relay, then the consumers, then the periodic sweeps (on the worker pool, never an
// I/O thread); stop in reverse — the hooks, the sweeps, the consumers, the relay (flushing what
// was committed), then the database; ready while the database answers, the broker is reachable
// and every consumer has joined its group (all from cached probes: no round trip on the caller).
class Lifecycle {
 public:
  Lifecycle(std::string service, storage::Database& db, boost::asio::io_context& workers);
  ~Lifecycle();
  Lifecycle(const Lifecycle&) = delete;
  Lifecycle& operator=(const Lifecycle&) = delete;

  // Also exports `<service>_outbox_backlog` (events committed, not yet published).
  Lifecycle& relay(events::OutboxRelay& relay, Metrics& metrics);
  Lifecycle& consumer(events::ConsumerLoop& consumer);
  // Runs `sweep` every `interval` (from the end of the previous run); a failure is logged.
  Lifecycle& every(std::string what, std::chrono::milliseconds interval, std::function<void()> sweep);
  // Runs first on stop (e.g. close the WebSockets while the I/O threads still run).
  Lifecycle& before_stop(std::function<void()> hook);

  void start();
  void stop();  // idempotent
  bool ready(std::string& reason, bool check_broker = true) const;

 private:
  struct Sweep {
    std::string what;
    std::chrono::milliseconds interval;
    std::function<void()> run;
    boost::asio::steady_timer timer;
  };
  void schedule(Sweep& sweep);

  std::string service_;
  storage::Database& db_;
  boost::asio::io_context& workers_;
  events::OutboxRelay* relay_ = nullptr;
  std::vector<events::ConsumerLoop*> consumers_;
  std::vector<std::unique_ptr<Sweep>> sweeps_;
  std::vector<std::function<void()>> before_stop_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
};

}  // namespace al
