#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock/clock.hpp"
#include "domain/thread.hpp"
#include "storage/thread_store.hpp"

namespace al::thread {

// The fields of a service; on update, absent ones are left as they are.
struct ServiceFields {
  std::optional<std::string> title, description, deliverable, timeline;
  std::optional<Decimal> amount;
  std::optional<std::string> token, network;
  std::optional<std::vector<std::string>> tags;
  std::optional<bool> active;
};

struct Result {
  using Kind = ResultKind;
  Kind kind = Kind::Ok;
  std::string message;
  std::vector<std::string> missing;  // Unprocessable lock: the missing terms
  std::string code;                  // Unprocessable lock: why (kLock* in domain/thread.hpp)
  std::optional<Service> service;
  std::optional<Thread> thread;
  std::optional<Message> posted;
};

struct ThreadServiceOptions {
  long long max_messages = 1000;  // per thread
  std::string source = "thread-service";
};

// The listing and negotiation use cases. Each runs in one transaction: state change and its events.
class ThreadService {
 public:
  using Callback = std::function<void(Result)>;
  ThreadService(ThreadStore& store, const Clock& clock, ThreadServiceOptions options = {});

  void publish_service(std::string provider, ServiceFields fields, trace::Cause cause, Callback done);
  // Updates (or, with fields.active == false, deactivates) the owner's service.
  void update_service(std::string service_id, std::string actor, ServiceFields fields, trace::Cause cause,
                      Callback done);
  void open_thread(std::string requester, std::string service_id, std::string message, trace::Cause cause,
                   Callback done);
  void post_message(std::string thread_id, std::string actor, MessageType type, std::string body,
                    std::optional<Terms> terms, trace::Cause cause, Callback done);
  // Locks the provider's latest quote, or the provider's quote at `message_seq`.
  void lock_quote(std::string thread_id, std::string actor, std::optional<long long> message_seq,
                  trace::Cause cause, Callback done);
  void close(std::string thread_id, std::string actor, std::optional<std::string> reason, trace::Cause cause,
             Callback done);

  // Applies an offer-service event inside the consumer's transaction; returns the thread when it changed.
  std::optional<Thread> follow(ThreadTx& tx, const events::CloudEvent& event);

 private:
  using ThreadAction = std::function<Outcome(ThreadTx&, Thread&, Millis now, Result&)>;
  void act_on_thread(std::string thread_id, ThreadAction action, trace::Cause cause, Callback done);
  void record(ThreadTx& tx, Thread& thread, const std::vector<Change>& changes, const trace::Cause& cause,
              const Message* message);
  void record_service(ThreadTx& tx, Service& service, const std::string& type, const trace::Cause& cause);

  ThreadStore& store_;
  const Clock& clock_;
  ThreadServiceOptions options_;
};

}  // namespace al::thread
