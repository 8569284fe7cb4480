#pragma once
#include <memory>

#include "common/storage/sqlite.hpp"
#include "storage/thread_store.hpp"

namespace al::thread {

// Agents (signup), services, threads and messages; migration 1 is the outbox, 2 the agents table.
std::vector<storage::Migration> thread_migrations();

class SqliteThreadStore final : public ThreadStore {
 public:
  SqliteThreadStore(storage::Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  void transact(std::function<void(ThreadTx&)> work, std::function<void(std::exception_ptr)> done) override;
  std::optional<Service> get_service(const std::string& id) override;
  ServicePage list_services(const ServiceQuery& query) override;
  ThreadRef find_thread(const std::string& id) override;
  ThreadPage list_threads(const ThreadQuery& query) override;
  std::vector<ThreadIndexEntry> thread_index(const std::string& agent_id) override;
  MessagePage list_messages(const Thread& thread, long long after_seq, int limit) override;
  bool healthy() override;

  // A transaction on a connection the caller already holds (the event consumer's).
  static std::unique_ptr<ThreadTx> tx_on(storage::Connection& connection, const Clock& clock);

 private:
  storage::Database& db_;
  const Clock& clock_;
};

}  // namespace al::thread
