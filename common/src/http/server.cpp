#include "common/http/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "common/http/forwarded.hpp"
#include "common/log/log.hpp"
#include "common/util/ids.hpp"

namespace al::http {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

class Session;

struct Server::State {
  net::io_context& ioc;
  const Router& router;
  ServerOptions options;
  Metrics* metrics;
  tcp::acceptor acceptor;
  std::size_t max_connections;
  // Accept backoff after a failed accept (EMFILE, ENFILE, …); touched on the acceptor's strand only.
  net::steady_timer accept_timer;
  std::chrono::milliseconds accept_backoff{0};
  std::chrono::steady_clock::time_point last_accept_warning{};
  std::uint64_t accept_warnings_suppressed = 0;
  // Shared with the metrics registry, which may outlive the server.
  std::shared_ptr<std::atomic<std::uint64_t>> accept_failures = std::make_shared<std::atomic<std::uint64_t>>(0);
  std::shared_ptr<std::atomic<std::uint64_t>> rejected = std::make_shared<std::atomic<std::uint64_t>>(0);
  std::vector<net::io_context*> pool;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> draining{false};
  std::atomic<std::size_t> live{0};
  std::mutex sessions_mutex;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  TrustedProxies proxies;

  State(net::io_context& io, const Router& r, ServerOptions o, Metrics* m, std::vector<net::io_context*> p)
      : ioc(io), router(r), options(std::move(o)), metrics(m), acceptor(net::make_strand(io)),
        max_connections(options.max_connections), accept_timer(acceptor.get_executor()), pool(std::move(p)),
        proxies(options.trusted_proxies) {
    if (pool.empty()) pool.push_back(&ioc);
    if (max_connections == 0) {
      rlimit limit{};
      std::uint64_t soft = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                               ? static_cast<std::uint64_t>(limit.rlim_cur)
                               : std::numeric_limits<std::uint64_t>::max();
      max_connections = derive_max_connections(soft);
    }
  }
  net::io_context& next_context() { return *pool[next.fetch_add(1, std::memory_order_relaxed) % pool.size()]; }
};

std::size_t derive_max_connections(std::uint64_t soft_file_limit) {
  constexpr std::uint64_t kCeiling = 20000;
  std::uint64_t reserve = soft_file_limit / 10 + 64;
  if (soft_file_limit <= reserve) return 1;
  return static_cast<std::size_t>(std::max<std::uint64_t>(1, std::min(kCeiling, soft_file_limit - reserve)));
}

namespace {
bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

constexpr std::string_view kUnsupportedTransferCoding =
    "Unsupported transfer coding: only Transfer-Encoding: chunked is accepted";
constexpr std::string_view kLengthAndTransferCoding =
    "A request must not carry both Content-Length and Transfer-Encoding";

// The Allow value of a 405: HEAD is served wherever GET is.
std::string with_head(std::string allow) {
  std::size_t after_get = std::string::npos;
  for (std::size_t start = 0; start < allow.size();) {
    std::size_t end = allow.find(", ", start);
    if (end == std::string::npos) end = allow.size();
    std::string_view method(allow.data() + start, end - start);
    if (method == "HEAD") return allow;
    if (method == "GET") after_get = end;
    start = end + 2;
  }
  if (after_get != std::string::npos) allow.insert(after_get, ", HEAD");
  return allow;
}
}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<Server::State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {
    ++state_->live;
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string();
  }
  ~Session() {
    {
      std::lock_guard lock(state_->sessions_mutex);
      state_->sessions.erase(this);
    }
    --state_->live;
  }

  void run() {
    {
      std::lock_guard lock(state_->sessions_mutex);
      state_->sessions[this] = weak_from_this();
    }
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  // Called on drain: close now when idle, otherwise after the response in flight (or its linger).
  void drain() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_ && !self->lingering_) self->close();
    });
  }

 private:
  void do_read() {
    if (state_->draining) return close();
    parser_.emplace();
    parser_->body_limit(state_->options.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(state_->options.header_limit));
    stream_.expires_after(state_->options.read_timeout);
    // The header first: its framing is checked before a byte of the body is read.
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  static bool peer_gone(const beast::error_code& ec) {
    return ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
           ec == beast::error::timeout || ec == net::error::connection_reset;
  }

  void begin_request() {
    started_ = std::chrono::steady_clock::now();
    keep_alive_ = false;
    head_ = false;
    method_text_ = "-";
    route_ = "-";
    request_id_ = random_hex(8);
    trace_id_.clear();
  }

  // Answers a request whose input was not read to the end; the connection is closed after it.
  void refuse(unsigned status, std::string_view message, std::string_view code) {
    keep_alive_ = false;
    linger_ = true;
    send(Response::error(status, message, code));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (peer_gone(ec)) return close();
    begin_request();
    const auto& header = parser_->get();
    if (ec == bhttp::error::header_limit) return refuse(431, "Request headers too large", "headers_too_large");
    // A Content-Length over body_limit ends the header already: the body is never read (nor is
    // `100 Continue` sent for it).
    if (ec == bhttp::error::body_limit) return refuse(413, "Request body too large", "payload_too_large");
    // Beast stops at the field that conflicts; the fields before it are in the header.
    if (ec == bhttp::error::bad_transfer_encoding)
      return refuse(400, header.count(bhttp::field::content_length) ? kLengthAndTransferCoding : kUnsupportedTransferCoding,
                    "bad_request");
    if (ec == bhttp::error::bad_content_length && header.count(bhttp::field::transfer_encoding))
      return refuse(400, kLengthAndTransferCoding, "bad_request");
    if (ec) return refuse(400, "Malformed HTTP request", "bad_request");
    method_text_ = std::string(header.method_string().substr(0, 16));

    // RFC 9112 §6.1: only `chunked` alone is understood. Anything else (another coding, a list,
    // the field twice) leaves the body's length unknown, and Beast would read such a body as the
    // next request: refuse it and close.
    auto codings = header.equal_range(bhttp::field::transfer_encoding);
    if (codings.first != codings.second) {
      if (std::next(codings.first) != codings.second || !beast::iequals(codings.first->value(), "chunked"))
        return refuse(400, kUnsupportedTransferCoding, "bad_request");
      if (header.count(bhttp::field::content_length)) return refuse(400, kLengthAndTransferCoding, "bad_request");
    }
    auto length = parser_->content_length();
    bool body_expected = parser_->chunked() || (length && *length > 0);
    if (body_expected && header.version() >= 11 && beast::iequals(header[bhttp::field::expect], "100-continue") &&
        buffer_.size() == 0) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                              [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                if (ec) return self->close();
                                self->read_body();
                              });
    }
    read_body();
  }

  // Within the deadline the header started.
  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (peer_gone(ec)) return close();
    if (ec == bhttp::error::body_limit) return refuse(413, "Request body too large", "payload_too_large");
    if (ec) return refuse(400, "Malformed HTTP request", "bad_request");
    started_ = std::chrono::steady_clock::now();  // latency counts from the whole request

    auto message = parser_->release();
    keep_alive_ = message.keep_alive();
    Request request;
    request.method = message.method();
    request.target = std::string(message.target());
    request.remote_address = state_->proxies.empty() ? remote_ : state_->proxies.client_address(remote_, message["x-forwarded-for"]);
    auto incoming_id = message["x-request-id"];
    if (valid_request_id(incoming_id)) request_id_ = std::string(incoming_id);
    request.request_id = request_id_;
    // W3C Trace Context: the caller's trace continues with this request's span (or starts here).
    request.traceparent = trace::continue_from(message["traceparent"]);
    trace_id_ = trace::trace_id_of(request.traceparent);
    head_ = request.method == bhttp::verb::head;

    auto url = boost::urls::parse_origin_form(request.target);
    if (!url) return send(Response::error(400, "Malformed request target", "bad_request"));
    try {
      // Routing works on the encoded path so an encoded '/' (%2F) can never split a segment;
      // path parameters are decoded one by one after the match.
      request.path = std::string(url->encoded_path());
      for (auto param : url->params()) request.query.emplace_back(param.key, param.value);
    } catch (const std::exception&) {
      return send(Response::error(400, "Malformed request target", "bad_request"));
    }

    if (request.method == bhttp::verb::get && beast::websocket::is_upgrade(message)) {
      std::string pattern;
      if (const Upgrade* upgrade = state_->router.match_upgrade(request.path, pattern)) {
        route_ = "websocket " + pattern;
        request.route = route_;
        request.headers = static_cast<const bhttp::fields&>(message.base());
        if (auto refusal = upgrade->check(request)) {
          keep_alive_ = false;
          return send(std::move(*refusal));
        }
        status_ = 101;
        record();
        // From here the socket belongs to the upgrade; this session ends when on_read returns.
        upgrade->take(std::move(request), std::move(message), stream_.release_socket());
        return;
      }
    }

    auto match = state_->router.match(request.method, request.path);
    if (head_ && match.handler == nullptr) {
      // HEAD is GET without the body: the GET handler answers, send() leaves the body out.
      auto get = state_->router.match(bhttp::verb::get, request.path);
      if (get.handler != nullptr) {
        match = std::move(get);
        request.method = bhttp::verb::get;
      }
    }
    if (match.handler == nullptr) {
      if (match.status == 405) {
        Response r = Response::error(405, "Method not allowed", "method_not_allowed");
        r.headers.emplace_back("allow", with_head(std::move(match.allow)));
        return send(std::move(r));
      }
      return send(Response::error(404, "Not found", "not_found"));
    }
    route_ = match.route;
    request.route = match.route;
    request.params = std::move(match.params);
    for (auto& [name, value] : request.params) {
      auto decoded = boost::urls::make_pct_string_view(value);
      if (!decoded) return send(Response::error(400, "Malformed request target", "bad_request"));
      value = decoded->decode();
    }
    request.headers = std::move(static_cast<bhttp::fields&>(message.base()));
    request.body = std::move(message.body());

    busy_ = true;
    auto once = std::make_shared<std::atomic<bool>>(false);
    Responder responder = [self = shared_from_this(), once](Response response) {
      if (once->exchange(true)) return;
      // dispatch: a handler that answers synchronously (on this strand) sends at once; one that
      // answers from another thread (a storage worker, the database writer) is queued onto the strand.
      net::dispatch(self->stream_.get_executor(),
                    [self, response = std::move(response)]() mutable { self->send(std::move(response)); });
    };
    if (match.runs == Runs::OnIo || !state_->options.run_handler) return invoke(*match.handler, request, responder);
    state_->options.run_handler(
        [self = shared_from_this(), handler = match.handler, request = std::make_shared<Request>(std::move(request)),
         responder] { self->invoke(*handler, *request, responder); });
  }

  // Any thread: the handler answers through `responder`, which sends on this session's strand.
  void invoke(const Handler& handler, const Request& request, const Responder& responder) {
    try {
      handler(request, responder);
    } catch (const std::exception& e) {
      log::error("handler failed", {{"request_id", request.request_id}, {"route", request.route}, {"what", e.what()}});
      if (state_->options.map_exception)
        if (auto mapped = state_->options.map_exception(e)) return responder(std::move(*mapped));
      responder(Response::error(500, "Internal server error", "internal"));
    } catch (...) {
      log::error("handler failed", {{"request_id", request.request_id}, {"route", request.route}, {"what", "unknown exception"}});
      responder(Response::error(500, "Internal server error", "internal"));
    }
  }

  void send(Response response) {
    busy_ = true;
    status_ = response.status;
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(response.status), 11);
    bool keep = keep_alive_ && !state_->draining;
    res->keep_alive(keep);
    res->set(bhttp::field::server, "agentlancer");
    res->set("x-request-id", request_id_);
    if (!response.content_type.empty() && response.status != 204)
      res->set(bhttp::field::content_type, response.content_type);
    for (auto& [k, v] : response.headers) res->set(k, v);
    if (response.status != 204) res->body() = std::move(response.body);
    res->prepare_payload();
    stream_.expires_after(state_->options.write_timeout);
    if (head_) {
      // The header as the GET would have it, Content-Length included; no body (RFC 9110 §9.3.2).
      auto header_only = std::make_shared<bhttp::response<bhttp::empty_body>>(std::move(res->base()));
      return bhttp::async_write(stream_, *header_only,
                                [self = shared_from_this(), header_only, keep](beast::error_code ec, std::size_t) {
                                  self->on_write(ec, keep);
                                });
    }
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res, keep](beast::error_code ec, std::size_t) {
                         self->on_write(ec, keep);
                       });
  }

  void on_write(beast::error_code ec, bool keep) {
    record();
    busy_ = false;
    if (!ec && linger_ && state_->options.linger_timeout.count() > 0) return linger();
    if (ec || !keep) return close();
    do_read();
  }

  // The response is out, but the client may still be sending the request we did not read: closing
  // with unread data would reset the connection, and a reset can destroy the response before the
  // client reads it. So: send our FIN, drop what arrives for a bounded time, then close.
  void linger() {
    lingering_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    buffer_.clear();
    discard_.resize(16 * 1024);
    stream_.expires_after(state_->options.linger_timeout);
    read_and_discard();
  }

  void read_and_discard() {
    stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ >= self->state_->options.linger_bytes) return self->close();
      self->read_and_discard();
    });
  }

  void record() {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    if (state_->metrics) state_->metrics->observe_request(method_text_, route_, status_, seconds);
    if (state_->options.access_log) {
      log::info("request", {{"request_id", request_id_},
                            {"trace_id", trace_id_},
                            {"method", method_text_},
                            {"route", route_},
                            {"status", status_},
                            {"latency_ms", seconds * 1000.0}});
    }
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<Server::State> state_;
  std::string remote_;
  bool busy_ = false;
  bool keep_alive_ = false;
  bool head_ = false;       // a HEAD request: the response goes without its body
  bool linger_ = false;     // the request was not read to its end: linger after the response
  bool lingering_ = false;
  std::size_t lingered_ = 0;
  std::vector<char> discard_;
  std::chrono::steady_clock::time_point started_;
  std::string method_text_ = "-";
  std::string route_ = "-";
  std::string request_id_;
  std::string trace_id_;  // of the request's traceparent ("" before the request is read)
  unsigned status_ = 0;
};

namespace {
// One more connection than max_connections: a short 503 written without reading the request
// (the socket buffer takes it at once), what already arrived read and dropped so the close is a
// FIN rather than a reset, then closed. No session, no timer: this costs the descriptor only now.
void refuse_over_capacity(tcp::socket& socket) {
  static const std::string kResponse = [] {
    std::string body = R"({"error":"Too many open connections; retry shortly","code":"unavailable"})";
    return "HTTP/1.1 503 Service Unavailable\r\nServer: agentlancer\r\nContent-Type: application/json\r\n"
           "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(net::buffer(kResponse), ignored);
  char scratch[4096];
  for (int i = 0; i < 16; ++i) {
    beast::error_code ec;
    if (socket.read_some(net::buffer(scratch), ec) == 0 || ec) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

// Errors of one pending connection (accept(2): treat like EAGAIN and retry); any other error (EMFILE,
// ENFILE, ENOBUFS, ENOMEM) would fail again at once, so accepting pauses.
bool per_connection_error(const beast::error_code& ec) {
  return ec == net::error::connection_aborted || ec == net::error::try_again || ec == net::error::would_block ||
         ec == net::error::interrupted || ec == net::error::network_down || ec == net::error::network_unreachable ||
         ec == net::error::host_unreachable || ec == net::error::no_protocol_option ||
         ec == net::error::operation_not_supported || ec.value() == EPROTO || ec.value() == EHOSTDOWN ||
         ec.value() == ENONET;
}

void do_accept(std::shared_ptr<Server::State> state);

// On the acceptor's strand.
void on_accept_failure(const std::shared_ptr<Server::State>& state, const beast::error_code& ec) {
  state->accept_failures->fetch_add(1, std::memory_order_relaxed);
  bool pause = !per_connection_error(ec);
  if (pause) {
    state->accept_backoff = state->accept_backoff.count() == 0
                                ? std::chrono::milliseconds(50)
                                : std::min(state->accept_backoff * 2, std::chrono::milliseconds(1000));
  }
  auto now = std::chrono::steady_clock::now();
  if (now - state->last_accept_warning >= std::chrono::seconds(1)) {
    log::warn("accept failed", {{"what", ec.message()},
                                {"paused_ms", pause ? state->accept_backoff.count() : 0},
                                {"open_connections", state->live.load()},
                                {"suppressed", state->accept_warnings_suppressed}});
    state->last_accept_warning = now;
    state->accept_warnings_suppressed = 0;
  } else {
    ++state->accept_warnings_suppressed;
  }
  if (!pause) return do_accept(state);
  state->accept_timer.expires_after(state->accept_backoff);
  state->accept_timer.async_wait([state](beast::error_code wait_ec) {
    if (wait_ec || !state->acceptor.is_open()) return;
    do_accept(state);
  });
}

void do_accept(std::shared_ptr<Server::State> state) {
  state->acceptor.async_accept(
      net::make_strand(state->next_context()), [state](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !state->acceptor.is_open()) return;
        if (ec) return on_accept_failure(state, ec);
        state->accept_backoff = std::chrono::milliseconds(0);
        if (state->draining) {
          beast::error_code ignored;
          socket.close(ignored);
        } else if (state->live.load() >= state->max_connections) {
          state->rejected->fetch_add(1, std::memory_order_relaxed);
          refuse_over_capacity(socket);
        } else {
          std::make_shared<Session>(std::move(socket), state)->run();
        }
        do_accept(state);
      });
}
}  // namespace

Server::Server(net::io_context& ioc, const Router& router, ServerOptions options, Metrics* metrics,
               std::vector<net::io_context*> pool)
    : state_(std::make_shared<State>(ioc, router, std::move(options), metrics, std::move(pool))) {
  if (metrics != nullptr) {
    metrics->register_counter("http_accept_failures_total",
                              "Failed accepts of HTTP connections (EMFILE, ENFILE, …); accepting pauses after one.",
                              [failures = state_->accept_failures] { return static_cast<double>(failures->load()); });
    metrics->register_counter("http_connections_rejected_total",
                              "HTTP connections answered 503 for being over http.max_connections.",
                              [rejected = state_->rejected] { return static_cast<double>(rejected->load()); });
  }
}

Server::~Server() = default;

void Server::start() {
  auto address = net::ip::make_address(state_->options.address);
  tcp::endpoint endpoint(address, state_->options.port);
  state_->acceptor.open(endpoint.protocol());
  state_->acceptor.set_option(net::socket_base::reuse_address(true));
  state_->acceptor.bind(endpoint);
  state_->acceptor.listen(net::socket_base::max_listen_connections);
  do_accept(state_);
}

unsigned short Server::port() const { return state_->acceptor.local_endpoint().port(); }

std::size_t Server::connections() const { return state_->live.load(); }

std::size_t Server::max_connections() const { return state_->max_connections; }

std::uint64_t Server::accept_failures() const { return state_->accept_failures->load(); }

std::uint64_t Server::rejected_connections() const { return state_->rejected->load(); }

void Server::shutdown(std::chrono::milliseconds deadline, std::function<void()> done) {
  auto state = state_;
  state->draining = true;
  net::post(state->acceptor.get_executor(), [state] {
    beast::error_code ignored;
    state->acceptor.close(ignored);
    state->accept_timer.cancel();
  });
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(state->sessions_mutex);
    for (auto& [ptr, weak] : state->sessions)
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
  }
  for (auto& s : sessions) s->drain();
  sessions.clear();
  state->router.run_drain_hooks();
  auto timer = std::make_shared<net::steady_timer>(state->ioc);
  auto give_up_at = std::chrono::steady_clock::now() + deadline;
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [state, timer, give_up_at, done = std::move(done), poll]() {
    if (state->live.load() == 0 || std::chrono::steady_clock::now() >= give_up_at) {
      if (state->live.load() != 0)
        log::warn("drain deadline passed", {{"open_connections", state->live.load()}});
      auto finish = done;
      *poll = nullptr;  // break the self-reference
      if (finish) finish();
      return;
    }
    timer->expires_after(std::chrono::milliseconds(20));
    timer->async_wait([poll](beast::error_code) {
      if (*poll) (*poll)();
    });
  };
  net::post(state->ioc, [poll] { (*poll)(); });
}

}  // namespace al::http
