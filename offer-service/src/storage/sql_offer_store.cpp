#include "storage/sql_offer_store.hpp"

#include <chrono>
#include <initializer_list>
#include <unordered_map>

#include "common/storage/idempotency_store.hpp"
#include "common/storage/key_revocation_store.hpp"
#include "common/events/outbox.hpp"
#include "common/storage/columns.hpp"

namespace al::offer {
namespace bj = boost::json;

std::vector<storage::Migration> offer_migrations() {
  return {
      events::outbox_migration(1),
      {2, R"sql(
CREATE TABLE thread_views (
  thread_id TEXT PRIMARY KEY,
  service_id TEXT NOT NULL,
  requester_id TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  status TEXT NOT NULL,
  locked_terms TEXT,
  quote_message_id TEXT,
  seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE offers (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  thread_id TEXT NOT NULL,
  service_id TEXT NOT NULL,
  requester_id TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  status TEXT NOT NULL,
  terms TEXT NOT NULL,
  amount TEXT NOT NULL,
  token TEXT NOT NULL,
  network TEXT NOT NULL,
  quote_message_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  decided_at INTEGER,
  decision_reason TEXT,
  contract_id TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL
);
CREATE INDEX offers_by_requester ON offers(requester_id, pos);
CREATE INDEX offers_by_provider ON offers(provider_id, pos);
CREATE INDEX offers_by_thread ON offers(thread_id, pos);
CREATE INDEX offers_open_by_expiry ON offers(expires_at) WHERE status = 'open';
CREATE TABLE contracts (
  pos INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  offer_id TEXT NOT NULL UNIQUE,
  thread_id TEXT NOT NULL,
  buyer_id TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  status TEXT NOT NULL,
  amount TEXT NOT NULL,
  token TEXT NOT NULL,
  network TEXT NOT NULL,
  pay_to TEXT NOT NULL,
  required_confirmations INTEGER NOT NULL,
  confirmations INTEGER NOT NULL,
  tx_hash TEXT UNIQUE,
  chain_adapter TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL
);
)sql", {}},
      {3, R"sql(
ALTER TABLE offers ADD COLUMN token_address TEXT NOT NULL DEFAULT '';
ALTER TABLE contracts ADD COLUMN token_address TEXT NOT NULL DEFAULT '';
ALTER TABLE contracts ADD COLUMN deliverable TEXT NOT NULL DEFAULT '';
)sql", {}},
      // Times the ops funnel counts by.
      {4, R"sql(
ALTER TABLE thread_views ADD COLUMN opened_at INTEGER;
ALTER TABLE thread_views ADD COLUMN quote_locked_at INTEGER;
ALTER TABLE contracts ADD COLUMN payment_submitted_at INTEGER;
ALTER TABLE contracts ADD COLUMN funded_at INTEGER;
)sql", {}},
      {5, R"sql(
CREATE TABLE feedback (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  surface TEXT NOT NULL,
  sentiment TEXT NOT NULL,
  category TEXT NOT NULL,
  message TEXT NOT NULL,
  raw_message_stored INTEGER NOT NULL,
  redactions TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
)sql", {}},
      // Where the chain saw a payment (reorganization checks), the last payment turned down, and
      // every hash ever bound to a contract: one hash pays one contract, even after a rejection.
      {6, R"sql(
ALTER TABLE contracts ADD COLUMN payment_block_number INTEGER;
ALTER TABLE contracts ADD COLUMN payment_block_hash TEXT;
ALTER TABLE contracts ADD COLUMN payment_seen_at INTEGER;
ALTER TABLE contracts ADD COLUMN rejected_tx_hash TEXT;
ALTER TABLE contracts ADD COLUMN rejected_code TEXT;
ALTER TABLE contracts ADD COLUMN rejected_at INTEGER;
CREATE TABLE payment_hashes (
  tx_hash TEXT PRIMARY KEY,
  contract_id TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO payment_hashes(tx_hash, contract_id) SELECT tx_hash, id FROM contracts WHERE tx_hash IS NOT NULL;
)sql", {}},
      events::outbox_published_at_migration(7),
      // One live offer per thread, whichever replica creates it.
      {8, R"sql(
CREATE UNIQUE INDEX offers_one_live_per_thread ON offers(thread_id) WHERE status IN ('open', 'accepted');
)sql", {}},
      // Which replica's payment watcher asks the chain about a contract, until when.
      {9, R"sql(
ALTER TABLE contracts ADD COLUMN watcher TEXT;
ALTER TABLE contracts ADD COLUMN watch_until INTEGER;
CREATE INDEX contracts_payment_submitted ON contracts(updated_at) WHERE status = 'payment_submitted';
)sql", {}},
      events::outbox_positions_migration(10),
      storage::idempotency::table_migration(11),
      storage::key_revocations::table_migration(12),
  };
}

namespace {
constexpr auto kOffer = storage::columns(
    "pos", "id", "thread_id", "service_id", "requester_id", "provider_id", "status", "terms", "amount", "token",
    "network", "quote_message_id", "expires_at", "decided_at", "decision_reason", "contract_id", "created_at",
    "updated_at", "version", "token_address");
const std::string kOfferColumns = kOffer.list();

Offer read_offer(const storage::Query& q) {
  Offer o;
  o.row = q.int64(kOffer["pos"]);
  o.id = q.text(kOffer["id"]);
  o.thread_id = q.text(kOffer["thread_id"]);
  o.service_id = q.text(kOffer["service_id"]);
  o.requester_id = q.text(kOffer["requester_id"]);
  o.provider_id = q.text(kOffer["provider_id"]);
  o.status = parse_status(q.text(kOffer["status"])).value_or(OfferStatus::Open);
  o.terms = bj::parse(q.text(kOffer["terms"])).as_object();
  o.amount = *Decimal::parse(q.text(kOffer["amount"]));
  o.token = q.text(kOffer["token"]);
  o.network = q.text(kOffer["network"]);
  o.quote_message_id = q.text(kOffer["quote_message_id"]);
  o.expires_at = q.int64(kOffer["expires_at"]);
  o.decided_at = q.opt_int64(kOffer["decided_at"]);
  o.decision_reason = q.opt_text(kOffer["decision_reason"]);
  o.contract_id = q.opt_text(kOffer["contract_id"]);
  o.created_at = q.int64(kOffer["created_at"]);
  o.updated_at = q.int64(kOffer["updated_at"]);
  o.version = q.int64(kOffer["version"]);
  o.token_address = q.text(kOffer["token_address"]);
  return o;
}

constexpr auto kContract = storage::columns(
    "id", "offer_id", "thread_id", "buyer_id", "provider_id", "status", "amount", "token", "network", "pay_to",
    "required_confirmations", "confirmations", "tx_hash", "chain_adapter", "created_at", "updated_at", "version",
    "token_address", "deliverable", "payment_submitted_at", "funded_at", "payment_block_number", "payment_block_hash",
    "payment_seen_at", "rejected_tx_hash", "rejected_code", "rejected_at");
const std::string kContractColumns = kContract.list();

Contract read_contract(const storage::Query& q) {
  Contract c;
  c.id = q.text(kContract["id"]);
  c.offer_id = q.text(kContract["offer_id"]);
  c.thread_id = q.text(kContract["thread_id"]);
  c.buyer_id = q.text(kContract["buyer_id"]);
  c.provider_id = q.text(kContract["provider_id"]);
  c.status = q.text(kContract["status"]);
  c.amount = *Decimal::parse(q.text(kContract["amount"]));
  c.token = q.text(kContract["token"]);
  c.network = q.text(kContract["network"]);
  c.pay_to = q.text(kContract["pay_to"]);
  c.required_confirmations = static_cast<int>(q.int64(kContract["required_confirmations"]));
  c.confirmations = static_cast<int>(q.int64(kContract["confirmations"]));
  c.tx_hash = q.opt_text(kContract["tx_hash"]);
  c.chain_adapter = q.text(kContract["chain_adapter"]);
  c.created_at = q.int64(kContract["created_at"]);
  c.updated_at = q.int64(kContract["updated_at"]);
  c.version = q.int64(kContract["version"]);
  c.token_address = q.text(kContract["token_address"]);
  c.deliverable = q.text(kContract["deliverable"]);
  c.payment_submitted_at = q.opt_int64(kContract["payment_submitted_at"]);
  c.funded_at = q.opt_int64(kContract["funded_at"]);
  c.payment_block_number = q.opt_int64(kContract["payment_block_number"]);
  c.payment_block_hash = q.opt_text(kContract["payment_block_hash"]);
  c.payment_seen_at = q.opt_int64(kContract["payment_seen_at"]);
  c.rejected_tx_hash = q.opt_text(kContract["rejected_tx_hash"]);
  c.rejected_code = q.opt_text(kContract["rejected_code"]);
  c.rejected_at = q.opt_int64(kContract["rejected_at"]);
  return c;
}

std::optional<ThreadView> read_thread_view(storage::Connection& c, const std::string& id, bool for_change) {
  auto q = c.query(
      std::string("SELECT thread_id, service_id, requester_id, provider_id, status, locked_terms, quote_message_id, seq, opened_at, "
                  "quote_locked_at FROM thread_views WHERE thread_id = ?") +
          (for_change ? c.for_update() : ""),
      id);
  if (!q.next()) return std::nullopt;
  ThreadView v;
  v.thread_id = q.text(0);
  v.service_id = q.text(1);
  v.requester_id = q.text(2);
  v.provider_id = q.text(3);
  v.status = q.text(4);
  if (auto terms = q.opt_text(5)) v.locked_terms = bj::parse(*terms).as_object();
  v.quote_message_id = q.opt_text(6);
  v.seq = q.int64(7);
  v.opened_at = q.opt_int64(8);
  v.quote_locked_at = q.opt_int64(9);
  return v;
}

class SqlOfferTx final : public OfferTx {
 public:
  SqlOfferTx(storage::Connection& c, const Clock& clock, std::vector<std::string>* written)
      : c_(c), clock_(clock), written_(written) {}

  // Aggregates are loaded for change: locked until commit (PostgreSQL; the thread view serialises
  // offers made on one thread) and version-checked on save.
  std::optional<ThreadView> load_thread(const std::string& id) override { return read_thread_view(c_, id, true); }

  void save_thread(const ThreadView& v) override {
    std::optional<std::string> terms;
    if (v.locked_terms) terms = bj::serialize(*v.locked_terms);
    c_.query(
        "INSERT INTO thread_views(thread_id, service_id, requester_id, provider_id, status, locked_terms, "
        "quote_message_id, seq, opened_at, quote_locked_at) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(thread_id) DO UPDATE SET "
        "service_id=excluded.service_id, requester_id=excluded.requester_id, provider_id=excluded.provider_id, "
        "status=excluded.status, locked_terms=excluded.locked_terms, quote_message_id=excluded.quote_message_id, "
        "seq=excluded.seq, opened_at=excluded.opened_at, quote_locked_at=excluded.quote_locked_at",
        v.thread_id, v.service_id, v.requester_id, v.provider_id, v.status, terms, v.quote_message_id, v.seq,
        v.opened_at, v.quote_locked_at)
        .run();
  }

  std::optional<Offer> load_offer(const std::string& id) override {
    auto q = c_.query(std::string("SELECT ") + kOfferColumns + " FROM offers WHERE id = ?" + c_.for_update(), id);
    if (!q.next()) return std::nullopt;
    return remember(read_offer(q));
  }

  std::optional<Offer> live_offer_for(const std::string& thread_id) override {
    auto q = c_.query(std::string("SELECT ") + kOfferColumns +
                          " FROM offers WHERE thread_id = ? AND status IN ('open', 'accepted') ORDER BY pos DESC LIMIT 1" +
                          c_.for_update(),
                      thread_id);
    if (!q.next()) return std::nullopt;
    return remember(read_offer(q));
  }

  void insert_offer(Offer& o) override {
    // Another writer may make this thread's live offer first: the rerun finds it.
    o.row = storage::rerun_if_taken("offer insert", [&] {
      auto q = c_.query(
        "INSERT INTO offers(id, thread_id, service_id, requester_id, provider_id, status, terms, amount, token, "
        "network, quote_message_id, expires_at, decided_at, decision_reason, contract_id, created_at, updated_at, "
        "version, token_address) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING pos",
        o.id, o.thread_id, o.service_id, o.requester_id, o.provider_id, status_name(o.status), bj::serialize(o.terms),
        o.amount.to_string(), o.token, o.network, o.quote_message_id, o.expires_at, o.decided_at, o.decision_reason,
        o.contract_id, o.created_at, o.updated_at, o.version, o.token_address);
      q.next();
      return q.int64(0);
    });
    offer_versions_.loaded(o.row, o.version);
  }

  void save_offer(const Offer& o) override {
    long long expected = offer_versions_.expected(o.row, o.version);
    long long changed = c_.query(
        "UPDATE offers SET status=?, decided_at=?, decision_reason=?, contract_id=?, updated_at=?, version=? "
        "WHERE pos=? AND version=?",
        status_name(o.status), o.decided_at, o.decision_reason, o.contract_id, o.updated_at, o.version, o.row, expected)
        .run();
    offer_versions_.saved(o.row, changed, o.version, "offer " + o.id);
  }

  void insert_contract(const Contract& k) override {
    if (written_) written_->push_back(k.id);
    c_.query(
        "INSERT INTO contracts(id, offer_id, thread_id, buyer_id, provider_id, status, amount, token, network, pay_to, "
        "required_confirmations, confirmations, tx_hash, chain_adapter, created_at, updated_at, version, token_address, "
        "deliverable) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        k.id, k.offer_id, k.thread_id, k.buyer_id, k.provider_id, k.status, k.amount.to_string(), k.token, k.network,
        k.pay_to, k.required_confirmations, k.confirmations, k.tx_hash, k.chain_adapter, k.created_at, k.updated_at,
        k.version, k.token_address, k.deliverable)
        .run();
    contract_versions_.loaded(k.id, k.version);
  }

  std::optional<Contract> load_contract(const std::string& id) override {
    auto q = c_.query(std::string("SELECT ") + kContractColumns + " FROM contracts WHERE id = ?" + c_.for_update(), id);
    if (!q.next()) return std::nullopt;
    auto k = read_contract(q);
    contract_versions_.loaded(k.id, k.version);
    return k;
  }

  void save_contract(const Contract& k) override {
    if (written_) written_->push_back(k.id);
    long long expected = contract_versions_.expected(k.id, k.version);
    long long changed = storage::rerun_if_taken("contract update", [&] {
      return c_.query("UPDATE contracts SET status=?, confirmations=?, tx_hash=?, chain_adapter=?, payment_submitted_at=?, "
                         "funded_at=?, updated_at=?, version=?, payment_block_number=?, payment_block_hash=?, payment_seen_at=?, "
                         "rejected_tx_hash=?, rejected_code=?, rejected_at=? WHERE id=? AND version=?",
                         k.status, k.confirmations, k.tx_hash, k.chain_adapter, k.payment_submitted_at, k.funded_at, k.updated_at,
                         k.version, k.payment_block_number, k.payment_block_hash, k.payment_seen_at, k.rejected_tx_hash,
                         k.rejected_code, k.rejected_at, k.id, expected)
          .run();
    });
    contract_versions_.saved(k.id, changed, k.version, "contract " + k.id);
  }

  bool bind_tx_hash(const std::string& tx_hash, const std::string& contract_id) override {
    auto q = c_.query("SELECT contract_id FROM payment_hashes WHERE tx_hash = ?", tx_hash);
    if (q.next()) return q.text(0) == contract_id;
    // Bound by a concurrent payment meanwhile: the rerun reads whose it is.
    storage::rerun_if_taken("payment hash", [&] {
      return c_.query("INSERT INTO payment_hashes(tx_hash, contract_id) VALUES (?, ?)", tx_hash, contract_id).run();
    });
    return true;
  }

  void publish(const std::string& topic, const events::CloudEvent& event) override {
    events::append_to_outbox(c_, topic, event, clock_.now_ms());
  }

  void insert_feedback(const Feedback& f, Millis now) override {
    std::string kinds;
    for (const auto& k : f.redactions) kinds += (kinds.empty() ? "" : ",") + k;
    c_.query("INSERT INTO feedback(surface, sentiment, category, message, raw_message_stored, redactions, created_at) "
             "VALUES (?,?,?,?,?,?,?)",
             f.surface, f.sentiment, f.category, f.message, f.raw_message_stored(), kinds, now)
        .run();
  }

 private:
  Offer remember(Offer o) {
    offer_versions_.loaded(o.row, o.version);
    return o;
  }

  storage::Connection& c_;
  const Clock& clock_;
  std::vector<std::string>* written_;
  // As read (or last written) in this unit of work: what a save expects to find.
  storage::LoadedVersions<long long> offer_versions_;
  storage::LoadedVersions<std::string> contract_versions_;
};
}  // namespace

std::shared_ptr<const Contract> ContractCache::find(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : it->second;
}

std::uint64_t ContractCache::generation() {
  std::lock_guard lock(mutex_);
  return generation_;
}

void ContractCache::offer(std::shared_ptr<const Contract> contract, std::uint64_t generation_before_read) {
  if (capacity_ == 0) return;  // off
  std::lock_guard lock(mutex_);
  if (generation_ != generation_before_read) return;
  if (entries_.size() >= capacity_) entries_.clear();  // rare; a cold start is correct, only slower
  entries_[contract->id] = std::move(contract);
}

void ContractCache::drop(const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  std::lock_guard lock(mutex_);
  for (const auto& id : ids) entries_.erase(id);
  ++generation_;
}

std::size_t ContractCache::size() {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::unique_ptr<OfferTx> SqlOfferStore::tx_on(storage::Connection& connection, std::vector<std::string>* written) {
  return std::make_unique<SqlOfferTx>(connection, clock_, written);
}

void SqlOfferStore::transact(std::function<void(OfferTx&)> work, std::function<void(std::exception_ptr)> done) {
  auto written = std::make_shared<std::vector<std::string>>();
  db_.write(
      [this, work = std::move(work), written](storage::Connection& c) {
        written->clear();  // a retried group commit runs this again
        SqlOfferTx tx(c, clock_, written.get());
        work(tx);
      },
      [this, written, done = std::move(done)](std::exception_ptr error) {
        contracts_.drop(*written);  // before anyone hears of the commit (a rollback: harmless)
        done(error);
      });
}

std::optional<ThreadView> SqlOfferStore::get_thread(const std::string& thread_id) {
  return db_.read([&](storage::Connection& c) { return read_thread_view(c, thread_id, false); });
}

std::optional<Offer> SqlOfferStore::get_offer(const std::string& id) {
  return db_.read([&](storage::Connection& c) -> std::optional<Offer> {
    auto q = c.query(std::string("SELECT ") + kOfferColumns + " FROM offers WHERE id = ?", id);
    if (!q.next()) return std::nullopt;
    return read_offer(q);
  });
}

OfferPage SqlOfferStore::list_offers(const OfferQuery& query) {
  return db_.read([&](storage::Connection& c) {
    std::string who = !query.as_provider ? "(requester_id = ?1 OR provider_id = ?1)"
                      : *query.as_provider ? "provider_id = ?1"
                                           : "requester_id = ?1";
    std::optional<std::string> statuses;
    if (!query.statuses.empty()) {
      statuses = ",";
      for (OfferStatus s : query.statuses) *statuses += std::string(status_name(s)) + ",";
    }
    std::string sql = std::string("SELECT ") + kOfferColumns + " FROM offers WHERE " + who +
                      " AND (?2 IS NULL OR strpos(?2, ',' || status || ',') > 0) AND (?3 IS NULL OR pos < ?3)"
                      " ORDER BY pos DESC LIMIT ?4";
    OfferPage page;
    auto q = c.query(sql, query.agent_id, statuses, query.before_row, static_cast<long long>(query.limit + 1));
    while (q.next()) page.offers.push_back(read_offer(q));
    if (static_cast<int>(page.offers.size()) > query.limit) {
      page.offers.pop_back();
      page.next_before_row = page.offers.back().row;
    }
    return page;
  });
}

std::optional<std::string> SqlOfferStore::contract_of_tx_hash(const std::string& tx_hash) {
  return db_.read([&](storage::Connection& c) -> std::optional<std::string> {
    auto q = c.query("SELECT contract_id FROM payment_hashes WHERE tx_hash = ?", tx_hash);
    if (!q.next()) return std::nullopt;
    return q.text(0);
  });
}

std::optional<Contract> SqlOfferStore::get_contract(const std::string& id) {
  if (auto hit = contracts_.find(id)) return *hit;
  std::uint64_t generation = contracts_.generation();
  auto found = db_.read([&](storage::Connection& c) -> std::optional<Contract> {
    auto q = c.query(std::string("SELECT ") + kContractColumns + " FROM contracts WHERE id = ?", id);
    if (!q.next()) return std::nullopt;
    return read_contract(q);
  });
  if (found) contracts_.offer(std::make_shared<const Contract>(*found), generation);
  return found;
}

std::vector<std::string> SqlOfferStore::due_for_expiry(Millis now, int limit) {
  return db_.read([&](storage::Connection& c) {
    std::vector<std::string> ids;
    auto q = c.query("SELECT id FROM offers WHERE status = 'open' AND expires_at <= ? ORDER BY expires_at LIMIT ?", now,
                     static_cast<long long>(limit));
    while (q.next()) ids.push_back(q.text(0));
    return ids;
  });
}

std::vector<std::string> SqlOfferStore::claim_awaiting_confirmation(int limit, const std::string& watcher,
                                                                      long long lease_ms) {
  long long now = storage::wall_clock_ms();  // replicas compare each other's leases
  std::vector<std::string> ids;
  db_.write_sync([&](storage::Connection& c) {
    ids.clear();
    // SKIP LOCKED (PostgreSQL): a replica claiming at the same moment takes other rows, not these.
    auto q = c.query(std::string("UPDATE contracts SET watcher = ?, watch_until = ? WHERE id IN ("
                                 "SELECT id FROM contracts WHERE status = 'payment_submitted' "
                                 "AND (watch_until IS NULL OR watch_until < ? OR watcher = ?) ORDER BY updated_at LIMIT ?") +
                         (c.dialect() == storage::Dialect::Postgres ? " FOR UPDATE SKIP LOCKED" : "") + ") RETURNING id",
                     watcher, now + lease_ms, now, watcher, static_cast<long long>(limit));
    while (q.next()) ids.push_back(q.text(0));
  });
  return ids;
}

OpsCounts SqlOfferStore::ops_counts(Millis window_start) {
  return db_.read_tx([&](storage::Connection& c) {  // one snapshot for every figure
    OpsCounts n;
    {
      // Counts by status into the named fields; every row also adds to the total.
      auto by_status = [&](const char* table, long long& total,
                           std::initializer_list<std::pair<const char*, long long*>> fields) {
        auto q = c.query(std::string("SELECT status, count(*) FROM ") + table + " GROUP BY status");
        while (q.next()) {
          std::string status = q.text(0);
          long long count = q.int64(1);
          total += count;
          for (const auto& [name, field] : fields)
            if (status == name) *field = count;
        }
      };
      by_status("thread_views", n.threads_total,
                {{"negotiating", &n.threads_negotiating}, {"quote_locked", &n.threads_quote_locked},
                 {"offered", &n.threads_offered}, {"closed", &n.threads_closed}});
      by_status("offers", n.offers_total,
                {{"open", &n.offers_open}, {"accepted", &n.offers_accepted}, {"rejected", &n.offers_rejected},
                 {"inactive", &n.offers_inactive}});
      by_status("contracts", n.contracts_total,
                {{"awaiting_payment", &n.contracts_awaiting_payment}, {"payment_submitted", &n.contracts_payment_submitted},
                 {"funded", &n.contracts_funded}, {"completed", &n.contracts_completed},
                 {"refund_pending", &n.contracts_refund_pending}, {"expired", &n.contracts_expired}});
      auto count = [&](const char* sql) {
        auto q = c.query(sql, window_start);
        return q.next() ? q.int64(0) : 0LL;
      };
      n.window_threads_opened = count("SELECT count(*) FROM thread_views WHERE opened_at >= ?");
      n.window_quotes_locked = count("SELECT count(*) FROM thread_views WHERE quote_locked_at >= ?");
      n.window_offers_created = count("SELECT count(*) FROM offers WHERE created_at >= ?");
      n.window_offers_accepted = count("SELECT count(*) FROM offers WHERE status = 'accepted' AND decided_at >= ?");
      n.window_payments_submitted = count("SELECT count(*) FROM contracts WHERE payment_submitted_at >= ?");
      n.window_payments_confirmed = count("SELECT count(*) FROM contracts WHERE funded_at >= ?");
    }
    return n;
  });
}

std::vector<Journey> SqlOfferStore::journeys(Millis window_start, int limit) {
  return db_.read([&](storage::Connection& c) {
    std::vector<Journey> out;
    // A thread's first offer and that offer's contract: the journey to a first payment.
    auto q = c.query(
        "SELECT t.opened_at, t.quote_locked_at, o.created_at, "
        "CASE WHEN o.status = 'accepted' THEN o.decided_at END, k.payment_submitted_at, k.funded_at "
        "FROM thread_views t "
        "LEFT JOIN offers o ON o.pos = (SELECT min(pos) FROM offers WHERE thread_id = t.thread_id) "
        "LEFT JOIN contracts k ON k.offer_id = o.id "
        "WHERE t.opened_at >= ? ORDER BY t.opened_at DESC LIMIT ?",
        window_start, static_cast<long long>(limit));
    while (q.next()) {
      Journey j;
      j.opened_at = q.int64(0);
      j.quote_locked_at = q.opt_int64(1);
      j.offer_created_at = q.opt_int64(2);
      j.offer_accepted_at = q.opt_int64(3);
      j.payment_submitted_at = q.opt_int64(4);
      j.funded_at = q.opt_int64(5);
      out.push_back(j);
    }
    return out;
  });
}

}  // namespace al::offer
