#include "ws/agent_socket.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <deque>
#include <optional>

#include "common/http/message.hpp"
#include "common/log/log.hpp"
#include "common/util/ids.hpp"
#include "protocol/socketio.hpp"

namespace al::notifier {
namespace {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace bj = boost::json;
using tcp = net::ip::tcp;

// Close codes a client sees on the WebSocket (RFC 6455 §7.4; 4000-4999 are ours).
constexpr std::uint16_t kCloseSlowConsumer = 4008;
constexpr std::uint16_t kCloseKeyRevoked = 4401;

struct CloseSpec {
  std::uint16_t code;
  std::string_view name;  // "reason" in the closing notice
  std::string_view text;  // WebSocket close reason (≤ 123 bytes)
};

CloseSpec spec_for(CloseReason reason) {
  switch (reason) {
    case CloseReason::Shutdown:
      return {websocket::close_code::going_away, "shutdown", "server shutting down; reconnect with since"};
    case CloseReason::SlowConsumer:
      return {kCloseSlowConsumer, "slow_consumer", "send queue full; reconnect with since"};
    case CloseReason::PingTimeout:
      return {websocket::close_code::policy_error, "ping_timeout", "no pong within pingTimeout"};
    case CloseReason::ConnectTimeout:
      return {websocket::close_code::policy_error, "connect_timeout", "no socket.io CONNECT in time"};
    case CloseReason::Refused:
      return {websocket::close_code::policy_error, "refused", "connection refused; see connect_error"};
    case CloseReason::Protocol:
      return {websocket::close_code::protocol_error, "protocol_error", "malformed Engine.IO/socket.io packet"};
    case CloseReason::ClientLeft:
      return {websocket::close_code::normal, "client_left", "bye"};
    case CloseReason::KeyRevoked:
      return {kCloseKeyRevoked, "key_revoked", "API key revoked; connect with another key"};
  }
  return {websocket::close_code::normal, "closed", ""};
}

// One WebSocket of a session: the one it started on, or the one a long-polling session probes and
// moves to. Runs on its session's strand.
struct WsLink {
  explicit WsLink(tcp::socket socket) : ws(std::move(socket)) {}
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer in;
  net::cancellation_signal read_cancel;
  net::cancellation_signal close_cancel;
  bool busy = false;  // a write of the link's own (the probe's answer) is in flight
  bool close_started = false;
};

constexpr std::string_view kPollingContentType = "text/plain; charset=UTF-8";

http::Response polling_text(std::string body) {
  return http::Response::text(200, std::move(body), std::string(kPollingContentType));
}

// After the CONNECT, a long-polling session's sid is the only credential its requests carry:
// 128 random bits, like an API key's.
constexpr std::size_t kSidRandomBytes = 16;

http::Response unknown_session() {
  return http::Response::error(400, "Session ID unknown: the session ended (or never existed); connect again",
                               "unknown_session");
}
}  // namespace

// One Engine.IO 4 / socket.io 5 session of one client, whatever carries it: the socket.io layer
// (CONNECT and auth, roomJoined, backlog, live events, acks, heartbeats, closing) puts Engine.IO
// packets into one bounded queue, and the transport in use drains it: a WebSocket writes one
// packet per message, long-polling answers each GET with what is queued. A long-polling session
// may move to a WebSocket (the probe); the queue, the cursor in the log and the room stay.
class AgentSession final : public Subscriber, public std::enable_shared_from_this<AgentSession> {
 public:
  AgentSession(net::any_io_executor strand, std::shared_ptr<SocketContext> context, std::string sid)
      : strand_(std::move(strand)),
        context_(std::move(context)),
        settings_(context_->settings),
        sid_(std::move(sid)),
        heartbeat_(strand_),
        deadline_(strand_) {
    ++context_->stats.connected;
  }

  ~AgentSession() override {
    if (attached_) context_->hub.detach(agent_id_, this);
    --context_->stats.connected;
  }

  const std::string& sid() const { return sid_; }

  // --- starting ------------------------------------------------------------------------------

  // On the socket's strand (this session's).
  void start_websocket(tcp::socket socket, beast::http::request<beast::http::string_body> request) {
    transport_ = Transport::WebSocket;
    ws_ = make_link(std::move(socket));
    auto link = ws_;
    // Beast reads the request while it answers it: kept until the handshake is done.
    auto upgrade = std::make_shared<beast::http::request<beast::http::string_body>>(std::move(request));
    link->ws.async_accept(*upgrade, [self = shared_from_this(), link, upgrade](beast::error_code ec) {
      if (ec) return self->finish();
      self->phase_ = Phase::AwaitConnect;
      self->enqueue(std::make_shared<const std::string>(
          sio::open_frame(self->sid_, self->settings_.ping_interval.count(), self->settings_.ping_timeout.count())));
      self->begin_session();
      self->do_read(link);
    });
  }

  // Answers the handshake GET with OPEN; the session waits for its first poll.
  void start_polling(http::Responder reply) {
    net::post(strand_, [self = shared_from_this(), reply = std::move(reply)] {
      self->transport_ = Transport::Polling;
      self->phase_ = Phase::AwaitConnect;
      ++self->context_->stats.polling_sessions;
      self->counted_polling_ = true;
      self->last_poll_ = std::chrono::steady_clock::now();
      reply(polling_text(sio::open_frame(self->sid_, self->settings_.ping_interval.count(),
                                         self->settings_.ping_timeout.count(), {"websocket"})));
      self->begin_session();
    });
  }

  // --- long-polling requests (any thread) ----------------------------------------------------

  void poll(http::Responder reply) {
    net::post(strand_, [self = shared_from_this(), reply = std::move(reply)]() mutable { self->on_poll(std::move(reply)); });
  }

  void post(std::string body, http::Responder reply) {
    net::post(strand_, [self = shared_from_this(), body = std::move(body), reply = std::move(reply)] {
      self->on_post(body, reply);
    });
  }

  // The WebSocket of an upgrade, from an HTTP session's strand: the socket moves to this strand.
  void probe(tcp::socket socket, beast::http::request<beast::http::string_body> request) {
    beast::error_code ec;
    auto protocol = socket.local_endpoint(ec).protocol();
    auto handle = ec ? -1 : socket.release(ec);
    if (ec) return;  // the socket closes as it goes
    tcp::socket moved(strand_, protocol, handle);
    net::post(strand_, [self = shared_from_this(), socket = std::move(moved), request = std::move(request)]() mutable {
      self->on_probe(std::move(socket), std::move(request));
    });
  }

  // --- Subscriber ----------------------------------------------------------------------------

  void deliver(std::shared_ptr<const LiveEvent> event) override {
    net::post(strand_, [self = shared_from_this(), event = std::move(event)] { self->on_live(*event); });
  }

  void close_for(CloseReason reason) override {
    net::post(strand_, [self = shared_from_this(), reason] { self->close_gracefully(reason); });
  }

  void resync() override {
    net::post(strand_, [self = shared_from_this()] { self->on_resync(); });
  }

 private:
  // Joining: attached to the hub, waiting for the log's bounds (read on a worker).
  enum class Phase { Handshake, AwaitConnect, Joining, Connected };
  enum class Transport { WebSocket, Polling };

  struct Out {
    std::shared_ptr<const std::string> frame;
    long long event_id = 0;  // 0: not an event of the log
  };

  std::shared_ptr<WsLink> make_link(tcp::socket socket) {
    beast::error_code ignored;
    // Events are small and latency matters: no Nagle delay behind a delayed ACK.
    socket.set_option(tcp::no_delay(true), ignored);
    if (settings_.socket_send_buffer > 0) {  // a hint: the kernel may round it
      socket.set_option(net::socket_base::send_buffer_size(static_cast<int>(settings_.socket_send_buffer)), ignored);
    }
    auto link = std::make_shared<WsLink>(std::move(socket));
    beast::get_lowest_layer(link->ws).expires_never();  // the websocket stream keeps its own timeouts
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = settings_.close_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();  // Engine.IO heartbeats decide liveness
    timeouts.keep_alive_pings = false;
    link->ws.set_option(timeouts);
    link->ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "agentlancer"); }));
    link->ws.read_message_max(sio::kMaxPacket);
    link->ws.auto_fragment(false);
    link->ws.text(true);
    return link;
  }

  void begin_session() {
    flush();
    arm_heartbeat(settings_.ping_interval);
    arm_deadline(settings_.connect_timeout, [this] {
      if (phase_ == Phase::AwaitConnect) close_gracefully(CloseReason::ConnectTimeout);
    });
  }

  // --- long-polling --------------------------------------------------------------------------

  void on_poll(http::Responder reply) {
    if (finished_) return reply(unknown_session());
    if (transport_ != Transport::Polling)
      return reply(http::Response::error(400, "This session moved to the websocket transport", "transport_mismatch"));
    if (poll_) {
      // Engine.IO: two GETs at once mean a confused client; the session ends (both see that).
      reply(http::Response::error(400, "Overlapping polling requests: the session is closed", "bad_request"));
      return finish();
    }
    last_poll_ = std::chrono::steady_clock::now();
    poll_ = std::move(reply);
    // While a probe is under way the client waits for this poll to end before it upgrades.
    if (!queue_.empty() || upgrading_) answer_poll();
  }

  void on_post(const std::string& body, const http::Responder& reply) {
    if (finished_) return reply(unknown_session());
    if (transport_ != Transport::Polling)
      return reply(http::Response::error(400, "This session moved to the websocket transport", "transport_mismatch"));
    if (body.size() > sio::kMaxPacket) {
      reply(http::Response::error(413, "Payload larger than maxPayload (1000000 bytes)", "payload_too_large"));
      return close_gracefully(CloseReason::Protocol);
    }
    auto decoded = sio::decode_payload(body);
    if (auto* error = std::get_if<sio::DecodeError>(&decoded)) {
      reply(http::Response::error(400, "Malformed Engine.IO payload: " + error->message, "bad_request"));
      return close_gracefully(CloseReason::Protocol);
    }
    reply(polling_text("ok"));
    for (auto& packet : std::get<std::vector<sio::EnginePacket>>(decoded)) {
      if (finished_) break;
      handle_engine(packet);
    }
  }

  // Answers the held GET with what is queued (up to maxPayload; at least one packet), or a noop
  // when nothing is (the probe wants the poll to end).
  void answer_poll() {
    if (!poll_) return;
    auto reply = std::move(poll_);
    poll_ = nullptr;
    std::vector<std::string_view> packets;
    std::vector<std::shared_ptr<const std::string>> held;  // keeps the views valid
    std::size_t bytes = 0;
    bool sent_close = false;
    while (!queue_.empty() && (packets.empty() || bytes + queue_.front().frame->size() + 1 <= sio::kMaxPacket)) {
      // CLOSE goes alone, in the poll after the last packets: socket.io-client hands a payload's
      // messages on a tick later, and would drop them when a CLOSE in the same payload came first.
      if (!packets.empty() && queue_.front().frame == close_packet_) break;
      Out out = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= out.frame->size();
      bytes += out.frame->size() + 1;
      if (out.event_id > written_upto_) written_upto_ = out.event_id;
      sent_close = sent_close || out.frame.get() == close_packet_.get();
      packets.push_back(*out.frame);
      held.push_back(std::move(out.frame));
    }
    if (packets.empty()) packets.push_back(kNoop);
    std::string body = sio::encode_payload(packets);
    context_->stats.messages_sent += static_cast<long long>(packets.size());
    context_->stats.bytes_sent += static_cast<long long>(body.size());
    reply(polling_text(std::move(body)));
    if (sent_close) return finish();
    if (catching_up_) pump_backlog();
  }

  // --- the upgrade ---------------------------------------------------------------------------

  void on_probe(tcp::socket socket, beast::http::request<beast::http::string_body> request) {
    if (closing_ || finished_ || transport_ != Transport::Polling || probe_) {
      beast::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    probe_ = make_link(std::move(socket));
    auto link = probe_;
    auto upgrade = std::make_shared<beast::http::request<beast::http::string_body>>(std::move(request));
    link->ws.async_accept(*upgrade, [self = shared_from_this(), link, upgrade](beast::error_code ec) {
      if (ec) return self->drop_probe(link);
      self->do_read(link);
    });
  }

  // Engine.IO: "2probe" is answered "3probe"; the held poll ends (noop) so the client can pause
  // polling; then "5" moves the session to this WebSocket. Anything else ends the probe only.
  void handle_probe(const std::shared_ptr<WsLink>& link, std::string_view frame) {
    if (frame == "2probe" && !upgrading_) {
      upgrading_ = true;
      link->busy = true;
      link->ws.async_write(net::buffer(kProbeAnswer), [self = shared_from_this(), link](beast::error_code ec, std::size_t) {
        link->busy = false;
        if (ec) return self->drop_probe(link);
        self->flush();
      });
      answer_poll();
      return;
    }
    if (frame == "5" && upgrading_) {
      transport_ = Transport::WebSocket;
      ws_ = std::move(probe_);
      probe_.reset();
      upgrading_ = false;
      if (counted_polling_) --context_->stats.polling_sessions;
      counted_polling_ = false;
      ++context_->stats.upgrades;
      if (poll_) {  // a poll sent meanwhile learns nothing more comes that way
        auto reply = std::move(poll_);
        poll_ = nullptr;
        reply(polling_text(std::string(kNoop)));
      }
      return flush();
    }
    drop_probe(link);
  }

  void drop_probe(const std::shared_ptr<WsLink>& link) {
    if (probe_ != link) return;
    probe_.reset();
    upgrading_ = false;
    end_link(link);
  }

  // --- reading (a WebSocket) -----------------------------------------------------------------

  void do_read(const std::shared_ptr<WsLink>& link) {
    link->ws.async_read(link->in, net::bind_cancellation_slot(link->read_cancel.slot(), [self = shared_from_this(), link](
                                                                                           beast::error_code ec, std::size_t) {
                          self->on_read(link, ec);
                        }));
  }

  void on_read(const std::shared_ptr<WsLink>& link, beast::error_code ec) {
    if (link == probe_) {
      if (ec || !link->ws.got_text()) return drop_probe(link);
      std::string frame = beast::buffers_to_string(link->in.data());
      link->in.consume(link->in.size());
      handle_probe(link, frame);
      if (link == probe_ || link == ws_) do_read(link);
      return;
    }
    if (link != ws_) return;  // a link this session has let go of
    if (ec) return finish();  // closed by the peer, a read error, or finish() already ran
    if (finished_) return;
    if (!link->ws.got_text()) {
      link->in.consume(link->in.size());
      return close_gracefully(CloseReason::Protocol);
    }
    std::string_view frame(static_cast<const char*>(link->in.data().data()), link->in.size());
    auto decoded = sio::decode_engine(frame);
    link->in.consume(link->in.size());
    if (std::holds_alternative<sio::DecodeError>(decoded)) return close_gracefully(CloseReason::Protocol);
    handle_engine(std::get<sio::EnginePacket>(decoded));
    // Keep reading while closing, until async_close reads for itself (to the peer's close frame): a
    // read started after it could deadlock with it (see finish()).
    if (!finished_ && !link->close_started) do_read(link);
  }

  // --- Engine.IO and socket.io ---------------------------------------------------------------

  void handle_engine(const sio::EnginePacket& packet) {
    switch (packet.type) {
      case sio::EngineType::Pong:
        awaiting_pong_ = false;
        if (!closing_) arm_heartbeat(settings_.ping_interval);
        return;
      case sio::EngineType::Ping:  // not sent by v4 clients, but answering costs nothing
        enqueue(std::make_shared<const std::string>(sio::encode_engine(sio::EngineType::Pong, packet.data)), 0, true);
        return flush();
      case sio::EngineType::Close:
        // A polling client that said goodbye polls no more: nothing left to tell it.
        if (transport_ == Transport::Polling) return finish();
        return close_gracefully(CloseReason::ClientLeft);
      case sio::EngineType::Message:
        return handle_socket(packet.data);
      default:
        return;  // upgrade/noop outside a probe: nothing to do
    }
  }

  void handle_socket(std::string_view data) {
    if (closing_) return;
    auto decoded = sio::decode_socket(data);
    if (std::holds_alternative<sio::DecodeError>(decoded)) return close_gracefully(CloseReason::Protocol);
    auto& packet = std::get<sio::SocketPacket>(decoded);
    switch (packet.type) {
      case sio::SocketType::Connect:
        return on_connect(packet);
      case sio::SocketType::Disconnect:
        return close_gracefully(CloseReason::ClientLeft);
      case sio::SocketType::Ack:
        if (packet.ack_id && *packet.ack_id > acked_upto_) acked_upto_ = *packet.ack_id;
        return;
      default:
        return;  // the server takes no events from clients
    }
  }

  // --- socket.io CONNECT ---------------------------------------------------------------------

  void on_connect(const sio::SocketPacket& packet) {
    if (phase_ != Phase::AwaitConnect) return;
    if (packet.nsp != "/") {
      // The client may still connect to "/" on this session.
      enqueue(std::make_shared<const std::string>(sio::connect_error_frame("Invalid namespace", "invalid_namespace", packet.nsp)));
      return flush();
    }
    const bj::object* auth = packet.payload.is_object() ? &packet.payload.as_object() : nullptr;
    std::string api_key;
    if (auth) {
      if (auto key = auth->if_contains("apiKey"); key && key->is_string()) api_key = std::string(key->as_string());
    }
    if (api_key.empty()) return refuse("Missing API key: pass auth: { apiKey }", "unauthorized");
    auto verified = context_->auth.verify_key(api_key);
    if (!verified) return refuse("Invalid API key", "unauthorized");
    const std::string* agent = &verified->agent_id;

    std::optional<long long> since;
    if (auth) {
      if (auto value = auth->if_contains("since"); value && !value->is_null()) {
        long long parsed = -1;
        if (value->is_int64()) parsed = value->as_int64();
        else if (value->is_uint64() && value->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) parsed = static_cast<long long>(value->as_uint64());
        else if (value->is_string() && !value->as_string().empty() && value->as_string().size() <= 18 &&
                 value->as_string().find_first_not_of("0123456789") == bj::string::npos)
          parsed = std::stoll(std::string(value->as_string()));
        if (parsed < 0) return refuse("Invalid since: must be an event_id (an integer >= 0)", "invalid_since");
        since = parsed;
      }
    }

    switch (context_->hub.attach(*agent, shared_from_this(), verified->key_id)) {
      case Hub::Attach::Ok:
        break;
      case Hub::Attach::AgentLimit:
        return refuse("Too many connections for this agent (limit " + std::to_string(context_->hub.max_per_agent()) +
                          "); close one and retry",
                      "connection_limit");
      case Hub::Attach::TotalLimit:
        return refuse("Server is at its connection limit; retry later", "server_busy");
      case Hub::Attach::Closed:
        return refuse("Server is shutting down; reconnect with since", "shutting_down");
    }
    attached_ = true;
    agent_id_ = *agent;
    // Revoked between the check above and the attach: the revocation's close_key missed this socket.
    if (!context_->auth.verify_key(api_key)) return close_gracefully(CloseReason::KeyRevoked);
    phase_ = Phase::Joining;
    deadline_generation_++;  // the connect deadline no longer applies
    deadline_.cancel();
    ++context_->stats.accepted;

    // Attached before reading the log's bounds: any event committed from now on is announced
    // to this socket (on_live notes it while joining), any earlier one is in the log; on_live
    // skips what the backlog already covered.
    read_log<EventLog::Bounds>([log = &context_->log, agent = agent_id_] { return log->bounds(agent); },
                               [this, since](EventLog::Bounds bounds) { on_joined(bounds, since); });
  }

  void on_joined(EventLog::Bounds bounds, std::optional<long long> since) {
    if (closing_ || phase_ != Phase::Joining) return;
    phase_ = Phase::Connected;
    cursor_ = since ? std::min(*since, bounds.head) : bounds.head;
    known_head_ = std::max(known_head_, bounds.head);
    bool missed = since && bounds.oldest > 0 && bounds.oldest > *since + 1;
    enqueue(std::make_shared<const std::string>(sio::connect_ok_frame(sid_)));
    bj::object joined{{"agent_id", agent_id_},
                      {"since", since ? bj::value(*since) : bj::value(nullptr)},
                      {"head_event_id", bounds.head},
                      {"oldest_event_id", bounds.oldest},
                      {"missed_beyond_retention", missed}};
    enqueue(std::make_shared<const std::string>(sio::event_frame("roomJoined", joined, 0)));
    catching_up_ = cursor_ < known_head_ || resync_when_joined_;
    pump_backlog();
    flush();
    watch_progress();
  }

  // Reads the log on a worker (never on this I/O thread), then continues on this session's strand
  // with the result; a failed read closes the session (the client resumes with `since`).
  template <class R>
  void read_log(std::function<R()> read, std::function<void(R)> then) {
    auto run = [self = shared_from_this(), read = std::move(read), then = std::move(then)]() mutable {
      auto result = std::make_shared<std::optional<R>>();
      std::string error;
      try {
        result->emplace(read());
      } catch (const std::exception& e) {
        error = e.what();
      }
      net::post(self->strand_, [self, result, error, then = std::move(then)] {
        if (!*result) {
          log::error("event log read failed", {{"agent_id", self->agent_id_}, {"what", error}});
          return self->close_gracefully(CloseReason::Shutdown);
        }
        then(std::move(**result));
      });
    };
    if (context_->read_on) context_->read_on(std::move(run));
    else run();
  }

  // A consumer that takes nothing for stall_timeout cannot keep up: on a WebSocket a write that
  // has not completed, on long-polling queued packets no GET came for. It is closed and resumes
  // with `since`.
  void watch_progress() {
    arm_deadline(settings_.stall_timeout / 4, [this] {
      if (closing_ || finished_) return;
      auto now = std::chrono::steady_clock::now();
      bool stalled = transport_ == Transport::WebSocket
                         ? writing_ && now - write_started_ > settings_.stall_timeout
                         : !queue_.empty() && !poll_ && now - last_poll_ > settings_.stall_timeout;
      if (stalled) {
        ++context_->stats.slow_consumer_closes;
        log::warn("slow socket consumer disconnected",
                  {{"agent_id", agent_id_}, {"transport", transport_ == Transport::WebSocket ? "websocket" : "polling"},
                   {"queued_bytes", static_cast<long long>(queued_bytes_)},
                   {"behind_by", known_head_ - written_upto_}, {"resume_since", written_upto_}});
        return close_gracefully(CloseReason::SlowConsumer);
      }
      watch_progress();
    });
  }

  void refuse(const std::string& message, std::string_view code) {
    ++context_->stats.refused;
    close_gracefully(CloseReason::Refused,
                     std::make_shared<const std::string>(sio::connect_error_frame(message, code)));
  }

  // --- events --------------------------------------------------------------------------------

  void on_live(const LiveEvent& event) {
    if (phase_ == Phase::Joining && !closing_) {
      known_head_ = std::max(known_head_, event.event_id);  // read from the log once joined
      return;
    }
    if (phase_ != Phase::Connected || closing_) return;
    if (event.event_id > known_head_) known_head_ = event.event_id;
    if (catching_up_ || event.event_id <= cursor_) return;  // the backlog covers it
    if (event.event_id != cursor_ + 1) {
      catching_up_ = true;  // a gap (should not happen): read it from the log
      pump_backlog();
      return flush();
    }
    if (queued_bytes_ + event.bytes > settings_.max_queue_bytes) {
      // A burst bigger than the queue: take the rest from the log as the queue drains.
      ++context_->stats.queue_overflows;
      catching_up_ = true;
      return;
    }
    for (const auto& frame : event.frames) enqueue(frame, event.event_id);
    cursor_ = event.event_id;
    flush();
  }

  // Joining sessions read the log's head once joined anyway; a connected one reads after its
  // cursor (one page, or to the end if there is more) and is done when the read comes back short.
  void on_resync() {
    if (closing_) return;
    if (phase_ == Phase::Joining) {
      resync_when_joined_ = true;  // its bounds may have been read before the lost event
      return;
    }
    if (phase_ != Phase::Connected) return;
    catching_up_ = true;
    pump_backlog();
    flush();
  }

  // Reads the log after cursor_ a page at a time (one read in flight) while the queue has room;
  // stops catching up once it has read to the end and no newer event has been announced.
  void pump_backlog() {
    if (reading_ || !catching_up_ || closing_ || queued_bytes_ >= settings_.max_queue_bytes / 2) return;
    reading_ = true;
    read_log<std::vector<LiveEvent>>(
        [log = &context_->log, agent = agent_id_, after = cursor_, limit = settings_.backlog_page] {
          return log->after(agent, after, limit);
        },
        [this](std::vector<LiveEvent> page) { on_backlog_page(std::move(page)); });
  }

  void on_backlog_page(std::vector<LiveEvent> page) {
    reading_ = false;
    if (closing_) return;
    std::size_t read = page.size();
    for (const auto& event : page) {
      if (event.event_id <= cursor_) continue;
      for (const auto& frame : event.frames) enqueue(frame, event.event_id);
      cursor_ = event.event_id;
    }
    context_->stats.backlog_events += static_cast<long long>(read);
    if (read < settings_.backlog_page) {
      if (read == 0 && known_head_ > cursor_) cursor_ = known_head_;  // trimmed meanwhile
      if (known_head_ <= cursor_) catching_up_ = false;
    }
    pump_backlog();
    flush();
  }

  // --- writing -------------------------------------------------------------------------------

  void enqueue(std::shared_ptr<const std::string> frame, long long event_id = 0, bool urgent = false) {
    queued_bytes_ += frame->size();
    if (urgent) queue_.push_front({std::move(frame), event_id});
    else queue_.push_back({std::move(frame), event_id});
  }

  // Hands what is queued to the transport in use.
  void flush() {
    if (finished_ || phase_ == Phase::Handshake) return;
    if (transport_ == Transport::Polling) {
      if (poll_ && !queue_.empty()) answer_poll();
      return;
    }
    if (!ws_ || writing_ || ws_->busy) return;
    if (queue_.empty()) {
      if (close_after_writes_) start_close();
      return;
    }
    writing_ = true;
    write_started_ = std::chrono::steady_clock::now();
    current_ = std::move(queue_.front());
    queue_.pop_front();
    if (current_.event_id > written_upto_) written_upto_ = current_.event_id;
    ws_->ws.async_write(net::buffer(*current_.frame),
                        [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_write(ec, n); });
  }

  void on_write(beast::error_code ec, std::size_t bytes) {
    writing_ = false;
    queued_bytes_ -= current_.frame->size();
    current_ = {};
    if (ec) return finish();
    ++context_->stats.messages_sent;
    context_->stats.bytes_sent += static_cast<long long>(bytes);
    if (catching_up_) pump_backlog();
    flush();
  }

  // --- heartbeat and deadlines ---------------------------------------------------------------

  void arm_heartbeat(std::chrono::milliseconds after) {
    auto generation = ++heartbeat_generation_;
    heartbeat_.expires_after(after);
    heartbeat_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      if (ec || generation != self->heartbeat_generation_) return;
      self->on_heartbeat();
    });
  }

  // A long-polling client that stops polling never sees the ping: it times out like a silent peer.
  void on_heartbeat() {
    if (closing_ || finished_) return;
    if (awaiting_pong_) {
      ++context_->stats.ping_timeouts;
      return finish();  // a peer that does not answer cannot read a close frame either
    }
    awaiting_pong_ = true;
    enqueue(std::make_shared<const std::string>(sio::encode_engine(sio::EngineType::Ping)), 0, true);
    flush();
    arm_heartbeat(settings_.ping_timeout);
  }

  template <class F>
  void arm_deadline(std::chrono::milliseconds after, F f) {
    auto generation = ++deadline_generation_;
    deadline_.expires_after(after);
    deadline_.async_wait([self = shared_from_this(), generation, f](beast::error_code ec) {
      if (ec || generation != self->deadline_generation_) return;
      f();
    });
  }

  // --- closing -------------------------------------------------------------------------------

  // Stops everything but the explanation: pending events are dropped (the client resumes with
  // `since`), a last packet says why, then the end of the transport: the WebSocket close
  // handshake with a code and reason, or on long-polling an Engine.IO CLOSE in the next poll.
  void close_gracefully(CloseReason reason, std::shared_ptr<const std::string> last_frame = nullptr) {
    if (closing_ || finished_) return;
    closing_ = true;
    close_reason_ = reason;
    detach();
    heartbeat_generation_++;
    heartbeat_.cancel();
    if (probe_) drop_probe(probe_);
    for (const auto& out : queue_) queued_bytes_ -= out.frame->size();
    queue_.clear();
    auto spec = spec_for(reason);
    if (last_frame) {
      enqueue(std::move(last_frame));
    } else if (phase_ == Phase::Connected && reason != CloseReason::ClientLeft) {
      bj::object notice{{"reason", spec.name}, {"message", spec.text}, {"resume_since", written_upto_}};
      enqueue(std::make_shared<const std::string>(sio::event_frame("closing", notice)));
    }
    if (transport_ == Transport::Polling) {
      close_packet_ = std::make_shared<const std::string>(sio::encode_engine(sio::EngineType::Close));
      enqueue(close_packet_);
    }
    close_after_writes_ = true;
    arm_deadline(settings_.close_timeout, [this] { finish(); });
    if (phase_ == Phase::Handshake) return finish();
    flush();
  }

  void start_close() {
    if (!ws_ || ws_->close_started || finished_) return;
    ws_->close_started = true;
    auto spec = spec_for(close_reason_);
    auto link = ws_;
    link->ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(spec.code), spec.text),
                         net::bind_cancellation_slot(link->close_cancel.slot(),
                                                     [self = shared_from_this(), link](beast::error_code) { self->finish(); }));
  }

  void detach() {
    if (!attached_) return;
    attached_ = false;
    context_->hub.detach(agent_id_, this);
  }

  static void end_link(const std::shared_ptr<WsLink>& link) {
    if (!link) return;
    beast::error_code ignored;
    beast::get_lowest_layer(link->ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(link->ws).close();
    // A read that fails the connection (a malformed frame) while async_close holds the write side
    // waits for it, and async_close waits for the read side: Beast 1.81 parks both, not on the
    // socket, so closing it ends neither (each would keep this session alive for good). Cancelling
    // completes them with operation_aborted; an operation on the socket is already ending.
    link->read_cancel.emit(net::cancellation_type::terminal);
    link->close_cancel.emit(net::cancellation_type::terminal);
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    detach();
    heartbeat_generation_++;
    deadline_generation_++;
    heartbeat_.cancel();
    deadline_.cancel();
    end_link(ws_);
    end_link(probe_);
    probe_.reset();
    if (poll_) {
      auto reply = std::move(poll_);
      poll_ = nullptr;
      reply(polling_text(sio::encode_engine(sio::EngineType::Close)));
    }
    if (counted_polling_) --context_->stats.polling_sessions;
    counted_polling_ = false;
    // A long-polling session is held by the registry until now (nothing else holds it between
    // requests but its timers); a WebSocket-only one was never in it.
    std::lock_guard lock(context_->sessions_mutex);
    auto found = context_->sessions.find(sid_);
    if (found != context_->sessions.end() && found->second.get() == this) context_->sessions.erase(found);
  }

  static constexpr std::string_view kNoop = "6";
  static constexpr std::string_view kProbeAnswer = "3probe";

  net::any_io_executor strand_;
  std::shared_ptr<SocketContext> context_;
  const SocketSettings settings_;
  const std::string sid_;
  net::steady_timer heartbeat_;
  net::steady_timer deadline_;
  Transport transport_ = Transport::WebSocket;
  std::shared_ptr<WsLink> ws_;     // the WebSocket in use
  std::shared_ptr<WsLink> probe_;  // a long-polling session's WebSocket before the upgrade
  bool upgrading_ = false;         // the probe was answered: the client pauses polling
  http::Responder poll_;           // the held long-poll GET
  std::chrono::steady_clock::time_point last_poll_;
  bool counted_polling_ = false;
  std::shared_ptr<const std::string> close_packet_;  // long-polling's last packet, once closing
  std::string agent_id_;
  Phase phase_ = Phase::Handshake;
  bool attached_ = false;
  bool awaiting_pong_ = false;
  bool closing_ = false;
  bool close_after_writes_ = false;
  bool finished_ = false;
  CloseReason close_reason_ = CloseReason::ClientLeft;
  std::uint64_t heartbeat_generation_ = 0;
  std::uint64_t deadline_generation_ = 0;

  std::deque<Out> queue_;
  Out current_;
  bool writing_ = false;
  std::chrono::steady_clock::time_point write_started_;
  std::size_t queued_bytes_ = 0;
  long long cursor_ = 0;        // last event_id queued for this session
  long long known_head_ = 0;    // highest event_id known to exist for the agent
  long long written_upto_ = 0;  // last event_id handed to the transport
  long long acked_upto_ = 0;    // last event_id the client acknowledged
  bool catching_up_ = false;
  bool resync_when_joined_ = false;  // a resync arrived while joining
  bool reading_ = false;  // a backlog page is being read
};

namespace {
std::shared_ptr<AgentSession> find_session(SocketContext& context, const std::string& sid) {
  std::lock_guard lock(context.sessions_mutex);
  auto found = context.sessions.find(sid);
  return found == context.sessions.end() ? nullptr : found->second;
}
}  // namespace

void start_agent_socket(tcp::socket socket, beast::http::request<beast::http::string_body> request,
                        std::shared_ptr<SocketContext> context) {
  auto strand = socket.get_executor();
  auto sid = sio::make_sid(context->node_tag, random_hex(kSidRandomBytes));
  std::make_shared<AgentSession>(std::move(strand), std::move(context), std::move(sid))
      ->start_websocket(std::move(socket), std::move(request));
}

void serve_polling(const http::Request& request, const http::Responder& reply,
                   const std::shared_ptr<SocketContext>& context) {
  auto sid = request.query_value("sid");
  if (!sid) {
    if (request.method != beast::http::verb::get)
      return reply(http::Response::error(400, "A long-polling session starts with a GET (no sid)", "bad_request"));
    if (static_cast<std::size_t>(context->stats.connected.load()) >= context->max_total) {
      http::Response busy = http::Response::error(503, "Server is at its connection limit; retry later", "server_busy");
      busy.headers.emplace_back("retry-after", "1");
      return reply(std::move(busy));
    }
    auto strand = context->make_strand ? context->make_strand() : net::any_io_executor(net::make_strand(net::system_executor()));
    auto session = std::make_shared<AgentSession>(std::move(strand), context, sio::make_sid(context->node_tag, random_hex(kSidRandomBytes)));
    {
      std::lock_guard lock(context->sessions_mutex);
      context->sessions.emplace(session->sid(), session);
    }
    return session->start_polling(reply);
  }
  auto session = find_session(*context, std::string(*sid));
  if (!session) return reply(unknown_session());
  if (request.method == beast::http::verb::post) return session->post(request.body, reply);
  session->poll(reply);
}

bool polling_session_exists(SocketContext& context, const std::string& sid) {
  return find_session(context, sid) != nullptr;
}

void upgrade_polling_session(tcp::socket socket, beast::http::request<beast::http::string_body> request,
                             const std::string& sid, const std::shared_ptr<SocketContext>& context) {
  if (auto session = find_session(*context, sid)) return session->probe(std::move(socket), std::move(request));
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);  // gone meanwhile: the client stays on polling
}

void close_polling_sessions(SocketContext& context, CloseReason reason) {
  std::vector<std::shared_ptr<AgentSession>> sessions;
  {
    std::lock_guard lock(context.sessions_mutex);
    for (auto& [sid, session] : context.sessions) sessions.push_back(session);
  }
  for (auto& session : sessions) session->close_for(reason);
}

}  // namespace al::notifier
