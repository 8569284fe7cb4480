#include "common/events/cloud_event.hpp"

#include "common/util/time_format.hpp"

namespace al::events {

std::string dataschema_for(std::string_view type) { return "urn:agentlancer:event-schema:" + std::string(type); }

trace::Cause CloudEvent::next_cause() const { return {request_id, trace::continue_from(traceparent)}; }

boost::json::object CloudEvent::to_json() const {
  std::string audience_text;
  for (const auto& a : audience) {
    if (!audience_text.empty()) audience_text += ' ';
    audience_text += a;
  }
  boost::json::object envelope{
      {"specversion", "1.0"},
      {"id", id},
      {"type", type},
      {"source", source},
      {"subject", subject},
      {"time", format_rfc3339(time)},
      {"datacontenttype", "application/json"},
      {"dataschema", dataschema_for(type)},
      {"seq", seq},
      {"audience", std::move(audience_text)},
      {"requestid", request_id},
  };
  if (!traceparent.empty()) envelope.emplace("traceparent", traceparent);
  envelope.emplace("data", data);
  return envelope;
}

std::optional<CloudEvent> CloudEvent::from_json(const boost::json::value& value) {
  const auto* o = value.if_object();
  if (!o) return std::nullopt;
  auto str = [&](const char* key) -> const boost::json::string* {
    const auto* v = o->if_contains(key);
    return v ? v->if_string() : nullptr;
  };
  const auto* id = str("id");
  const auto* type = str("type");
  const auto* source = str("source");
  const auto* subject = str("subject");
  const auto* time = str("time");
  const auto* spec = str("specversion");
  if (!id || !type || !source || !subject || !time || !spec || *spec != "1.0") return std::nullopt;
  CloudEvent e;
  e.id = *id;
  e.type = *type;
  e.source = *source;
  e.subject = *subject;
  auto parsed_time = parse_rfc3339(*time);
  if (!parsed_time) return std::nullopt;
  e.time = *parsed_time;
  if (const auto* seq = o->if_contains("seq"); seq && seq->is_int64()) e.seq = seq->get_int64();
  if (const auto* rid = str("requestid")) e.request_id = *rid;
  if (const auto* tp = str("traceparent")) e.traceparent = *tp;
  // Events written before audience became a string carry an array: both are read.
  if (const auto* aud = o->if_contains("audience")) {
    if (const auto* text = aud->if_string()) {
      std::string_view rest(*text);
      while (!rest.empty()) {
        auto space = rest.find(' ');
        auto id = rest.substr(0, space);
        if (!id.empty()) e.audience.emplace_back(id);
        if (space == std::string_view::npos) break;
        rest.remove_prefix(space + 1);
      }
    } else if (const auto* list = aud->if_array()) {
      for (const auto& a : *list)
        if (a.is_string()) e.audience.emplace_back(a.get_string());
    }
  }
  if (const auto* data = o->if_contains("data"); data && data->is_object()) e.data = data->get_object();
  return e;
}

}  // namespace al::events
