#include "storage/caching_thread_store.hpp"

#include <algorithm>
#include <limits>

namespace al::thread {
namespace {
struct Written {
  std::vector<Thread> threads;
  std::vector<bool> inserted;
};

// Forwards to the real transaction and remembers every thread it wrote.
class RecordingTx final : public ThreadTx {
 public:
  RecordingTx(ThreadTx& inner, Written& written) : inner_(inner), written_(written) {}
  std::optional<Service> load_service(const std::string& id) override { return inner_.load_service(id); }
  void insert_service(Service& s) override { inner_.insert_service(s); }
  void save_service(const Service& s) override { inner_.save_service(s); }
  std::optional<Thread> load_thread(const std::string& id) override { return inner_.load_thread(id); }
  void insert_thread(Thread& t) override {
    inner_.insert_thread(t);
    remember(t, true);
  }
  void save_thread(const Thread& t) override {
    inner_.save_thread(t);
    remember(t, false);
  }
  void insert_message(const Thread& t, const Message& m) override { inner_.insert_message(t, m); }
  std::optional<Message> load_message(const Thread& t, long long seq) override { return inner_.load_message(t, seq); }
  void publish(const std::string& topic, const events::CloudEvent& e) override { inner_.publish(topic, e); }

 private:
  void remember(const Thread& t, bool inserted) {
    written_.threads.push_back(t);
    written_.inserted.push_back(inserted);
  }
  ThreadTx& inner_;
  Written& written_;
};

void insert_sorted(std::vector<std::pair<long long, std::string>>& v, long long row, const std::string& id) {
  if (v.empty() || v.back().first < row) {
    v.emplace_back(row, id);
    return;
  }
  auto it = std::lower_bound(v.begin(), v.end(), row, [](const auto& e, long long r) { return e.first < r; });
  if (it == v.end() || it->first != row) v.insert(it, {row, id});
}
}  // namespace

void CachingThreadStore::transact(std::function<void(ThreadTx&)> work, std::function<void(std::exception_ptr)> done) {
  auto written = std::make_shared<Written>();
  inner_.transact(
      [work = std::move(work), written](ThreadTx& tx) {
        *written = Written{};  // a retried closure starts over
        RecordingTx recording(tx, *written);
        work(recording);
      },
      [this, written, done = std::move(done)](std::exception_ptr error) {
        if (!error)
          for (std::size_t i = 0; i < written->threads.size(); ++i)
            put(std::make_shared<const Thread>(std::move(written->threads[i])), written->inserted[i]);
        if (done) done(error);
      });
}

std::function<void()> CachingThreadStore::recording(ThreadTx& tx, const std::function<void(ThreadTx&)>& work) {
  auto written = std::make_shared<Written>();
  RecordingTx recording(tx, *written);
  work(recording);
  if (written->threads.empty()) return {};
  return [this, written] {
    for (std::size_t i = 0; i < written->threads.size(); ++i)
      put(std::make_shared<const Thread>(std::move(written->threads[i])), written->inserted[i]);
  };
}

void CachingThreadStore::put(ThreadRef thread, bool inserted) {
  if (!enabled_) return;
  if (inserted) {
    // Only agents whose index is loaded are updated; the others load it (with this thread) later.
    for (const auto& [agent, outgoing] : {std::pair{thread->requester_id, true}, std::pair{thread->provider_id, false}}) {
      AgentShard& s = agent_shard(agent);
      std::lock_guard lock(s.mutex);
      auto it = s.agents.find(agent);
      if (it == s.agents.end()) continue;
      insert_sorted(outgoing ? it->second.outgoing : it->second.incoming, thread->row, thread->id);
    }
  }
  ThreadShard& s = thread_shard(thread->id);
  std::lock_guard lock(s.mutex);
  auto it = s.threads.find(thread->id);
  if (it != s.threads.end()) {
    if (it->second->revision < thread->revision) it->second = std::move(thread);
    return;
  }
  if (s.threads.size() >= shard_capacity_) s.threads.clear();  // crude bound; refills from the database
  s.threads.emplace(thread->id, std::move(thread));
}

ThreadRef CachingThreadStore::find_thread(const std::string& id) {
  if (!enabled_) return inner_.find_thread(id);
  {
    ThreadShard& s = thread_shard(id);
    std::lock_guard lock(s.mutex);
    if (auto it = s.threads.find(id); it != s.threads.end()) return it->second;
  }
  auto thread = inner_.find_thread(id);
  if (thread) put(thread, false);
  return thread;
}

std::vector<std::pair<long long, std::string>> CachingThreadStore::candidates(const std::string& agent,
                                                                             std::optional<Role> as, long long before,
                                                                             std::size_t n) {
  AgentShard& s = agent_shard(agent);
  std::unique_lock lock(s.mutex);
  auto it = s.agents.find(agent);
  if (it == s.agents.end()) {
    // Loaded under the lock so that a commit's index update cannot slip between load and insert.
    AgentThreads loaded;
    for (auto& e : inner_.thread_index(agent))
      (e.as_requester ? loaded.outgoing : loaded.incoming).emplace_back(e.row, std::move(e.id));
    it = s.agents.emplace(agent, std::move(loaded)).first;
  }
  const auto& out = it->second.outgoing;
  const auto& in = it->second.incoming;
  auto start = [before](const std::vector<std::pair<long long, std::string>>& v) {
    return std::lower_bound(v.begin(), v.end(), before, [](const auto& e, long long r) { return e.first < r; }) -
           v.begin();
  };
  // Walk both lists newest first, merging (an agent can be requester and provider of different threads).
  std::ptrdiff_t i = (!as || *as == Role::Requester) ? start(out) : 0;
  std::ptrdiff_t j = (!as || *as == Role::Provider) ? start(in) : 0;
  std::vector<std::pair<long long, std::string>> result;
  while (result.size() < n && (i > 0 || j > 0)) {
    if (j == 0 || (i > 0 && out[i - 1].first > in[j - 1].first)) result.push_back(out[--i]);
    else result.push_back(in[--j]);
  }
  return result;
}

ThreadPage CachingThreadStore::list_threads(const ThreadQuery& query) {
  if (!enabled_) return inner_.list_threads(query);
  ThreadPage page;
  long long before = query.before_row ? *query.before_row : std::numeric_limits<long long>::max();
  const std::size_t want = static_cast<std::size_t>(query.limit) + 1;
  for (;;) {
    auto chunk = candidates(query.agent_id, query.as, before, query.statuses.empty() ? want : 64);
    for (const auto& [row, id] : chunk) {
      before = row;
      auto thread = find_thread(id);
      if (!thread) continue;
      if (!query.statuses.empty() &&
          std::find(query.statuses.begin(), query.statuses.end(), thread->status) == query.statuses.end())
        continue;
      page.threads.push_back(std::move(thread));
      if (page.threads.size() == want) break;
    }
    if (page.threads.size() == want || chunk.empty() || (query.statuses.empty() && chunk.size() < want)) break;
  }
  if (page.threads.size() > static_cast<std::size_t>(query.limit)) {
    page.threads.pop_back();
    page.next_before_row = page.threads.back()->row;
  }
  return page;
}

}  // namespace al::thread
