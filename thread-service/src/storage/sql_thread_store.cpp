#include "storage/sql_thread_store.hpp"

#include <boost/json.hpp>
#include <unordered_map>

#include "common/storage/idempotency_store.hpp"
#include "common/storage/key_revocation_store.hpp"
#include "common/events/outbox.hpp"
#include "common/storage/columns.hpp"
#include "events/thread_json.hpp"

namespace al::thread {

std::vector<storage::Migration> thread_migrations() {
  return {
      events::outbox_migration(1),
      {2, R"sql(
CREATE TABLE agents (
  agent_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT,
  key_fingerprint TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql", {}},
      {3, R"sql(
CREATE TABLE services (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  provider_id TEXT NOT NULL,
  title TEXT NOT NULL,
  description TEXT NOT NULL,
  deliverable TEXT NOT NULL,
  price_amount TEXT NOT NULL,
  price_token TEXT NOT NULL,
  price_network TEXT NOT NULL,
  timeline TEXT NOT NULL,
  tags TEXT NOT NULL,
  search_text TEXT NOT NULL,
  active INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL
);
CREATE INDEX services_active ON services(active, pos);
CREATE INDEX services_by_provider ON services(provider_id, pos);
CREATE TABLE service_tags (
  tag TEXT NOT NULL,
  service_pos INTEGER NOT NULL,
  PRIMARY KEY (tag, service_pos)
) WITHOUT ROWID;
CREATE TABLE threads (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  service_id TEXT NOT NULL,
  service_title TEXT NOT NULL,
  service_terms TEXT NOT NULL,
  requester_id TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  mode TEXT NOT NULL,
  status TEXT NOT NULL,
  message_count INTEGER NOT NULL,
  latest_quote_message_id TEXT,
  latest_quote_terms TEXT,
  locked_quote_message_id TEXT,
  locked_terms TEXT,
  quote_locked_at INTEGER,
  offer_id TEXT,
  offer_status TEXT,
  offer_seq INTEGER,
  contract_id TEXT,
  contract_status TEXT,
  contract_seq INTEGER,
  closed_reason TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  revision INTEGER NOT NULL
);
CREATE INDEX threads_by_requester ON threads(requester_id, pos);
CREATE INDEX threads_by_provider ON threads(provider_id, pos);
CREATE TABLE messages (
  thread_pos INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL,
  sender_id TEXT NOT NULL,
  sender_role TEXT NOT NULL,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  terms TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (thread_pos, seq)
) WITHOUT ROWID;
)sql", {}},
      events::outbox_published_at_migration(4),
      events::outbox_positions_migration(5),
      storage::idempotency::table_migration(6),
      // Who posted the latest quote, the provider's latest quote (what lock-quote locks) and the
      // seq of the locked one; existing threads are filled in from their messages.
      {7, R"sql(
ALTER TABLE threads ADD COLUMN latest_quote_seq INTEGER;
ALTER TABLE threads ADD COLUMN provider_quote_message_id TEXT;
ALTER TABLE threads ADD COLUMN provider_quote_seq INTEGER;
ALTER TABLE threads ADD COLUMN provider_quote_terms TEXT;
ALTER TABLE threads ADD COLUMN locked_quote_seq INTEGER;
UPDATE threads SET latest_quote_seq =
  (SELECT m.seq FROM messages m WHERE m.thread_pos = threads.pos AND m.id = threads.latest_quote_message_id)
  WHERE latest_quote_message_id IS NOT NULL;
UPDATE threads SET locked_quote_seq =
  (SELECT m.seq FROM messages m WHERE m.thread_pos = threads.pos AND m.id = threads.locked_quote_message_id)
  WHERE locked_quote_message_id IS NOT NULL;
UPDATE threads SET provider_quote_seq =
  (SELECT MAX(m.seq) FROM messages m WHERE m.thread_pos = threads.pos AND m.type = 'quote' AND m.sender_role = 'provider');
UPDATE threads SET
  provider_quote_message_id = (SELECT m.id FROM messages m WHERE m.thread_pos = threads.pos AND m.seq = threads.provider_quote_seq),
  provider_quote_terms = (SELECT m.terms FROM messages m WHERE m.thread_pos = threads.pos AND m.seq = threads.provider_quote_seq)
  WHERE provider_quote_seq IS NOT NULL;
)sql", {}},
      // API keys (POST/GET/DELETE /api/agent/keys): every agent's signup key from its stored
      // fingerprint; the agent's event sequence for its agent.key_* events.
      {8, R"sql(
ALTER TABLE agents ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 1;
CREATE TABLE api_keys (
  key_id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  fingerprint TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  created_by TEXT,
  last_used_at INTEGER,
  expires_at INTEGER,
  revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX api_keys_agent ON api_keys (agent_id, created_at);
INSERT INTO api_keys (key_id, agent_id, fingerprint, created_at)
  SELECT 'key_' || substr(key_fingerprint, 1, 24), agent_id, key_fingerprint, created_at FROM agents;
)sql", {}},
      storage::key_revocations::table_migration(9),
  };
}

namespace {
namespace bj = boost::json;

std::optional<std::string> terms_text(const std::optional<Terms>& t) {
  if (!t) return std::nullopt;
  return bj::serialize(terms_to_json(*t));
}

std::optional<Terms> terms_of(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return terms_from_json(bj::parse(*text));
}

std::string search_text(const Service& s) {
  std::string text = s.title + "\n" + s.description + "\n" + s.deliverable;
  for (const auto& tag : s.tags) text += "\n" + tag;
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

constexpr auto kService = storage::columns(
    "pos", "id", "provider_id", "title", "description", "deliverable", "price_amount", "price_token", "price_network",
    "timeline", "tags", "active", "created_at", "updated_at", "version");
const std::string kServiceColumns = kService.list();

Service read_service(const storage::Query& q) {
  Service s;
  s.row = q.int64(kService["pos"]);
  s.id = q.text(kService["id"]);
  s.provider_id = q.text(kService["provider_id"]);
  s.title = q.text(kService["title"]);
  s.description = q.text(kService["description"]);
  s.deliverable = q.text(kService["deliverable"]);
  s.price_amount = *Decimal::parse(q.text(kService["price_amount"]));
  s.price_token = q.text(kService["price_token"]);
  s.price_network = q.text(kService["price_network"]);
  s.timeline = q.text(kService["timeline"]);
  bj::value tags = bj::parse(q.text(kService["tags"]));
  for (const auto& tag : tags.as_array()) s.tags.emplace_back(tag.as_string());
  s.active = q.int64(kService["active"]) != 0;
  s.created_at = q.int64(kService["created_at"]);
  s.updated_at = q.int64(kService["updated_at"]);
  s.version = q.int64(kService["version"]);
  return s;
}

constexpr auto kThread = storage::columns(
    "pos", "id", "service_id", "service_title", "service_terms", "requester_id", "provider_id", "mode", "status",
    "message_count", "latest_quote_message_id", "latest_quote_terms", "locked_quote_message_id", "locked_terms",
    "quote_locked_at", "offer_id", "offer_status", "offer_seq", "contract_id", "contract_status", "contract_seq",
    "closed_reason", "created_at", "updated_at", "version", "revision", "latest_quote_seq",
    "provider_quote_message_id", "provider_quote_seq", "provider_quote_terms", "locked_quote_seq");
const std::string kThreadColumns = kThread.list();

Thread read_thread(const storage::Query& q) {
  Thread t;
  t.row = q.int64(kThread["pos"]);
  t.id = q.text(kThread["id"]);
  t.service_id = q.text(kThread["service_id"]);
  t.service_title = q.text(kThread["service_title"]);
  t.service_terms = terms_of(q.text(kThread["service_terms"])).value_or(Terms{});
  t.requester_id = q.text(kThread["requester_id"]);
  t.provider_id = q.text(kThread["provider_id"]);
  t.mode = q.text(kThread["mode"]);
  t.status = parse_status(q.text(kThread["status"])).value_or(Status::Negotiating);
  t.message_count = q.int64(kThread["message_count"]);
  t.latest_quote_message_id = q.opt_text(kThread["latest_quote_message_id"]);
  t.latest_quote_seq = q.opt_int64(kThread["latest_quote_seq"]);
  t.latest_quote_terms = terms_of(q.opt_text(kThread["latest_quote_terms"]));
  t.provider_quote_message_id = q.opt_text(kThread["provider_quote_message_id"]);
  t.provider_quote_seq = q.opt_int64(kThread["provider_quote_seq"]);
  t.provider_quote_terms = terms_of(q.opt_text(kThread["provider_quote_terms"]));
  t.locked_quote_message_id = q.opt_text(kThread["locked_quote_message_id"]);
  t.locked_quote_seq = q.opt_int64(kThread["locked_quote_seq"]);
  t.locked_terms = terms_of(q.opt_text(kThread["locked_terms"]));
  t.quote_locked_at = q.opt_int64(kThread["quote_locked_at"]);
  if (auto id = q.opt_text(kThread["offer_id"])) t.offer = Linked{*id, q.text(kThread["offer_status"]), q.int64(kThread["offer_seq"])};
  if (auto id = q.opt_text(kThread["contract_id"])) t.contract = Linked{*id, q.text(kThread["contract_status"]), q.int64(kThread["contract_seq"])};
  t.closed_reason = q.opt_text(kThread["closed_reason"]);
  t.created_at = q.int64(kThread["created_at"]);
  t.updated_at = q.int64(kThread["updated_at"]);
  t.version = q.int64(kThread["version"]);
  t.revision = q.int64(kThread["revision"]);
  return t;
}

constexpr auto kMessage =
    storage::columns("id", "seq", "sender_id", "sender_role", "type", "body", "terms", "created_at");
const std::string kMessageColumns = kMessage.list();

Message read_message(const storage::Query& q) {
  Message m;
  m.id = q.text(kMessage["id"]);
  m.seq = q.int64(kMessage["seq"]);
  m.sender_id = q.text(kMessage["sender_id"]);
  m.sender_role = q.text(kMessage["sender_role"]) == "provider" ? Role::Provider : Role::Requester;
  m.type = parse_message_type(q.text(kMessage["type"])).value_or(MessageType::Text);
  m.body = q.text(kMessage["body"]);
  m.terms = terms_of(q.opt_text(kMessage["terms"]));
  m.created_at = q.int64(kMessage["created_at"]);
  return m;
}

std::string tags_text(const Service& s) {
  bj::array tags;
  for (const auto& tag : s.tags) tags.emplace_back(tag);
  return bj::serialize(tags);
}

class SqlThreadTx final : public ThreadTx {
 public:
  SqlThreadTx(storage::Connection& c, const Clock& clock) : c_(c), clock_(clock) {}

  // Aggregates are loaded for change: locked until commit (PostgreSQL) and version-checked on save.
  std::optional<Service> load_service(const std::string& id) override {
    auto q = c_.query(std::string("SELECT ") + kServiceColumns + " FROM services WHERE id = ?" + c_.for_update(), id);
    if (!q.next()) return std::nullopt;
    auto s = read_service(q);
    service_versions_.loaded(s.row, s.version);
    return s;
  }

  void insert_service(Service& s) override {
    auto q = c_.query(
        "INSERT INTO services(id, provider_id, title, description, deliverable, price_amount, price_token, "
        "price_network, timeline, tags, search_text, active, created_at, updated_at, version) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING pos",
        s.id, s.provider_id, s.title, s.description, s.deliverable, s.price_amount.to_string(), s.price_token,
        s.price_network, s.timeline, tags_text(s), search_text(s), s.active, s.created_at, s.updated_at, s.version);
    q.next();
    s.row = q.int64(0);
    service_versions_.loaded(s.row, s.version);
    save_tags(s);
  }

  void save_service(const Service& s) override {
    long long changed = c_.query(
        "UPDATE services SET title=?, description=?, deliverable=?, price_amount=?, price_token=?, "
        "price_network=?, timeline=?, tags=?, search_text=?, active=?, updated_at=?, version=? WHERE pos=? AND version=?",
        s.title, s.description, s.deliverable, s.price_amount.to_string(), s.price_token, s.price_network,
        s.timeline, tags_text(s), search_text(s), s.active, s.updated_at, s.version, s.row, service_versions_.expected(s.row, s.version))
        .run();
    service_versions_.saved(s.row, changed, s.version, "service " + s.id);
    c_.query("DELETE FROM service_tags WHERE service_pos = ?", s.row).run();
    save_tags(s);
  }

  std::optional<Thread> load_thread(const std::string& id) override {
    auto q = c_.query(std::string("SELECT ") + kThreadColumns + " FROM threads WHERE id = ?" + c_.for_update(), id);
    if (!q.next()) return std::nullopt;
    auto t = read_thread(q);
    thread_revisions_.loaded(t.row, t.revision);
    return t;
  }

  void insert_thread(Thread& t) override {
    auto q = c_.query(
        "INSERT INTO threads(id, service_id, service_title, service_terms, requester_id, provider_id, mode, "
        "status, message_count, created_at, updated_at, version, revision) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING pos",
        t.id, t.service_id, t.service_title, *terms_text(t.service_terms), t.requester_id, t.provider_id, t.mode,
        status_name(t.status), t.message_count, t.created_at, t.updated_at, t.version, t.revision);
    q.next();
    t.row = q.int64(0);
    thread_revisions_.loaded(t.row, t.revision);
    if (t.status != Status::Negotiating || t.latest_quote_message_id) save_thread(t);
  }

  void save_thread(const Thread& t) override {
    std::optional<std::string> offer_id, offer_status, contract_id, contract_status;
    std::optional<long long> offer_seq, contract_seq;
    if (t.offer) offer_id = t.offer->id, offer_status = t.offer->status, offer_seq = t.offer->seq;
    if (t.contract) contract_id = t.contract->id, contract_status = t.contract->status, contract_seq = t.contract->seq;
    long long expected = thread_revisions_.expected(t.row, t.revision);
    long long changed = c_.query(
        "UPDATE threads SET status=?, message_count=?, latest_quote_message_id=?, latest_quote_terms=?, "
        "locked_quote_message_id=?, locked_terms=?, quote_locked_at=?, offer_id=?, offer_status=?, offer_seq=?, "
        "contract_id=?, contract_status=?, contract_seq=?, closed_reason=?, updated_at=?, version=?, revision=?, "
        "latest_quote_seq=?, provider_quote_message_id=?, provider_quote_seq=?, provider_quote_terms=?, "
        "locked_quote_seq=? WHERE pos=? AND revision=?",
        status_name(t.status), t.message_count, t.latest_quote_message_id, terms_text(t.latest_quote_terms),
        t.locked_quote_message_id, terms_text(t.locked_terms), t.quote_locked_at, offer_id, offer_status, offer_seq,
        contract_id, contract_status, contract_seq, t.closed_reason, t.updated_at, t.version, t.revision,
        t.latest_quote_seq, t.provider_quote_message_id, t.provider_quote_seq, terms_text(t.provider_quote_terms),
        t.locked_quote_seq, t.row, expected)
        .run();
    thread_revisions_.saved(t.row, changed, t.revision, "thread " + t.id);
  }

  void insert_message(const Thread& t, const Message& m) override {
    c_.query(
        "INSERT INTO messages(thread_pos, seq, id, sender_id, sender_role, type, body, terms, created_at) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        t.row, m.seq, m.id, m.sender_id, role_name(m.sender_role), message_type_name(m.type), m.body,
        terms_text(m.terms), m.created_at)
        .run();
  }

  std::optional<Message> load_message(const Thread& t, long long seq) override {
    auto q = c_.query(std::string("SELECT ") + kMessageColumns + " FROM messages WHERE thread_pos = ? AND seq = ?",
                      t.row, seq);
    if (!q.next()) return std::nullopt;
    return read_message(q);
  }

  void publish(const std::string& topic, const events::CloudEvent& event) override {
    events::append_to_outbox(c_, topic, event, clock_.now_ms());
  }

 private:
  void save_tags(const Service& s) {
    for (const auto& tag : s.tags)
      c_.query("INSERT INTO service_tags(tag, service_pos) VALUES (?,?) ON CONFLICT DO NOTHING", tag, s.row).run();
  }

  storage::Connection& c_;
  const Clock& clock_;
  // As read (or last written) in this unit of work: what a save expects to find.
  storage::LoadedVersions<long long> service_versions_;
  storage::LoadedVersions<long long> thread_revisions_;
};

}  // namespace

std::unique_ptr<ThreadTx> SqlThreadStore::tx_on(storage::Connection& connection, const Clock& clock) {
  return std::make_unique<SqlThreadTx>(connection, clock);
}

void SqlThreadStore::transact(std::function<void(ThreadTx&)> work, std::function<void(std::exception_ptr)> done) {
  db_.write(
      [this, work = std::move(work)](storage::Connection& c) {
        SqlThreadTx tx(c, clock_);
        work(tx);
      },
      std::move(done));
}

std::optional<Service> SqlThreadStore::get_service(const std::string& id) {
  return db_.read([&](storage::Connection& c) -> std::optional<Service> {
    auto q = c.query(std::string("SELECT ") + kServiceColumns + " FROM services WHERE id = ?", id);
    if (!q.next()) return std::nullopt;
    return read_service(q);
  });
}

ServicePage SqlThreadStore::list_services(const ServiceQuery& query) {
  return db_.read([&](storage::Connection& c) {
    std::string sql = std::string("SELECT ") + kServiceColumns + " FROM services WHERE " +
                      (query.provider_id ? "provider_id = ?1" : "active = 1 AND ?1 IS NULL") +
                      " AND (?2 IS NULL OR pos < ?2)"
                      " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM service_tags t WHERE t.tag = ?3 AND t.service_pos = services.pos))"
                      " AND (?4 IS NULL OR strpos(search_text, ?4) > 0)"
                      " ORDER BY pos DESC LIMIT ?5";
    ServicePage page;
    auto q = c.query(sql, query.provider_id, query.before_row, query.tag, query.text,
                     static_cast<long long>(query.limit + 1));
    while (q.next()) page.services.push_back(read_service(q));
    if (static_cast<int>(page.services.size()) > query.limit) {
      page.services.pop_back();
      page.next_before_row = page.services.back().row;
    }
    return page;
  });
}

ThreadRef SqlThreadStore::find_thread(const std::string& id) {
  return db_.read([&](storage::Connection& c) -> ThreadRef {
    auto q = c.query(std::string("SELECT ") + kThreadColumns + " FROM threads WHERE id = ?", id);
    if (!q.next()) return nullptr;
    return std::make_shared<const Thread>(read_thread(q));
  });
}

std::vector<ThreadIndexEntry> SqlThreadStore::thread_index(const std::string& agent_id) {
  return db_.read([&](storage::Connection& c) {
    std::vector<ThreadIndexEntry> out;
    auto q = c.query("SELECT pos, id, CASE WHEN requester_id = ?1 THEN 1 ELSE 0 END FROM threads WHERE requester_id = ?1 OR provider_id = ?1 ORDER BY pos",
                     agent_id);
    while (q.next()) out.push_back(ThreadIndexEntry{q.int64(0), q.text(1), q.int64(2) != 0});
    return out;
  });
}

ThreadPage SqlThreadStore::list_threads(const ThreadQuery& query) {
  return db_.read([&](storage::Connection& c) {
    std::string who = !query.as                       ? "(requester_id = ?1 OR provider_id = ?1)"
                      : *query.as == Role::Requester ? "requester_id = ?1"
                                                      : "provider_id = ?1";
    std::optional<std::string> statuses;
    if (!query.statuses.empty()) {
      statuses = ",";
      for (Status s : query.statuses) *statuses += std::string(status_name(s)) + ",";
    }
    std::string sql = std::string("SELECT ") + kThreadColumns + " FROM threads WHERE " + who +
                      " AND (?2 IS NULL OR strpos(?2, ',' || status || ',') > 0) AND (?3 IS NULL OR pos < ?3)"
                      " ORDER BY pos DESC LIMIT ?4";
    ThreadPage page;
    auto q = c.query(sql, query.agent_id, statuses, query.before_row, static_cast<long long>(query.limit + 1));
    while (q.next()) page.threads.push_back(std::make_shared<const Thread>(read_thread(q)));
    if (static_cast<int>(page.threads.size()) > query.limit) {
      page.threads.pop_back();
      page.next_before_row = page.threads.back()->row;
    }
    return page;
  });
}

MessagePage SqlThreadStore::list_messages(const Thread& thread, long long after_seq, int limit) {
  return db_.read([&](storage::Connection& c) {
    MessagePage page;
    auto q = c.query(std::string("SELECT ") + kMessageColumns +
                         " FROM messages WHERE thread_pos = ? AND seq > ? ORDER BY seq LIMIT ?",
                     thread.row, after_seq, static_cast<long long>(limit + 1));
    while (q.next()) page.messages.push_back(read_message(q));
    if (static_cast<int>(page.messages.size()) > limit) {
      page.messages.pop_back();
      page.next_after_seq = page.messages.back().seq;
    }
    return page;
  });
}

bool SqlThreadStore::healthy() { return db_.healthy(); }

void SqlThreadStore::add_agent(const AgentRow& a, const events::CloudEvent& registered,
                               std::function<void(std::exception_ptr)> done) {
  db_.write(
      [this, a, registered](storage::Connection& c) {
        c.query("INSERT INTO agents(agent_id, name, description, key_fingerprint, created_at) VALUES (?,?,?,?,?)",
                a.agent_id, a.name, a.description, a.key_fingerprint, a.created_at)
            .run();
        c.query("INSERT INTO api_keys (key_id, agent_id, fingerprint, created_at) VALUES (?,?,?,?)",
                a.key_id, a.agent_id, a.key_fingerprint, a.created_at)
            .run();
        events::append_to_outbox(c, "agentlancer.agents.v1", registered, clock_.now_ms());
      },
      std::move(done));
}

std::optional<SqlThreadStore::AgentRow> SqlThreadStore::find_agent(const std::string& agent_id) {
  return db_.read([&](storage::Connection& c) -> std::optional<AgentRow> {
    auto q = c.query("SELECT name, description, key_fingerprint, created_at FROM agents WHERE agent_id = ?", agent_id);
    if (!q.next()) return std::nullopt;
    return AgentRow{agent_id, q.text(0), q.opt_text(1), q.text(2), q.int64(3)};
  });
}

}  // namespace al::thread
