#include "ws/agent_socket.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <deque>
#include <optional>

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

class AgentSocket final : public Subscriber, public std::enable_shared_from_this<AgentSocket> {
 public:
  AgentSocket(tcp::socket socket, std::shared_ptr<SocketContext> context)
      : ws_(std::move(socket)),
        context_(std::move(context)),
        settings_(context_->settings),
        heartbeat_(ws_.get_executor()),
        deadline_(ws_.get_executor()) {
    ++context_->stats.connected;
    beast::error_code ignored;
    // Events are small and latency matters: no Nagle delay behind a delayed ACK.
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ignored);
    if (settings_.socket_send_buffer > 0) {  // a hint: the kernel may round it
      beast::get_lowest_layer(ws_).socket().set_option(
          net::socket_base::send_buffer_size(static_cast<int>(settings_.socket_send_buffer)), ignored);
    }
  }

  ~AgentSocket() override {
    if (attached_) context_->hub.detach(agent_id_, this);
    --context_->stats.connected;
  }

  void start(beast::http::request<beast::http::string_body> request) {
    request_ = std::move(request);
    sid_ = random_hex(10);
    beast::get_lowest_layer(ws_).expires_never();  // the websocket stream keeps its own timeouts
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = settings_.close_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();  // Engine.IO heartbeats decide liveness
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "agentlancer"); }));
    ws_.read_message_max(sio::kMaxPacket);
    ws_.auto_fragment(false);
    ws_.text(true);
    ws_.async_accept(request_, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

  void deliver(std::shared_ptr<const LiveEvent> event) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), event = std::move(event)] { self->on_live(*event); });
  }

  void close_for(CloseReason reason) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), reason] { self->close_gracefully(reason); });
  }

  void resync() override {
    net::post(ws_.get_executor(), [self = shared_from_this()] { self->on_resync(); });
  }

 private:
  // Joining: attached to the hub, waiting for the log's bounds (read on a worker).
  enum class Phase { Handshake, AwaitConnect, Joining, Connected };

  struct Out {
    std::shared_ptr<const std::string> frame;
    long long event_id = 0;  // 0: not an event of the log
  };

  void on_accept(beast::error_code ec) {
    request_ = {};
    if (ec) return finish();
    phase_ = Phase::AwaitConnect;
    enqueue(std::make_shared<const std::string>(sio::open_frame(sid_, settings_.ping_interval.count(), settings_.ping_timeout.count())));
    do_write();
    arm_heartbeat(settings_.ping_interval);
    arm_deadline(settings_.connect_timeout, [this] {
      if (phase_ == Phase::AwaitConnect) close_gracefully(CloseReason::ConnectTimeout);
    });
    do_read();
  }

  // --- reading -------------------------------------------------------------------------------

  void do_read() {
    ws_.async_read(in_, net::bind_cancellation_slot(read_cancel_.slot(), [self = shared_from_this()](
                                                                          beast::error_code ec, std::size_t) {
                     self->on_read(ec);
                   }));
  }

  void on_read(beast::error_code ec) {
    if (ec) return finish();  // closed by the peer, a read error, or finish() already ran
    if (finished_) return;
    if (!ws_.got_text()) {
      in_.consume(in_.size());
      return close_gracefully(CloseReason::Protocol);
    }
    std::string_view frame(static_cast<const char*>(in_.data().data()), in_.size());
    handle_engine(frame);
    in_.consume(in_.size());
    // Keep reading while closing, until async_close reads for itself (to the peer's close frame): a
    // read started after it could deadlock with it (see finish()).
    if (!finished_ && !close_started_) do_read();
  }

  void handle_engine(std::string_view frame) {
    auto decoded = sio::decode_engine(frame);
    if (std::holds_alternative<sio::DecodeError>(decoded)) return close_gracefully(CloseReason::Protocol);
    auto& packet = std::get<sio::EnginePacket>(decoded);
    switch (packet.type) {
      case sio::EngineType::Pong:
        awaiting_pong_ = false;
        if (!closing_) arm_heartbeat(settings_.ping_interval);
        return;
      case sio::EngineType::Ping:  // not sent by v4 clients, but answering costs nothing
        enqueue(std::make_shared<const std::string>(sio::encode_engine(sio::EngineType::Pong, packet.data)), 0, true);
        return do_write();
      case sio::EngineType::Close:
        return close_gracefully(CloseReason::ClientLeft);
      case sio::EngineType::Message:
        return handle_socket(packet.data);
      default:
        return;  // upgrade/noop: nothing to do on a websocket-only session
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
      return do_write();
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
    do_write();
    watch_progress();
  }

  // Reads the log on a worker (never on this I/O thread), then continues on this socket's strand
  // with the result; a failed read closes the socket (the client resumes with `since`).
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
      net::post(self->ws_.get_executor(), [self, result, error, then = std::move(then)] {
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

  // A write that has not completed for stall_timeout means the peer stopped reading (or reads
  // slower than the kernel buffers drain): close it, it resumes with `since`.
  void watch_progress() {
    arm_deadline(settings_.stall_timeout / 4, [this] {
      if (closing_ || finished_) return;
      if (writing_ && std::chrono::steady_clock::now() - write_started_ > settings_.stall_timeout) {
        ++context_->stats.slow_consumer_closes;
        log::warn("slow websocket consumer disconnected",
                  {{"agent_id", agent_id_}, {"queued_bytes", static_cast<long long>(queued_bytes_)},
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
      return do_write();
    }
    if (queued_bytes_ + event.bytes > settings_.max_queue_bytes) {
      // A burst bigger than the queue: take the rest from the log as the queue drains.
      ++context_->stats.queue_overflows;
      catching_up_ = true;
      return;
    }
    for (const auto& frame : event.frames) enqueue(frame, event.event_id);
    cursor_ = event.event_id;
    do_write();
  }

  // Joining sockets read the log's head once joined anyway; a connected one reads after its cursor
  // (one page, or to the end if there is more) and is done when the read comes back short.
  void on_resync() {
    if (closing_) return;
    if (phase_ == Phase::Joining) {
      resync_when_joined_ = true;  // its bounds may have been read before the lost event
      return;
    }
    if (phase_ != Phase::Connected) return;
    catching_up_ = true;
    pump_backlog();
    do_write();
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
    do_write();
  }

  // --- writing -------------------------------------------------------------------------------

  void enqueue(std::shared_ptr<const std::string> frame, long long event_id = 0, bool urgent = false) {
    queued_bytes_ += frame->size();
    if (urgent) queue_.push_front({std::move(frame), event_id});
    else queue_.push_back({std::move(frame), event_id});
  }

  void do_write() {
    if (writing_ || finished_ || phase_ == Phase::Handshake) return;
    if (queue_.empty()) {
      if (close_after_writes_) start_close();
      return;
    }
    writing_ = true;
    write_started_ = std::chrono::steady_clock::now();
    current_ = std::move(queue_.front());
    queue_.pop_front();
    if (current_.event_id > written_upto_) written_upto_ = current_.event_id;
    ws_.async_write(net::buffer(*current_.frame),
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
    do_write();
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

  void on_heartbeat() {
    if (closing_ || finished_) return;
    if (awaiting_pong_) {
      ++context_->stats.ping_timeouts;
      return finish();  // a peer that does not answer cannot read a close frame either
    }
    awaiting_pong_ = true;
    enqueue(std::make_shared<const std::string>(sio::encode_engine(sio::EngineType::Ping)), 0, true);
    do_write();
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
  // `since`), a last frame says why, then the WebSocket close handshake with a code and reason.
  void close_gracefully(CloseReason reason, std::shared_ptr<const std::string> last_frame = nullptr) {
    if (closing_ || finished_) return;
    closing_ = true;
    close_reason_ = reason;
    detach();
    heartbeat_generation_++;
    heartbeat_.cancel();
    for (const auto& out : queue_) queued_bytes_ -= out.frame->size();
    queue_.clear();
    auto spec = spec_for(reason);
    if (last_frame) {
      enqueue(std::move(last_frame));
    } else if (phase_ == Phase::Connected && reason != CloseReason::ClientLeft) {
      bj::object notice{{"reason", spec.name}, {"message", spec.text}, {"resume_since", written_upto_}};
      enqueue(std::make_shared<const std::string>(sio::event_frame("closing", notice)));
    }
    close_after_writes_ = true;
    arm_deadline(settings_.close_timeout, [this] { finish(); });
    if (phase_ == Phase::Handshake) return finish();
    do_write();
  }

  void start_close() {
    if (close_started_ || finished_) return;
    close_started_ = true;
    auto spec = spec_for(close_reason_);
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(spec.code), spec.text),
                    net::bind_cancellation_slot(close_cancel_.slot(),
                                                [self = shared_from_this()](beast::error_code) { self->finish(); }));
  }

  void detach() {
    if (!attached_) return;
    attached_ = false;
    context_->hub.detach(agent_id_, this);
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
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
    // A read that fails the connection (a malformed frame) while async_close holds the write side
    // waits for it, and async_close waits for the read side: Beast 1.81 parks both, not on the
    // socket, so closing it ends neither (each would keep this socket alive for good). Cancelling
    // completes them with operation_aborted; an operation on the socket is already ending.
    read_cancel_.emit(net::cancellation_type::terminal);
    close_cancel_.emit(net::cancellation_type::terminal);
  }

  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<SocketContext> context_;
  const SocketSettings settings_;
  net::steady_timer heartbeat_;
  net::steady_timer deadline_;
  beast::http::request<beast::http::string_body> request_;
  beast::flat_buffer in_;
  std::string sid_;
  std::string agent_id_;
  Phase phase_ = Phase::Handshake;
  bool attached_ = false;
  bool awaiting_pong_ = false;
  bool closing_ = false;
  bool close_after_writes_ = false;
  bool close_started_ = false;
  net::cancellation_signal read_cancel_;
  net::cancellation_signal close_cancel_;
  bool finished_ = false;
  CloseReason close_reason_ = CloseReason::ClientLeft;
  std::uint64_t heartbeat_generation_ = 0;
  std::uint64_t deadline_generation_ = 0;

  std::deque<Out> queue_;
  Out current_;
  bool writing_ = false;
  std::chrono::steady_clock::time_point write_started_;
  std::size_t queued_bytes_ = 0;
  long long cursor_ = 0;        // last event_id queued for this socket
  long long known_head_ = 0;    // highest event_id known to exist for the agent
  long long written_upto_ = 0;  // last event_id handed to the socket
  long long acked_upto_ = 0;    // last event_id the client acknowledged
  bool catching_up_ = false;
  bool resync_when_joined_ = false;  // a resync arrived while joining
  bool reading_ = false;  // a backlog page is being read
};
}  // namespace

void start_agent_socket(tcp::socket socket, beast::http::request<beast::http::string_body> request,
                        std::shared_ptr<SocketContext> context) {
  std::make_shared<AgentSocket>(std::move(socket), std::move(context))->start(std::move(request));
}

}  // namespace al::notifier
