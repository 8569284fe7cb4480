#include "common/service/lifecycle.hpp"

#include "common/log/log.hpp"

namespace al {

Lifecycle::Lifecycle(std::string service, storage::Database& db, boost::asio::io_context& workers)
    : service_(std::move(service)), db_(db), workers_(workers) {}

Lifecycle::~Lifecycle() {
  for (auto& sweep : sweeps_) sweep->timer.cancel();  // a pending wait ends with an error: it touches nothing
}

Lifecycle& Lifecycle::relay(events::OutboxRelay& relay, Metrics& metrics) {
  relay_ = &relay;
  metrics.register_gauge(storage::schema_name(service_) + "_outbox_backlog",
                         service_ + " events committed but not yet published.",
                         [&relay] { return static_cast<double>(relay.backlog()); });
  return *this;
}

Lifecycle& Lifecycle::consumer(events::ConsumerLoop& consumer) {
  consumers_.push_back(&consumer);
  return *this;
}

Lifecycle& Lifecycle::every(std::string what, std::chrono::milliseconds interval, std::function<void()> sweep) {
  sweeps_.push_back(std::unique_ptr<Sweep>(new Sweep{std::move(what), interval, std::move(sweep), boost::asio::steady_timer(workers_)}));
  return *this;
}

Lifecycle& Lifecycle::before_stop(std::function<void()> hook) {
  before_stop_.push_back(std::move(hook));
  return *this;
}

void Lifecycle::start() {
  if (relay_) relay_->start();
  for (auto* consumer : consumers_) consumer->start();
  for (auto& sweep : sweeps_) schedule(*sweep);
}

void Lifecycle::schedule(Sweep& sweep) {
  if (stopping_) return;
  sweep.timer.expires_after(sweep.interval);
  sweep.timer.async_wait([this, &sweep](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    try {
      sweep.run();
    } catch (const std::exception& e) {
      log::error(sweep.what + " failed", {{"service", service_}, {"what", e.what()}});
    }
    schedule(sweep);
  });
}

void Lifecycle::stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  for (auto& hook : before_stop_) hook();
  for (auto& sweep : sweeps_) sweep->timer.cancel();
  for (auto it = consumers_.rbegin(); it != consumers_.rend(); ++it) (*it)->stop();
  if (relay_) relay_->stop();
  db_.stop();
}

bool Lifecycle::ready(std::string& reason, bool check_broker) const {
  if (!db_.healthy()) {
    reason = service_ + " database unavailable";
    return false;
  }
  if (check_broker && relay_ && !relay_->broker_reachable()) {
    reason = service_ + " cannot reach the Kafka broker";
    return false;
  }
  for (auto* consumer : consumers_)
    if (!consumer->joined()) {
      reason = service_ + " consumer has not joined its group yet";
      return false;
    }
  return true;
}

}  // namespace al
