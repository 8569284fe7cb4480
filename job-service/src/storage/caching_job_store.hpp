#pragma once
#include <array>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "storage/job_store.hpp"

namespace al::job {

// Keeps committed jobs in memory so reads do not touch the database. A job enters the cache only
// after its transaction committed (or when read from the database), and a snapshot never
// replaces a newer version, so readers never see uncommitted or stale-after-newer state.
class CachingJobStore final : public JobStore {
 public:
  // capacity 0: off (every read goes to the database), for replicas that share one database.
  explicit CachingJobStore(JobStore& inner, std::size_t capacity = 200'000)
      : inner_(inner), enabled_(capacity > 0), shard_capacity_(capacity / kShards + 1) {}

  void transact(std::function<void(JobTx&)> work, std::function<void(std::exception_ptr)> done) override;
  std::optional<Job> get(long long id) override;
  ListPage list(const ListQuery& query) override { return inner_.list(query); }
  std::vector<long long> due_for_expiry(Millis now, int limit) override { return inner_.due_for_expiry(now, limit); }
  bool agent_known(const std::string& agent_id) override { return inner_.agent_known(agent_id); }
  bool healthy() override { return inner_.healthy(); }

  std::size_t size();
  // Runs `work` on a transaction the caller holds (an event consumer's) and returns what to do
  // once it has committed: publish the jobs it wrote to the cache.
  std::function<void()> recording(JobTx& tx, const std::function<void(JobTx&)>& work);

 private:
  static constexpr std::size_t kShards = 16;
  struct Shard {
    std::mutex mutex;
    std::unordered_map<long long, std::shared_ptr<const Job>> jobs;
  };
  Shard& shard(long long id) { return shards_[static_cast<std::size_t>(id) % kShards]; }
  void put(std::shared_ptr<const Job> job);

  JobStore& inner_;
  bool enabled_;
  std::size_t shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace al::job
