#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace al::notifier {

// One logged event of one agent, rendered once and shared by all of that agent's sockets.
struct LiveEvent {
  long long event_id = 0;
  std::vector<std::shared_ptr<const std::string>> frames;
  std::size_t bytes = 0;
};

// Why the server ends a socket; each has a close code and text a client can act on.
enum class CloseReason { Shutdown, SlowConsumer, PingTimeout, ConnectTimeout, Refused, Protocol, ClientLeft, KeyRevoked };

// What the hub needs of a connected socket. Both calls are thread-safe (they post to the
// socket's strand) and never block.
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  virtual void deliver(std::shared_ptr<const LiveEvent> event) = 0;
  virtual void close_for(CloseReason reason) = 0;
  // A live event of its agent may not have reached it (a lost announcement): it reads the log
  // after what it has sent and sends what it finds.
  virtual void resync() = 0;
};

// Connected sockets by agent: the per-agent and total connection limits, and live fan-out.
class Hub {
 public:
  Hub(std::size_t max_per_agent, std::size_t max_total);

  enum class Attach { Ok, AgentLimit, TotalLimit, Closed };
  // `key_id`: the API key the socket authenticated with (closed when it is revoked).
  Attach attach(const std::string& agent_id, const std::shared_ptr<Subscriber>& subscriber,
                const std::string& key_id = {});
  void detach(const std::string& agent_id, const Subscriber* subscriber);

  bool has_subscribers(const std::string& agent_id) const;
  // Hands the event to every socket of the agent (a copy of the list is taken under the lock).
  void publish(const std::string& agent_id, const std::shared_ptr<const LiveEvent>& event);

  // Asks the agent's sockets (every socket, for resync_all) to read the log after what they have:
  // what an announcement lost on the way would have told them reaches them anyway.
  void resync(const std::string& agent_id);
  std::size_t resync_all();

  // Asks every socket of the agent that authenticated with `key_id` to close (KeyRevoked); how many.
  std::size_t close_key(const std::string& agent_id, const std::string& key_id);
  // Refuses new sockets from now on and asks every socket to close for `reason`.
  void close_all(CloseReason reason);
  // Waits until every socket has detached or the timeout passed; true when none is left.
  bool wait_empty(std::chrono::milliseconds timeout);

  std::size_t size() const;
  std::size_t max_per_agent() const { return max_per_agent_; }

 private:
  const std::size_t max_per_agent_;
  const std::size_t max_total_;
  mutable std::mutex mutex_;
  std::condition_variable emptied_;
  struct Entry {
    const Subscriber* key;  // identifies the entry even after the subscriber is gone
    std::weak_ptr<Subscriber> subscriber;
    std::string key_id;
  };
  std::unordered_map<std::string, std::vector<Entry>> by_agent_;
  std::size_t total_ = 0;
  bool closed_ = false;
};

}  // namespace al::notifier
