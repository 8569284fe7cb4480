#include "common/events/cloud_event.hpp"

#include "common/util/time_format.hpp"

namespace al::events {

boost::json::object CloudEvent::to_json() const {
  boost::json::array audience_json;
  for (const auto& a : audience) audience_json.emplace_back(a);
  return boost::json::object{
      {"specversion", "1.0"},
      {"id", id},
      {"type", type},
      {"source", source},
      {"subject", subject},
      {"time", format_rfc3339(time)},
      {"datacontenttype", "application/json"},
      {"seq", seq},
      {"audience", std::move(audience_json)},
      {"requestid", request_id},
      {"data", data},
  };
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
  if (const auto* aud = o->if_contains("audience"); aud && aud->is_array())
    for (const auto& a : aud->get_array())
      if (a.is_string()) e.audience.emplace_back(a.get_string());
  if (const auto* data = o->if_contains("data"); data && data->is_object()) e.data = data->get_object();
  return e;
}

}  // namespace al::events
