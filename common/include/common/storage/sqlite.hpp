#pragma once
#include <atomic>
// The embedded default: one SQLite file per service (see database.hpp for the interface).
#include <sqlite3.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/storage/database.hpp"

namespace al::storage {

struct SqliteError : StorageError {
  SqliteError(int code, const std::string& message);
  int result_code;
};

class SqliteConnection;

class SqliteCursor final : public Cursor {
 public:
  SqliteCursor(SqliteConnection& connection, sqlite3_stmt* stmt) : connection_(connection), stmt_(stmt) {}
  ~SqliteCursor() override { sqlite3_finalize(stmt_); }
  void bind_int(int index, long long value) override;
  void bind_text(int index, std::string_view value) override;
  void bind_null(int index, ParamType) override;
  bool next() override;
  long long run() override;
  long long int64(int column) const override { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const override;
  bool is_null(int column) const override { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  void reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  SqliteConnection& connection_;
  sqlite3_stmt* stmt_;
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(const std::string& path, bool read_only, int busy_timeout_ms, const std::string& synchronous);
  ~SqliteConnection() override;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  void exec(std::string_view sql) override;
  Dialect dialect() const override { return Dialect::Sqlite; }
  sqlite3* raw() const { return db_; }
  [[noreturn]] void fail(int code) const;

 protected:
  Cursor& prepare(std::string_view sql) override;

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<SqliteCursor>> cache_;
};

struct DatabaseOptions {
  std::string synchronous = "FULL";  // FULL: a commit is on disk before the client hears of it
  int busy_timeout_ms = 5000;
  std::size_t max_batch = 512;       // writes grouped into one transaction (group commit)
};

// One SQLite database file in WAL mode: a single writer thread that groups concurrent write
// transactions into one commit (each in its own savepoint, so one failing write does not undo
// the others), plus a pool of read connections.
class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(std::string path, DatabaseOptions options = {});
  ~SqliteDatabase() override;

  void migrate(const std::vector<Migration>& migrations) override;
  // `done` is called on the writer thread (Database::write has bound it to the caller's executor).
  void submit(Work work, Done done) override;
  bool healthy() override;
  std::size_t pending_writes() override;
  void stop() override;
  Dialect dialect() const override { return Dialect::Sqlite; }
  std::string describe() const override { return path_; }
  const std::string& path() const { return path_; }

 protected:
  void with_reader(const std::function<void(Connection&)>& f, bool snapshot) override;

 private:
  struct Item {
    Work work;
    Done done;
  };
  void writer_loop();
  void checkpoint_loop();
  std::unique_ptr<SqliteConnection> acquire_reader();
  void release_reader(std::unique_ptr<SqliteConnection> connection);

  std::string path_;
  DatabaseOptions options_;
  std::unique_ptr<SqliteConnection> writer_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::atomic<bool> commit_failing_{false};  // the last group commit failed
  std::thread thread_;
  std::condition_variable cv_checkpoint_;
  std::thread checkpointer_;
  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<SqliteConnection>> readers_;
};

}  // namespace al::storage
