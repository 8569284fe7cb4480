#pragma once
#include <memory>
#include "common/clock/clock.hpp"
#include "common/events/cloud_event.hpp"
#include "common/storage/database.hpp"
#include "storage/job_store.hpp"

namespace al::job {

std::vector<storage::Migration> job_migrations();

class SqlJobStore final : public JobStore {
 public:
  SqlJobStore(storage::Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  void transact(std::function<void(JobTx&)> work, std::function<void(std::exception_ptr)> done) override;
  std::optional<Job> get(long long id) override;
  ListPage list(const ListQuery& query) override;
  std::vector<long long> due_for_expiry(Millis now, int limit) override;
  bool agent_known(const std::string& agent_id) override;
  bool healthy() override { return db_.healthy(); }

  // Projection of agent events from thread-service (inside the consumer's transaction).
  static void apply_agent_event(storage::Connection& c, const events::CloudEvent& event);
  // A transaction on a connection the caller holds (an event consumer's).
  static std::unique_ptr<JobTx> tx_on(storage::Connection& connection, const Clock& clock);

 private:
  storage::Database& db_;
  const Clock& clock_;
};

}  // namespace al::job
