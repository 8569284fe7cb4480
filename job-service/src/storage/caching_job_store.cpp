#include "storage/caching_job_store.hpp"

namespace al::job {
namespace {
// Forwards to the real transaction and remembers every job it wrote.
class RecordingTx final : public JobTx {
 public:
  RecordingTx(JobTx& inner, std::vector<Job>& written) : inner_(inner), written_(written) {}
  std::optional<Job> load(long long id) override { return inner_.load(id); }
  std::optional<Job> find_by_operation(const std::string& c, const std::string& op) override {
    return inner_.find_by_operation(c, op);
  }
  void insert(Job& job) override {
    inner_.insert(job);
    written_.push_back(job);
  }
  void save(Job& job) override {
    inner_.save(job);
    written_.push_back(job);
  }
  bool tx_hash_used(const std::string& tx_hash) override { return inner_.tx_hash_used(tx_hash); }
  bool agent_known(const std::string& agent_id) override { return inner_.agent_known(agent_id); }
  std::optional<Job> find_by_contract(const std::string& contract_id) override {
    return inner_.find_by_contract(contract_id);
  }
  void publish(const events::CloudEvent& event) override { inner_.publish(event); }

 private:
  JobTx& inner_;
  std::vector<Job>& written_;
};
}  // namespace

void CachingJobStore::transact(std::function<void(JobTx&)> work,
                               std::function<void(std::exception_ptr)> done) {
  auto written = std::make_shared<std::vector<Job>>();
  inner_.transact(
      [work = std::move(work), written](JobTx& tx) {
        written->clear();  // a retried closure starts over
        RecordingTx recording(tx, *written);
        work(recording);
      },
      [this, written, done = std::move(done)](std::exception_ptr error) {
        if (!error)
          for (auto& job : *written) put(std::make_shared<const Job>(std::move(job)));
        if (done) done(error);
      });
}

std::function<void()> CachingJobStore::recording(JobTx& tx, const std::function<void(JobTx&)>& work) {
  auto written = std::make_shared<std::vector<Job>>();
  RecordingTx recording(tx, *written);
  work(recording);
  if (written->empty()) return {};
  return [this, written] {
    for (auto& job : *written) put(std::make_shared<const Job>(std::move(job)));
  };
}

std::optional<Job> CachingJobStore::get(long long id) {
  if (!enabled_) return inner_.get(id);
  {
    Shard& s = shard(id);
    std::lock_guard lock(s.mutex);
    if (auto it = s.jobs.find(id); it != s.jobs.end()) return *it->second;
  }
  auto job = inner_.get(id);
  if (job) put(std::make_shared<const Job>(*job));
  return job;
}

void CachingJobStore::put(std::shared_ptr<const Job> job) {
  if (!enabled_) return;
  Shard& s = shard(job->id);
  std::lock_guard lock(s.mutex);
  auto it = s.jobs.find(job->id);
  if (it != s.jobs.end()) {
    if (it->second->version < job->version) it->second = std::move(job);
    return;
  }
  if (s.jobs.size() >= shard_capacity_) s.jobs.clear();  // crude bound; refills from the database
  s.jobs.emplace(job->id, std::move(job));
}

std::size_t CachingJobStore::size() {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.jobs.size();
  }
  return n;
}

}  // namespace al::job
