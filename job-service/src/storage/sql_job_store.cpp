#include "storage/sql_job_store.hpp"

#include <boost/json.hpp>
#include <unordered_map>

#include "common/storage/idempotency_store.hpp"
#include "common/storage/key_revocation_store.hpp"
#include "common/events/outbox.hpp"
#include "common/storage/columns.hpp"
#include "common/json/json.hpp"

namespace al::job {

std::vector<storage::Migration> job_migrations() {
  return {
      events::outbox_migration(1),
      {2, R"sql(
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  phase INTEGER NOT NULL,
  client_id TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  evaluator_id TEXT,
  service_requirement TEXT NOT NULL,
  budget TEXT NOT NULL,
  token_address TEXT NOT NULL,
  escrow_tx_hash TEXT UNIQUE,
  escrow_verified_by TEXT,
  escrow_verified_at INTEGER,
  claim_status TEXT NOT NULL,
  deliverable TEXT,
  deliverable_payable TEXT,
  deliverable_at INTEGER,
  rejection_reason TEXT,
  client_operation_id TEXT,
  contract_id TEXT UNIQUE,
  expired_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  UNIQUE (client_id, client_operation_id)
);
CREATE INDEX jobs_by_client ON jobs(client_id, id);
CREATE INDEX jobs_by_provider ON jobs(provider_id, id);
CREATE INDEX jobs_by_evaluator ON jobs(evaluator_id, id) WHERE evaluator_id IS NOT NULL;
CREATE INDEX jobs_open_by_expiry ON jobs(expired_at) WHERE phase < 4;
CREATE TABLE memos (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  type INTEGER NOT NULL,
  content TEXT NOT NULL,
  payable_detail TEXT,
  requires_approval INTEGER NOT NULL,
  status TEXT NOT NULL,
  sender_id TEXT NOT NULL,
  phase INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  decided_at INTEGER,
  decision_reason TEXT
);
CREATE INDEX memos_by_job ON memos(job_id, id);
CREATE TABLE known_agents (
  agent_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  registered_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql", {}},
      events::outbox_published_at_migration(3),
      events::outbox_positions_migration(4),
      storage::idempotency::table_migration(5),
      storage::key_revocations::table_migration(6),
  };
}

namespace {
constexpr auto kJob = storage::columns(
    "id", "phase", "client_id", "provider_id", "evaluator_id", "service_requirement", "budget", "token_address",
    "escrow_tx_hash", "escrow_verified_by", "escrow_verified_at", "claim_status", "deliverable",
    "deliverable_payable", "deliverable_at", "rejection_reason", "client_operation_id", "contract_id", "expired_at",
    "created_at", "updated_at", "version");
const std::string kJobColumns = kJob.list();

std::optional<std::string> payable_to_text(const std::optional<PayableDetail>& d) {
  if (!d) return std::nullopt;
  boost::json::object o{{"amount", d->amount.to_string()}, {"tokenAddress", d->token_address}};
  if (d->recipient) o["recipient"] = *d->recipient;
  return boost::json::serialize(o);
}

std::optional<PayableDetail> payable_from_text(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  auto v = boost::json::parse(*text).as_object();
  PayableDetail d;
  d.amount = *Decimal::parse(v.at("amount").as_string());
  d.token_address = std::string(v.at("tokenAddress").as_string());
  if (auto* r = v.if_contains("recipient")) d.recipient = std::string(r->as_string());
  return d;
}

Job read_job_row(const storage::Query& q) {
  Job j;
  j.id = q.int64(kJob["id"]);
  j.phase = static_cast<Phase>(q.int64(kJob["phase"]));
  j.client_id = q.text(kJob["client_id"]);
  j.provider_id = q.text(kJob["provider_id"]);
  j.evaluator_id = q.opt_text(kJob["evaluator_id"]);
  j.service_requirement = q.text(kJob["service_requirement"]);
  j.budget = *Decimal::parse(q.text(kJob["budget"]));
  j.token_address = q.text(kJob["token_address"]);
  if (auto hash = q.opt_text(kJob["escrow_tx_hash"])) j.escrow = Escrow{*hash, q.text(kJob["escrow_verified_by"]), q.int64(kJob["escrow_verified_at"])};
  j.claim_status = q.text(kJob["claim_status"]);
  j.deliverable = q.opt_text(kJob["deliverable"]);
  j.deliverable_payable_detail = payable_from_text(q.opt_text(kJob["deliverable_payable"]));
  j.deliverable_at = q.opt_int64(kJob["deliverable_at"]);
  j.rejection_reason = q.opt_text(kJob["rejection_reason"]);
  j.client_operation_id = q.opt_text(kJob["client_operation_id"]);
  j.contract_id = q.opt_text(kJob["contract_id"]);
  j.expired_at = q.int64(kJob["expired_at"]);
  j.created_at = q.int64(kJob["created_at"]);
  j.updated_at = q.int64(kJob["updated_at"]);
  j.version = q.int64(kJob["version"]);
  return j;
}

constexpr auto kMemo = storage::columns(
    "id", "type", "content", "payable_detail", "requires_approval", "status", "sender_id", "phase", "created_at",
    "decided_at", "decision_reason");
const std::string kMemoColumns = kMemo.list();

// The memo whose columns start at `first`.
Memo read_memo(const storage::Query& q, int first) {
  Memo m;
  m.id = q.int64(first + kMemo["id"]);
  m.type = static_cast<MemoType>(q.int64(first + kMemo["type"]));
  m.content = q.text(first + kMemo["content"]);
  m.payable_detail = payable_from_text(q.opt_text(first + kMemo["payable_detail"]));
  m.requires_approval = q.int64(first + kMemo["requires_approval"]) != 0;
  m.status = q.text(first + kMemo["status"]);
  m.sender_id = q.text(first + kMemo["sender_id"]);
  m.phase = static_cast<Phase>(q.int64(first + kMemo["phase"]));
  m.created_at = q.int64(first + kMemo["created_at"]);
  m.decided_at = q.opt_int64(first + kMemo["decided_at"]);
  m.decision_reason = q.opt_text(first + kMemo["decision_reason"]);
  return m;
}

void load_memos(storage::Connection& c, Job& job) {
  auto q = c.query(std::string("SELECT ") + kMemoColumns + " FROM memos WHERE job_id = ? ORDER BY id", job.id);
  while (q.next()) job.memos.push_back(read_memo(q, 0));
}

// A job and its memos in one statement: one round trip, one snapshot (a read outside a unit of
// work needs no transaction for it).
std::optional<Job> load_job_joined(storage::Connection& c, long long id) {
  static const std::string sql = "SELECT " + kJob.list("j") + ", " + kMemo.list("m") +
                                 " FROM jobs j LEFT JOIN memos m ON m.job_id = j.id WHERE j.id = ? ORDER BY m.id";
  std::optional<Job> job;
  auto q = c.query(sql, id);
  while (q.next()) {
    if (!job) job = read_job_row(q);
    if (!q.is_null(kJob.size())) job->memos.push_back(read_memo(q, kJob.size()));  // the memo's columns follow
  }
  return job;
}

// `for_change`: inside a write, the row is locked until commit (PostgreSQL), so a concurrent
// writer of the same job waits and then reads this one's result.
std::optional<Job> load_job(storage::Connection& c, long long id, bool for_change) {
  std::optional<Job> job;
  {
    auto q = c.query(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?" +
                         (for_change ? c.for_update() : ""),
                     id);
    if (q.next()) job = read_job_row(q);
  }
  if (job) load_memos(c, *job);
  return job;
}

class SqlJobTx final : public JobTx {
 public:
  SqlJobTx(storage::Connection& c, const Clock& clock) : c_(c), clock_(clock) {}

  std::optional<Job> load(long long id) override { return remember(load_job(c_, id, true)); }

  std::optional<Job> find_by_operation(const std::string& client_id, const std::string& op) override {
    std::optional<long long> id;
    {
      auto q = c_.query("SELECT id FROM jobs WHERE client_id = ? AND client_operation_id = ?", client_id, op);
      if (q.next()) id = q.int64(0);
    }
    if (!id) return std::nullopt;
    return remember(load_job(c_, *id, true));
  }

  void insert(Job& j) override {
    // Another writer may create this client operation (or contract's job) first: the unit of work
    // is run again, and finds that job.
    j.id = storage::rerun_if_taken("job insert", [&] {
      auto q = c_.query(
          "INSERT INTO jobs(phase, client_id, provider_id, evaluator_id, service_requirement, budget, "
          "token_address, claim_status, client_operation_id, contract_id, expired_at, created_at, "
          "updated_at, version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
          static_cast<int>(j.phase), j.client_id, j.provider_id, j.evaluator_id, j.service_requirement,
          j.budget.to_string(), j.token_address, j.claim_status, j.client_operation_id, j.contract_id,
          j.expired_at, j.created_at, j.updated_at, j.version);
      q.next();
      return q.int64(0);
    });
    loaded_versions_.loaded(j.id, j.version);
    save_memos(j);
  }

  void save(Job& j) override {
    std::optional<std::string> tx_hash, verified_by;
    std::optional<long long> verified_at;
    if (j.escrow) {
      tx_hash = j.escrow->tx_hash;
      verified_by = j.escrow->verified_by;
      verified_at = j.escrow->verified_at;
    }
    long long expected = loaded_versions_.expected(j.id, j.version);
    // The escrow hash may be claimed by another job meanwhile: the rerun sees it used.
    long long changed = storage::rerun_if_taken("job update", [&] {
      return c_.query(
                      "UPDATE jobs SET phase=?, escrow_tx_hash=?, escrow_verified_by=?, escrow_verified_at=?, "
                      "claim_status=?, deliverable=?, deliverable_payable=?, deliverable_at=?, rejection_reason=?, "
                      "updated_at=?, version=? WHERE id=? AND version=?",
                      static_cast<int>(j.phase), tx_hash, verified_by, verified_at, j.claim_status, j.deliverable,
                      payable_to_text(j.deliverable_payable_detail), j.deliverable_at, j.rejection_reason,
                      j.updated_at, j.version, j.id, expected)
          .run();
    });
    // Version check: the row lock makes this hold already; it guards any path that forgot it.
    loaded_versions_.saved(j.id, changed, j.version, "job " + std::to_string(j.id));
    save_memos(j);
  }

  bool tx_hash_used(const std::string& tx_hash) override {
    auto q = c_.query("SELECT 1 FROM jobs WHERE escrow_tx_hash = ?", tx_hash);
    return q.next();
  }

  bool agent_known(const std::string& agent_id) override {
    auto q = c_.query("SELECT 1 FROM known_agents WHERE agent_id = ?", agent_id);
    return q.next();
  }

  std::optional<Job> find_by_contract(const std::string& contract_id) override {
    std::optional<long long> id;
    {
      auto q = c_.query("SELECT id FROM jobs WHERE contract_id = ?", contract_id);
      if (q.next()) id = q.int64(0);
    }
    if (!id) return std::nullopt;
    return remember(load_job(c_, *id, true));
  }

  void publish(const events::CloudEvent& event) override {
    events::append_to_outbox(c_, "agentlancer.jobs.v1", event, clock_.now_ms());
  }

 private:
  void save_memos(Job& j) {
    for (auto& m : j.memos) {
      if (m.id == 0) {
        auto q = c_.query(
            "INSERT INTO memos(job_id, type, content, payable_detail, requires_approval, status, "
            "sender_id, phase, created_at, decided_at, decision_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
            j.id, static_cast<int>(m.type), m.content, payable_to_text(m.payable_detail),
            m.requires_approval, m.status, m.sender_id, static_cast<int>(m.phase), m.created_at,
            m.decided_at, m.decision_reason);
        q.next();
        m.id = q.int64(0);
      } else if (m.decided_at) {
        c_.query("UPDATE memos SET status=?, decided_at=?, decision_reason=? WHERE id=? AND job_id=?",
                 m.status, m.decided_at, m.decision_reason, m.id, j.id)
            .run();
      }
    }
  }

  std::optional<Job> remember(std::optional<Job> job) {
    if (job) loaded_versions_.loaded(job->id, job->version);
    return job;
  }

  storage::Connection& c_;
  const Clock& clock_;
  storage::LoadedVersions<long long> loaded_versions_;  // as read (or last written) in this unit
};
}  // namespace

std::unique_ptr<JobTx> SqlJobStore::tx_on(storage::Connection& connection, const Clock& clock) {
  return std::make_unique<SqlJobTx>(connection, clock);
}

void SqlJobStore::transact(std::function<void(JobTx&)> work,
                              std::function<void(std::exception_ptr)> done) {
  db_.write(
      [this, work = std::move(work)](storage::Connection& c) {
        SqlJobTx tx(c, clock_);
        work(tx);
      },
      std::move(done));
}

std::optional<Job> SqlJobStore::get(long long id) {
  return db_.read([id](storage::Connection& c) { return load_job_joined(c, id); });
}

ListPage SqlJobStore::list(const ListQuery& query) {
  return db_.read_tx([&](storage::Connection& c) {
    std::string where;
    if (!query.role) where = "(client_id = ?1 OR provider_id = ?1 OR evaluator_id = ?1)";
    else if (*query.role == "client") where = "client_id = ?1";
    else if (*query.role == "provider") where = "provider_id = ?1";
    else where = "evaluator_id = ?1";
    std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE " + where +
                      " AND (?2 IS NULL OR phase = ?2) AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4";
    ListPage page;
    {
      std::optional<long long> phase;
      if (query.phase) phase = *query.phase;
      auto q = c.query(sql, query.agent_id, phase, query.before_id, static_cast<long long>(query.limit + 1));
      while (q.next()) page.jobs.push_back(read_job_row(q));
    }
    if (static_cast<int>(page.jobs.size()) > query.limit) {
      page.jobs.pop_back();
      page.next_before_id = page.jobs.back().id;
    }
    for (auto& job : page.jobs) load_memos(c, job);
    return page;
  });
}

std::vector<long long> SqlJobStore::due_for_expiry(Millis now, int limit) {
  return db_.read([&](storage::Connection& c) {
    std::vector<long long> ids;
    auto q = c.query("SELECT id FROM jobs WHERE phase < 4 AND expired_at > 0 AND expired_at <= ? ORDER BY expired_at LIMIT ?",
                     now, static_cast<long long>(limit));
    while (q.next()) ids.push_back(q.int64(0));
    return ids;
  });
}

bool SqlJobStore::agent_known(const std::string& agent_id) {
  return db_.read([&](storage::Connection& c) {
    auto q = c.query("SELECT 1 FROM known_agents WHERE agent_id = ?", agent_id);
    return q.next();
  });
}

void SqlJobStore::apply_agent_event(storage::Connection& c, const events::CloudEvent& event) {
  if (event.type != "agent.registered") return;
  std::string name;
  if (auto* n = event.data.if_contains("name"); n && n->is_string()) name = n->get_string();
  c.query("INSERT INTO known_agents(agent_id, name, registered_at) VALUES (?,?,?) ON CONFLICT DO NOTHING",
          event.subject, name, event.time)
      .run();
}

}  // namespace al::job
