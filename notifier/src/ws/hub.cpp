#include "ws/hub.hpp"

#include <algorithm>

namespace al::notifier {

Hub::Hub(std::size_t max_per_agent, std::size_t max_total)
    : max_per_agent_(max_per_agent), max_total_(max_total) {}

Hub::Attach Hub::attach(const std::string& agent_id, const std::shared_ptr<Subscriber>& subscriber,
                        const std::string& key_id) {
  std::lock_guard lock(mutex_);
  if (closed_) return Attach::Closed;
  if (total_ >= max_total_) return Attach::TotalLimit;
  auto& list = by_agent_[agent_id];
  if (list.size() >= max_per_agent_) {
    if (list.empty()) by_agent_.erase(agent_id);
    return Attach::AgentLimit;
  }
  list.push_back({subscriber.get(), subscriber, key_id});
  ++total_;
  return Attach::Ok;
}

void Hub::detach(const std::string& agent_id, const Subscriber* subscriber) {
  std::lock_guard lock(mutex_);
  auto found = by_agent_.find(agent_id);
  if (found == by_agent_.end()) return;
  auto& list = found->second;
  auto it = std::find_if(list.begin(), list.end(), [&](const Entry& e) { return e.key == subscriber; });
  if (it == list.end()) return;
  list.erase(it);
  if (list.empty()) by_agent_.erase(found);
  if (--total_ == 0) emptied_.notify_all();
}

bool Hub::has_subscribers(const std::string& agent_id) const {
  std::lock_guard lock(mutex_);
  return by_agent_.count(agent_id) != 0;
}

void Hub::publish(const std::string& agent_id, const std::shared_ptr<const LiveEvent>& event) {
  std::vector<std::shared_ptr<Subscriber>> targets;
  {
    std::lock_guard lock(mutex_);
    auto it = by_agent_.find(agent_id);
    if (it == by_agent_.end()) return;
    targets.reserve(it->second.size());
    for (auto& entry : it->second)
      if (auto s = entry.subscriber.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->deliver(event);
}

void Hub::resync(const std::string& agent_id) {
  std::vector<std::shared_ptr<Subscriber>> targets;
  {
    std::lock_guard lock(mutex_);
    auto it = by_agent_.find(agent_id);
    if (it == by_agent_.end()) return;
    for (auto& entry : it->second)
      if (auto s = entry.subscriber.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->resync();
}

std::size_t Hub::resync_all() {
  std::vector<std::shared_ptr<Subscriber>> targets;
  {
    std::lock_guard lock(mutex_);
    for (auto& [agent, list] : by_agent_)
      for (auto& entry : list)
        if (auto s = entry.subscriber.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->resync();
  return targets.size();
}

std::size_t Hub::close_key(const std::string& agent_id, const std::string& key_id) {
  std::vector<std::shared_ptr<Subscriber>> targets;
  {
    std::lock_guard lock(mutex_);
    auto it = by_agent_.find(agent_id);
    if (it == by_agent_.end()) return 0;
    for (auto& entry : it->second)
      if (entry.key_id == key_id)
        if (auto s = entry.subscriber.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->close_for(CloseReason::KeyRevoked);
  return targets.size();
}

void Hub::close_all(CloseReason reason) {
  std::vector<std::shared_ptr<Subscriber>> targets;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (auto& [agent, list] : by_agent_)
      for (auto& entry : list)
        if (auto s = entry.subscriber.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->close_for(reason);
}

bool Hub::wait_empty(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return emptied_.wait_for(lock, timeout, [&] { return total_ == 0; });
}

std::size_t Hub::size() const {
  std::lock_guard lock(mutex_);
  return total_;
}

}  // namespace al::notifier
