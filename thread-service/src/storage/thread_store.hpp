#pragma once
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/events/cloud_event.hpp"
#include "domain/thread.hpp"

namespace al::thread {

inline constexpr const char* kThreadsTopic = "agentlancer.threads.v1";
inline constexpr const char* kServicesTopic = "agentlancer.services.v1";

// One write transaction of the thread service: state changes and their outbox events commit together.
class ThreadTx {
 public:
  virtual ~ThreadTx() = default;
  virtual std::optional<Service> load_service(const std::string& id) = 0;
  virtual void insert_service(Service& service) = 0;  // assigns service.row
  virtual void save_service(const Service& service) = 0;
  virtual std::optional<Thread> load_thread(const std::string& id) = 0;
  virtual void insert_thread(Thread& thread) = 0;  // assigns thread.row
  virtual void save_thread(const Thread& thread) = 0;
  virtual void insert_message(const Thread& thread, const Message& message) = 0;
  virtual std::optional<Message> load_message(const Thread& thread, long long seq) = 0;  // nullopt: none
  virtual void publish(const std::string& topic, const events::CloudEvent& event) = 0;
};

struct ServiceQuery {
  std::optional<std::string> provider_id;  // set: that provider's services, inactive included
  std::optional<std::string> tag;
  std::optional<std::string> text;  // lower-case substring
  int limit = 20;
  std::optional<long long> before_row;  // cursor
};

struct ServicePage {
  std::vector<Service> services;
  std::optional<long long> next_before_row;
};

struct ThreadQuery {
  std::string agent_id;
  std::optional<Role> as;  // Requester: outgoing; Provider: incoming; none: both
  std::vector<Status> statuses;  // empty: any
  int limit = 20;
  std::optional<long long> before_row;
};

using ThreadRef = std::shared_ptr<const Thread>;  // an immutable committed snapshot

struct ThreadPage {
  std::vector<ThreadRef> threads;
  std::optional<long long> next_before_row;
};

// Where an agent takes part: every thread, oldest first (by storage order).
struct ThreadIndexEntry {
  long long row = 0;
  std::string id;
  bool as_requester = false;  // else as provider
};

struct MessagePage {
  std::vector<Message> messages;
  std::optional<long long> next_after_seq;
};

// The thread service's storage. SQLite by default; the interface keeps the use cases unaware of it.
class ThreadStore {
 public:
  virtual ~ThreadStore() = default;
  // Runs `work` in a write transaction (grouped with concurrent ones). `done` gets nullptr once it
  // is durable, or the error (then nothing of it was kept).
  virtual void transact(std::function<void(ThreadTx&)> work, std::function<void(std::exception_ptr)> done) = 0;
  virtual std::optional<Service> get_service(const std::string& id) = 0;
  virtual ServicePage list_services(const ServiceQuery& query) = 0;
  virtual ThreadRef find_thread(const std::string& id) = 0;  // null when there is none
  virtual ThreadPage list_threads(const ThreadQuery& query) = 0;
  virtual std::vector<ThreadIndexEntry> thread_index(const std::string& agent_id) = 0;
  virtual MessagePage list_messages(const Thread& thread, long long after_seq, int limit) = 0;
  virtual bool healthy() = 0;
};

}  // namespace al::thread
