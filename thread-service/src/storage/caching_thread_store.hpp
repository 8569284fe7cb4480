#pragma once
#include <array>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "storage/thread_store.hpp"

namespace al::thread {

// Serves thread reads from memory: committed thread snapshots by id, and per agent the ids of its
// threads in storage order, so a thread list touches no database. A snapshot enters only after its
// transaction committed and never replaces a newer revision; an agent's index is loaded from the
// database on first use and then kept up to date by the commits of this process (the only writer
// of this service's database). Services and messages are read through.
class CachingThreadStore final : public ThreadStore {
 public:
  // capacity 0: off (every read goes to the database), for replicas that share one database.
  explicit CachingThreadStore(ThreadStore& inner, std::size_t capacity = 500'000)
      : inner_(inner), enabled_(capacity > 0), shard_capacity_(capacity / kShards + 1) {}

  void transact(std::function<void(ThreadTx&)> work, std::function<void(std::exception_ptr)> done) override;
  std::optional<Service> get_service(const std::string& id) override { return inner_.get_service(id); }
  ServicePage list_services(const ServiceQuery& query) override { return inner_.list_services(query); }
  ThreadRef find_thread(const std::string& id) override;
  ThreadPage list_threads(const ThreadQuery& query) override;
  std::vector<ThreadIndexEntry> thread_index(const std::string& agent_id) override {
    return inner_.thread_index(agent_id);
  }
  MessagePage list_messages(const Thread& thread, long long after_seq, int limit) override {
    return inner_.list_messages(thread, after_seq, limit);
  }
  bool healthy() override { return inner_.healthy(); }

  // Runs `work` on a transaction the caller holds (the event consumer's) and returns what to do
  // once it has committed: publish the threads it wrote to the cache.
  std::function<void()> recording(ThreadTx& tx, const std::function<void(ThreadTx&)>& work);

 private:
  static constexpr std::size_t kShards = 64;
  struct ThreadShard {
    std::mutex mutex;
    std::unordered_map<std::string, ThreadRef> threads;
  };
  struct AgentThreads {
    std::vector<std::pair<long long, std::string>> outgoing, incoming;  // ascending row
  };
  struct AgentShard {
    std::mutex mutex;
    std::unordered_map<std::string, AgentThreads> agents;  // present = loaded
  };
  ThreadShard& thread_shard(const std::string& id) { return threads_[std::hash<std::string>{}(id) % kShards]; }
  AgentShard& agent_shard(const std::string& id) { return agents_[std::hash<std::string>{}(id) % kShards]; }
  void put(ThreadRef thread, bool inserted);
  // Up to `n` of the agent's thread ids with row < before, newest first.
  std::vector<std::pair<long long, std::string>> candidates(const std::string& agent, std::optional<Role> as,
                                                            long long before, std::size_t n);

  ThreadStore& inner_;
  bool enabled_;
  std::size_t shard_capacity_;
  std::array<ThreadShard, kShards> threads_;
  std::array<AgentShard, kShards> agents_;
};

}  // namespace al::thread
