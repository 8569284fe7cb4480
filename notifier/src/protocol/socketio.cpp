#include "protocol/socketio.hpp"

#include <boost/json.hpp>

namespace al::notifier::sio {

std::variant<EnginePacket, DecodeError> decode_engine(std::string_view frame) {
  if (frame.empty()) return DecodeError{"empty Engine.IO packet"};
  if (frame.size() > kMaxPacket) return DecodeError{"Engine.IO packet larger than maxPayload"};
  char c = frame[0];
  if (c == 'b') return DecodeError{"binary Engine.IO packets are not supported"};
  if (c < '0' || c > '6') return DecodeError{"unknown Engine.IO packet type"};
  return EnginePacket{static_cast<EngineType>(c - '0'), std::string(frame.substr(1))};
}

std::variant<SocketPacket, DecodeError> decode_socket(std::string_view data) {
  if (data.empty()) return DecodeError{"empty Socket.IO packet"};
  if (data.size() > kMaxPacket) return DecodeError{"Socket.IO packet too large"};
  char c = data[0];
  if (c < '0' || c > '6') return DecodeError{"unknown Socket.IO packet type"};
  SocketPacket p;
  p.type = static_cast<SocketType>(c - '0');
  if (p.type == SocketType::BinaryEvent || p.type == SocketType::BinaryAck)
    return DecodeError{"binary Socket.IO packets are not supported"};
  std::size_t pos = 1;
  if (pos < data.size() && data[pos] == '/') {
    std::size_t comma = data.find(',', pos);
    std::size_t end = comma == std::string_view::npos ? data.size() : comma;
    if (end - pos > 256) return DecodeError{"namespace too long"};
    p.nsp = std::string(data.substr(pos, end - pos));
    pos = comma == std::string_view::npos ? data.size() : comma + 1;
  }
  std::size_t digits = pos;
  while (digits < data.size() && data[digits] >= '0' && data[digits] <= '9') ++digits;
  if (digits > pos) {
    if (digits - pos > 15) return DecodeError{"acknowledgement id too large"};
    p.ack_id = std::stoll(std::string(data.substr(pos, digits - pos)));
    pos = digits;
  }
  if (pos < data.size()) {
    boost::json::parse_options options;
    options.max_depth = 32;
    boost::system::error_code ec;
    p.payload = boost::json::parse(data.substr(pos), ec, {}, options);
    if (ec) return DecodeError{"malformed Socket.IO payload: " + ec.message()};
  }
  switch (p.type) {
    case SocketType::Connect:
      if (!p.payload.is_null() && !p.payload.is_object()) return DecodeError{"CONNECT payload must be an object"};
      break;
    case SocketType::Event:
      if (!p.payload.is_array() || p.payload.as_array().empty() || !p.payload.as_array()[0].is_string())
        return DecodeError{"EVENT payload must be an array starting with the event name"};
      break;
    case SocketType::Ack:
      if (!p.payload.is_array() || !p.ack_id) return DecodeError{"ACK needs an id and an array payload"};
      break;
    default:
      break;
  }
  return p;
}

std::variant<std::vector<EnginePacket>, DecodeError> decode_payload(std::string_view body) {
  if (body.size() > kMaxPacket) return DecodeError{"payload larger than maxPayload"};
  std::vector<EnginePacket> packets;
  std::size_t start = 0;
  for (;;) {
    std::size_t end = body.find(kRecordSeparator, start);
    auto decoded = decode_engine(body.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (auto* error = std::get_if<DecodeError>(&decoded)) return std::move(*error);
    packets.push_back(std::move(std::get<EnginePacket>(decoded)));
    if (end == std::string_view::npos) return packets;
    start = end + 1;
  }
}

std::string encode_payload(const std::vector<std::string_view>& packets) {
  std::size_t size = packets.empty() ? 0 : packets.size() - 1;
  for (auto packet : packets) size += packet.size();
  std::string out;
  out.reserve(size);
  for (std::size_t i = 0; i < packets.size(); ++i) {
    if (i > 0) out += kRecordSeparator;
    out.append(packets[i]);
  }
  return out;
}

bool valid_node_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 32) return false;
  for (char c : tag)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

std::string make_sid(std::string_view node_tag, std::string_view random) {
  std::string sid(node_tag);
  sid += kSidTagSeparator;
  sid.append(random);
  return sid;
}

std::string_view sid_node_tag(std::string_view sid) {
  std::size_t separator = sid.find(kSidTagSeparator);
  if (separator == std::string_view::npos || separator + 1 == sid.size()) return {};
  std::string_view tag = sid.substr(0, separator);
  return valid_node_tag(tag) ? tag : std::string_view{};
}

std::string encode_engine(EngineType type, std::string_view data) {
  std::string out(1, static_cast<char>('0' + static_cast<int>(type)));
  out.append(data);
  return out;
}

std::string encode_socket(const SocketPacket& p) {
  std::string out(1, static_cast<char>('0' + static_cast<int>(p.type)));
  if (p.nsp != "/") {
    out += p.nsp;
    out += ',';
  }
  if (p.ack_id) out += std::to_string(*p.ack_id);
  if (!p.payload.is_null()) out += boost::json::serialize(p.payload);
  return out;
}

std::string open_frame(std::string_view sid, long long ping_interval_ms, long long ping_timeout_ms,
                       const std::vector<std::string_view>& upgrades) {
  boost::json::array transports;
  for (auto transport : upgrades) transports.emplace_back(transport);
  boost::json::object o{{"sid", sid},
                        {"upgrades", std::move(transports)},
                        {"pingInterval", ping_interval_ms},
                        {"pingTimeout", ping_timeout_ms},
                        {"maxPayload", static_cast<long long>(kMaxPacket)}};
  return encode_engine(EngineType::Open, boost::json::serialize(o));
}

std::string connect_ok_frame(std::string_view sid) {
  return encode_engine(EngineType::Message,
                       encode_socket({SocketType::Connect, "/", std::nullopt, boost::json::object{{"sid", sid}}}));
}

std::string connect_error_frame(std::string_view message, std::string_view code, std::string_view nsp) {
  boost::json::object body{{"message", message}};
  if (!code.empty()) body["data"] = boost::json::object{{"code", code}};
  return encode_engine(EngineType::Message,
                       encode_socket({SocketType::ConnectError, std::string(nsp), std::nullopt, std::move(body)}));
}

std::string event_frame(std::string_view name, const boost::json::value& argument, std::optional<long long> ack_id) {
  return encode_engine(EngineType::Message,
                       encode_socket({SocketType::Event, "/", ack_id, boost::json::array{name, argument}}));
}

}  // namespace al::notifier::sio
