#include "common/storage/postgres.hpp"

#include <charconv>
#include <cstdlib>
#include <random>

#include <poll.h>
#include <cerrno>

#include "common/log/log.hpp"

namespace al::storage {

namespace {
constexpr unsigned int kInt8Oid = 20;
constexpr unsigned int kTextOid = 25;

// host:port/dbname for logs: never the password.
std::string describe_url(PGconn* conn, const std::string& schema) {
  if (!conn) return "postgresql (" + schema + ")";
  return std::string("postgresql://") + (PQhost(conn) ? PQhost(conn) : "") + ":" +
         (PQport(conn) ? PQport(conn) : "") + "/" + (PQdb(conn) ? PQdb(conn) : "") + " schema " + schema;
}

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}
}  // namespace

ErrorKind classify_sqlstate(std::string_view s) {
  if (s.size() != 5) return ErrorKind::Other;
  if (s.substr(0, 2) == "23") return ErrorKind::Constraint;  // integrity constraint violation
  if (s == "40001" || s == "40P01" || s == "55P03") return ErrorKind::Retryable;  // serialization, deadlock, lock not available
  if (s.substr(0, 2) == "08") return ErrorKind::Unavailable;  // connection exception
  if (s == "57P01" || s == "57P02" || s == "57P03") return ErrorKind::Unavailable;  // shutdown, crash, cannot connect now
  if (s == "53300") return ErrorKind::Unavailable;  // too many connections
  return ErrorKind::Other;
}

bool RetryPolicy::should_retry(const StorageError& error, int attempt, bool commit_sent) const {
  if (attempt >= max_attempts) return false;
  if (error.kind == ErrorKind::Retryable) return true;
  // A lost connection before COMMIT was sent rolled everything back: safe to run again. After it,
  // the outcome is unknown and the caller must hear of the failure.
  return error.kind == ErrorKind::Unavailable && !commit_sent;
}

std::chrono::microseconds RetryPolicy::backoff(int attempt, double unit_random) const {
  long long step = first.count();
  for (int i = 1; i < attempt && step < cap.count(); ++i) step *= 2;
  step = std::min(step, static_cast<long long>(cap.count()));
  return std::chrono::microseconds(static_cast<long long>(static_cast<double>(step) * (0.5 + unit_random / 2)));
}

// --- cursor ---------------------------------------------------------------------------------

PgCursor::PgCursor(PgConnection& connection, std::string sql) : connection_(connection) {
  sql_ = postgres_placeholders(sql);
  // The highest $N is the parameter count.
  for (std::size_t i = 0; i < sql_.size(); ++i) {
    if (sql_[i] != '$') continue;
    int n = 0;
    std::size_t j = i + 1;
    while (j < sql_.size() && std::isdigit(static_cast<unsigned char>(sql_[j]))) n = n * 10 + (sql_[j++] - '0');
    params_ = std::max(params_, n);
  }
  values_.resize(static_cast<std::size_t>(params_));
  nulls_.assign(static_cast<std::size_t>(params_), 1);
  types_.assign(static_cast<std::size_t>(params_), 0);
}

PgCursor::~PgCursor() {
  if (result_) PQclear(result_);
}

void PgCursor::slot(int index) {
  if (index < 1 || index > params_)
    throw StorageError(ErrorKind::Other, "bind", "parameter " + std::to_string(index) + " out of range in: " + sql_);
}

void PgCursor::bind_int(int index, long long value) {
  slot(index);
  auto i = static_cast<std::size_t>(index - 1);
  values_[i] = std::to_string(value);
  nulls_[i] = 0;
  types_[i] = kInt8Oid;
}

void PgCursor::bind_text(int index, std::string_view value) {
  slot(index);
  auto i = static_cast<std::size_t>(index - 1);
  values_[i].assign(value);
  nulls_[i] = 0;
  types_[i] = kTextOid;
}

void PgCursor::bind_null(int index, ParamType type) {
  slot(index);
  auto i = static_cast<std::size_t>(index - 1);
  nulls_[i] = 1;
  types_[i] = type == ParamType::Int ? kInt8Oid : type == ParamType::Text ? kTextOid : 0;
}

void PgCursor::execute() {
  auto it = statements_.find(types_);
  if (it == statements_.end()) {
    std::string name = connection_.next_statement_name();
    PGresult* r = PQprepare(connection_.raw(), name.c_str(), sql_.c_str(), params_, types_.data());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) connection_.fail(r);
    PQclear(r);
    it = statements_.emplace(types_, std::move(name)).first;
  }
  std::vector<const char*> values(static_cast<std::size_t>(params_));
  std::vector<int> lengths(static_cast<std::size_t>(params_));
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = nulls_[i] ? nullptr : values_[i].c_str();
    lengths[i] = static_cast<int>(values_[i].size());
  }
  if (result_) PQclear(result_);
  result_ = PQexecPrepared(connection_.raw(), it->second.c_str(), params_, values.data(), lengths.data(), nullptr, 0);
  auto status = PQresultStatus(result_);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    PGresult* failed = result_;
    result_ = nullptr;
    connection_.fail(failed);
  }
  rows_ = PQntuples(result_);
  row_ = -1;
}

bool PgCursor::next() {
  if (!result_) execute();
  return ++row_ < rows_;
}

long long PgCursor::run() {
  if (!result_) execute();
  const char* affected = PQcmdTuples(result_);
  return affected && *affected ? std::atoll(affected) : 0;
}

long long PgCursor::int64(int column) const {
  const char* v = PQgetvalue(result_, row_, column);
  long long out = 0;
  std::string_view text(v, static_cast<std::size_t>(PQgetlength(result_, row_, column)));
  if (text == "t") return 1;  // a boolean column read as a number
  if (text == "f") return 0;
  std::from_chars(text.data(), text.data() + text.size(), out);
  return out;
}

std::string PgCursor::text(int column) const {
  return std::string(PQgetvalue(result_, row_, column), static_cast<std::size_t>(PQgetlength(result_, row_, column)));
}

bool PgCursor::is_null(int column) const { return PQgetisnull(result_, row_, column) == 1; }

void PgCursor::reset() {
  if (result_) PQclear(result_);
  result_ = nullptr;
  row_ = -1;
  rows_ = 0;
  nulls_.assign(nulls_.size(), 1);
  types_.assign(types_.size(), 0);
}

// --- connection ------------------------------------------------------------------------------

PgConnection::PgConnection(const std::string& url, const std::string& schema, const std::string& application_name) {
  const char* keys[] = {"dbname", "application_name", "connect_timeout", nullptr};
  const char* values[] = {url.c_str(), application_name.c_str(), "5", nullptr};
  // expand_dbname: the URI is the dbname; later keys fill what it does not set.
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    std::string message = conn_ ? PQerrorMessage(conn_) : "out of memory";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    throw StorageError(ErrorKind::Unavailable, "08006", "postgresql: cannot connect: " + message);
  }
  exec("SET search_path TO " + quote_identifier(schema));
}

PgConnection::~PgConnection() {
  cache_.clear();
  if (conn_) PQfinish(conn_);
}

bool PgConnection::broken() const { return !conn_ || PQstatus(conn_) != CONNECTION_OK; }

void PgConnection::fail(PGresult* result) const {
  std::string state, message;
  if (result) {
    const char* s = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    if (s) state = s;
    const char* m = PQresultErrorMessage(result);
    if (m) message = m;
    PQclear(result);
  }
  if (message.empty()) message = PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  ErrorKind kind = classify_sqlstate(state);
  if (state.empty() && broken()) kind = ErrorKind::Unavailable;
  throw StorageError(kind, state.empty() ? "08006" : state, "postgresql: " + message);
}

void PgConnection::exec(std::string_view sql) {
  if (sql.starts_with("BEGIN")) notified_.clear();
  std::string text(sql);
  PGresult* r = PQexec(conn_, text.c_str());
  auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(r);
  PQclear(r);
}

void PgConnection::notify(const std::string& channel, const std::string& payload) {
  if (!notified_.emplace(channel, payload).second) return;
  query("SELECT pg_notify(?, ?)", channel, payload).run();
}

Cursor& PgConnection::prepare(std::string_view sql) {
  std::string key(sql);
  auto it = cache_.find(key);
  if (it != cache_.end()) return *it->second;
  auto cursor = std::make_unique<PgCursor>(*this, key);
  auto& ref = *cursor;
  cache_.emplace(std::move(key), std::move(cursor));
  return ref;
}

// --- database --------------------------------------------------------------------------------

PostgresDatabase::PostgresDatabase(std::string url, std::string schema, PostgresOptions options)
    : url_(std::move(url)), schema_(std::move(schema)), options_(std::move(options)) {
  retry_.max_attempts = options_.max_attempts;
  auto probe = connect();  // fail fast on a wrong URL or credentials
  description_ = describe_url(probe->raw(), schema_);
  release_reader(std::move(probe));
  for (int i = 0; i < std::max(1, options_.pool_size); ++i) workers_.emplace_back([this] { worker_loop(); });
}

PostgresDatabase::~PostgresDatabase() { stop(); }

std::unique_ptr<PgConnection> PostgresDatabase::connect() {
  return std::make_unique<PgConnection>(url_, schema_, options_.application_name);
}

void PostgresDatabase::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
  if (listener_.joinable()) listener_.join();
  std::lock_guard lock(readers_mutex_);
  readers_.clear();
}

void PostgresDatabase::migrate(const std::vector<Migration>& migrations) {
  auto c = connect();
  for (int attempt = 1;; ++attempt) {
    try {
      c->exec("BEGIN");
      // N replicas may start at once: one migrates, the others wait and then find nothing to do.
      c->query("SELECT pg_advisory_xact_lock(hashtext(?))", "agentlancer.migrate." + schema_).run();
      c->exec("CREATE SCHEMA IF NOT EXISTS " + quote_identifier(schema_));
      c->exec("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
      long long current = 0;
      {
        auto q = c->query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
        if (q.next()) current = q.int64(0);
      }
      for (const auto& m : migrations) {
        if (m.version <= current) continue;
        c->exec(m.postgres.empty() ? postgres_ddl(m.sql) : m.postgres);
        c->query("INSERT INTO schema_migrations(version) VALUES (?)", m.version).run();
      }
      c->exec("COMMIT");
      return;
    } catch (const StorageError& e) {
      try {
        if (!c->broken()) c->exec("ROLLBACK");
      } catch (...) {
      }
      if (!retry_.should_retry(e, attempt, false)) throw;
      if (c->broken()) c = connect();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

void PostgresDatabase::submit(Work work, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      if (done) done(std::make_exception_ptr(StorageError(ErrorKind::Unavailable, "57P01", "database is shutting down")));
      return;
    }
    queue_.push_back({std::move(work), std::move(done)});
  }
  cv_.notify_one();
}

std::size_t PostgresDatabase::pending_writes() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

std::exception_ptr PostgresDatabase::run_unit(std::unique_ptr<PgConnection>& connection, const Work& work) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  for (int attempt = 1;; ++attempt) {
    bool commit_sent = false;
    try {
      if (!connection || connection->broken()) connection = connect();
      connection->exec("BEGIN");
      work(*connection);
      commit_sent = true;
      connection->exec("COMMIT");
      return nullptr;
    } catch (const StorageError& e) {
      if (connection && !connection->broken()) {
        try {
          connection->exec("ROLLBACK");
        } catch (...) {
        }
      }
      if (!retry_.should_retry(e, attempt, commit_sent)) return std::current_exception();
      ++retries_;
      std::this_thread::sleep_for(retry_.backoff(attempt, std::uniform_real_distribution<double>(0, 1)(random)));
    } catch (...) {
      if (connection && !connection->broken()) {
        try {
          connection->exec("ROLLBACK");
        } catch (...) {
        }
      }
      return std::current_exception();
    }
  }
}

void PostgresDatabase::worker_loop() {
  std::unique_ptr<PgConnection> connection;
  auto steady_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  for (;;) {
    Item item;
    bool probe = false;
    {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || !queue_.empty(); })) {
        // Idle for a second: one worker checks the server for healthy() (readiness).
        long long last = last_probe_ms_.load(), now = steady_ms();
        probe = now - last >= 1000 && last_probe_ms_.compare_exchange_strong(last, now);
        if (!probe) continue;
      } else {
        if (queue_.empty()) return;  // stopping, and every queued unit has run
        item = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    if (probe) {
      try {
        if (!connection || connection->broken()) connection = connect();
        connection->exec("SELECT 1");
        healthy_ = true;
      } catch (const std::exception&) {
        healthy_ = false;
        connection.reset();
      }
      continue;
    }
    std::exception_ptr error = run_unit(connection, item.work);
    if (!error) {
      healthy_ = true;
      last_probe_ms_ = steady_ms();
      run_commit_listeners();
    } else {
      try {
        std::rethrow_exception(error);
      } catch (const StorageError& e) {
        if (e.kind == ErrorKind::Unavailable) healthy_ = false;
      } catch (...) {
      }
    }
    if (item.done) item.done(error);
  }
}

std::unique_ptr<PgConnection> PostgresDatabase::acquire_reader() {
  {
    std::lock_guard lock(readers_mutex_);
    if (!readers_.empty()) {
      auto c = std::move(readers_.back());
      readers_.pop_back();
      return c;
    }
  }
  return connect();
}

void PostgresDatabase::release_reader(std::unique_ptr<PgConnection> connection) {
  if (connection->broken()) return;
  std::lock_guard lock(readers_mutex_);
  if (readers_.size() < static_cast<std::size_t>(std::max(2, options_.pool_size))) readers_.push_back(std::move(connection));
}

void PostgresDatabase::with_reader(const std::function<void(Connection&)>& f, bool snapshot) {
  for (int attempt = 1;; ++attempt) {
    auto connection = acquire_reader();
    try {
      if (snapshot) connection->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      f(*connection);
      if (snapshot) connection->exec("COMMIT");
      release_reader(std::move(connection));
      return;
    } catch (const StorageError& e) {
      bool broken = connection->broken();
      if (!broken && snapshot) {
        try {
          connection->exec("ROLLBACK");
        } catch (...) {
        }
      }
      if (!broken) release_reader(std::move(connection));
      // A pooled connection the server closed (restart, idle timeout): one fresh try.
      if (!(broken && e.kind == ErrorKind::Unavailable && attempt == 1)) throw;
    } catch (...) {
      if (snapshot && !connection->broken()) {
        try {
          connection->exec("ROLLBACK");
        } catch (...) {
        }
      }
      if (!connection->broken()) release_reader(std::move(connection));
      throw;
    }
  }
}

void PostgresDatabase::listen(const std::string& channel, std::function<void(const std::string&)> on_message,
                              std::function<void()> on_gap) {
  std::lock_guard lock(listeners_mutex_);
  listeners_by_channel_.push_back({channel, std::move(on_message), std::move(on_gap)});
  if (!listener_.joinable()) listener_ = std::thread([this] { listener_loop(); });
}

// One connection LISTENs on every channel (a channel added later is LISTENed on the next turn);
// notifications arrive in commit order. A lost connection is re-established (with backoff) and
// each listener told of the gap.
void PostgresDatabase::listener_loop() {
  std::unique_ptr<PgConnection> c;
  bool had_connection = false;
  std::size_t listening = 0;  // listeners whose channel this connection LISTENs on
  bool gap = false;
  auto stopping = [this] {
    std::lock_guard lock(mutex_);
    return stopping_;
  };
  auto listeners = [this] {
    std::lock_guard lock(listeners_mutex_);
    return listeners_by_channel_;
  };
  while (!stopping()) {
    if (!c || c->broken()) {
      try {
        c = connect();
        listening = 0;
        gap = had_connection;  // told once LISTEN is in place again, so nothing falls in between
        had_connection = true;
      } catch (const std::exception& e) {
        log::warn("postgresql listener cannot connect", {{"schema", schema_}, {"what", e.what()}});
        c.reset();
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
    }
    try {
      auto all = listeners();
      for (; listening < all.size(); ++listening) c->exec("LISTEN " + quote_identifier(all[listening].channel));
      if (gap)
        for (const auto& l : all)
          if (l.on_gap) l.on_gap();
      gap = false;
    } catch (const std::exception& e) {
      log::warn("postgresql listener cannot LISTEN", {{"schema", schema_}, {"what", e.what()}});
      c.reset();
      continue;
    }
    // poll, not select: a process with many sockets open (the notifier's) may get a descriptor
    // above FD_SETSIZE when it reconnects.
    pollfd readable{PQsocket(c->raw()), POLLIN, 0};
    int ready = ::poll(&readable, 1, 200);  // wake to notice stop()
    if (ready < 0 && errno != EINTR) {
      c.reset();
      continue;
    }
    if (ready <= 0) continue;
    if (PQconsumeInput(c->raw()) == 0) {
      c.reset();  // the connection is gone: reconnect, then report the gap
      continue;
    }
    while (PGnotify* n = PQnotifies(c->raw())) {
      std::string channel = n->relname, payload = n->extra ? n->extra : "";
      PQfreemem(n);
      for (const auto& l : listeners()) {
        if (l.channel != channel) continue;
        try {
          l.on_message(payload);
        } catch (const std::exception& e) {
          log::error("notification handler failed", {{"channel", channel}, {"what", e.what()}});
        }
      }
    }
  }
}

bool PostgresDatabase::healthy() { return healthy_.load(); }

namespace {
void admin_exec(const std::string& admin_url, const std::string& sql) {
  PgConnection c(admin_url, "public", "agentlancer-admin");
  c.exec(sql);
}
}  // namespace

void create_postgres_database(const std::string& admin_url, const std::string& name) {
  admin_exec(admin_url, "CREATE DATABASE " + quote_identifier(name));
}

void drop_postgres_database(const std::string& admin_url, const std::string& name) {
  admin_exec(admin_url, "DROP DATABASE IF EXISTS " + quote_identifier(name) + " WITH (FORCE)");
}

std::string postgres_url_for(const std::string& admin_url, const std::string& name) {
  auto scheme = admin_url.find("://");
  auto path = admin_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  auto query = admin_url.find('?');
  std::string base = admin_url.substr(0, path == std::string::npos ? (query == std::string::npos ? admin_url.size() : query) : path);
  std::string rest = query == std::string::npos ? "" : admin_url.substr(query);
  return base + "/" + name + rest;
}

}  // namespace al::storage
