#include "events/thread_json.hpp"

#include "common/util/time_format.hpp"

namespace al::thread {
namespace bj = boost::json;

namespace {
bj::value opt(const std::optional<std::string>& v) { return v ? bj::value(*v) : bj::value(nullptr); }
bj::value opt_time(const std::optional<Millis>& v) { return v ? bj::value(format_rfc3339(*v)) : bj::value(nullptr); }
bj::value opt_int(const std::optional<long long>& v) { return v ? bj::value(*v) : bj::value(nullptr); }
bj::value linked(const std::optional<Linked>& l) {
  if (!l) return nullptr;
  return bj::object{{"id", l->id}, {"status", l->status}};
}
std::optional<std::string> string_at(const bj::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}
}  // namespace

bj::object terms_to_json(const Terms& t) {
  bj::object o;
  if (t.deliverable) o["deliverable"] = *t.deliverable;
  if (t.budget) {
    bj::object b;
    if (t.budget->amount) b["amount"] = t.budget->amount->to_string();
    if (t.budget->token) b["token"] = *t.budget->token;
    if (t.budget->network) b["network"] = *t.budget->network;
    o["budget"] = std::move(b);
  }
  if (t.timeline) o["timeline"] = *t.timeline;
  if (t.acceptance_criteria) o["acceptance_criteria"] = *t.acceptance_criteria;
  if (t.revision_boundary) o["revision_boundary"] = *t.revision_boundary;
  return o;
}

std::optional<Terms> terms_from_json(const bj::value& value) {
  if (!value.is_object()) return std::nullopt;
  const auto& o = value.get_object();
  Terms t;
  t.deliverable = string_at(o, "deliverable");
  t.timeline = string_at(o, "timeline");
  t.acceptance_criteria = string_at(o, "acceptance_criteria");
  t.revision_boundary = string_at(o, "revision_boundary");
  if (auto* b = o.if_contains("budget"); b && b->is_object()) {
    Budget budget;
    if (auto amount = string_at(b->get_object(), "amount")) budget.amount = Decimal::parse(*amount);
    budget.token = string_at(b->get_object(), "token");
    budget.network = string_at(b->get_object(), "network");
    t.budget = std::move(budget);
  }
  return t;
}

bj::object service_event_json(const Service& s) {
  bj::array tags;
  for (const auto& tag : s.tags) tags.emplace_back(tag);
  return {{"id", s.id},
          {"provider_id", s.provider_id},
          {"title", s.title},
          {"description", s.description},
          {"deliverable", s.deliverable},
          {"price", bj::object{{"amount", s.price_amount.to_string()}, {"token", s.price_token}, {"network", s.price_network}}},
          {"timeline", s.timeline},
          {"tags", std::move(tags)},
          {"active", s.active},
          {"created_at", format_rfc3339(s.created_at)},
          {"updated_at", format_rfc3339(s.updated_at)}};
}

bj::object service_to_json(const Service& s, std::string_view base) {
  bj::object o = service_event_json(s);
  bj::object body{{"service_id", s.id}, {"mode", "quick_quote"}, {"message", "<WHAT_YOU_NEED>"}};
  o["quick_quote"] = bj::object{
      {"method", "POST"},
      {"endpoint", "/api/agent/threads"},
      {"copy_paste_curl", "curl -sS -X POST " + std::string(base) +
                              "/api/agent/threads -H 'content-type: application/json' -H 'x-api-key: " +
                              key_placeholder(Role::Requester) + "' -d " + shell_quote(bj::serialize(body))}};
  return o;
}

bj::object thread_summary_json(const Thread& t) {
  return {{"id", t.id},
          {"service_id", t.service_id},
          {"requester_id", t.requester_id},
          {"provider_id", t.provider_id},
          {"mode", t.mode},
          {"status", status_name(t.status)},
          {"message_count", t.message_count},
          {"locked_terms", t.locked_terms ? bj::value(terms_to_json(*t.locked_terms)) : bj::value(nullptr)},
          {"offer", linked(t.offer)},
          {"contract", linked(t.contract)},
          {"created_at", format_rfc3339(t.created_at)},
          {"updated_at", format_rfc3339(t.updated_at)}};
}

bj::object next_step_to_json(const NextStep& s) {
  bj::object o{{"status", status_name(s.status)},
               {"actor", s.actor == Role::None ? bj::value(nullptr) : bj::value(role_name(s.actor))},
               {"you_act", s.you_act},
               {"action", s.action},
               {"description", s.description}};
  if (!s.method.empty()) o["method"] = s.method;
  if (!s.endpoint.empty()) o["endpoint"] = s.endpoint;
  if (s.copy_paste_curl) o["copy_paste_curl"] = *s.copy_paste_curl;
  if (s.monitor_curl) o["monitor_curl"] = *s.monitor_curl;
  return o;
}

bj::object thread_to_json(const Thread& t, Role viewer, std::string_view base) {
  bj::value latest = nullptr;
  if (t.latest_quote_message_id) {
    auto missing = missing_terms(t.latest_quote_terms);
    bj::array names;
    for (auto& m : missing) names.emplace_back(m);
    latest = bj::object{{"message_id", *t.latest_quote_message_id},
                        {"seq", opt_int(t.latest_quote_seq)},
                        {"sender_role", role_name(latest_quote_is_requesters(t) ? Role::Requester : Role::Provider)},
                        {"terms", t.latest_quote_terms ? terms_to_json(*t.latest_quote_terms) : bj::object{}},
                        {"complete", missing.empty()},
                        {"lockable", missing.empty() && !latest_quote_is_requesters(t)},
                        {"missing_terms", std::move(names)}};
  }
  return {{"id", t.id},
          {"service_id", t.service_id},
          {"service_title", t.service_title},
          {"mode", t.mode},
          {"status", status_name(t.status)},
          {"role", role_name(viewer)},
          {"requester_id", t.requester_id},
          {"provider_id", t.provider_id},
          {"message_count", t.message_count},
          {"latest_quote", std::move(latest)},
          {"locked_terms", t.locked_terms ? bj::value(terms_to_json(*t.locked_terms)) : bj::value(nullptr)},
          {"locked_quote_message_id", opt(t.locked_quote_message_id)},
          {"locked_message_seq", opt_int(t.locked_quote_seq)},
          {"quote_locked_at", opt_time(t.quote_locked_at)},
          {"offer", linked(t.offer)},
          {"contract", linked(t.contract)},
          {"closed_reason", opt(t.closed_reason)},
          {"created_at", format_rfc3339(t.created_at)},
          {"updated_at", format_rfc3339(t.updated_at)},
          {"quote_to_offer_next_step", next_step_to_json(next_step(t, viewer, base))}};
}

bj::object message_to_json(const Message& m) {
  return {{"id", m.id},
          {"seq", m.seq},
          {"sender_id", m.sender_id},
          {"sender_role", role_name(m.sender_role)},
          {"type", message_type_name(m.type)},
          {"body", m.body},
          {"terms", m.terms ? bj::value(terms_to_json(*m.terms)) : bj::value(nullptr)},
          {"created_at", format_rfc3339(m.created_at)}};
}

bj::object message_event_json(const Message& m) {
  return {{"id", m.id},
          {"seq", m.seq},
          {"sender_id", m.sender_id},
          {"sender_role", role_name(m.sender_role)},
          {"type", message_type_name(m.type)},
          {"body_length", static_cast<long long>(m.body.size())},
          {"terms", m.terms ? bj::value(terms_to_json(*m.terms)) : bj::value(nullptr)}};
}

}  // namespace al::thread
