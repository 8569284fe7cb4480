#include "service/thread_service.hpp"

#include <memory>

#include "common/log/log.hpp"
#include "common/service/durable.hpp"
#include "common/util/ids.hpp"
#include "events/thread_json.hpp"

namespace al::thread {
namespace {
namespace bj = boost::json;

std::function<void(std::exception_ptr)> finish(std::shared_ptr<Result> result, ThreadService::Callback done) {
  return reply_when_durable<Result>(std::move(result), std::move(done),
                                    Result{Result::Kind::Internal, "Internal error", {}, {}, {}, {}, {}},
                                    "thread transaction failed");
}

void apply_fields(Service& s, const ServiceFields& f) {
  if (f.title) s.title = *f.title;
  if (f.description) s.description = *f.description;
  if (f.deliverable) s.deliverable = *f.deliverable;
  if (f.timeline) s.timeline = *f.timeline;
  if (f.amount) s.price_amount = *f.amount;
  if (f.token) s.price_token = *f.token;
  if (f.network) s.price_network = *f.network;
  if (f.tags) s.tags = *f.tags;
  if (f.active) s.active = *f.active;
}
}  // namespace

ThreadService::ThreadService(ThreadStore& store, const Clock& clock, ThreadServiceOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

void ThreadService::record_service(ThreadTx& tx, Service& service, const std::string& type,
                                   const trace::Cause& cause) {
  service.version += 1;
  events::CloudEvent e;
  e.id = new_uuid_v7(clock_.now_ms());
  e.type = type;
  e.source = options_.source;
  e.subject = service.id;
  e.time = clock_.now_ms();
  e.seq = service.version;
  e.audience = {service.provider_id};
  e.set_cause(cause);
  e.data = {{"service", service_event_json(service)}};
  if (service.row == 0) tx.insert_service(service); else tx.save_service(service);
  tx.publish(kServicesTopic, e);
}

void ThreadService::record(ThreadTx& tx, Thread& thread, const std::vector<Change>& changes,
                           const trace::Cause& cause, const Message* message) {
  long long first_seq = thread.version + 1;
  thread.version += static_cast<long long>(changes.size());
  thread.revision += 1;
  if (thread.row == 0) tx.insert_thread(thread); else tx.save_thread(thread);
  if (message) tx.insert_message(thread, *message);
  if (changes.empty()) return;
  bj::object summary = thread_summary_json(thread);
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    events::CloudEvent e;
    e.id = new_uuid_v7(clock_.now_ms());
    e.type = c.event_type;
    e.source = options_.source;
    e.subject = thread.id;
    e.time = clock_.now_ms();
    e.seq = first_seq + static_cast<long long>(i);
    e.audience = {thread.requester_id, thread.provider_id};
    e.set_cause(cause);
    e.data = {{"thread", summary}};
    if (c.event_type == "thread.message_posted" && message) {
      e.data["message"] = message_event_json(*message);
    } else if (c.event_type == "thread.quote_locked") {
      e.data["quote_message_id"] = *thread.locked_quote_message_id;
      e.data["locked_message_seq"] = thread.locked_quote_seq.value_or(0);
      e.data["terms"] = terms_to_json(*thread.locked_terms);
    } else if (c.event_type == "thread.status_changed" || c.event_type == "thread.closed") {
      e.data["from"] = status_name(*c.from);
      if (c.event_type == "thread.status_changed") e.data["to"] = status_name(*c.to);
      e.data["reason"] = c.reason.value_or("");
    }
    tx.publish(kThreadsTopic, e);
  }
}

void ThreadService::publish_service(std::string provider, ServiceFields fields, trace::Cause cause,
                                    Callback done) {
  auto result = std::make_shared<Result>();
  store_.transact(
      [this, provider = std::move(provider), fields = std::move(fields), cause, result](ThreadTx& tx) {
        Millis now = clock_.now_ms();
        Service s;
        s.id = new_sortable_id("svc_", now);
        s.provider_id = provider;
        apply_fields(s, fields);
        s.created_at = now;
        s.updated_at = now;
        record_service(tx, s, "service.published", cause);
        result->kind = Result::Kind::Created;
        result->service = std::move(s);
      },
      finish(result, std::move(done)));
}

void ThreadService::update_service(std::string service_id, std::string actor, ServiceFields fields,
                                   trace::Cause cause, Callback done) {
  auto result = std::make_shared<Result>();
  store_.transact(
      [this, service_id = std::move(service_id), actor = std::move(actor), fields = std::move(fields), cause,
       result](ThreadTx& tx) {
        auto s = tx.load_service(service_id);
        if (!s) {
          result->kind = Result::Kind::NotFound;
          result->message = "Service not found";
          return;
        }
        if (s->provider_id != actor) {
          result->kind = Result::Kind::Forbidden;
          result->message = "Not authorized to modify this service";
          return;
        }
        bool was_active = s->active;
        Service before = *s;
        apply_fields(*s, fields);
        bool changed = before.title != s->title || before.description != s->description ||
                       before.deliverable != s->deliverable || before.timeline != s->timeline ||
                       before.price_amount != s->price_amount || before.price_token != s->price_token ||
                       before.price_network != s->price_network || before.tags != s->tags || was_active != s->active;
        if (changed) {
          s->updated_at = clock_.now_ms();
          record_service(tx, *s, was_active && !s->active ? "service.deactivated" : "service.updated", cause);
          result->kind = Result::Kind::Ok;
        } else {
          result->kind = Result::Kind::Unchanged;
        }
        result->service = std::move(s);
      },
      finish(result, std::move(done)));
}

void ThreadService::open_thread(std::string requester, std::string service_id, std::string message,
                                trace::Cause cause, Callback done) {
  auto result = std::make_shared<Result>();
  store_.transact(
      [this, requester = std::move(requester), service_id = std::move(service_id), message = std::move(message),
       cause, result](ThreadTx& tx) {
        auto service = tx.load_service(service_id);
        if (!service) {
          result->kind = Result::Kind::NotFound;
          result->message = "Service not found";
          return;
        }
        Millis now = clock_.now_ms();
        Thread t;
        t.id = new_sortable_id("thr_", now);
        Message first;
        first.id = new_sortable_id("msg_", now);
        first.body = message;
        Outcome outcome = thread::open_thread(t, *service, requester, first, now);
        result->kind = kind_of(outcome.verdict);
        result->message = outcome.message;
        if (outcome.verdict != Verdict::Applied) return;
        record(tx, t, outcome.changes, cause, &first);
        result->kind = Result::Kind::Created;
        result->thread = std::move(t);
      },
      finish(result, std::move(done)));
}

void ThreadService::act_on_thread(std::string thread_id, ThreadAction action, trace::Cause cause,
                                  Callback done) {
  auto result = std::make_shared<Result>();
  store_.transact(
      [this, thread_id = std::move(thread_id), action = std::move(action), cause, result](ThreadTx& tx) {
        auto t = tx.load_thread(thread_id);
        if (!t) {
          result->kind = Result::Kind::NotFound;
          result->message = "Thread not found";
          return;
        }
        Outcome outcome = action(tx, *t, clock_.now_ms(), *result);
        result->kind = kind_of(outcome.verdict);
        result->message = outcome.message;
        result->missing = outcome.missing;
        result->code = outcome.code;
        if (outcome.verdict == Verdict::Applied)
          record(tx, *t, outcome.changes, cause, result->posted ? &*result->posted : nullptr);
        result->thread = std::move(t);
      },
      finish(result, std::move(done)));
}

void ThreadService::post_message(std::string thread_id, std::string actor, MessageType type, std::string body,
                                 std::optional<Terms> terms, trace::Cause cause, Callback done) {
  act_on_thread(
      std::move(thread_id),
      [this, actor = std::move(actor), type, body = std::move(body), terms = std::move(terms)](
          ThreadTx&, Thread& t, Millis now, Result& result) {
        Message m;
        m.id = new_sortable_id("msg_", now);
        m.type = type;
        m.body = body;
        m.terms = terms;
        Outcome outcome = thread::post_message(t, actor, m, options_.max_messages, now);
        if (outcome.verdict == Verdict::Applied) result.posted = std::move(m);
        return outcome;
      },
      std::move(cause), std::move(done));
}

void ThreadService::lock_quote(std::string thread_id, std::string actor, std::optional<long long> message_seq,
                               trace::Cause cause, Callback done) {
  act_on_thread(
      std::move(thread_id),
      [actor = std::move(actor), message_seq](ThreadTx& tx, Thread& t, Millis now, Result&) {
        std::optional<Message> named;
        if (message_seq) named = tx.load_message(t, *message_seq);
        return thread::lock_quote(t, actor, now, message_seq, named);
      },
      std::move(cause), std::move(done));
}

void ThreadService::close(std::string thread_id, std::string actor, std::optional<std::string> reason,
                          trace::Cause cause, Callback done) {
  act_on_thread(
      std::move(thread_id),
      [actor = std::move(actor), reason = std::move(reason)](ThreadTx&, Thread& t, Millis now, Result&) {
        return close_thread(t, actor, reason, now);
      },
      std::move(cause), std::move(done));
}

std::optional<Thread> ThreadService::follow(ThreadTx& tx, const events::CloudEvent& e) {
  const bj::object& data = e.data;
  auto text = [](const bj::object& o, std::string_view key) -> std::string {
    auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  bool is_offer = e.type.rfind("offer.", 0) == 0;
  bool is_contract = e.type.rfind("contract.", 0) == 0;
  if (!is_offer && !is_contract) return std::nullopt;
  const auto* entity = data.if_contains(is_offer ? "offer" : "contract");
  if (!entity || !entity->is_object()) {
    log::warn("offer-service event without its entity: skipped", {{"type", e.type}, {"id", e.id}});
    return std::nullopt;
  }
  std::string thread_id = text(entity->get_object(), "thread_id");
  std::string id = text(entity->get_object(), "id");
  if (thread_id.empty() || id.empty()) return std::nullopt;  // e.g. an offer not made from a thread
  auto t = tx.load_thread(thread_id);
  if (!t) {
    log::warn("offer-service event about an unknown thread: skipped", {{"type", e.type}, {"thread", thread_id}});
    return std::nullopt;
  }
  Millis now = clock_.now_ms();
  Outcome outcome = is_offer ? follow_offer(*t, e.type, id, e.seq, now)
                             : follow_contract(*t, e.type, id, text(entity->get_object(), "status"), e.seq, now);
  if (outcome.verdict != Verdict::Applied) return std::nullopt;
  record(tx, *t, outcome.changes, e.next_cause(), nullptr);
  return t;
}

}  // namespace al::thread
