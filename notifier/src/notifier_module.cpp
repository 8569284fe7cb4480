#include "notifier_module.hpp"

#include <boost/asio/steady_timer.hpp>
#include <algorithm>

#include "common/events/outbox.hpp"
#include "common/json/json.hpp"
#include "common/log/log.hpp"
#include "common/util/ids.hpp"
#include "common/util/time_format.hpp"

namespace al::notifier {
namespace {
using http::Request;
using http::Responder;
using http::Response;
namespace bj = boost::json;

std::vector<storage::Migration> migrations() {
  return {
      events::outbox_migration(1),  // processed_events and dead_letters for the consumer
      {2, R"sql(
CREATE TABLE agent_events (
  agent_id TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  cloudevent_id TEXT NOT NULL,
  type TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (agent_id, event_id)
) WITHOUT ROWID;
CREATE INDEX agent_events_by_age ON agent_events(created_at);
CREATE TABLE agent_event_counters (
  agent_id TEXT PRIMARY KEY,
  last_event_id INTEGER NOT NULL
) WITHOUT ROWID;
)sql"},
  };
}

// Appends the event to the log of every agent in its audience (inside the consumer's
// transaction, together with the processed-event marker: a redelivery adds nothing).
void append_to_agent_logs(storage::Connection& c, const events::CloudEvent& event, Millis now) {
  std::string payload = bj::serialize(event.to_json());
  std::vector<std::string> seen;
  for (const auto& agent : event.audience) {
    if (std::find(seen.begin(), seen.end(), agent) != seen.end()) continue;
    seen.push_back(agent);
    c.query("INSERT INTO agent_event_counters(agent_id, last_event_id) VALUES (?, 1) "
            "ON CONFLICT(agent_id) DO UPDATE SET last_event_id = last_event_id + 1",
            agent)
        .run();
    long long id = 0;
    {
      auto q = c.query("SELECT last_event_id FROM agent_event_counters WHERE agent_id = ?", agent);
      if (q.next()) id = q.int64(0);
    }
    c.query("INSERT INTO agent_events(agent_id, event_id, cloudevent_id, type, payload, created_at) VALUES (?,?,?,?,?,?)",
            agent, id, event.id, event.type, payload, now)
        .run();
  }
}

class NotifierModule final : public Module {
 public:
  explicit NotifierModule(Runtime& rt)
      : rt_(rt),
        db_(rt.data_dir + "/notifier.db", storage::DatabaseOptions{rt.config.get("db.synchronous")}),
        consumer_("notifier", rt.kafka_bootstrap, "notifier", kafka::all_topics(), db_, rt.clock,
                  [this](storage::Connection& c, const events::CloudEvent& e) {
                    append_to_agent_logs(c, e, rt_.clock.now_ms());
                  },
                  &rt.metrics),
        trimmer_(rt.io) {
    db_.migrate(migrations());
  }

  std::string name() const override { return "notifier"; }

  void add_routes(http::Router& router) override {
    router.add(http::bhttp::verb::get, "/api/agent/events",
               [this](const Request& req, Responder reply) { poll(req, reply); });
  }

  void start() override {
    consumer_.start();
    schedule_trim();
  }
  void stop() override {
    stopping_ = true;
    trimmer_.cancel();
    consumer_.stop();
    db_.stop();
  }
  bool ready(std::string& reason) override {
    if (!db_.healthy()) {
      reason = "notifier database unavailable";
      return false;
    }
    if (!consumer_.joined()) {
      reason = "notifier consumer has not joined its group yet";
      return false;
    }
    return true;
  }

 private:
  void poll(const Request& req, const Responder& reply) {
    auto who = auth::authenticate(req, rt_.auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    long long since = 0, limit = 100;
    std::vector<json::FieldError> errors;
    for (const auto& [key, value] : req.query) {
      if (key == "since_id") {
        if (value != "0" && !parse_positive_int64(value, since)) errors.push_back({"since_id", "must be an event_id (0 for the beginning)"});
      } else if (key == "limit") {
        if (!parse_positive_int64(value, limit) || limit > 500) errors.push_back({"limit", "must be 1..500"});
      } else {
        errors.push_back({key.substr(0, 64), "unknown query parameter"});
      }
    }
    if (!errors.empty())
      return reply(Response::error(400, "Validation error", "validation_error", json::errors_to_json(errors)));
    auto page = db_.read([&](storage::Connection& c) {
      bj::array out;
      auto q = c.query("SELECT event_id, payload FROM agent_events WHERE agent_id = ? AND event_id > ? ORDER BY event_id LIMIT ?",
                       *who.agent_id, since, limit);
      while (q.next()) {
        bj::object event = bj::parse(q.text(1)).as_object();
        bj::object row{{"event_id", q.int64(0)},
                       {"type", event["type"]},
                       {"subject", event["subject"]},
                       {"time", event["time"]},
                       {"cloudevent_id", event["id"]},
                       {"data", event["data"]}};
        out.push_back(std::move(row));
      }
      return out;
    });
    long long next = since;
    if (!page.empty()) next = page.back().at("event_id").as_int64();
    reply(Response::json(200, bj::object{{"events", std::move(page)}, {"next_since_id", next}}));
  }

  void schedule_trim() {
    if (stopping_) return;
    trimmer_.expires_after(std::chrono::seconds(60));
    trimmer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      Millis cutoff = rt_.clock.now_ms() - rt_.config.get_int("notifier.retention_ms");
      db_.write([cutoff](storage::Connection& c) { c.query("DELETE FROM agent_events WHERE created_at < ?", cutoff).run(); },
                [](std::exception_ptr error) {
                  if (error) log::warn("notifier retention trim failed");
                });
      schedule_trim();
    });
  }

  Runtime& rt_;
  storage::Database db_;
  events::ConsumerLoop consumer_;
  boost::asio::steady_timer trimmer_;
  std::atomic<bool> stopping_{false};
};
}  // namespace

std::vector<ConfigEntry> notifier_config_entries() {
  return {{"notifier.retention_ms", "604800000", "How long each agent's event log keeps an event (ms; default 7 days).", {}}};
}

std::unique_ptr<Module> make_notifier_module(Runtime& runtime) {
  return std::make_unique<NotifierModule>(runtime);
}

}  // namespace al::notifier
