#include "handlers/row_cache.hpp"

#include "events/thread_json.hpp"

namespace al::thread {

const std::string& RowCache::base_url() {
  std::call_once(base_once_, [this] { base_ = base_url_(); });
  return base_;
}

std::shared_ptr<const std::string> RowCache::row(const ThreadRef& thread, Role viewer) {
  std::size_t slot = viewer == Role::Provider ? 1 : 0;
  Shard& s = shards_[std::hash<std::string>{}(thread->id) % kShards];
  {
    std::lock_guard lock(s.mutex);
    auto it = s.entries.find(thread->id);
    if (it != s.entries.end() && it->second.revision == thread->revision && it->second.rows[slot])
      return it->second.rows[slot];
  }
  auto rendered = std::make_shared<const std::string>(
      boost::json::serialize(thread_to_json(*thread, viewer, base_url())));
  std::lock_guard lock(s.mutex);
  Entry& e = s.entries[thread->id];
  if (e.revision < thread->revision) e = Entry{thread->revision, {}};
  if (e.revision == thread->revision) e.rows[slot] = rendered;
  if (s.entries.size() > shard_capacity_) s.entries.clear();  // crude bound; rows re-render on demand
  return rendered;
}

}  // namespace al::thread
