#pragma once
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "domain/thread.hpp"
#include "storage/thread_store.hpp"

namespace al::thread {

// A thread's list row as serialized JSON, per viewer role, rendered once per revision: a list read
// then only concatenates rows. The base URL is fixed once the server listens.
class RowCache {
 public:
  explicit RowCache(std::function<std::string()> base_url, std::size_t capacity = 200'000)
      : base_url_(std::move(base_url)), shard_capacity_(capacity / kShards + 1) {}

  std::shared_ptr<const std::string> row(const ThreadRef& thread, Role viewer);
  const std::string& base_url();

 private:
  static constexpr std::size_t kShards = 64;
  struct Entry {
    long long revision = -1;
    std::array<std::shared_ptr<const std::string>, 2> rows;  // requester, provider
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Entry> entries;
  };
  std::function<std::string()> base_url_;
  std::once_flag base_once_;
  std::string base_;
  std::size_t shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace al::thread
