#pragma once
// PostgreSQL 15 through libpq (see database.hpp for the interface). Each unit of work is one
// READ COMMITTED transaction on a pooled connection; aggregates are loaded `FOR UPDATE` and
// version-checked, so concurrent writers — threads of this pool or other replicas — serialise on
// the rows they share. Serialization failures, deadlocks and lost version checks run the whole
// unit again (bounded, with jittered backoff).
#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "common/storage/database.hpp"

namespace al::storage {

// SQLSTATE → what it means for the unit of work (unit tested).
ErrorKind classify_sqlstate(std::string_view sqlstate);

// How long to wait before running a conflicting unit of work again: grows per attempt, with
// jitter in [0.5, 1) of the step so colliding writers spread out.
struct RetryPolicy {
  int max_attempts = 10;
  std::chrono::microseconds first{500};
  std::chrono::microseconds cap{50'000};
  bool should_retry(const StorageError& error, int attempt, bool commit_sent) const;
  std::chrono::microseconds backoff(int attempt, double unit_random) const;
};

struct PostgresOptions {
  int pool_size = 8;
  int max_attempts = 10;
  std::string application_name = "agentlancer";
};

class PgConnection;

class PgCursor final : public Cursor {
 public:
  PgCursor(PgConnection& connection, std::string sql);
  ~PgCursor() override;
  void bind_int(int index, long long value) override;
  void bind_text(int index, std::string_view value) override;
  void bind_null(int index, ParamType type) override;
  bool next() override;
  long long run() override;
  long long int64(int column) const override;
  std::string text(int column) const override;
  bool is_null(int column) const override;
  void reset() override;

 private:
  void execute();
  void slot(int index);
  PgConnection& connection_;
  std::string sql_;
  int params_ = 0;
  std::vector<std::string> values_;
  std::vector<char> nulls_;
  std::vector<unsigned int> types_;  // Oid
  std::map<std::vector<unsigned int>, std::string> statements_;  // by parameter types
  PGresult* result_ = nullptr;
  int row_ = -1;
  int rows_ = 0;
};

class PgConnection final : public Connection {
 public:
  PgConnection(const std::string& url, const std::string& schema, const std::string& application_name);
  ~PgConnection() override;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  void exec(std::string_view sql) override;
  Dialect dialect() const override { return Dialect::Postgres; }
  void notify(const std::string& channel, const std::string& payload) override;
  bool broken() const;
  PGconn* raw() const { return conn_; }
  // Throws the StorageError a failed result means (and clears it).
  [[noreturn]] void fail(PGresult* result) const;
  std::string next_statement_name() { return "s" + std::to_string(++statements_); }

 protected:
  Cursor& prepare(std::string_view sql) override;

 private:
  PGconn* conn_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<PgCursor>> cache_;
  long long statements_ = 0;
  // What this transaction already notified: PostgreSQL delivers one of each anyway, so a second
  // pg_notify would only cost a round trip.
  std::set<std::pair<std::string, std::string>> notified_;
};

class PostgresDatabase final : public Database {
 public:
  PostgresDatabase(std::string url, std::string schema, PostgresOptions options = {});
  ~PostgresDatabase() override;

  void migrate(const std::vector<Migration>& migrations) override;
  // `done` is called on the pool thread that committed (Database::write has bound it to the caller's executor).
  void submit(Work work, Done done) override;
  bool healthy() override;
  std::size_t pending_writes() override;
  void stop() override;
  Dialect dialect() const override { return Dialect::Postgres; }
  std::string describe() const override { return description_; }
  const std::string& schema() const { return schema_; }
  long long retries() const { return retries_.load(); }
  void listen(const std::string& channel, std::function<void(const std::string&)> on_message,
              std::function<void()> on_gap) override;

 protected:
  void with_reader(const std::function<void(Connection&)>& f, bool snapshot) override;

 private:
  struct Item {
    Work work;
    Done done;
  };
  void worker_loop();
  void listener_loop();
  std::exception_ptr run_unit(std::unique_ptr<PgConnection>& connection, const Work& work);
  std::unique_ptr<PgConnection> connect();
  std::unique_ptr<PgConnection> acquire_reader();
  void release_reader(std::unique_ptr<PgConnection> connection);

  std::string url_, schema_, description_;
  PostgresOptions options_;
  RetryPolicy retry_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<PgConnection>> readers_;
  std::atomic<long long> retries_{0};
  // healthy() answers from here (never a round trip on the caller's thread): set by every unit of
  // work's outcome and by an idle worker's probe once a second.
  std::atomic<bool> healthy_{true};
  std::atomic<long long> last_probe_ms_{0};
  struct Listener {
    std::string channel;
    std::function<void(const std::string&)> on_message;
    std::function<void()> on_gap;
  };
  std::mutex listeners_mutex_;
  std::vector<Listener> listeners_by_channel_;  // appended to by listen(), under listeners_mutex_
  std::thread listener_;
};

}  // namespace al::storage
