#include "common/events/outbox.hpp"

#include <boost/json/serialize.hpp>
#include <future>

#include "common/json/json.hpp"
#include "common/log/log.hpp"

namespace al::events {

storage::Migration outbox_migration(int version) {
  return {version, R"sql(
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  topic TEXT NOT NULL,
  msg_key TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
-- Per relay: every row with seq <= published_upto has been delivered (publication is in order
-- and a failed delivery rewinds), so one row replaces a per-message "published" mark.
CREATE TABLE outbox_watermark (
  relay TEXT PRIMARY KEY,
  published_upto INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE processed_events (
  consumer TEXT NOT NULL,
  event_id TEXT NOT NULL,
  processed_at INTEGER NOT NULL,
  PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  consumer TEXT NOT NULL,
  topic TEXT NOT NULL,
  payload TEXT NOT NULL,
  error TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
)sql"};
}

void append_to_outbox(storage::Connection& c, const std::string& topic, const CloudEvent& event,
                      Millis now) {
  c.query("INSERT INTO outbox(event_id, topic, msg_key, payload, created_at) VALUES (?,?,?,?,?)",
          event.id, topic, event.subject, boost::json::serialize(event.to_json()), now)
      .run();
}

bool claim_event(storage::Connection& c, const std::string& consumer, const std::string& event_id,
                 Millis now) {
  return c.query("INSERT OR IGNORE INTO processed_events(consumer, event_id, processed_at) VALUES (?,?,?)",
                 consumer, event_id, now)
             .run() == 1;
}

OutboxRelay::OutboxRelay(storage::Database& db, std::string bootstrap, const Clock& clock,
                         Metrics* metrics, RelayOptions options, kafka::Settings producer_settings)
    : db_(db),
      bootstrap_(std::move(bootstrap)),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)),
      producer_settings_(std::move(producer_settings)) {}

OutboxRelay::~OutboxRelay() { stop(); }

void OutboxRelay::start() {
  if (running_) throw std::logic_error("outbox relay already started");
  producer_ = std::make_unique<kafka::Producer>(bootstrap_, producer_settings_);
  published_upto_ = persisted_upto_ = db_.read([this](storage::Connection& c) {
    auto q = c.query("SELECT published_upto FROM outbox_watermark WHERE relay = ?", options_.name);
    return q.next() ? q.int64(0) : 0LL;
  });
  // The embedded broker starts empty: publish every retained row again.
  cursor_ = options_.replay_published_on_start ? 0 : published_upto_;
  running_ = true;
  thread_ = std::thread([this] { loop(); });
  listener_id_ = db_.add_commit_listener([this] { wake(); });
}

void OutboxRelay::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  cv_.notify_one();
}

void OutboxRelay::stop() {
  if (!running_.exchange(false)) return;
  db_.remove_commit_listener(listener_id_);
  wake();
  if (thread_.joinable()) thread_.join();
  if (!abandon_) {
    producer_->flush(5000);
    handle(producer_->poll(0));
    persist_watermark(true);
  }
  producer_.reset();
}

void OutboxRelay::abandon() {
  abandon_ = true;
  stop();
}

long long OutboxRelay::backlog() {
  return db_.read([this](storage::Connection& c) {
    auto q = c.query(
        "SELECT COUNT(*) FROM outbox WHERE seq > COALESCE((SELECT published_upto FROM outbox_watermark WHERE relay = ?), 0)",
        options_.name);
    return q.next() ? q.int64(0) : 0LL;
  });
}

void OutboxRelay::persist_watermark(bool now) {
  long long upto = in_flight_.empty() ? cursor_ : *in_flight_.begin() - 1;
  if (!options_.fault_drop_delivery_reports && upto > published_upto_) published_upto_ = upto;
  if (published_upto_ <= persisted_upto_) return;
  auto steady = std::chrono::steady_clock::now();
  if (!now && steady - last_persist_ < std::chrono::milliseconds(50)) return;
  last_persist_ = steady;
  persisted_upto_ = published_upto_;
  db_.write(
      [name = options_.name, upto = published_upto_](storage::Connection& c) {
        c.query("INSERT INTO outbox_watermark(relay, published_upto) VALUES (?, ?) "
                "ON CONFLICT(relay) DO UPDATE SET published_upto = MAX(published_upto, excluded.published_upto)",
                name, upto)
            .run();
      },
      [name = options_.name](std::exception_ptr error) {
        // Not fatal: rows above the stored watermark are published again and consumers dedupe.
        if (error) log::warn("outbox watermark write failed", {{"relay", name}});
      });
}

bool OutboxRelay::broker_reachable(int timeout_ms) {
  return producer_ && producer_->reachable(timeout_ms);
}

void OutboxRelay::handle(const std::vector<kafka::Delivery>& deliveries) {
  if (deliveries.empty()) return;
  long long ok = 0;
  for (const auto& d : deliveries) {
    if (d.error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++ok;
      in_flight_.erase(d.opaque);
    } else {
      ++failed_;
      if (metrics_) metrics_->add_counter("outbox_publish_failures_total", "Outbox messages whose delivery failed (they are retried).");
      log::warn("outbox delivery failed", {{"relay", options_.name}, {"seq", d.opaque}, {"error", rd_kafka_err2str(d.error)}});
      if (rewind_to_ < 0 || d.opaque < rewind_to_) rewind_to_ = d.opaque;
    }
  }
  if (ok == 0 || options_.fault_drop_delivery_reports) return;
  published_ += ok;
  if (metrics_) metrics_->add_counter("outbox_published_total", "Outbox messages delivered to Kafka.", static_cast<double>(ok));
}

void OutboxRelay::loop() {
  struct Row {
    long long seq;
    std::string topic, key, payload;
  };
  while (running_) {
    if (rewind_to_ >= 0) {
      // Everything from the failed row on is produced again (later rows may arrive twice).
      cursor_ = std::min(cursor_, rewind_to_ - 1);
      in_flight_.erase(in_flight_.lower_bound(rewind_to_), in_flight_.end());
      rewind_to_ = -1;
    }
    if (auto fatal = producer_->fatal_error()) {
      // An idempotent producer's fatal error (e.g. sequence gap) needs a fresh producer; rows
      // not yet marked are published again.
      log::error("outbox producer fatal error, recreating", {{"relay", options_.name}, {"error", *fatal}});
      producer_ = std::make_unique<kafka::Producer>(bootstrap_, producer_settings_);
      cursor_ = published_upto_;
      in_flight_.clear();
    }
    std::vector<Row> rows;
    try {
      rows = db_.read([&](storage::Connection& c) {
        std::vector<Row> out;
        auto q = c.query(
            "SELECT seq, topic, msg_key, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            cursor_, static_cast<long long>(options_.batch));
        while (q.next()) out.push_back({q.int64(0), q.text(1), q.text(2), q.text(3)});
        return out;
      });
    } catch (const std::exception& e) {
      log::error("outbox read failed", {{"relay", options_.name}, {"what", e.what()}});
    }
    bool stalled = false;
    for (const auto& row : rows) {
      std::string error;
      if (!producer_->produce(row.topic, row.key, row.payload, row.seq, error)) {
        stalled = true;  // local queue full: serve delivery reports first
        break;
      }
      cursor_ = row.seq;
      in_flight_.insert(row.seq);
    }
    handle(producer_->poll(rows.empty() ? 0 : 1));
    if (rewind_to_ < 0) persist_watermark(false);
    if (rewind_to_ >= 0) {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, std::chrono::milliseconds(options_.retry_backoff_ms), [&] { return !running_; });
      continue;
    }
    Millis now = clock_.now_ms();
    if (now - last_trim_ > 60000) {
      last_trim_ = now;
      Millis cutoff = now - options_.retention_ms;
      db_.write([cutoff, upto = persisted_upto_](storage::Connection& c) {
        c.query("DELETE FROM outbox WHERE seq <= ? AND created_at < ?", upto, cutoff).run();
      }, nullptr);
    }
    if (rows.empty() || stalled) {
      if (producer_->outstanding() > 0) {
        handle(producer_->poll(stalled ? 20 : 5));
        persist_watermark(false);
        if (!stalled) {
          std::unique_lock lock(mutex_);
          cv_.wait_for(lock, std::chrono::milliseconds(5), [&] { return woken_ || !running_; });
          woken_ = false;
        }
      } else {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return woken_ || !running_; });
        woken_ = false;
      }
    }
  }
}

ConsumerLoop::ConsumerLoop(std::string name, std::string bootstrap, std::string group,
                           std::vector<std::string> topics, storage::Database& db,
                           const Clock& clock, Apply apply, Metrics* metrics,
                           kafka::Settings settings)
    : ConsumerLoop(std::move(name), std::move(bootstrap), std::move(group), std::move(topics), db, clock,
                   ApplyThen{[apply = std::move(apply)](storage::Connection& c, const CloudEvent& e) {
                     apply(c, e);
                     return std::function<void()>{};
                   }},
                   metrics, std::move(settings)) {}

ConsumerLoop::ConsumerLoop(std::string name, std::string bootstrap, std::string group,
                           std::vector<std::string> topics, storage::Database& db,
                           const Clock& clock, ApplyThen apply, Metrics* metrics,
                           kafka::Settings settings)
    : name_(std::move(name)),
      bootstrap_(std::move(bootstrap)),
      group_(std::move(group)),
      topics_(std::move(topics)),
      db_(db),
      clock_(clock),
      apply_(std::move(apply)),
      metrics_(metrics),
      settings_(std::move(settings)) {}

ConsumerLoop::~ConsumerLoop() { stop(); }

void ConsumerLoop::start() {
  if (running_.exchange(true)) throw std::logic_error("consumer loop already started");
  thread_ = std::thread([this] { loop(); });
}

void ConsumerLoop::stop() {
  if (!running_.exchange(false)) return;
  if (thread_.joinable()) thread_.join();
}

void ConsumerLoop::loop() {
  std::unique_ptr<kafka::Consumer> consumer;
  while (running_ && !consumer) {
    try {
      consumer = std::make_unique<kafka::Consumer>(bootstrap_, group_, topics_, settings_);
    } catch (const std::exception& e) {
      log::error("consumer start failed", {{"consumer", name_}, {"what", e.what()}});
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  while (running_) {
    std::vector<kafka::Message> batch;
    try {
      while (batch.size() < 500) {
        auto m = consumer->poll(batch.empty() ? 100 : 0);
        if (!m) break;
        batch.push_back(std::move(*m));
      }
    } catch (const std::exception& e) {
      log::error("consumer poll failed, reconnecting", {{"consumer", name_}, {"what", e.what()}});
      consumer.reset();
      while (running_ && !consumer) {
        try {
          consumer = std::make_unique<kafka::Consumer>(bootstrap_, group_, topics_, settings_);
        } catch (const std::exception& again) {
          log::error("consumer restart failed", {{"consumer", name_}, {"what", again.what()}});
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
      }
      continue;
    }
    if (!joined_ && consumer->joined()) joined_ = true;
    if (batch.empty()) continue;
    // Each event is its own write (so a poison event fails alone); the database groups them
    // into one commit. Offsets are stored only after every write of the batch has committed.
    bool all_durable = false;
    while (running_ && !all_durable) {
      std::vector<std::future<void>> pending;
      for (const auto& message : batch) {
        auto promise = std::make_shared<std::promise<void>>();
        pending.push_back(promise->get_future());
        auto after_commit = std::make_shared<std::function<void()>>();
        db_.write(
            [this, &message, after_commit](storage::Connection& c) {
              *after_commit = nullptr;  // a retried batch runs this again
              std::string parse_error;
              auto value = json::parse(message.payload, parse_error);
              std::optional<CloudEvent> event;
              if (value) event = CloudEvent::from_json(*value);
              if (!event) {
                c.query("INSERT INTO dead_letters(consumer, topic, payload, error, created_at) VALUES (?,?,?,?,?)",
                        name_, message.topic, message.payload.substr(0, 65536), "not a CloudEvent", clock_.now_ms())
                    .run();
                return;
              }
              if (!claim_event(c, name_, event->id, clock_.now_ms())) {
                ++duplicates_;
                return;
              }
              try {
                c.exec("SAVEPOINT apply");
                auto then = apply_.apply(c, *event);
                c.exec("RELEASE apply");
                *after_commit = std::move(then);
                ++applied_;
              } catch (const std::exception& e) {
                c.exec("ROLLBACK TO apply");
                c.exec("RELEASE apply");
                c.query("INSERT INTO dead_letters(consumer, topic, payload, error, created_at) VALUES (?,?,?,?,?)",
                        name_, message.topic, message.payload.substr(0, 65536), std::string(e.what()), clock_.now_ms())
                    .run();
                log::error("event could not be applied", {{"consumer", name_}, {"event_id", event->id}, {"what", e.what()}});
              }
            },
            [this, promise, after_commit](std::exception_ptr error) {
              if (!error && *after_commit) {
                try {
                  (*after_commit)();
                } catch (const std::exception& e) {
                  log::error("after-commit action failed", {{"consumer", name_}, {"what", e.what()}});
                }
              }
              if (error) promise->set_exception(error); else promise->set_value();
            });
      }
      all_durable = true;
      for (auto& f : pending) {
        try {
          f.get();
        } catch (const std::exception& e) {
          all_durable = false;
          log::error("consumer write failed, retrying batch", {{"consumer", name_}, {"what", e.what()}});
        }
      }
      if (!all_durable) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!all_durable) break;
    for (const auto& message : batch) consumer->store_offset(message);
    if (metrics_) metrics_->add_counter("consumer_events_total", "Events consumed from Kafka.", static_cast<double>(batch.size()));
  }
  if (consumer) consumer->commit();
}

}  // namespace al::events
