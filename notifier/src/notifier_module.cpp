#include "notifier_module.hpp"

#include "common/service/lifecycle.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <boost/asio/steady_timer.hpp>
#include <algorithm>

#include "delivery/socket_events.hpp"
#include "storage/agent_log_store.hpp"
#include "protocol/socketio.hpp"
#include "ws/agent_socket.hpp"
#include "storage/webhook_store.hpp"
#include "webhooks/dispatcher.hpp"
#include "webhooks/webhook_api.hpp"

#include "common/events/outbox.hpp"
#include "common/service/idempotency.hpp"
#include "common/service/key_revocations.hpp"
#include "common/storage/idempotency_store.hpp"
#include "common/json/json.hpp"
#include "common/log/log.hpp"
#include "common/util/ids.hpp"
#include "common/util/time_format.hpp"

namespace al::notifier {
namespace {
using http::Request;
using http::Responder;
using http::Response;
namespace bj = boost::json;

LiveEvent render(std::string_view cloud_event, const std::string& agent_id, long long event_id) {
  LiveEvent live;
  live.event_id = event_id;
  for (auto& frame : socket_frames_for(cloud_event, agent_id, event_id)) {
    live.bytes += frame.size();
    live.frames.push_back(std::make_shared<const std::string>(std::move(frame)));
  }
  return live;
}

SocketSettings socket_settings(const Config& config) {
  SocketSettings s;
  s.ping_interval = std::chrono::milliseconds(config.get_int("notifier.ws.ping_interval_ms"));
  s.ping_timeout = std::chrono::milliseconds(config.get_int("notifier.ws.ping_timeout_ms"));
  s.connect_timeout = std::chrono::milliseconds(config.get_int("notifier.ws.connect_timeout_ms"));
  s.close_timeout = std::chrono::milliseconds(config.get_int("notifier.ws.close_timeout_ms"));
  s.max_queue_bytes = static_cast<std::size_t>(config.get_int("notifier.ws.send_queue_bytes"));
  s.stall_timeout = std::chrono::milliseconds(config.get_int("notifier.ws.stall_timeout_ms"));
  s.backlog_page = static_cast<std::size_t>(config.get_int("notifier.ws.backlog_page"));
  s.socket_send_buffer = static_cast<std::size_t>(config.get_int("notifier.ws.socket_send_buffer_bytes"));
  return s;
}

// The tag every session id starts with, for the gateway's sticky routing of long-polling requests
// (docs/notifier.md): notifier.ws.node_tag, else "p<port>" (replicas on one host differ by port),
// else this process's replica id.
std::string session_node_tag(const Config& config, const std::string& replica) {
  std::string tag = config.get("notifier.ws.node_tag");
  if (tag.empty() && config.get_int("http.port") > 0) tag = "p" + std::to_string(config.get_int("http.port"));
  if (tag.empty()) tag = replica;
  if (!sio::valid_node_tag(tag))
    throw std::invalid_argument("notifier.ws.node_tag: 1-32 characters of A-Z, a-z, 0-9 and '-' (e.g. the pod name)");
  return tag;
}

std::vector<storage::Migration> notifier_migrations() {
  auto all = agent_log_migrations();
  for (auto& m : webhook_store::migrations()) all.push_back(std::move(m));
  all.push_back(storage::idempotency::table_migration(7));
  return all;
}

webhooks::Settings webhook_settings(const Config& config, const std::string& version) {
  webhooks::Settings s;
  s.user_agent = "agentlancer-webhooks/" + version;
  auto allowed = webhooks::parse_cidrs(config.get("webhooks.allowed_cidrs"));
  if (!allowed) throw std::invalid_argument("webhooks.allowed_cidrs: expected comma-separated CIDRs, e.g. 127.0.0.0/8,::1/128");
  s.allowed = std::move(*allowed);
  auto schedule = webhooks::parse_schedule(config.get("webhooks.retry_schedule_ms"));
  if (!schedule) throw std::invalid_argument("webhooks.retry_schedule_ms: expected comma-separated milliseconds, e.g. 0,5000,300000");
  s.schedule = std::move(*schedule);
  s.timeout = std::chrono::milliseconds(std::max<long long>(1, config.get_int("webhooks.timeout_ms")));
  s.disable_after = config.get_int("webhooks.disable_after_ms");
  s.max_concurrency = static_cast<int>(std::max<long long>(1, config.get_int("webhooks.max_concurrency")));
  s.poll_interval = std::chrono::milliseconds(std::max<long long>(10, config.get_int("webhooks.poll_interval_ms")));
  return s;
}

class NotifierModule final : public Module, private EventLog {
 public:
  explicit NotifierModule(Runtime& rt)
      : rt_(rt),
        db_(storage::open_database(rt.storage, "notifier")),
        log_(*db_, "n" + random_hex(6)),
        sockets_(std::make_shared<SocketContext>(
            static_cast<EventLog&>(*this), rt.auth, socket_settings(rt.config),
            static_cast<std::size_t>(rt.config.get_int("notifier.ws.max_connections_per_agent")),
            static_cast<std::size_t>(rt.config.get_int("notifier.ws.max_connections")),
            session_node_tag(rt.config, log_.replica()))),
        consumer_("notifier", rt.kafka_bootstrap, "notifier", kafka::all_topics(), *db_, rt.clock,
                  events::ConsumerLoop::ApplyThen{[this](storage::Connection& c, const events::CloudEvent& e) {
                    auto announce = append(c, e);
                    auto revoked = revocations_.apply(c, e);
                    if (!revoked) return announce;
                    return std::function<void()>([announce, revoked] {
                      if (announce) announce();
                      revoked();
                    });
                  }},
                  &rt.metrics, rt.consumer_settings),
        announcements_(rt.workers.context().get_executor()),
        revocations_(*db_, rt.auth.revocations(), rt.clock),
        key_closures_(std::make_shared<KeyClosures>()),
        idempotency_(*db_, rt.auth, rt.clock, "notifier",
                     idempotency::Options{rt.config.get_int("idempotency.retention_ms"), rt.config.get_int("idempotency.lock_ms")}),
        dispatcher_(*db_, rt.workers, rt.clock, webhook_settings(rt.config, rt.version), rt.metrics,
                    [](const std::string& payload, long long event_id) {
                      return bj::serialize(log_row(bj::parse(payload).as_object(), event_id));
                    },
                    [this](storage::Connection& c, const webhook_store::Endpoint& e, Millis now) {
                      return append(c, endpoint_disabled_event(e, now));
                    }),
        lifecycle_("notifier", *db_, rt.workers.context()) {
    db_->migrate(notifier_migrations());
    revocations_.load_all();
    // A revoked key's sockets close when the revocation takes effect: at once, or at the end of a
    // rotation's grace period (the sweep). The list outlives this module: it holds weak references.
    rt.auth.revocations().listen([closures = std::weak_ptr<KeyClosures>(key_closures_),
                                  context = std::weak_ptr<SocketContext>(sockets_), &clock = rt.clock](
                                     const auth::KeyRevocations::Revocation& r) {
      auto pending = closures.lock();
      auto sockets = context.lock();
      if (!pending || !sockets) return;
      if (r.effective_at <= clock.now_ms()) {
        sockets->hub.close_key(r.agent_id, r.key_id);
        return;
      }
      std::lock_guard lock(pending->mutex);
      pending->due.push_back(r);
    });
    register_metrics();
    lifecycle_.consumer(consumer_)
        .every("key revocations", key_revocations::kPollInterval,
               [this] {
                 revocations_.poll();
                 close_sockets_of_expired_keys();
               })
        .every("webhook attempts trim", std::chrono::minutes(1),
               [this] {
                 Millis cutoff = rt_.clock.now_ms() - rt_.config.get_int("webhooks.delivery_log_retention_ms");
                 db_->write([cutoff](storage::Connection& c) { webhook_store::trim_deliveries(c, cutoff); }, nullptr);
               })
        .every("idempotency key expiry", std::chrono::minutes(10), [this] { idempotency_.purge(); })
        .every("event log trim", std::chrono::milliseconds(rt.config.get_int("notifier.trim_interval_ms")),
               [this] { log_.trim(rt_.clock.now_ms() - rt_.config.get_int("notifier.retention_ms")); })
        // Sockets first, while the io threads still run: each gets a `closing` notice and a close
        // frame (1001), so clients reconnect elsewhere with `since`.
        .before_stop([this] {
          sockets_->hub.close_all(CloseReason::Shutdown);
          close_polling_sessions(*sockets_, CloseReason::Shutdown);
          if (!sockets_->hub.wait_empty(sockets_->settings.close_timeout + std::chrono::milliseconds(500)))
            log::warn("websockets still open after the close timeout",
                      {{"open", static_cast<long long>(sockets_->hub.size())}});
        });
    sockets_->read_on = [&workers = rt.workers](std::function<void()> read) { workers.post(std::move(read)); };
    sockets_->make_strand = [&io = rt.io] { return boost::asio::any_io_executor(boost::asio::make_strand(io)); };
    // Replicas: entries another replica's consumer committed reach this one's sockets too. They
    // are read back on the workers, one announcement after another (in commit order).
    db_->listen(
        kAppendedChannel,
        [this](const std::string& payload) {
          boost::asio::post(announcements_, [this, payload] { on_announced(payload); });
        },
        // Announcements committed while the connection was down are lost: every socket reads the
        // log after what it has (an agent with no later event would otherwise wait forever).
        [this] {
          auto sockets = sockets_->hub.resync_all();
          log::warn("notifier lost its notification connection; every socket reads its log again",
                    {{"sockets", static_cast<long long>(sockets)}});
        });
  }

  std::string name() const override { return "notifier"; }

  // Logged for the agent when one of its webhook endpoints was disabled for failing too long.
  static events::CloudEvent endpoint_disabled_event(const webhook_store::Endpoint& e, Millis now) {
    events::CloudEvent event;
    event.id = new_uuid_v7(now);
    event.type = webhooks::kEndpointDisabledType;
    event.source = "notifier";
    event.subject = e.id;
    event.time = now;
    event.seq = 1;
    event.audience = {e.agent_id};
    event.data = bj::object{{"webhook_id", e.id},
                            {"url", e.url},
                            {"failing_since", e.failing_since ? bj::value(format_rfc3339(*e.failing_since)) : bj::value(nullptr)},
                            {"last_error", e.last_error ? bj::value(*e.last_error) : bj::value(nullptr)}};
    return event;
  }

  void add_routes(http::Router& router) override {
    {
      http::Router::DecoratorScope idempotent(router, idempotency_.decorator());
      webhooks::add_webhook_routes(
          router, *db_, rt_.auth, rt_.clock, dispatcher_,
          webhooks::ApiSettings{rt_.config.get_int("webhooks.max_endpoints_per_agent"),
                                rt_.config.get_int("webhooks.secret_rotation_grace_ms")});
    }
    router.add(http::bhttp::verb::get, "/api/agent/events",
               [this](const Request& req, Responder reply) { poll(req, reply); });
    // socket.io-client asks for "<path>/" (trailing slash); the router ignores it either way.
    router.add_upgrade("/ws/agent", http::Upgrade{
                                        [this](const Request& req) { return check_upgrade(req); },
                                        [this](Request req, http::bhttp::request<http::bhttp::string_body> raw,
                                               boost::asio::ip::tcp::socket socket) {
                                          if (auto sid = req.query_value("sid"))
                                            return upgrade_polling_session(std::move(socket), std::move(raw),
                                                                           std::string(*sid), sockets_);
                                          start_agent_socket(std::move(socket), std::move(raw), sockets_);
                                        }});
    // Engine.IO long-polling: the handlers only hand the request to its session (or answer at
    // once); a held poll is answered later from the session's strand, holding no thread.
    router.add(
        http::bhttp::verb::get, "/ws/agent", [this](const Request& req, Responder reply) { serve_plain(req, reply); },
        http::Runs::OnIo);
    router.add(
        http::bhttp::verb::post, "/ws/agent", [this](const Request& req, Responder reply) { serve_plain(req, reply); },
        http::Runs::OnIo);
    // A draining server waits for the requests in flight: held polls are answered now (each
    // session's `closing` notice and Engine.IO CLOSE) rather than at the next ping.
    router.on_drain([context = std::weak_ptr<SocketContext>(sockets_)] {
      if (auto sockets = context.lock()) close_polling_sessions(*sockets, CloseReason::Shutdown);
    });
  }

  void close_sockets_of_expired_keys() {
    std::vector<auth::KeyRevocations::Revocation> due;
    {
      std::lock_guard lock(key_closures_->mutex);
      Millis now = rt_.clock.now_ms();
      auto& list = key_closures_->due;
      auto split = std::partition(list.begin(), list.end(), [now](const auto& r) { return r.effective_at > now; });
      due.assign(split, list.end());
      list.erase(split, list.end());
    }
    for (const auto& r : due) sockets_->hub.close_key(r.agent_id, r.key_id);
  }

  void start() override {
    lifecycle_.start();
    dispatcher_.start();
  }
  void stop() override {
    dispatcher_.stop();
    lifecycle_.stop();
  }
  bool ready(std::string& reason, bool check_broker) override { return lifecycle_.ready(reason, check_broker); }

 private:
  void poll(const Request& req, const Responder& reply) {
    auto who = auth::authenticate(req, rt_.auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    long long since = 0, limit = 100;
    auto params = QueryParams()
                      .on("since_id",
                          [&since](const std::string& value) -> std::optional<std::string> {
                            if (value != "0" && !parse_positive_int64(value, since))
                              return std::string("must be an event_id (0 for the beginning)");
                            return std::nullopt;
                          })
                      .limit(limit, 500);
    if (!params.read(req, reply)) return;
    bj::array page;
    for (auto& entry : log_.after(*who.agent_id, since, limit))
      page.push_back(log_row(bj::parse(entry.payload).as_object(), entry.event_id));
    long long next = since;
    if (!page.empty()) next = page.back().at("event_id").as_int64();
    reply(Response::json(200, bj::object{{"events", std::move(page)}, {"next_since_id", next}}));
  }

  // --- the log -------------------------------------------------------------------------------

  // Runs in the consumer's transaction; what it returns runs after the commit and hands the
  // new entries to the agents' live sockets (never an entry that was rolled back).
  std::function<void()> append(storage::Connection& c, const events::CloudEvent& e) {
    std::string payload = bj::serialize(e.to_json());
    auto appended = log_.append(c, e, payload, rt_.clock.now_ms());
    if (appended.empty()) return {};
    return [this, appended = std::move(appended), payload = std::move(payload)] {
      dispatcher_.wake();
      for (const auto& a : appended) {
        if (!sockets_->hub.has_subscribers(a.agent_id)) continue;
        sockets_->hub.publish(a.agent_id, std::make_shared<const LiveEvent>(render(payload, a.agent_id, a.event_id)));
      }
    };
  }

  Bounds bounds(const std::string& agent_id) override {
    auto [head, oldest] = log_.head_and_oldest(agent_id);
    Bounds b;
    b.head = head;
    b.oldest = oldest;
    return b;
  }

  std::vector<LiveEvent> after(const std::string& agent_id, long long after_event_id, std::size_t limit) override {
    std::vector<LiveEvent> page;
    for (auto& entry : log_.after(agent_id, after_event_id, static_cast<long long>(limit)))
      page.push_back(render(entry.payload, agent_id, entry.event_id));
    return page;
  }

  // An entry committed by some replica (on a worker, in order). This replica's own
  // entries already went to its sockets after the commit; another's are read back once and handed
  // to the agent's sockets here (a socket ignores what it has, and reads a gap from the log).
  void on_announced(const std::string& payload) {
    auto a = Announcement::parse(payload);
    if (a && a->replica != log_.replica()) dispatcher_.wake();
    if (!a || a->replica == log_.replica() || !sockets_->hub.has_subscribers(a->agent_id)) return;
    std::vector<LogEntry> entries;
    try {
      entries = log_.after(a->agent_id, a->event_id - 1, 1);
    } catch (const std::exception& e) {
      // The sockets read it themselves (and close, to be resumed, if they cannot either).
      log::warn("announced event could not be read", {{"agent_id", a->agent_id}, {"what", e.what()}});
      sockets_->hub.resync(a->agent_id);
      return;
    }
    for (auto& entry : entries) {
      if (entry.event_id != a->event_id) break;  // trimmed meanwhile
      ++remote_events_;
      sockets_->hub.publish(a->agent_id, std::make_shared<const LiveEvent>(render(entry.payload, a->agent_id, entry.event_id)));
    }
  }

  // --- the socket endpoint -------------------------------------------------------------------

  std::optional<Response> check_upgrade(const Request& req) {
    // The handshake's own fields are checked here, so a bad one is answered in the API's JSON
    // shape (Beast would refuse it in plain text, or take any key of up to 24 characters).
    if (req.header("sec-websocket-version") != "13") {
      Response r = Response::error(426, "Unsupported Sec-WebSocket-Version: this endpoint speaks version 13", "upgrade_required");
      r.headers.emplace_back("sec-websocket-version", "13");
      return r;
    }
    if (!is_websocket_key(req.header("sec-websocket-key")))
      return Response::error(400, "Invalid Sec-WebSocket-Key: it must be 16 random bytes in base64 (RFC 6455)",
                             "bad_request");
    auto eio = req.query_value("EIO");
    if (!eio || *eio != "4")
      return Response::error(400, "Unsupported protocol: this endpoint speaks Engine.IO 4 (socket.io-client v3 or v4)",
                             "unsupported_protocol");
    auto transport = req.query_value("transport");
    if (!transport || *transport != "websocket") return transport_refusal();
    // The upgrade of a long-polling session: the session is counted already.
    if (auto sid = req.query_value("sid")) {
      if (!polling_session_exists(*sockets_, std::string(*sid)))
        return Response::error(400, "Session ID unknown: the long-polling session ended (or never existed); connect again",
                               "unknown_session");
      return std::nullopt;
    }
    if (static_cast<std::size_t>(sockets_->stats.connected.load()) >= sockets_->max_total) {
      Response busy = Response::error(503, "Server is at its WebSocket connection limit; retry later", "server_busy");
      busy.headers.emplace_back("retry-after", "1");
      return busy;
    }
    return std::nullopt;
  }

  // 16 bytes in base64: 21 characters of the alphabet, one that ends in four zero bits, "==".
  static bool is_websocket_key(std::string_view key) {
    if (key.size() != 24 || key.substr(22) != "==" || std::string_view("AQgw").find(key[21]) == std::string_view::npos)
      return false;
    return std::all_of(key.begin(), key.begin() + 21, [](char c) {
      return (std::isalnum(static_cast<unsigned char>(c)) != 0 && static_cast<unsigned char>(c) < 0x80) || c == '+' ||
             c == '/';
    });
  }

  static Response transport_refusal() {
    return Response::error(400,
                           "Unsupported transport: the WebSocket upgrade asks for transport=websocket, "
                           "long-polling for transport=polling (socket.io-client does either by itself)",
                           "transport_unsupported");
  }

  // A request without the WebSocket upgrade: Engine.IO long-polling (transport=polling), else the
  // answers of a WebSocket-only endpoint.
  void serve_plain(const Request& req, const Responder& reply) {
    auto transport = req.query_value("transport");
    if (transport && *transport == "polling") {
      auto eio = req.query_value("EIO");
      if (!eio || *eio != "4")
        return reply(Response::error(400, "Unsupported protocol: this endpoint speaks Engine.IO 4 (socket.io-client v3 or v4)",
                                     "unsupported_protocol"));
      return serve_polling(req, reply, sockets_);
    }
    if (transport && *transport != "websocket") return reply(transport_refusal());
    if (req.method != http::bhttp::verb::get)
      return reply(Response::error(400, "Only long-polling (transport=polling) takes a POST", "transport_unsupported"));
    Response r = Response::error(426, "WebSocket upgrade required", "upgrade_required");
    r.headers.emplace_back("upgrade", "websocket");
    reply(std::move(r));
  }

  void register_metrics() {
    auto ctx = sockets_;
    auto& m = rt_.metrics;
    m.register_counter("notifier_replica_events_total", "Live events committed by another notifier replica and sent to this one's sockets.",
                       [this] { return static_cast<double>(remote_events_.load()); });
    m.register_gauge("notifier_ws_connections", "Open socket.io sessions, WebSocket or long-polling (connected or handshaking).",
                     [ctx] { return static_cast<double>(ctx->stats.connected.load()); });
    m.register_gauge("notifier_ws_polling_sessions", "Sessions on the Engine.IO long-polling transport (not upgraded).",
                     [ctx] { return static_cast<double>(ctx->stats.polling_sessions.load()); });
    m.register_counter("notifier_ws_upgrades_total", "Long-polling sessions that moved to a WebSocket.",
                       [ctx] { return static_cast<double>(ctx->stats.upgrades.load()); });
    m.register_counter("notifier_ws_accepted_total", "socket.io connections accepted.",
                       [ctx] { return static_cast<double>(ctx->stats.accepted.load()); });
    m.register_counter("notifier_ws_refused_total", "socket.io connections refused (bad key, limits, shutdown).",
                       [ctx] { return static_cast<double>(ctx->stats.refused.load()); });
    m.register_counter("notifier_ws_messages_sent_total", "WebSocket messages written.",
                       [ctx] { return static_cast<double>(ctx->stats.messages_sent.load()); });
    m.register_counter("notifier_ws_bytes_sent_total", "WebSocket bytes written.",
                       [ctx] { return static_cast<double>(ctx->stats.bytes_sent.load()); });
    m.register_counter("notifier_ws_backlog_events_total", "Logged events sent from the backlog (since).",
                       [ctx] { return static_cast<double>(ctx->stats.backlog_events.load()); });
    m.register_counter("notifier_ws_slow_consumer_closes_total", "Sockets closed because their send queue was full.",
                       [ctx] { return static_cast<double>(ctx->stats.slow_consumer_closes.load()); });
    m.register_counter("notifier_ws_queue_overflows_total", "Live events that did not fit a send queue (then read from the log).",
                       [ctx] { return static_cast<double>(ctx->stats.queue_overflows.load()); });
    m.register_counter("notifier_ws_ping_timeouts_total", "Sockets closed for want of a pong.",
                       [ctx] { return static_cast<double>(ctx->stats.ping_timeouts.load()); });
  }

  Runtime& rt_;
  std::unique_ptr<storage::Database> db_;
  AgentLogStore log_;
  std::atomic<long long> remote_events_{0};
  std::shared_ptr<SocketContext> sockets_;
  events::ConsumerLoop consumer_;
  boost::asio::strand<boost::asio::io_context::executor_type> announcements_;
  key_revocations::Sync revocations_;
  // Revocations that take effect later (a rotation's grace period), for the sweep.
  struct KeyClosures {
    std::mutex mutex;
    std::vector<auth::KeyRevocations::Revocation> due;
  };
  std::shared_ptr<KeyClosures> key_closures_;
  idempotency::Guard idempotency_;
  webhooks::Dispatcher dispatcher_;
  Lifecycle lifecycle_;
};
}  // namespace

std::vector<ConfigEntry> notifier_config_entries() {
  return {
      {"notifier.retention_ms", "604800000", "How long each agent's event log keeps an event (ms; default 7 days).", {}},
      {"notifier.trim_interval_ms", "60000", "How often the log is trimmed of events older than the retention.", {}},
      {"notifier.ws.max_connections_per_agent", "5", "WebSocket connections one agent may hold open; the next is refused with connect_error.", {}},
      {"notifier.ws.max_connections", "50000", "WebSocket connections in all (each holds a file descriptor).", {}},
      {"notifier.ws.node_tag", "", "The prefix of every socket.io session id (`<tag>.<random>`), on which a gateway routes a long-polling session's requests to this replica: 1-32 of A-Z a-z 0-9 '-'. Empty: `p<http.port>`.", {}},
      {"notifier.ws.ping_interval_ms", "25000", "Engine.IO pingInterval: how often the server pings.", {}},
      {"notifier.ws.ping_timeout_ms", "20000", "Engine.IO pingTimeout: how long a pong may take before the socket is closed.", {}},
      {"notifier.ws.connect_timeout_ms", "10000", "How long after the WebSocket opens the socket.io CONNECT (with auth) may take.", {}},
      {"notifier.ws.close_timeout_ms", "3000", "A graceful close (notice, close frame) may take this long before the TCP connection is cut.", {}},
      {"notifier.ws.send_queue_bytes", "1048576", "Unsent bytes one socket may queue; events beyond it are read from the log as the queue drains (memory stays bounded).", {}},
      {"notifier.ws.stall_timeout_ms", "10000", "A socket whose pending write makes no progress for this long is closed as a slow consumer (close code 4008; it resumes with since).", {}},
      {"notifier.ws.socket_send_buffer_bytes", "0", "SO_SNDBUF of each WebSocket (0: the kernel's default); bounds kernel memory per socket with many connections.", {}},
      {"notifier.ws.backlog_page", "256", "Logged events read at a time when a socket catches up from since.", {}},
      {"webhooks.allowed_cidrs", "127.0.0.0/8,::1/128", "Internal addresses (comma-separated CIDRs) webhook URLs may still reach; every other loopback, private, link-local or metadata address is refused at registration and at delivery. `none`: no exception (the cluster and k8s).", {}},
      {"webhooks.timeout_ms", "10000", "One webhook attempt (resolve, connect, TLS, request, response) may take this long.", {}},
      {"webhooks.retry_schedule_ms", "0,5000,300000,1800000,7200000,18000000,36000000", "The wait before each attempt of an event (ms, comma-separated); after the last one it repeats.", {}},
      {"webhooks.disable_after_ms", "432000000", "An endpoint failing without a success for this long is disabled (default 5 days) and its agent told (webhook.endpoint_disabled).", {}},
      {"webhooks.max_endpoints_per_agent", "10", "Webhook endpoints one agent may register.", {}},
      {"webhooks.max_concurrency", "32", "Webhook requests in flight per notifier process (one per endpoint at a time).", {}},
      {"webhooks.secret_rotation_grace_ms", "86400000", "After rotate-secret the previous secret still signs (a second signature) for this long.", {}},
      {"webhooks.delivery_log_retention_ms", "604800000", "How long webhook attempts are kept for GET …/deliveries.", {}},
      {"webhooks.poll_interval_ms", "200", "How often a notifier looks for endpoints with an attempt due (new events wake it at once).", {}},
  };
}

std::unique_ptr<Module> make_notifier_module(Runtime& runtime) {
  return std::make_unique<NotifierModule>(runtime);
}

}  // namespace al::notifier
