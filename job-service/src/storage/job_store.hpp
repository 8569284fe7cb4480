#pragma once
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/events/cloud_event.hpp"
#include "domain/job.hpp"

namespace al::job {

// One write transaction of the job service: a state change and its outbox events commit together.
class JobTx {
 public:
  virtual ~JobTx() = default;
  virtual std::optional<Job> load(long long id) = 0;
  virtual std::optional<Job> find_by_operation(const std::string& client_id,
                                               const std::string& operation_id) = 0;
  virtual void insert(Job& job) = 0;  // assigns job.id
  virtual void save(Job& job) = 0;    // updates the row, inserts new memos (id 0), updates others
  virtual bool tx_hash_used(const std::string& tx_hash) = 0;
  virtual std::optional<Job> find_by_contract(const std::string& contract_id) = 0;
  virtual bool agent_known(const std::string& agent_id) = 0;
  virtual void publish(const events::CloudEvent& event) = 0;
};

struct ListQuery {
  std::string agent_id;
  std::optional<std::string> role;  // client | provider | evaluator; none = any
  std::optional<int> phase;
  int limit = 20;
  std::optional<long long> before_id;  // cursor
};

struct ListPage {
  std::vector<Job> jobs;
  std::optional<long long> next_before_id;
};

// The job service's storage. SQLite by default; the interface keeps the use cases unaware of it.
class JobStore {
 public:
  virtual ~JobStore() = default;
  // Runs `work` in a write transaction (grouped with concurrent ones). `done` gets nullptr once it
  // is durable, or the error (then nothing of it was kept).
  virtual void transact(std::function<void(JobTx&)> work,
                        std::function<void(std::exception_ptr)> done) = 0;
  virtual std::optional<Job> get(long long id) = 0;
  virtual ListPage list(const ListQuery& query) = 0;
  virtual std::vector<long long> due_for_expiry(Millis now, int limit) = 0;
  virtual bool agent_known(const std::string& agent_id) = 0;
  virtual bool healthy() = 0;
};

}  // namespace al::job
