#pragma once
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

// Engine.IO protocol 4 and Socket.IO protocol 5 text packets, as a stock socket.io-client v4
// speaks them: over a WebSocket one Engine.IO packet per text frame, over HTTP long-polling a
// payload of packets separated by the record separator. Pure: no I/O.
namespace al::notifier::sio {

inline constexpr std::size_t kMaxPacket = 1'000'000;  // the maxPayload announced in OPEN
// Separates the packets of a long-polling payload (Engine.IO 4: ASCII record separator).
inline constexpr char kRecordSeparator = '\x1e';

enum class EngineType { Open = 0, Close = 1, Ping = 2, Pong = 3, Message = 4, Upgrade = 5, Noop = 6 };

struct EnginePacket {
  EngineType type = EngineType::Noop;
  std::string data;  // after the type character
};

enum class SocketType {
  Connect = 0, Disconnect = 1, Event = 2, Ack = 3, ConnectError = 4, BinaryEvent = 5, BinaryAck = 6
};

struct SocketPacket {
  SocketType type = SocketType::Event;
  std::string nsp = "/";
  std::optional<long long> ack_id;
  boost::json::value payload;  // null when absent
};

struct DecodeError {
  std::string message;
};

// Decoding never throws: malformed or oversized input gives a DecodeError (close the socket).
std::variant<EnginePacket, DecodeError> decode_engine(std::string_view frame);
std::variant<SocketPacket, DecodeError> decode_socket(std::string_view data);

// A long-polling request body: every packet, in order. Empty packets, binary packets and bodies
// over maxPayload are errors, like the packets of a WebSocket.
std::variant<std::vector<EnginePacket>, DecodeError> decode_payload(std::string_view body);
// Joins encoded Engine.IO packets into one long-polling response body.
std::string encode_payload(const std::vector<std::string_view>& packets);

std::string encode_engine(EngineType type, std::string_view data = {});
std::string encode_socket(const SocketPacket& packet);  // without the Engine.IO "4" prefix

// Session ids carry the node that holds the session, so a gateway in front of several replicas
// can send every request of a long-polling session to it: "<node tag>.<random>". A tag is 1-32
// characters of [A-Za-z0-9-] (a pod name, "p8081").
inline constexpr char kSidTagSeparator = '.';
bool valid_node_tag(std::string_view tag);
std::string make_sid(std::string_view node_tag, std::string_view random);
// The tag of a sid made by make_sid; empty when it has none (or a malformed one).
std::string_view sid_node_tag(std::string_view sid);

// The frames this server sends. `upgrades`: the transports the session may move to (["websocket"]
// for a long-polling session; none on a WebSocket).
std::string open_frame(std::string_view sid, long long ping_interval_ms, long long ping_timeout_ms,
                       const std::vector<std::string_view>& upgrades = {});
std::string connect_ok_frame(std::string_view sid);                 // 40{"sid":…}
// 44{"message":…,"data":{"code":…}}: socket.io-client raises connect_error with err.message
// and err.data.code. A namespace other than "/" is answered on that namespace.
std::string connect_error_frame(std::string_view message, std::string_view code = {},
                                std::string_view nsp = "/");
// 42["name",arg], or 42<ack>["name",arg] asking the client to acknowledge.
std::string event_frame(std::string_view name, const boost::json::value& argument,
                        std::optional<long long> ack_id = std::nullopt);

}  // namespace al::notifier::sio
