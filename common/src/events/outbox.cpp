#include "common/events/outbox.hpp"

#include <boost/json/serialize.hpp>
#include <future>
#include <map>

#include "common/json/json.hpp"
#include "common/log/log.hpp"
#include "common/service/idempotency.hpp"
#include "common/util/ids.hpp"

#include <unistd.h>

namespace al::events {

storage::Migration outbox_migration(int version) { return storage::outbox::tables_migration(version); }
storage::Migration outbox_published_at_migration(int version) {
  return storage::outbox::published_at_migration(version);
}

storage::Migration outbox_positions_migration(int version) { return storage::outbox::positions_migration(version); }

namespace {
// Wakes the publishing relay whichever replica committed (PostgreSQL NOTIFY, sent at commit).
constexpr const char* kOutboxChannel = "agentlancer_outbox";
const std::vector<std::pair<std::string, std::string>> kCloudEventHeaders{
    {"content-type", std::string(kStructuredContentType)}};
}  // namespace

void append_to_outbox(storage::Connection& c, const std::string& topic, const CloudEvent& event,
                      Millis now) {
  storage::outbox::append(c, event.id, topic, event.subject, boost::json::serialize(event.to_json()), now);
  // Every effect appends an event: the request's Idempotency-Key record commits with it.
  idempotency::note_effect(c, event.request_id, event.source);
  c.notify(kOutboxChannel, "");
}

bool claim_event(storage::Connection& c, const std::string& consumer, const std::string& event_id,
                 Millis now) {
  return storage::outbox::claim(c, consumer, event_id, now);
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
  if (metrics_)
    metrics_->register_gauge_series(
        "outbox_oldest_unpublished_age_seconds",
        "Age of the oldest outbox row not yet on Kafka, per relay (0: all published); every replica reports it.",
        options_.name, [this] {
          long long at = oldest_unpublished_at_.load();
          double age = at > 0 ? std::max(0.0, static_cast<double>(clock_.now_ms() - at) / 1000.0) : 0.0;
          return Metrics::Series{{{{"relay", options_.name}}, age}};
        });
  new_producer();
  holder_ = options_.name + "@" + std::to_string(::getpid()) + "." + random_hex(4);
  // The embedded broker starts empty: publish every retained row again, then the new ones.
  if (options_.replay_published_on_start)
    replay_upto_ = db_.read([](storage::Connection& c) { return storage::outbox::max_seq(c); });
  running_ = true;
  thread_ = std::thread([this] { loop(); });
  listener_id_ = db_.add_commit_listener([this] { wake(); });
  // Commits of the other replicas: without this the holder would find them only on its next
  // 200 ms look (SQLite: one process, the commit listener above is enough).
  waker_ = std::make_shared<Waker>();
  waker_->relay = this;
  auto wake_if_running = [waker = waker_] {
    std::lock_guard lock(waker->mutex);
    if (waker->relay) waker->relay->wake();
  };
  db_.listen(kOutboxChannel, [wake_if_running](const std::string&) { wake_if_running(); }, wake_if_running);
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
  if (metrics_) metrics_->remove_gauge_series("outbox_oldest_unpublished_age_seconds", options_.name);
  db_.remove_commit_listener(listener_id_);
  {
    std::lock_guard lock(waker_->mutex);
    waker_->relay = nullptr;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  if (!abandon_) {
    producer_->flush(5000);  // a batch cut short is unmarked: published again next start
    if (leased_) {
      // Hand over at once rather than after the lease expires.
      try {
        db_.write_sync([this](storage::Connection& c) { storage::outbox::release_lease(c, options_.name, holder_); });
      } catch (const std::exception&) {
      }
      leased_ = false;
    }
  }
  producer_.reset();
}

void OutboxRelay::abandon() {
  abandon_ = true;
  stop();
}

long long OutboxRelay::backlog() {
  return db_.read([](storage::Connection& c) { return storage::outbox::backlog(c); });
}

bool OutboxRelay::broker_reachable(int timeout_ms) {
  if (timeout_ms <= 0) return broker_ok_.load();
  std::unique_lock lock(probe_mutex_);
  probe_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return broker_ok_.load() || !running_; });
  return broker_ok_.load();
}

void OutboxRelay::set_broker_ok(bool ok) {
  {
    std::lock_guard lock(probe_mutex_);
    broker_ok_ = ok;
  }
  probe_cv_.notify_all();
}

bool OutboxRelay::hold_lease(bool force) {
  auto now = std::chrono::steady_clock::now();
  auto renew_every = std::chrono::milliseconds(std::max(1LL, options_.lease_ms / 3));
  if (!force && leased_ && now - lease_renewed_ < renew_every) return true;
  if (!force && !leased_ && now - lease_renewed_ < std::chrono::milliseconds(200)) return false;  // standby: ask 5×/s
  lease_renewed_ = now;
  bool held = false;
  try {
    db_.write_sync([&](storage::Connection& c) {
      // Operational time, not the (injectable) domain clock: replicas compare it with each other's.
      held = storage::outbox::hold_lease(c, options_.name, holder_, storage::wall_clock_ms(), options_.lease_ms);
    });
  } catch (const std::exception& e) {
    log::warn("outbox lease check failed", {{"relay", options_.name}, {"what", e.what()}});
  }
  if (held != leased_.load())
    log::info(held ? "outbox publisher lease taken" : "outbox publisher lease lost", {{"relay", options_.name}, {"holder", holder_}});
  // Whoever held it before (this relay included, before it lost it) may have left rows on Kafka
  // without their marks.
  if (held && !leased_.load()) doubt();
  leased_ = held;
  return held;
}

void OutboxRelay::new_producer() {
  auto settings = producer_settings_;
  if (options_.transactional) {
    settings["transactional.id"] = "agentlancer-outbox." + options_.name;
    // Messages may not outlive their transaction; a holder that dies with one open leaves it to
    // the next holder's init_transactions (or to this timeout when none comes).
    settings.emplace("transaction.timeout.ms", "30000");
  }
  producer_.reset();
  producer_ = std::make_unique<kafka::Producer>(bootstrap_, settings);
  transactions_ready_ = false;
}

bool OutboxRelay::ready_to_publish() {
  if (!options_.transactional || transactions_ready_) return true;
  auto init = producer_->init_transactions(10000);
  if (!init.ok) {
    log::warn("outbox: Kafka transactions not ready", {{"relay", options_.name}, {"error", init.error}});
    if (init.fatal) new_producer();
    return false;
  }
  transactions_ready_ = true;
  // Every earlier holder is fenced and its open transaction settled: only now does a read-back
  // see all that will ever be committed of it.
  doubt();
  return true;
}

void OutboxRelay::probe_broker() {
  auto now = std::chrono::steady_clock::now();
  if (now - last_probe_ < std::chrono::seconds(1)) return;
  last_probe_ = now;
  set_broker_ok(producer_->reachable(1000));
}

std::vector<long long> OutboxRelay::publish(const std::vector<storage::outbox::Row>& rows, bool& failed,
                                           std::vector<storage::outbox::Position>& reached) {
  std::map<long long, bool> outcome;  // seq → delivered; absent: no report yet
  std::map<long long, kafka::Delivery> where;
  std::size_t produced = 0;
  failed = false;
  auto collect = [&](int timeout_ms) {
    for (const auto& d : producer_->poll(timeout_ms)) {
      bool ok = d.error == RD_KAFKA_RESP_ERR_NO_ERROR;
      outcome[d.opaque] = ok;
      if (ok) where[d.opaque] = d;
      if (!ok) {
        ++failed_;
        failed = true;
        if (metrics_) metrics_->add_counter("outbox_publish_failures_total", "Outbox messages whose delivery failed (they are retried).");
        log::warn("outbox delivery failed", {{"relay", options_.name}, {"seq", d.opaque}, {"error", rd_kafka_err2str(d.error)}});
      }
    }
  };
  for (auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.fault_pause_before_produce_ms);
       running_ && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (options_.transactional) {
    auto begun = producer_->begin_transaction();
    if (!begun.ok) {
      log::warn("outbox: transaction could not begin", {{"relay", options_.name}, {"error", begun.error}});
      failed = true;
      new_producer();  // and init_transactions again before the next batch
      return {};
    }
  }
  for (const auto& row : rows) {
    std::string error;
    // The Kafka protocol binding of CloudEvents, structured mode: the header names the envelope's
    // format and the key is the event's subject (storage::outbox::append stores it as the key).
    while (running_ && !producer_->produce(row.topic, row.key, row.payload, row.seq, error, kCloudEventHeaders))
      collect(20);  // local queue full
    if (!running_) break;
    ++produced;
  }
  // Every report of the batch arrives within message.timeout.ms (as a success or a failure). On
  // stop, the batch in flight gets a few seconds to be acknowledged and marked; a crash gets none.
  auto stop_deadline = std::chrono::steady_clock::time_point::max();
  while (!abandon_ && producer_->outstanding() > 0) {
    if (!running_ && stop_deadline == std::chrono::steady_clock::time_point::max())
      stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    if (std::chrono::steady_clock::now() > stop_deadline) break;
    collect(5);
    if (running_) {
      probe_broker();  // readiness follows a broker that went away mid-batch
      hold_lease();    // a long batch (broker down) keeps its lease
    }
  }
  collect(0);
  if (options_.transactional && !abandon_) {
    // All or nothing: committed, every produced row is published; otherwise none is visible.
    bool committed = false;
    if (!failed && producer_->outstanding() == 0) {
      auto commit = producer_->commit_transaction(10000);
      collect(0);
      committed = commit.ok;
      if (!commit.ok) {
        log::warn("outbox: transaction commit failed", {{"relay", options_.name}, {"error", commit.error}});
        // Abortable: abort it. Otherwise (fenced, timed out) its fate is the coordinator's: a new
        // producer's init_transactions settles it, and the read-back then finds it if committed.
        if (!commit.abort || !producer_->abort_transaction(10000).ok) new_producer();
      }
    } else if (!producer_->abort_transaction(10000).ok) {
      new_producer();
    }
    if (!committed) {
      failed = true;
      outcome.clear();
    }
  }
  std::vector<long long> prefix;
  std::map<std::pair<std::string, int>, long long> highest;
  for (std::size_t i = 0; i < produced; ++i) {
    auto it = outcome.find(rows[i].seq);
    if (it == outcome.end() || !it->second) break;
    prefix.push_back(rows[i].seq);
    const auto& d = where[rows[i].seq];
    auto& h = highest[{d.topic, d.partition}];
    h = std::max(h, d.offset);
  }
  reached.clear();
  for (const auto& [tp, offset] : highest) reached.push_back({tp.first, tp.second, offset});
  if (!prefix.empty()) set_broker_ok(true);
  if (!prefix.empty() && !options_.fault_drop_delivery_reports) {
    published_ += static_cast<long long>(prefix.size());
    if (metrics_) metrics_->add_counter("outbox_published_total", "Outbox messages delivered to Kafka.", static_cast<double>(prefix.size()));
  }
  if (prefix.size() < rows.size()) failed = true;
  return prefix;
}

void OutboxRelay::doubt() { in_doubt_ = true; }

bool OutboxRelay::resolve_doubt() {
  // Every unpublished row committed so far may be on Kafka; later ones cannot be.
  std::map<std::string, long long> pending;  // event id → seq
  std::set<std::string> topics;
  kafka::Offsets after;
  try {
    db_.read([&](storage::Connection& c) {
      long long upto = storage::outbox::max_seq(c);
      for (const auto& p : storage::outbox::positions(c)) after[{p.topic, p.partition}] = p.offset;
      long long cursor = 0;
      for (;;) {
        auto page = storage::outbox::unpublished_between(c, cursor, upto, 1000);
        if (page.empty()) break;
        for (const auto& row : page) {
          pending[row.event_id] = row.seq;
          topics.insert(row.topic);
        }
        cursor = page.back().seq;
      }
    });
  } catch (const std::exception& e) {
    log::warn("outbox read-back: reading the outbox failed", {{"relay", options_.name}, {"what", e.what()}});
    return false;
  }
  if (pending.empty()) {
    in_doubt_ = false;
    return true;
  }
  kafka::Settings client;  // the connection settings the producer was given, nothing producer-only
  for (const auto& [k, v] : producer_settings_)
    if (k.rfind("security.", 0) == 0 || k.rfind("ssl.", 0) == 0 || k.rfind("sasl.", 0) == 0) client[k] = v;
  std::vector<long long> found;
  std::map<std::pair<std::string, int>, long long> highest;
  long long scanned = 0;
  bool complete = false;
  try {
    complete = kafka::read_to_high_watermarks(
        bootstrap_, {topics.begin(), topics.end()}, after, 10000,
        [&](const kafka::Message& m) {
          ++scanned;
          std::string error;
          auto value = json::parse(m.payload, error);
          if (!value || !value->is_object()) return;
          const auto* id = value->as_object().if_contains("id");
          if (!id || !id->is_string()) return;
          auto it = pending.find(std::string(id->as_string()));
          if (it == pending.end()) return;
          found.push_back(it->second);
          pending.erase(it);  // a second copy (from before this fix) is not counted twice
          auto& h = highest[{m.topic, m.partition}];
          h = std::max(h, m.offset);
        },
        client);
  } catch (const std::exception& e) {
    log::warn("outbox read-back failed", {{"relay", options_.name}, {"what", e.what()}});
  }
  if (!complete) {
    log::warn("outbox read-back incomplete, nothing produced until it succeeds", {{"relay", options_.name}});
    return false;
  }
  if (!found.empty()) {
    std::vector<storage::outbox::Position> reached;
    for (const auto& [tp, offset] : highest) reached.push_back({tp.first, tp.second, offset});
    std::sort(found.begin(), found.end());
    try {
      db_.write_sync([&](storage::Connection& c) { storage::outbox::mark_published(c, found, reached, clock_.now_ms()); });
    } catch (const std::exception& e) {
      log::warn("outbox read-back: marking failed", {{"relay", options_.name}, {"what", e.what()}});
      return false;
    }
    recovered_ += static_cast<long long>(found.size());
    if (metrics_)
      metrics_->add_counter("outbox_recovered_total",
                            "Outbox messages found already on Kafka by a read-back (marked, not produced again).",
                            static_cast<double>(found.size()));
  }
  log::info("outbox read-back done",
            {{"relay", options_.name}, {"found_on_kafka", static_cast<long long>(found.size())},
             {"to_publish", static_cast<long long>(pending.size())}, {"messages_read", scanned}});
  in_doubt_ = false;
  return true;
}

void OutboxRelay::loop() {
  while (running_) {
    if (auto fatal = producer_->fatal_error()) {
      // An idempotent producer's fatal error (e.g. sequence gap) needs a fresh producer; rows
      // not yet marked are published again.
      log::error("outbox producer fatal error, recreating", {{"relay", options_.name}, {"error", *fatal}});
      new_producer();
    }
    probe_broker();
    if (auto now = std::chrono::steady_clock::now(); now - oldest_checked_ >= std::chrono::seconds(1)) {
      oldest_checked_ = now;
      try {
        auto at = db_.read([](storage::Connection& c) { return storage::outbox::oldest_unpublished_at(c); });
        oldest_unpublished_at_ = at.value_or(0);
      } catch (const std::exception&) {
        // The database is out of reach: the last figure stands (the outbox cannot move either).
      }
    }
    if (!hold_lease()) {
      // Another replica publishes; stand by, ready to take over when its lease expires. A producer
      // that held the lease may since have been fenced: a fresh one registers on taking it again.
      if (transactions_ready_) new_producer();
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return !running_; });
      continue;
    }
    if (!ready_to_publish()) {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, std::chrono::milliseconds(options_.retry_backoff_ms), [&] { return !running_; });
      continue;
    }
    bool replaying = replay_cursor_ < replay_upto_;
    if (in_doubt_ && !replaying && !resolve_doubt()) {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, std::chrono::milliseconds(options_.retry_backoff_ms), [&] { return !running_; });
      continue;
    }
    std::vector<storage::outbox::Row> rows;
    try {
      rows = db_.read([&](storage::Connection& c) {
        if (replaying) return storage::outbox::between(c, replay_cursor_, replay_upto_, options_.batch);
        auto out = storage::outbox::unpublished(c, options_.batch + delivered_unmarked_.size());
        std::erase_if(out, [&](const auto& r) { return delivered_unmarked_.count(r.seq) > 0; });
        return out;
      });
    } catch (const std::exception& e) {
      log::error("outbox read failed", {{"relay", options_.name}, {"what", e.what()}});
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, std::chrono::milliseconds(options_.retry_backoff_ms), [&] { return !running_; });
      continue;
    }
    if (replaying && rows.empty()) replay_cursor_ = replay_upto_;
    if (!rows.empty()) {
      bool failed = false;
      std::vector<storage::outbox::Position> reached;
      auto delivered = publish(rows, failed, reached);
      if (abandon_) break;
      if (replaying && !delivered.empty()) replay_cursor_ = delivered.back();
      if (options_.fault_drop_delivery_reports) {
        delivered_unmarked_.insert(delivered.begin(), delivered.end());
      } else if (!delivered.empty()) {
        try {
          // Synchronous: the next read must not find these rows unpublished again.
          db_.write_sync([&](storage::Connection& c) {
            storage::outbox::mark_published(c, delivered, reached, clock_.now_ms());
          });
        } catch (const std::exception& e) {
          // On Kafka but unmarked: the read-back finds them before anything is produced again.
          log::warn("outbox mark failed", {{"relay", options_.name}, {"what", e.what()}});
          doubt();
        }
      }
      // A failed delivery may still have been written (a timeout is not a refusal).
      if (failed && !replaying) doubt();
      if (failed && running_) {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, std::chrono::milliseconds(options_.retry_backoff_ms), [&] { return !running_; });
      }
      continue;
    }
    Millis now = clock_.now_ms();
    if (now - last_trim_ > 60000) {
      last_trim_ = now;
      Millis cutoff = now - options_.retention_ms;
      db_.write([cutoff](storage::Connection& c) { storage::outbox::trim(c, cutoff); }, nullptr);
    }
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return woken_ || !running_; });
    woken_ = false;
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
  if (metrics_)
    metrics_->register_gauge_series(
        "kafka_consumer_lag",
        "Events on Kafka not yet taken by a consumer, per group and partition (the partition's end as last fetched minus the consumer's position).",
        name_ + "\x1f" + group_, [this] {
          Metrics::Series series;
          std::lock_guard lock(lag_mutex_);
          for (const auto& p : lag_)
            series.push_back({{{"consumer", name_}, {"group", group_}, {"topic", p.topic}, {"partition", std::to_string(p.partition)}},
                              static_cast<double>(p.lag)});
          return series;
        });
  thread_ = std::thread([this] { loop(); });
}

void ConsumerLoop::stop() {
  if (!running_.exchange(false)) return;
  if (metrics_) metrics_->remove_gauge_series("kafka_consumer_lag", name_ + "\x1f" + group_);
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
  auto lag_refreshed = std::chrono::steady_clock::time_point{};
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
    if (auto now = std::chrono::steady_clock::now(); now - lag_refreshed >= std::chrono::seconds(1)) {
      lag_refreshed = now;
      auto lag = consumer->lag();
      std::lock_guard lock(lag_mutex_);
      lag_ = std::move(lag);
    }
    if (batch.empty()) continue;
    // The batch is one unit of work, each event in its own savepoint (a poison event fails alone,
    // into dead_letters), applied in the order consumed: events of one aggregate never overtake
    // each other, whichever backend and however many pool threads. Offsets are stored only after
    // the commit.
    bool all_durable = false;
    while (running_ && !all_durable) {
      struct Outcome {
        std::vector<std::function<void()>> after_commit;
        long long applied = 0, duplicates = 0;
      };
      auto outcome = std::make_shared<Outcome>();
      std::promise<void> promise;
      auto future = promise.get_future();
      db_.write(
          [this, &batch, outcome](storage::Connection& c) {
            *outcome = Outcome{};  // a retried unit of work starts over
            for (const auto& message : batch) {
              std::string parse_error;
              auto value = json::parse(message.payload, parse_error);
              std::optional<CloudEvent> event;
              if (value) event = CloudEvent::from_json(*value);
              if (!event) {
                storage::outbox::dead_letter(c, name_, message.topic, message.payload.substr(0, 65536),
                                             "not a CloudEvent", clock_.now_ms());
                continue;
              }
              if (!claim_event(c, name_, event->id, clock_.now_ms())) {
                ++outcome->duplicates;
                continue;
              }
              c.exec("SAVEPOINT apply");
              try {
                auto then = apply_.apply(c, *event);
                c.exec("RELEASE apply");
                if (then) outcome->after_commit.push_back(std::move(then));
                ++outcome->applied;
                // With log.level=debug a request is followed through every consumer by its trace id.
                if (log::level() == log::Level::debug)
                  log::debug("event applied", {{"consumer", name_}, {"event_id", event->id}, {"type", event->type},
                                               {"request_id", event->request_id},
                                               {"trace_id", trace::trace_id_of(event->traceparent)}});
              } catch (const storage::StorageError& e) {
                // Conflicts and lost connections are the whole unit's: it is run again.
                if (e.kind == storage::ErrorKind::Retryable || e.kind == storage::ErrorKind::Unavailable) throw;
                c.exec("ROLLBACK TO apply");
                c.exec("RELEASE apply");
                storage::outbox::dead_letter(c, name_, message.topic, message.payload.substr(0, 65536), e.what(),
                                             clock_.now_ms());
                log::error("event could not be applied", {{"consumer", name_}, {"event_id", event->id},
                                                         {"trace_id", trace::trace_id_of(event->traceparent)}, {"what", e.what()}});
              } catch (const std::exception& e) {
                c.exec("ROLLBACK TO apply");
                c.exec("RELEASE apply");
                storage::outbox::dead_letter(c, name_, message.topic, message.payload.substr(0, 65536), e.what(),
                                             clock_.now_ms());
                log::error("event could not be applied", {{"consumer", name_}, {"event_id", event->id},
                                                         {"trace_id", trace::trace_id_of(event->traceparent)}, {"what", e.what()}});
              }
            }
          },
          [this, &promise, outcome](std::exception_ptr error) {
            if (!error) {
              applied_ += outcome->applied;
              duplicates_ += outcome->duplicates;
              for (auto& then : outcome->after_commit) {
                try {
                  then();
                } catch (const std::exception& e) {
                  log::error("after-commit action failed", {{"consumer", name_}, {"what", e.what()}});
                }
              }
            }
            if (error) promise.set_exception(error); else promise.set_value();
          });
      try {
        future.get();
        all_durable = true;
      } catch (const std::exception& e) {
        log::error("consumer write failed, retrying batch", {{"consumer", name_}, {"what", e.what()}});
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    if (!all_durable) break;
    for (const auto& message : batch) consumer->store_offset(message);
    if (metrics_) metrics_->add_counter("consumer_events_total", "Events consumed from Kafka.", static_cast<double>(batch.size()));
  }
  if (consumer) consumer->commit();
}

}  // namespace al::events
