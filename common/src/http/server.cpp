#include "common/http/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <atomic>
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
  std::vector<net::io_context*> pool;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> draining{false};
  std::atomic<std::size_t> live{0};
  std::mutex sessions_mutex;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  TrustedProxies proxies;

  State(net::io_context& io, const Router& r, ServerOptions o, Metrics* m, std::vector<net::io_context*> p)
      : ioc(io), router(r), options(std::move(o)), metrics(m), acceptor(net::make_strand(io)), pool(std::move(p)),
        proxies(options.trusted_proxies) {
    if (pool.empty()) pool.push_back(&ioc);
  }
  net::io_context& next_context() { return *pool[next.fetch_add(1, std::memory_order_relaxed) % pool.size()]; }
};

namespace {
bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
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

  // Called on drain: close now when idle, otherwise after the response in flight.
  void drain() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->close();
    });
  }

 private:
  void do_read() {
    if (state_->draining) return close();
    parser_.emplace();
    parser_->body_limit(state_->options.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(state_->options.header_limit));
    stream_.expires_after(state_->options.read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset) {
      return close();
    }
    started_ = std::chrono::steady_clock::now();
    keep_alive_ = false;
    method_text_ = "-";
    route_ = "-";
    request_id_ = random_hex(8);
    if (ec == bhttp::error::body_limit) {
      return send(Response::error(413, "Request body too large", "payload_too_large"));
    }
    if (ec == bhttp::error::header_limit) {
      return send(Response::error(431, "Request headers too large", "headers_too_large"));
    }
    if (ec) return send(Response::error(400, "Malformed HTTP request", "bad_request"));

    auto message = parser_->release();
    keep_alive_ = message.keep_alive();
    Request request;
    request.method = message.method();
    method_text_ = std::string(message.method_string().substr(0, 16));
    request.target = std::string(message.target());
    request.remote_address = state_->proxies.empty() ? remote_ : state_->proxies.client_address(remote_, message["x-forwarded-for"]);
    auto incoming_id = message["x-request-id"];
    if (valid_request_id(incoming_id)) request_id_ = std::string(incoming_id);
    request.request_id = request_id_;

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
    if (match.handler == nullptr) {
      if (match.status == 405) {
        Response r = Response::error(405, "Method not allowed", "method_not_allowed");
        r.headers.emplace_back("allow", match.allow);
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
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res, keep](beast::error_code ec, std::size_t) {
                         self->on_write(ec, keep);
                       });
  }

  void on_write(beast::error_code ec, bool keep) {
    record();
    busy_ = false;
    if (ec || !keep) return close();
    do_read();
  }

  void record() {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    if (state_->metrics) state_->metrics->observe_request(method_text_, route_, status_, seconds);
    if (state_->options.access_log) {
      log::info("request", {{"request_id", request_id_},
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
  std::chrono::steady_clock::time_point started_;
  std::string method_text_ = "-";
  std::string route_ = "-";
  std::string request_id_;
  unsigned status_ = 0;
};

namespace {
void do_accept(std::shared_ptr<Server::State> state) {
  state->acceptor.async_accept(
      net::make_strand(state->next_context()), [state](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !state->acceptor.is_open()) return;
        if (!ec) {
          if (state->draining || state->live.load() >= state->options.max_connections) {
            beast::error_code ignored;
            socket.close(ignored);
          } else {
            std::make_shared<Session>(std::move(socket), state)->run();
          }
        } else {
          log::warn("accept failed", {{"what", ec.message()}});
        }
        do_accept(state);
      });
}
}  // namespace

Server::Server(net::io_context& ioc, const Router& router, ServerOptions options, Metrics* metrics,
               std::vector<net::io_context*> pool)
    : state_(std::make_shared<State>(ioc, router, std::move(options), metrics, std::move(pool))) {}

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

void Server::shutdown(std::chrono::milliseconds deadline, std::function<void()> done) {
  auto state = state_;
  state->draining = true;
  net::post(state->acceptor.get_executor(), [state] {
    beast::error_code ignored;
    state->acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(state->sessions_mutex);
    for (auto& [ptr, weak] : state->sessions)
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
  }
  for (auto& s : sessions) s->drain();
  sessions.clear();
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
