#pragma once
#include <memory>

#include "common/storage/database.hpp"
#include "storage/thread_store.hpp"

namespace al::thread {

// Agents (signup), services, threads and messages; migration 1 is the outbox, 2 the agents table.
std::vector<storage::Migration> thread_migrations();

class SqlThreadStore final : public ThreadStore {
 public:
  SqlThreadStore(storage::Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  void transact(std::function<void(ThreadTx&)> work, std::function<void(std::exception_ptr)> done) override;
  std::optional<Service> get_service(const std::string& id) override;
  ServicePage list_services(const ServiceQuery& query) override;
  ThreadRef find_thread(const std::string& id) override;
  ThreadPage list_threads(const ThreadQuery& query) override;
  std::vector<ThreadIndexEntry> thread_index(const std::string& agent_id) override;
  MessagePage list_messages(const Thread& thread, long long after_seq, int limit) override;
  bool healthy() override;

  // Agents (signup and /me): the row and its `agent.registered` event commit together. Only a
  // fingerprint of the key is kept (api_keys, for listing and revocation); the key itself is shown once.
  struct AgentRow {
    std::string agent_id, name;
    std::optional<std::string> description;
    std::string key_fingerprint;
    Millis created_at = 0;
    std::string key_id;  // the signup key's row in api_keys (add_agent)
  };
  void add_agent(const AgentRow& agent, const events::CloudEvent& registered, std::function<void(std::exception_ptr)> done);
  std::optional<AgentRow> find_agent(const std::string& agent_id);

  // A transaction on a connection the caller already holds (the event consumer's).
  static std::unique_ptr<ThreadTx> tx_on(storage::Connection& connection, const Clock& clock);

 private:
  storage::Database& db_;
  const Clock& clock_;
};

}  // namespace al::thread
