#include "common/storage/sqlite.hpp"

#include <cstring>
#include <future>

#include "common/log/log.hpp"

namespace al::storage {

namespace {
ErrorKind kind_of(int code) {
  switch (code & 0xff) {
    case SQLITE_CONSTRAINT: return ErrorKind::Constraint;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ErrorKind::Retryable;
    default: return ErrorKind::Other;
  }
}

// strpos(haystack, needle), greatest(…), least(…): PostgreSQL's names, so one SQL text serves both.
void sql_strpos(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  std::string_view haystack(reinterpret_cast<const char*>(sqlite3_value_text(argv[0])),
                            static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
  std::string_view needle(reinterpret_cast<const char*>(sqlite3_value_text(argv[1])),
                          static_cast<std::size_t>(sqlite3_value_bytes(argv[1])));
  auto at = haystack.find(needle);
  sqlite3_result_int64(ctx, at == std::string_view::npos ? 0 : static_cast<long long>(at) + 1);
}

// Like PostgreSQL: NULL arguments are ignored; NULL only when all are.
template <bool Greatest>
void sql_extreme(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  sqlite3_value* best = nullptr;
  for (int i = 0; i < argc; ++i) {
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) continue;
    if (!best) {
      best = argv[i];
      continue;
    }
    bool better;
    if (sqlite3_value_type(argv[i]) == SQLITE_INTEGER && sqlite3_value_type(best) == SQLITE_INTEGER) {
      better = Greatest ? sqlite3_value_int64(argv[i]) > sqlite3_value_int64(best)
                        : sqlite3_value_int64(argv[i]) < sqlite3_value_int64(best);
    } else {
      int cmp = std::strcmp(reinterpret_cast<const char*>(sqlite3_value_text(argv[i])),
                            reinterpret_cast<const char*>(sqlite3_value_text(best)));
      better = Greatest ? cmp > 0 : cmp < 0;
    }
    if (better) best = argv[i];
  }
  if (best) sqlite3_result_value(ctx, best);
  else sqlite3_result_null(ctx);
}
}  // namespace

SqliteError::SqliteError(int code, const std::string& message)
    : StorageError(kind_of(code), std::to_string(code), message), result_code(code) {}

bool SqliteCursor::next() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  connection_.fail(rc);
}

long long SqliteCursor::run() {
  while (next()) {
  }
  return sqlite3_changes(connection_.raw());
}

std::string SqliteCursor::text(int column) const {
  const unsigned char* t = sqlite3_column_text(stmt_, column);
  if (!t) return {};
  return std::string(reinterpret_cast<const char*>(t),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

void SqliteCursor::bind_int(int index, long long value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) connection_.fail(rc);
}
void SqliteCursor::bind_text(int index, std::string_view value) {
  int rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) connection_.fail(rc);
}
void SqliteCursor::bind_null(int index, ParamType) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) connection_.fail(rc);
}

SqliteConnection::SqliteConnection(const std::string& path, bool read_only, int busy_timeout_ms,
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
  constexpr int kFlags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
  sqlite3_create_function_v2(db_, "strpos", 2, kFlags, nullptr, sql_strpos, nullptr, nullptr, nullptr);
  sqlite3_create_function_v2(db_, "greatest", -1, kFlags, nullptr, sql_extreme<true>, nullptr, nullptr, nullptr);
  sqlite3_create_function_v2(db_, "least", -1, kFlags, nullptr, sql_extreme<false>, nullptr, nullptr, nullptr);
  if (!read_only) {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=" + synchronous);
  }
  exec("PRAGMA foreign_keys=ON");
}

SqliteConnection::~SqliteConnection() {
  cache_.clear();  // statements are finalized before the connection closes
  sqlite3_close(db_);
}

void SqliteConnection::fail(int code) const {
  throw SqliteError(code, std::string("sqlite: ") + sqlite3_errmsg(db_));
}

void SqliteConnection::exec(std::string_view sql) {
  std::string text(sql);
  char* error = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw SqliteError(rc, "sqlite: " + message);
  }
}

Cursor& SqliteConnection::prepare(std::string_view sql) {
  std::string key(sql);
  auto it = cache_.find(key);
  if (it != cache_.end()) return *it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()), SQLITE_PREPARE_PERSISTENT,
                              &stmt, nullptr);
  if (rc != SQLITE_OK) fail(rc);
  auto cursor = std::make_unique<SqliteCursor>(*this, stmt);
  auto& ref = *cursor;
  cache_.emplace(std::move(key), std::move(cursor));
  return ref;
}

SqliteDatabase::SqliteDatabase(std::string path, DatabaseOptions options)
    : path_(std::move(path)), options_(options) {
  writer_ = std::make_unique<SqliteConnection>(path_, false, options_.busy_timeout_ms, options_.synchronous);
  // Checkpoints run beside the writer (PASSIVE never blocks it), not inside a commit.
  writer_->exec("PRAGMA wal_autocheckpoint=0");
  thread_ = std::thread([this] { writer_loop(); });
  checkpointer_ = std::thread([this] { checkpoint_loop(); });
}

void SqliteDatabase::checkpoint_loop() {
  SqliteConnection c(path_, false, options_.busy_timeout_ms, options_.synchronous);
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

SqliteDatabase::~SqliteDatabase() { stop(); }

void SqliteDatabase::stop() {
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

void SqliteDatabase::migrate(const std::vector<Migration>& migrations) {
  write_sync([&](Connection& c) {
    c.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))");
    long long current = 0;
    {
      auto q = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      if (q.next()) current = q.int64(0);
    }
    for (const auto& m : migrations) {
      if (m.version <= current) continue;
      c.exec(m.sql);  // written for SQLite
      c.query("INSERT INTO schema_migrations(version) VALUES (?)", m.version).run();
    }
  });
}

void SqliteDatabase::submit(Work work, Done done) {
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

std::size_t SqliteDatabase::pending_writes() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void SqliteDatabase::writer_loop() {
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
    commit_failing_ = commit_error != nullptr;
    if (!commit_error) {
      run_commit_listeners();
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].done) batch[i].done(commit_error ? commit_error : results[i]);
    }
  }
}

void SqliteDatabase::with_reader(const std::function<void(Connection&)>& f, bool snapshot) {
  auto connection = acquire_reader();
  struct Return {
    SqliteDatabase* db;
    std::unique_ptr<SqliteConnection>* c;
    ~Return() { db->release_reader(std::move(*c)); }
  } ret{this, &connection};
  if (!snapshot) {
    f(*connection);
    return;
  }
  connection->exec("BEGIN");
  try {
    f(*connection);
  } catch (...) {
    try {
      connection->exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
  connection->exec("COMMIT");
}

std::unique_ptr<SqliteConnection> SqliteDatabase::acquire_reader() {
  {
    std::lock_guard lock(readers_mutex_);
    if (!readers_.empty()) {
      auto c = std::move(readers_.back());
      readers_.pop_back();
      return c;
    }
  }
  return std::make_unique<SqliteConnection>(path_, true, options_.busy_timeout_ms, options_.synchronous);
}

void SqliteDatabase::release_reader(std::unique_ptr<SqliteConnection> connection) {
  std::lock_guard lock(readers_mutex_);
  readers_.push_back(std::move(connection));
}

// From memory, never a statement on the caller's (an I/O) thread: the writer runs and its last
// commit went through (a full disk or an I/O error makes commits fail until it clears).
bool SqliteDatabase::healthy() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
  }
  return !commit_failing_.load();
}

}  // namespace al::storage
