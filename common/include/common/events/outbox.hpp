#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock/clock.hpp"
#include "common/events/cloud_event.hpp"
#include "common/kafka/kafka.hpp"
#include "common/metrics/metrics.hpp"
#include "common/storage/database.hpp"
#include "common/storage/outbox_store.hpp"

namespace al::events {

// Schema shared by every service database: the outbox and the consumers' processed-event ids
// (both migrations, at the versions the service gives them).
storage::Migration outbox_migration(int version);
storage::Migration outbox_published_at_migration(int version);
storage::Migration outbox_positions_migration(int version);  // for services with a relay

// Appends the event to the outbox inside the caller's transaction.
void append_to_outbox(storage::Connection& connection, const std::string& topic,
                      const CloudEvent& event, Millis now);

// True when this consumer has not seen the event yet (and records it, in the same transaction
// as the caller's effect); false for a redelivery.
bool claim_event(storage::Connection& connection, const std::string& consumer,
                 const std::string& event_id, Millis now);

struct RelayOptions {
  std::string name = "outbox";        // for logs and metrics
  std::size_t batch = 500;
  // Embedded broker: it starts empty after a restart, so retained, already published rows are
  // published again (consumers dedupe by event id).
  bool replay_published_on_start = false;
  long long retention_ms = 7LL * 24 * 3600 * 1000;
  int retry_backoff_ms = 500;
  // Replicas of a service share its outbox: one relay at a time holds the publisher lease (renewed
  // every lease_ms / 3) and the others stand by; a crashed holder is replaced once its lease expires.
  long long lease_ms = 5000;
  // Each batch in a Kafka transaction under the transactional id `agentlancer-outbox.<name>`: taking
  // the lease begins with init_transactions, which fences every earlier holder's producer (a
  // holder paused past its lease can no longer commit anything) and settles what it left open.
  // Consumers read committed messages only. Real Kafka; off with the embedded broker.
  bool transactional = false;
  // Fault injection for tests: rows are never marked published, as if the relay died right after
  // the broker acknowledged the messages.
  bool fault_drop_delivery_reports = false;
  // Fault injection for tests: a pause (ms) between reading a batch and producing it, as a holder
  // stalled past its lease (CPU starved, a slow database read) would take.
  int fault_pause_before_produce_ms = 0;
};

// Publishes outbox rows with an idempotent producer, a batch at a time: the lowest unpublished
// committed rows in sequence order, then waits for their delivery reports and marks published
// the delivered prefix (by sequence number), recording the offsets reached per partition. Rows of
// one aggregate are committed in sequence order (each writer holds the aggregate's row), so they
// are published in order even when other rows commit out of order.
//
// Exactly once on Kafka: a row may be on Kafka without its mark (the holder was killed between
// the broker's acknowledgement and the mark, the mark's transaction failed, or a delivery
// reported as failed was in fact written). Whenever that can be the case — on taking the lease,
// after a failed delivery, after a failed mark — the relay is "in doubt" about every unpublished
// row committed so far and produces nothing until it has read the partitions back from the
// recorded offsets: rows found there are marked, not produced again. A holder that is still alive
// after its lease expired (paused, not dead) could still write what it had in flight; with
// `transactional` it cannot: the next holder's init_transactions fences it before reading back.
class OutboxRelay {
 public:
  OutboxRelay(storage::Database& db, std::string bootstrap, const Clock& clock, Metrics* metrics,
              RelayOptions options = {}, kafka::Settings producer_settings = {});
  ~OutboxRelay();
  void start();
  void stop();   // flushes what is in flight (bounded) and records deliveries
  void abandon();  // stops without flushing or marking (simulates a crash)
  void wake();
  long long published_count() const { return published_.load(); }
  bool publishing() const { return leased_.load(); }  // holds the publisher lease
  long long failed_count() const { return failed_.load(); }
  // Rows found already on Kafka by a read-back (marked instead of produced again).
  long long recovered_count() const { return recovered_.load(); }
  long long backlog();  // rows not yet published
  // The last probe's answer (the relay probes in its own thread every second). With 0 it never
  // blocks (readiness probes); otherwise it waits up to `timeout_ms` for a first "reachable".
  bool broker_reachable(int timeout_ms = 0);

 private:
  void loop();
  // Produces `rows`, waits for their delivery reports; returns the delivered prefix.
  std::vector<long long> publish(const std::vector<storage::outbox::Row>& rows, bool& failed,
                                 std::vector<storage::outbox::Position>& reached);
  void probe_broker();
  void new_producer();  // a fresh producer (after a fatal error, or a lease lost: it may be fenced)
  // Transactional: registers this holder's producer (fencing earlier ones); false to retry later.
  bool ready_to_publish();
  void set_broker_ok(bool ok);
  // Takes or renews the lease when due; false while another replica holds it.
  bool hold_lease(bool force = false);
  // Reads back what may be on Kafka unmarked and marks it; false when that could not be done yet.
  bool resolve_doubt();
  void doubt();
  storage::Database& db_;
  std::string bootstrap_;
  const Clock& clock_;
  Metrics* metrics_;
  RelayOptions options_;
  kafka::Settings producer_settings_;
  std::unique_ptr<kafka::Producer> producer_;  // relay thread only (and stop() after the join)
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool woken_ = false;
  std::atomic<bool> running_{false};
  std::atomic<bool> abandon_{false};
  std::atomic<bool> broker_ok_{false};
  std::string holder_;  // this relay instance, in the lease table
  std::atomic<bool> leased_{false};
  std::chrono::steady_clock::time_point lease_renewed_{};
  std::mutex probe_mutex_;
  std::condition_variable probe_cv_;
  std::chrono::steady_clock::time_point last_probe_{};
  // Embedded broker: rows up to replay_upto_ are published again from replay_cursor_ on.
  long long replay_upto_ = 0;
  long long replay_cursor_ = 0;
  // Fault mode only: delivered rows this process will not mark (nor produce again).
  std::set<long long> delivered_unmarked_;
  std::atomic<long long> published_{0};
  std::atomic<long long> failed_{0};
  std::atomic<long long> recovered_{0};
  // When the oldest unpublished row was written (0: none), read about once a second.
  std::atomic<long long> oldest_unpublished_at_{0};
  std::chrono::steady_clock::time_point oldest_checked_{};
  bool in_doubt_ = true;  // until the first read-back after taking the lease
  bool transactions_ready_ = false;  // init_transactions done on producer_ while holding the lease
  Millis last_trim_ = 0;
  int listener_id_ = 0;
  // The database's NOTIFY listener outlives the relay: it wakes it only while it runs.
  struct Waker {
    std::mutex mutex;
    OutboxRelay* relay = nullptr;
  };
  std::shared_ptr<Waker> waker_;
};

// Reads events from Kafka and applies each in its own transaction together with its
// processed-event marker; offsets are stored only after that commit.
class ConsumerLoop {
 public:
  using Apply = std::function<void(storage::Connection&, const CloudEvent&)>;
  // An Apply that also returns what to do once its transaction has committed (or an empty
  // function): e.g. tell live subscribers, who must never hear of an effect that was undone.
  struct ApplyThen {
    std::function<std::function<void()>(storage::Connection&, const CloudEvent&)> apply;
  };
  ConsumerLoop(std::string name, std::string bootstrap, std::string group,
               std::vector<std::string> topics, storage::Database& db, const Clock& clock,
               Apply apply, Metrics* metrics, kafka::Settings settings = {});
  ConsumerLoop(std::string name, std::string bootstrap, std::string group,
               std::vector<std::string> topics, storage::Database& db, const Clock& clock,
               ApplyThen apply, Metrics* metrics, kafka::Settings settings = {});
  ~ConsumerLoop();
  void start();
  void stop();
  long long applied_count() const { return applied_.load(); }
  long long duplicate_count() const { return duplicates_.load(); }
  // True once the consumer has joined its group (readiness: events will now be applied).
  bool joined() const { return joined_.load(); }

 private:
  void loop();
  std::string name_, bootstrap_, group_;
  std::vector<std::string> topics_;
  storage::Database& db_;
  const Clock& clock_;
  ApplyThen apply_;
  Metrics* metrics_;
  kafka::Settings settings_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<long long> applied_{0};
  std::atomic<long long> duplicates_{0};
  std::atomic<bool> joined_{false};
  std::mutex lag_mutex_;
  std::vector<kafka::Consumer::PartitionLag> lag_;  // refreshed by the loop about once a second
};

}  // namespace al::events
