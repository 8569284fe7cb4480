#pragma once
#include <sqlite3.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace al::storage {

struct SqliteError : std::runtime_error {
  SqliteError(int code, const std::string& message) : std::runtime_error(message), code(code) {}
  bool is_constraint() const { return (code & 0xff) == SQLITE_CONSTRAINT; }
  int code;
};

class Connection;

// A prepared statement in use: bound on creation, reset on destruction.
class Query {
 public:
  Query(Connection& connection, sqlite3_stmt* stmt) : connection_(&connection), stmt_(stmt) {}
  Query(Query&& other) noexcept : connection_(other.connection_), stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Query(const Query&) = delete;
  ~Query();

  bool next();   // steps; true while there is a row
  int run();     // steps to completion; returns the number of changed rows
  long long int64(int column) const;
  std::string text(int column) const;
  std::optional<std::string> opt_text(int column) const;
  std::optional<long long> opt_int64(int column) const;
  bool is_null(int column) const;

  template <class T>
    requires std::is_integral_v<T>
  void bind(int index, T value) {
    bind_int(index, static_cast<long long>(value));
  }
  void bind(int index, std::string_view value);
  void bind(int index, const std::string& value) { bind(index, std::string_view(value)); }
  void bind(int index, const char* value) { bind(index, std::string_view(value)); }
  void bind(int index, std::nullptr_t);
  template <class T>
  void bind(int index, const std::optional<T>& value) {
    if (value) bind(index, *value); else bind(index, nullptr);
  }

 private:
  void bind_int(int index, long long value);
  Connection* connection_;
  sqlite3_stmt* stmt_;
};

class Connection {
 public:
  Connection(const std::string& path, bool read_only, int busy_timeout_ms, const std::string& synchronous);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void exec(std::string_view sql);
  template <class... Args>
  Query query(std::string_view sql, const Args&... args) {
    Query q(*this, prepare(sql));
    int index = 1;
    (q.bind(index++, args), ...);
    return q;
  }
  long long last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  sqlite3* raw() const { return db_; }
  [[noreturn]] void fail(int code) const;

 private:
  sqlite3_stmt* prepare(std::string_view sql);
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

struct Migration {
  int version;
  std::string sql;
};

struct DatabaseOptions {
  std::string synchronous = "FULL";  // FULL: a commit is on disk before the client hears of it
  int busy_timeout_ms = 5000;
  std::size_t max_batch = 512;       // writes grouped into one transaction (group commit)
};

// One SQLite database file in WAL mode: a single writer thread that groups concurrent write
// transactions into one commit (each in its own savepoint, so one failing write does not undo
// the others), plus a pool of read connections.
class Database {
 public:
  using Work = std::function<void(Connection&)>;
  using Done = std::function<void(std::exception_ptr)>;

  Database(std::string path, DatabaseOptions options = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void migrate(const std::vector<Migration>& migrations);
  // Queues `work`; `done` runs on the writer thread after the commit (nullptr) or with the error.
  void write(Work work, Done done);
  void write_sync(Work work);  // blocks until committed; rethrows

  template <class F>
  auto read(F&& f) {
    auto connection = acquire_reader();
    struct Return {
      Database* db;
      std::unique_ptr<Connection>* c;
      ~Return() { db->release_reader(std::move(*c)); }
    } ret{this, &connection};
    return f(*connection);
  }

  // Listeners run on the writer thread after each commit. remove_commit_listener returns only
  // once the listener can no longer be running, so its owner may then be destroyed.
  int add_commit_listener(std::function<void()> listener);
  void remove_commit_listener(int id);
  bool healthy();
  const std::string& path() const { return path_; }
  std::size_t pending_writes();
  void stop();

 private:
  struct Item {
    Work work;
    Done done;
  };
  void writer_loop();
  void checkpoint_loop();
  std::unique_ptr<Connection> acquire_reader();
  void release_reader(std::unique_ptr<Connection> connection);

  std::string path_;
  DatabaseOptions options_;
  std::unique_ptr<Connection> writer_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::condition_variable cv_checkpoint_;
  std::thread checkpointer_;
  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<Connection>> readers_;
  std::mutex listeners_mutex_;
  std::vector<std::pair<int, std::function<void()>>> listeners_;
  int next_listener_id_ = 1;
};

}  // namespace al::storage
