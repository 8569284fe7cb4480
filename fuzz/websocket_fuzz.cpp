// The notifier's own WebSocket session (notifier/src/ws/agent_socket.cpp), driven exactly as
// GET /ws/agent hands it over after the upgrade: start_agent_socket() with the upgrade request
// and the connection, the notifier's default settings (SocketSettings{} = the notifier.ws.*
// defaults: read limit sio::kMaxPacket, no permessage-deflate, 5 sockets per agent), its Hub and
// an in-memory event log holding real events of the README walk-through (websocket_events.jsonl).
// No database: the log is the EventLog interface the module implements over its store.
//
// The connection is a Unix socketpair: the server end is assigned to the tcp::socket the
// notifier takes (setting TCP_NODELAY on it fails, and the notifier ignores that failure as it
// does for any socket option); the fuzzer's bytes are the client end's. Once the client has
// written them it shuts its sending side (EOF), after the server's `roomJoined` a live event is
// published through the hub.
//
// Input: byte 0 chooses the mode. Even: the rest is written as it is (the raw frame parser with
// the notifier's options: masking, limits, UTF-8, control frames). Odd: the rest is a list of
// client frames, each <first byte as on the wire: FIN, RSV, opcode><length: 2 bytes big endian>
// <payload>, which the harness masks and frames (so socket.io packets reach the session).
//
// Checks: the session ends once the client is gone (no socket left in the hub, none alive, the
// event loop out of work within 10 s); every server frame is unmasked, final and well formed;
// every text frame is an Engine.IO packet the codec decodes (OPEN first), every socket.io packet
// in it decodes; a close frame carries a code allowed on the wire and ends the server's output.
#include <sys/socket.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <functional>
#include <map>
#include <cstdint>
#include <string>
#include <vector>

#include "common/auth/api_key.hpp"
#include "common/log/log.hpp"
#include "delivery/socket_events.hpp"
#include "fuzz_check.hpp"
#include "protocol/socketio.hpp"
#include "ws/agent_socket.hpp"

namespace {
namespace net = boost::asio;
namespace bhttp = boost::beast::http;
namespace sio = al::notifier::sio;
using al::fuzz::shown;
using al::notifier::EventLog;
using al::notifier::LiveEvent;

// The client of the walk-through whose events the log holds; its key in the seed corpus was made
// with this secret (docs/fuzzing.md).
const std::string kAgent = "agt_ljjnp5zpzcj7lqydzmmw4fwfd4";
const std::map<std::string, std::string> kSecrets{{"k1", "fuzz-secret-k1-0123456789abcdef0123456789"}};

constexpr const char kEventsJsonl[] =
#include "websocket_events.jsonl.inc"
    ;

// As the notifier module renders a logged event for one agent (socket_frames_for).
LiveEvent render(long long event_id) {
  static const std::vector<std::string> events = [] {
    std::vector<std::string> out;
    std::string_view rest(kEventsJsonl);
    while (!rest.empty()) {
      std::string_view line = rest.substr(0, rest.find('\n'));
      rest.remove_prefix(std::min(rest.size(), line.size() + 1));
      if (!line.empty()) out.emplace_back(line);
    }
    return out;
  }();
  LiveEvent live;
  live.event_id = event_id;
  const std::string& json = events.at(static_cast<std::size_t>(event_id - 1) % events.size());
  for (auto& frame : al::notifier::socket_frames_for(json, kAgent, event_id)) {
    live.bytes += frame.size();
    live.frames.push_back(std::make_shared<const std::string>(std::move(frame)));
  }
  return live;
}

// Events 1..head for kAgent; the live event appends one more.
class ScriptedLog final : public EventLog {
 public:
  long long head = 3;
  Bounds bounds(const std::string& agent) override { return agent == kAgent ? Bounds{1, head} : Bounds{}; }
  std::vector<LiveEvent> after(const std::string& agent, long long after_id, std::size_t limit) override {
    std::vector<LiveEvent> out;
    if (agent != kAgent) return out;
    for (long long id = std::max(after_id + 1, 1LL); id <= head && out.size() < limit; ++id) out.push_back(render(id));
    return out;
  }
};

struct World {
  ScriptedLog log;
  al::auth::ApiKeyAuthority auth{kSecrets, "k1"};
  std::shared_ptr<al::notifier::SocketContext> context =
      std::make_shared<al::notifier::SocketContext>(log, auth, al::notifier::SocketSettings{}, 5, 50000);
};

World& world() {
  static World* w = new World;
  return *w;
}

// The upgrade request socket.io-client v4 sends (captured from a stock client).
bhttp::request<bhttp::string_body> upgrade_request() {
  bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/ws/agent/?EIO=4&transport=websocket", 11};
  req.set(bhttp::field::sec_websocket_version, "13");
  req.set(bhttp::field::sec_websocket_key, "KOvQkMGHIdbfpvb3s+puLg==");
  req.set(bhttp::field::connection, "Upgrade");
  req.set(bhttp::field::upgrade, "websocket");
  req.set(bhttp::field::sec_websocket_extensions, "permessage-deflate; client_max_window_bits");
  req.set(bhttp::field::host, "127.0.0.1:8080");
  return req;
}

std::string client_bytes(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  if ((data[0] & 1) == 0) return std::string(reinterpret_cast<const char*>(data + 1), size - 1);
  static constexpr std::uint8_t kMask[4] = {0x37, 0xfa, 0x21, 0x3d};
  std::string out;
  for (std::size_t i = 1; i + 3 <= size;) {
    std::uint8_t first = data[i];
    std::size_t length = static_cast<std::size_t>(data[i + 1]) << 8 | data[i + 2];
    i += 3;
    length = std::min(length, size - i);
    out.push_back(static_cast<char>(first));
    if (length < 126) {
      out.push_back(static_cast<char>(0x80 | length));
    } else {
      out.push_back(static_cast<char>(0x80 | 126));
      out.push_back(static_cast<char>(length >> 8));
      out.push_back(static_cast<char>(length & 0xff));
    }
    out.append(reinterpret_cast<const char*>(kMask), 4);
    for (std::size_t k = 0; k < length; ++k) out.push_back(static_cast<char>(data[i + k] ^ kMask[k % 4]));
    i += length;
  }
  return out;
}

// The server's side of the conversation: a 101, then unmasked frames.
void check_server_output(const std::string& out) {
  auto head_end = out.find("\r\n\r\n");
  FUZZ_CHECK(head_end != std::string::npos, "no complete upgrade response: " + shown(out));
  FUZZ_CHECK(out.rfind("HTTP/1.1 101 ", 0) == 0, shown(out.substr(0, head_end)));
  std::string_view rest = std::string_view(out).substr(head_end + 4);
  bool first_text = true, closed = false;
  while (!rest.empty()) {
    FUZZ_CHECK(!closed, "frames after the close frame: " + shown(rest));
    if (rest.size() < 2) return;  // cut short by the connection's end
    auto b0 = static_cast<std::uint8_t>(rest[0]), b1 = static_cast<std::uint8_t>(rest[1]);
    FUZZ_CHECK((b0 & 0x80) && !(b0 & 0x70), "server frame header " + shown(rest.substr(0, 2)));
    FUZZ_CHECK(!(b1 & 0x80), "a masked server frame");
    std::size_t length = b1 & 0x7f, at = 2;
    if (length == 126) {
      if (rest.size() < 4) return;
      length = static_cast<std::uint8_t>(rest[2]) << 8 | static_cast<std::uint8_t>(rest[3]);
      at = 4;
    } else if (length == 127) {
      if (rest.size() < 10) return;
      length = 0;
      for (int i = 2; i < 10; ++i) length = length << 8 | static_cast<std::uint8_t>(rest[i]);
      at = 10;
    }
    if (rest.size() - at < length) return;  // cut short
    std::string_view payload = rest.substr(at, length);
    rest.remove_prefix(at + length);
    switch (b0 & 0x0f) {
      case 0x1: {
        auto engine = sio::decode_engine(payload);
        FUZZ_CHECK(std::holds_alternative<sio::EnginePacket>(engine), "server text " + shown(payload));
        const auto& packet = std::get<sio::EnginePacket>(engine);
        FUZZ_CHECK(!first_text || packet.type == sio::EngineType::Open, "first server packet " + shown(payload));
        first_text = false;
        if (packet.type == sio::EngineType::Message)
          FUZZ_CHECK(std::holds_alternative<sio::SocketPacket>(sio::decode_socket(packet.data)),
                     "server socket.io packet " + shown(payload));
        break;
      }
      case 0x8: {
        FUZZ_CHECK(payload.size() != 1 && payload.size() <= 125, "close payload " + shown(payload));
        if (payload.size() >= 2) {
          unsigned code = static_cast<std::uint8_t>(payload[0]) << 8 | static_cast<std::uint8_t>(payload[1]);
          // 1005, 1006 and 1015 never go on the wire (RFC 6455 §7.4.1); the server's own codes are
          // 1000-1011 and 4000-4999, a reply to the client's close may echo the client's code.
          FUZZ_CHECK(code >= 1000 && code != 1005 && code != 1006 && code != 1015, "close code " + std::to_string(code));
        }
        closed = true;
        break;
      }
      case 0x9:
      case 0xa:
        FUZZ_CHECK(payload.size() <= 125);
        break;
      default:
        FUZZ_CHECK(false, "server opcode " + std::to_string(b0 & 0x0f));
    }
  }
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::signal(SIGPIPE, SIG_IGN);
  al::log::set_level(al::log::Level::error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  World& w = world();
  w.log.head = 3;
  int fds[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);

  std::string received;
  {
    net::io_context io(1);
    net::ip::tcp::socket server(io);
    server.assign(net::ip::tcp::v4(), fds[0]);
    net::local::stream_protocol::socket client(io);
    client.assign(net::local::stream_protocol(), fds[1]);

    al::notifier::start_agent_socket(std::move(server), upgrade_request(), w.context);

    std::string bytes = client_bytes(data, size);
    net::async_write(client, net::buffer(bytes), [&](boost::system::error_code, std::size_t) {
      boost::system::error_code ignored;
      client.shutdown(net::socket_base::shutdown_send, ignored);
    });
    bool published = false;
    std::array<char, 16384> buffer;
    std::function<void()> read = [&] {
      client.async_read_some(net::buffer(buffer), [&](boost::system::error_code ec, std::size_t n) {
        received.append(buffer.data(), n);
        if (!published && received.find("roomJoined") != std::string::npos) {
          published = true;
          w.log.head = 4;
          w.context->hub.publish(kAgent, std::make_shared<const LiveEvent>(render(4)));
        }
        if (!ec) read();
      });
    };
    read();
    io.run_for(std::chrono::seconds(10));
    FUZZ_CHECK(io.stopped(), "the session is still running 10 s after the client's EOF");
  }
  FUZZ_CHECK(w.context->hub.size() == 0, "a socket is still attached to the hub");
  FUZZ_CHECK(w.context->stats.connected.load() == 0, "a socket outlived its session");
  check_server_output(received);
  return 0;
}
