#pragma once
#include <functional>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/auth/api_key.hpp"
#include "common/http/message.hpp"
#include "ws/hub.hpp"

namespace al::notifier {

// The read side of the per-agent log, as the sockets need it.
class EventLog {
 public:
  virtual ~EventLog() = default;
  struct Bounds {
    long long oldest = 0;  // lowest event_id still retained (0: none)
    long long head = 0;    // last event_id ever assigned (0: none)
  };
  virtual Bounds bounds(const std::string& agent_id) = 0;
  // At most `limit` events after `after_event_id`, in order, rendered for the agent.
  virtual std::vector<LiveEvent> after(const std::string& agent_id, long long after_event_id,
                                       std::size_t limit) = 0;
};

struct SocketSettings {
  std::chrono::milliseconds ping_interval{25000};
  std::chrono::milliseconds ping_timeout{20000};
  std::chrono::milliseconds connect_timeout{10000};  // OPEN → socket.io CONNECT
  std::chrono::milliseconds close_timeout{3000};     // a graceful close, then the TCP close
  // Unsent bytes per socket. A live event that does not fit is not queued: the socket falls
  // back to reading the log as its queue drains (bounded memory, nothing lost).
  std::size_t max_queue_bytes = 1 << 20;
  // A socket whose write has made no progress for this long cannot keep up: it is closed
  // (slow_consumer) and resumes with `since`.
  std::chrono::milliseconds stall_timeout{10000};
  std::size_t backlog_page = 256;                    // events read from the log at a time
  std::size_t socket_send_buffer = 0;                // SO_SNDBUF; 0 keeps the kernel's default
};

struct SocketStats {
  std::atomic<long long> connected{0};
  std::atomic<long long> accepted{0};
  std::atomic<long long> refused{0};
  std::atomic<long long> messages_sent{0};
  std::atomic<long long> bytes_sent{0};
  std::atomic<long long> backlog_events{0};
  std::atomic<long long> slow_consumer_closes{0};
  std::atomic<long long> queue_overflows{0};
  std::atomic<long long> ping_timeouts{0};
  std::atomic<long long> polling_sessions{0};  // sessions on the long-polling transport now
  std::atomic<long long> upgrades{0};          // long-polling sessions moved to a WebSocket
};

class AgentSession;

// Shared by every socket (held by each, so a socket never outlives what it uses).
struct SocketContext {
  SocketContext(EventLog& log, const auth::ApiKeyAuthority& auth, SocketSettings settings,
                std::size_t max_per_agent, std::size_t max_total, std::string node_tag = "n")
      : hub(max_per_agent, max_total), log(log), auth(auth), settings(settings), max_total(max_total),
        node_tag(std::move(node_tag)) {}
  Hub hub;
  EventLog& log;
  const auth::ApiKeyAuthority& auth;
  SocketSettings settings;
  std::size_t max_total;  // sockets, connected or still handshaking
  SocketStats stats;
  // Runs a read of the log off the I/O thread (the worker pool); the socket resumes on its own
  // strand with the result. Empty: the read runs at once (tests with an in-memory log).
  std::function<void(std::function<void()>)> read_on;
  // Every session id starts with this tag (see sio::make_sid): the gateway routes a long-polling
  // session's requests to the replica that holds it.
  std::string node_tag;
  // A new strand for a long-polling session (an I/O thread's; its requests come and go, the
  // session stays). Empty: a strand of Asio's system executor (tests).
  std::function<boost::asio::any_io_executor()> make_strand;

  // Long-polling sessions by sid, until they end (upgraded ones too: the WebSocket is theirs).
  std::mutex sessions_mutex;
  std::unordered_map<std::string, std::shared_ptr<AgentSession>> sessions;
};

// Starts one Engine.IO 4 / socket.io 5 session over the WebSocket upgrade of `request`:
// OPEN, then the client's CONNECT with auth {apiKey, since}, `roomJoined`, the logged events
// after `since`, then live events; heartbeats; a bounded send queue; close with a reason.
void start_agent_socket(boost::asio::ip::tcp::socket socket,
                        boost::beast::http::request<boost::beast::http::string_body> request,
                        std::shared_ptr<SocketContext> context);

// The same session over Engine.IO long-polling (`transport=polling`), already checked for
// EIO=4: a GET without sid opens a session (answers OPEN, offering the websocket upgrade), a GET
// with it long-polls for what the session has queued, a POST carries the client's packets.
void serve_polling(const http::Request& request, const http::Responder& reply,
                   const std::shared_ptr<SocketContext>& context);

// Whether `sid` names a long-polling session that may still move to a WebSocket.
bool polling_session_exists(SocketContext& context, const std::string& sid);
// The WebSocket upgrade of long-polling session `sid` (transport=websocket&sid=…): the probe,
// then the session continues on it with everything it had. An unknown sid closes the socket.
void upgrade_polling_session(boost::asio::ip::tcp::socket socket,
                             boost::beast::http::request<boost::beast::http::string_body> request,
                             const std::string& sid, const std::shared_ptr<SocketContext>& context);

// Asks every long-polling session to close for `reason` (its held poll is answered at once: a
// draining server does not wait for it). WebSocket sessions are closed through the hub.
void close_polling_sessions(SocketContext& context, CloseReason reason);

}  // namespace al::notifier
