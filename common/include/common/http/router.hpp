#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/http/message.hpp"

namespace al::http {

// A route that takes over the connection of a WebSocket upgrade (a GET with `Upgrade: websocket`).
// `check` may refuse it with an HTTP response; otherwise `take` owns the socket from then on.
// A plain GET to the same path goes to the route's ordinary handler, if any.
struct Upgrade {
  std::function<std::optional<Response>(const Request&)> check;
  std::function<void(Request, bhttp::request<bhttp::string_body>, boost::asio::ip::tcp::socket)> take;
};

// Where a handler runs. Most handlers read the database, which may wait (a PostgreSQL round
// trip): they run on the server's handler executor (ServerOptions::run_handler), never on an I/O
// thread. A handler that only touches memory (health, metrics) may run on the I/O thread.
enum class Runs { OffIo, OnIo };

// Routes by method and path pattern; "{name}" matches one non-empty path segment (so a
// trailing slash does not matter).
class Router {
 public:
  // Wraps a handler when it is added (rate limits, Idempotency-Key): sees the route it guards.
  using Decorator = std::function<Handler(bhttp::verb method, const std::string& pattern, Handler handler)>;

  void add(bhttp::verb method, std::string pattern, Handler handler, Runs runs = Runs::OffIo);

  // Every handler added while a scope lives is wrapped by its decorator; scopes nest (the one
  // made first wraps outermost).
  class DecoratorScope {
   public:
    DecoratorScope(Router& router, Decorator decorator) : router_(router) {
      router_.decorators_.push_back(std::move(decorator));
    }
    ~DecoratorScope() { router_.decorators_.pop_back(); }
    DecoratorScope(const DecoratorScope&) = delete;
    DecoratorScope& operator=(const DecoratorScope&) = delete;

   private:
    Router& router_;
  };
  void add_upgrade(std::string pattern, Upgrade upgrade);

  // Runs when the server starts draining: a handler that holds a request open (a long poll)
  // answers it now rather than hold the drain up to its deadline.
  void on_drain(std::function<void()> hook);
  void run_drain_hooks() const;

  struct Match {
    const Handler* handler = nullptr;  // null: see status
    Runs runs = Runs::OffIo;
    unsigned status = 404;             // 404 no such path, 405 path exists for other methods
    std::string route;
    Pairs params;
    std::string allow;  // for 405
  };
  Match match(bhttp::verb method, std::string_view path) const;
  // The upgrade route for `path`, or null; `route` receives its pattern.
  const Upgrade* match_upgrade(std::string_view path, std::string& route) const;

  // Every registered route, in registration order (`agentlancer routes`; deployment checks).
  struct Listed {
    std::string method;  // "GET", "POST", …; an upgrade route: "GET" with upgrade set
    std::string pattern;
    bool upgrade = false;
  };
  std::vector<Listed> list() const;

 private:
  struct Route {
    bhttp::verb method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
    Runs runs;
  };
  std::vector<Route> routes_;
  struct UpgradeRoute {
    std::string pattern;
    std::vector<std::string> segments;
    Upgrade upgrade;
  };
  std::vector<UpgradeRoute> upgrades_;
  std::vector<Decorator> decorators_;
  std::vector<std::function<void()>> drain_hooks_;
};

}  // namespace al::http
