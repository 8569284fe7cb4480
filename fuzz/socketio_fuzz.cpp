// The notifier's Engine.IO 4 / socket.io 5 codec (notifier/src/protocol/socketio.cpp) on what a
// client sends in a WebSocket text frame. Checks: decoding never throws and accepts every
// well-formed Engine.IO type; a decoded Engine.IO packet encodes back to the same frame; a decoded
// socket.io packet with an object, array or no payload encodes to text that decodes to the same
// packet; the frames the server builds from client-supplied text (a connect_error echoing the
// client's namespace, events, the OPEN and CONNECT answers) decode as what they claim to be.
//
// Input: one text frame ("40{\"apiKey\":\"alk...\",\"since\":3}", "3", "43[]", ...).
#include <boost/json.hpp>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "protocol/socketio.hpp"

namespace {
namespace bj = boost::json;
namespace sio = al::notifier::sio;
using al::fuzz::shown;

// A WebSocket text frame is valid UTF-8 (Beast checks it), so the server only ever echoes valid
// UTF-8; Boost.JSON's parser checks it too.
bool valid_utf8(std::string_view s) {
  bj::error_code ec;
  bj::parse(bj::serialize(bj::value(bj::string(s))), ec);
  return !ec;
}

// Doubles aside: Boost.JSON 1.81 parses them to within an ulp, not exactly, so a double need not
// survive encode and decode (the notifier reads no double a client sends).
bool without_doubles(const bj::value& v) {
  if (v.is_double()) return false;
  if (v.is_array())
    for (const auto& item : v.as_array())
      if (!without_doubles(item)) return false;
  if (v.is_object())
    for (const auto& field : v.as_object())
      if (!without_doubles(field.value())) return false;
  return true;
}

// The first `limit` bytes of valid UTF-8, cut back to a code point boundary so the prefix stays
// valid UTF-8 (a cut inside a sequence leaves a lone lead byte no JSON parser accepts).
std::string_view utf8_prefix(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

sio::SocketPacket decode_server_frame(const std::string& frame) {
  auto engine = sio::decode_engine(frame);
  FUZZ_CHECK(std::holds_alternative<sio::EnginePacket>(engine), "server frame " + shown(frame));
  FUZZ_CHECK(std::get<sio::EnginePacket>(engine).type == sio::EngineType::Message);
  auto socket = sio::decode_socket(std::get<sio::EnginePacket>(engine).data);
  FUZZ_CHECK(std::holds_alternative<sio::SocketPacket>(socket),
             "server frame " + shown(frame) + ": " +
                 (std::holds_alternative<sio::DecodeError>(socket) ? std::get<sio::DecodeError>(socket).message : ""));
  return std::get<sio::SocketPacket>(socket);
}

void check_server_frames(const sio::SocketPacket& client, std::string_view text) {
  // The answer to a CONNECT on another namespace echoes it.
  auto refused = decode_server_frame(sio::connect_error_frame("Invalid namespace", "invalid_namespace", client.nsp));
  FUZZ_CHECK(refused.type == sio::SocketType::ConnectError && refused.nsp == client.nsp,
             "namespace " + shown(client.nsp));
  FUZZ_CHECK(refused.payload.at("data").at("code") == "invalid_namespace");

  std::string name(utf8_prefix(text, 64));
  bj::value argument = client.payload.is_null() || !without_doubles(client.payload) ? bj::value(bj::string(text))
                                                                                   : client.payload;
  auto event = decode_server_frame(sio::event_frame(name, argument, client.ack_id));
  FUZZ_CHECK(event.type == sio::SocketType::Event && event.ack_id == client.ack_id);
  FUZZ_CHECK(event.payload == (bj::array{bj::string(name), argument}), "event " + shown(name));

  auto ok = decode_server_frame(sio::connect_ok_frame(name));
  FUZZ_CHECK(ok.type == sio::SocketType::Connect && ok.payload.at("sid") == bj::string(name));
  auto open = sio::decode_engine(sio::open_frame(name, 25000, 20000));
  FUZZ_CHECK(std::holds_alternative<sio::EnginePacket>(open) &&
             std::get<sio::EnginePacket>(open).type == sio::EngineType::Open);
  FUZZ_CHECK(bj::parse(std::get<sio::EnginePacket>(open).data).at("sid") == bj::string(name));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto engine = sio::decode_engine(frame);
  if (std::holds_alternative<sio::DecodeError>(engine)) {
    FUZZ_CHECK(frame.empty() || frame[0] < '0' || frame[0] > '6', "rejected " + shown(frame));
    return 0;
  }
  const auto& packet = std::get<sio::EnginePacket>(engine);
  FUZZ_CHECK(sio::encode_engine(packet.type, packet.data) == frame, "Engine.IO packet " + shown(frame));
  if (packet.type != sio::EngineType::Message) return 0;

  auto socket = sio::decode_socket(packet.data);
  if (std::holds_alternative<sio::DecodeError>(socket)) return 0;
  const auto& p = std::get<sio::SocketPacket>(socket);
  FUZZ_CHECK(!p.nsp.empty() && p.nsp.size() <= 256 && p.nsp[0] == '/', "namespace " + shown(p.nsp));
  FUZZ_CHECK(!p.ack_id || *p.ack_id >= 0);
  if (p.type == sio::SocketType::Event)
    FUZZ_CHECK(p.payload.is_array() && !p.payload.as_array().empty() && p.payload.as_array()[0].is_string());

  if ((p.payload.is_null() || p.payload.is_object() || p.payload.is_array()) && without_doubles(p.payload)) {
    std::string encoded = sio::encode_socket(p);
    auto again = sio::decode_socket(encoded);
    FUZZ_CHECK(std::holds_alternative<sio::SocketPacket>(again),
               shown(packet.data) + " re-encoded as " + shown(encoded));
    const auto& q = std::get<sio::SocketPacket>(again);
    FUZZ_CHECK(q.type == p.type && q.nsp == p.nsp && q.ack_id == p.ack_id && q.payload == p.payload,
               shown(packet.data) + " re-encoded as " + shown(encoded) + " which decodes differently");
  }
  if (valid_utf8(frame)) check_server_frames(p, frame);
  return 0;
}
