#pragma once
// The storage-neutral unit of work every service writes through. Two implementations live beside
// it: SQLite (the embedded default, `sqlite.hpp`) and PostgreSQL via libpq (`postgres.hpp`);
// `open_database` picks one from `storage.url`. Nothing above `storage/` names either.
//
// SQL given to `Connection::query` is written once for both: `?` (or `?N`) placeholders, and the
// subset both engines share (`ON CONFLICT … DO NOTHING/UPDATE`, `RETURNING`, `strpos`, `greatest`,
// `least` — the SQLite connection registers the last three). Booleans are stored as integers.
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace al::storage {

enum class Dialect { Sqlite, Postgres };

// What a failed statement means for its unit of work.
enum class ErrorKind {
  Constraint,   // a unique/foreign-key/check rule refused the change: the domain's conflict
  Retryable,    // serialization failure, deadlock, lost version check: run the whole unit again
  Unavailable,  // the database cannot be reached (connection lost, shutting down)
  Other,
};

struct StorageError : std::runtime_error {
  StorageError(ErrorKind kind, std::string code, const std::string& message)
      : std::runtime_error(message), kind(kind), code(std::move(code)) {}
  bool is_constraint() const { return kind == ErrorKind::Constraint; }
  bool is_retryable() const { return kind == ErrorKind::Retryable; }
  ErrorKind kind;
  std::string code;  // SQLSTATE on PostgreSQL, the extended result code on SQLite
};

// Thrown by store code when a version-checked update changed no row: another writer got there
// first. The unit of work is run again from the start and sees that writer's result.
struct ConcurrentUpdate : StorageError {
  explicit ConcurrentUpdate(const std::string& what)
      : StorageError(ErrorKind::Retryable, "version", "concurrent update: " + what) {}
};

// Runs one statement of a unit of work whose unique rule may be taken by a concurrent writer
// (a client operation, a live offer, a tx hash): the violation means "another writer got there
// first", so the whole unit is run again and sees that writer's result.
template <class F>
auto rerun_if_taken(std::string_view what, F&& statement) {
  try {
    return statement();
  } catch (const StorageError& e) {
    if (e.is_constraint()) throw ConcurrentUpdate(std::string(what) + ": " + e.what());
    throw;
  }
}

// The versions of the aggregates a unit of work loaded, for version-checked saves:
// `UPDATE … SET version = new WHERE id = ? AND version = expected(id, new)` changes one row, or
// another writer changed it since (`saved` then throws ConcurrentUpdate: the unit is run again).
template <class Key>
class LoadedVersions {
 public:
  void loaded(const Key& key, long long version) { versions_[key] = version; }
  // The version read in this unit, else the one before `new_version` (an aggregate saved
  // without being loaded here, e.g. one built by the caller from a read).
  long long expected(const Key& key, long long new_version) const {
    auto it = versions_.find(key);
    return it == versions_.end() ? new_version - 1 : it->second;
  }
  void saved(const Key& key, long long changed_rows, long long new_version, std::string_view what) {
    if (changed_rows != 1) throw ConcurrentUpdate(std::string(what) + " was changed by another writer");
    versions_[key] = new_version;
  }

 private:
  std::unordered_map<Key, long long> versions_;
};

// Milliseconds since the epoch by the wall clock: operational time that replicas compare with
// each other (leases), never the domain's injectable clock.
long long wall_clock_ms();

enum class ParamType { Unknown, Int, Text };

// One prepared statement of a connection (owned and cached by it), bound then stepped.
class Cursor {
 public:
  virtual ~Cursor() = default;
  virtual void bind_int(int index, long long value) = 0;
  virtual void bind_text(int index, std::string_view value) = 0;
  virtual void bind_null(int index, ParamType type) = 0;
  virtual bool next() = 0;       // executes on first call; true while there is a row
  virtual long long run() = 0;   // executes to completion; the number of changed rows
  virtual long long int64(int column) const = 0;
  virtual std::string text(int column) const = 0;
  virtual bool is_null(int column) const = 0;
  virtual void reset() = 0;      // ready for the next use (bindings cleared)
};

template <class T>
constexpr ParamType param_type_of() {
  if constexpr (std::is_integral_v<T>) return ParamType::Int;
  else return ParamType::Text;
}

// A statement in use: bound on creation, reset on destruction. Columns are 0-based.
class Query {
 public:
  explicit Query(Cursor& cursor) : cursor_(&cursor) {}
  Query(Query&& other) noexcept : cursor_(other.cursor_) { other.cursor_ = nullptr; }
  Query(const Query&) = delete;
  ~Query() {
    if (cursor_) cursor_->reset();
  }

  bool next() { return cursor_->next(); }
  long long run() { return cursor_->run(); }
  long long int64(int column) const { return cursor_->int64(column); }
  std::string text(int column) const { return cursor_->text(column); }
  std::optional<std::string> opt_text(int column) const {
    if (is_null(column)) return std::nullopt;
    return text(column);
  }
  std::optional<long long> opt_int64(int column) const {
    if (is_null(column)) return std::nullopt;
    return int64(column);
  }
  bool is_null(int column) const { return cursor_->is_null(column); }

  template <class T>
    requires std::is_integral_v<T>
  void bind(int index, T value) {
    cursor_->bind_int(index, static_cast<long long>(value));
  }
  void bind(int index, std::string_view value) { cursor_->bind_text(index, value); }
  void bind(int index, const std::string& value) { cursor_->bind_text(index, value); }
  void bind(int index, const char* value) { cursor_->bind_text(index, value); }
  void bind(int index, std::nullptr_t) { cursor_->bind_null(index, ParamType::Unknown); }
  template <class T>
  void bind(int index, const std::optional<T>& value) {
    // A typed NULL: PostgreSQL must know a parameter's type even when it is NULL.
    if (value) bind(index, *value);
    else cursor_->bind_null(index, param_type_of<T>());
  }

 private:
  Cursor* cursor_;
};

// One database session inside a unit of work (or a read).
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void exec(std::string_view sql) = 0;  // no parameters, no rows (DDL, SAVEPOINT …)
  template <class... Args>
  Query query(std::string_view sql, const Args&... args) {
    Query q(prepare(sql));
    int index = 1;
    (q.bind(index++, args), ...);
    return q;
  }
  virtual Dialect dialect() const = 0;
  // Tells the listeners of `channel` in every process sharing this database, once the unit of
  // work commits (PostgreSQL NOTIFY). SQLite has one process, which learns of its own commits
  // directly: nothing to do there.
  virtual void notify(const std::string& channel, const std::string& payload) {}
  // Appended to a SELECT that loads an aggregate for change: a row lock on PostgreSQL (the
  // second writer waits, then reads the first one's result); SQLite has one writer already.
  const char* for_update() const { return dialect() == Dialect::Postgres ? " FOR UPDATE" : ""; }

 protected:
  virtual Cursor& prepare(std::string_view sql) = 0;
};

struct Migration {
  int version;
  // Written for SQLite; PostgreSQL runs it through `postgres_ddl` (INTEGER → BIGINT,
  // AUTOINCREMENT → identity, WITHOUT ROWID dropped) unless `postgres` is given.
  std::string sql;
  std::string postgres;
};

// A service's database. Writes are units of work: `work` runs inside one transaction (and may run
// again from the start when the database asks for a retry, so it must only touch state it resets);
// `done` runs once, after the commit (nullptr) or with the error — then nothing of it was kept —
// on the executor of the thread that called `write` (see CallerExecutor), never on the
// database's own threads.
class Database {
 public:
  using Work = std::function<void(Connection&)>;
  using Done = std::function<void(std::exception_ptr)>;
  virtual ~Database() = default;

  virtual void migrate(const std::vector<Migration>& migrations) = 0;
  void write(Work work, Done done);
  void write_sync(Work work);  // blocks until committed; rethrows (never on an executor's thread)

  // A read on a pooled connection: each statement sees committed data.
  template <class F>
  auto read(F&& f) {
    return run_read(std::forward<F>(f), false);
  }
  // A read whose statements all see one snapshot.
  template <class F>
  auto read_tx(F&& f) {
    return run_read(std::forward<F>(f), true);
  }

  // Listeners run after each commit of this process (on the committing thread).
  // remove_commit_listener returns only once the listener can no longer be running.
  int add_commit_listener(std::function<void()> listener);
  void remove_commit_listener(int id);
  virtual bool healthy() = 0;
  virtual std::size_t pending_writes() = 0;
  virtual void stop() = 0;
  virtual Dialect dialect() const = 0;
  virtual std::string describe() const = 0;  // for logs: a path or host/db/schema, no password

  // Calls `on_message` (on a thread of the database's) with each payload `notify`-ed on `channel`
  // by any process, in commit order; `on_gap` after the listening connection was lost and
  // re-established (messages may have been missed meanwhile). Called once per database, at start.
  // SQLite: never calls either.
  virtual void listen(const std::string& channel, std::function<void(const std::string&)> on_message,
                      std::function<void()> on_gap) {}

 protected:
  // Runs the unit of work; `done` may be called on the database's thread.
  virtual void submit(Work work, Done done) = 0;
  virtual void with_reader(const std::function<void(Connection&)>& f, bool snapshot) = 0;
  // Implementations call this after each commit, before telling the unit's caller.
  void run_commit_listeners();

 private:
  template <class F>
  auto run_read(F&& f, bool snapshot) {
    using R = std::invoke_result_t<F&, Connection&>;
    if constexpr (std::is_void_v<R>) {
      with_reader([&](Connection& c) { f(c); }, snapshot);
    } else {
      std::optional<R> out;
      with_reader([&](Connection& c) { out.emplace(f(c)); }, snapshot);
      return std::move(*out);
    }
  }

  std::mutex listeners_mutex_;
  std::vector<std::pair<int, std::function<void()>>> listeners_;
  int next_listener_id_ = 1;
};

struct StorageSettings {
  std::string url;        // empty: SQLite under data_dir; postgresql://… : PostgreSQL
  std::string data_dir;
  std::string synchronous = "FULL";  // SQLite
  int pool_size = 8;                 // PostgreSQL connections that run units of work
  int max_attempts = 10;             // PostgreSQL: runs of a unit of work that keeps conflicting
  // The services' in-memory read caches (jobs, threads, contracts). They learn only of this
  // process's commits, so they are for one process per service's data (storage.read_cache).
  bool read_cache = true;
};

// Opens the database of one service: `<data_dir>/<service>.db`, or on PostgreSQL the schema
// named after the service (`job-service` → `job_service`) in the database of `url`.
std::unique_ptr<Database> open_database(const StorageSettings& settings, const std::string& service);

// Rewrites `?`/`?N` placeholders as `$N` (outside quoted text).
std::string postgres_placeholders(std::string_view sql);
// The PostgreSQL form of SQLite DDL (see Migration).
std::string postgres_ddl(std::string_view sqlite_ddl);
// `job-service` → `job_service`.
std::string schema_name(const std::string& service);

// Tooling and tests: databases on the PostgreSQL server `admin_url` connects to.
void create_postgres_database(const std::string& admin_url, const std::string& name);
void drop_postgres_database(const std::string& admin_url, const std::string& name);  // WITH (FORCE)
// `admin_url` with its database replaced by `name` (query parameters kept).
std::string postgres_url_for(const std::string& admin_url, const std::string& name);

}  // namespace al::storage
