#include "common/storage/sqlite.hpp"

#include <future>

#include "common/log/log.hpp"

namespace al::storage {

Query::~Query() {
  if (stmt_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

bool Query::next() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  connection_->fail(rc);
}

int Query::run() {
  while (next()) {
  }
  return sqlite3_changes(connection_->raw());
}

long long Query::int64(int column) const { return sqlite3_column_int64(stmt_, column); }
std::string Query::text(int column) const {
  const unsigned char* t = sqlite3_column_text(stmt_, column);
  if (!t) return {};
  return std::string(reinterpret_cast<const char*>(t),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}
std::optional<std::string> Query::opt_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}
std::optional<long long> Query::opt_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return int64(column);
}
bool Query::is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

void Query::bind_int(int index, long long value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) connection_->fail(rc);
}
void Query::bind(int index, std::string_view value) {
  int rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) connection_->fail(rc);
}
void Query::bind(int index, std::nullptr_t) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) connection_->fail(rc);
}

Connection::Connection(const std::string& path, bool read_only, int busy_timeout_ms,
                       const std::string& synchronous) {
  int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
              SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw SqliteError(rc, "cannot open " + path + ": " + message);
  }
  sqlite3_busy_timeout(db_, busy_timeout_ms);
  sqlite3_extended_result_codes(db_, 1);
  if (!read_only) {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=" + synchronous);
  }
  exec("PRAGMA foreign_keys=ON");
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

void Connection::fail(int code) const {
  throw SqliteError(code, std::string("sqlite: ") + sqlite3_errmsg(db_));
}

void Connection::exec(std::string_view sql) {
  std::string text(sql);
  char* error = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw SqliteError(rc, "sqlite: " + message);
  }
}

sqlite3_stmt* Connection::prepare(std::string_view sql) {
  std::string key(sql);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()), SQLITE_PREPARE_PERSISTENT,
                              &stmt, nullptr);
  if (rc != SQLITE_OK) fail(rc);
  cache_.emplace(std::move(key), stmt);
  return stmt;
}

Database::Database(std::string path, DatabaseOptions options)
    : path_(std::move(path)), options_(options) {
  writer_ = std::make_unique<Connection>(path_, false, options_.busy_timeout_ms, options_.synchronous);
  // Checkpoints run beside the writer (PASSIVE never blocks it), not inside a commit.
  writer_->exec("PRAGMA wal_autocheckpoint=0");
  thread_ = std::thread([this] { writer_loop(); });
  checkpointer_ = std::thread([this] { checkpoint_loop(); });
}

void Database::checkpoint_loop() {
  Connection c(path_, false, options_.busy_timeout_ms, options_.synchronous);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    cv_checkpoint_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping_; });
    lock.unlock();
    try {
      c.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (const std::exception& e) {
      log::warn("checkpoint failed", {{"path", path_}, {"what", e.what()}});
    }
    lock.lock();
  }
  lock.unlock();
  try {
    c.exec("PRAGMA wal_checkpoint(TRUNCATE)");  // leave a small WAL behind on a clean stop
  } catch (const std::exception&) {
  }
}

Database::~Database() { stop(); }

void Database::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  cv_checkpoint_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (checkpointer_.joinable()) checkpointer_.join();
}

void Database::migrate(const std::vector<Migration>& migrations) {
  write_sync([&](Connection& c) {
    c.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))");
    long long current = 0;
    {
      auto q = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      if (q.next()) current = q.int64(0);
    }
    for (const auto& m : migrations) {
      if (m.version <= current) continue;
      c.exec(m.sql);
      c.query("INSERT INTO schema_migrations(version) VALUES (?)", m.version).run();
    }
  });
}

void Database::write(Work work, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      if (done) done(std::make_exception_ptr(std::runtime_error("database is shutting down")));
      return;
    }
    queue_.push_back({std::move(work), std::move(done)});
  }
  cv_.notify_one();
}

void Database::write_sync(Work work) {
  std::promise<void> promise;
  auto future = promise.get_future();
  write(std::move(work), [&promise](std::exception_ptr error) {
    if (error) promise.set_exception(error); else promise.set_value();
  });
  future.get();
}

std::size_t Database::pending_writes() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Database::writer_loop() {
  for (;;) {
    std::vector<Item> batch;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<std::exception_ptr> results(batch.size());
    std::exception_ptr commit_error;
    try {
      writer_->query("BEGIN IMMEDIATE").run();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        writer_->query("SAVEPOINT item").run();
        try {
          batch[i].work(*writer_);
          writer_->query("RELEASE item").run();
        } catch (...) {
          results[i] = std::current_exception();
          writer_->query("ROLLBACK TO item").run();
          writer_->query("RELEASE item").run();
        }
      }
      writer_->query("COMMIT").run();
    } catch (...) {
      commit_error = std::current_exception();
      try {
        writer_->exec("ROLLBACK");
      } catch (...) {
      }
      log::error("database commit failed", {{"path", path_}});
    }
    // Listeners first (the outbox relay starts publishing at once), then the callers: a caller
    // that has heard "committed" never sees a listener run for that commit afterwards.
    if (!commit_error) {
      std::lock_guard lock(listeners_mutex_);
      for (auto& [id, listener] : listeners_) listener();
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].done) batch[i].done(commit_error ? commit_error : results[i]);
    }
  }
}

std::unique_ptr<Connection> Database::acquire_reader() {
  {
    std::lock_guard lock(readers_mutex_);
    if (!readers_.empty()) {
      auto c = std::move(readers_.back());
      readers_.pop_back();
      return c;
    }
  }
  return std::make_unique<Connection>(path_, true, options_.busy_timeout_ms, options_.synchronous);
}

void Database::release_reader(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(readers_mutex_);
  readers_.push_back(std::move(connection));
}

int Database::add_commit_listener(std::function<void()> listener) {
  std::lock_guard lock(listeners_mutex_);
  int id = next_listener_id_++;
  listeners_.emplace_back(id, std::move(listener));
  return id;
}

void Database::remove_commit_listener(int id) {
  std::lock_guard lock(listeners_mutex_);
  std::erase_if(listeners_, [id](const auto& entry) { return entry.first == id; });
}

bool Database::healthy() {
  try {
    return read([](Connection& c) {
      auto q = c.query("SELECT 1");
      return q.next() && q.int64(0) == 1;
    });
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace al::storage
