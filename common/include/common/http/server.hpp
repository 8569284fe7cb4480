#pragma once
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/http/router.hpp"
#include "common/metrics/metrics.hpp"

namespace al::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  unsigned short port = 8080;  // 0 picks a free port (tests)
  std::size_t body_limit = 1024 * 1024;
  std::size_t header_limit = 16 * 1024;
  // A whole request (headers and body) must arrive within this time after the connection starts
  // waiting for it; defeats slowloris and bounds idle keep-alive connections.
  std::chrono::milliseconds read_timeout{15000};
  std::chrono::milliseconds write_timeout{30000};
  std::size_t max_connections = 20000;
  bool access_log = true;
  // Peers whose X-Forwarded-For is believed (the gateway's addresses, e.g. 127.0.0.1/32): a
  // request from one of them has as its client address the rightmost X-Forwarded-For entry that
  // is not itself a trusted proxy. From any other peer the header is ignored (a client could
  // write anything there).
  std::vector<std::string> trusted_proxies;  // CIDR networks or addresses (else Server throws invalid_argument)
  // Maps an exception a handler let escape to a response (e.g. the database being unreachable to
  // 503); without an answer it is a 500.
  std::function<std::optional<Response>(const std::exception&)> map_exception;
  // Runs a handler (Runs::OffIo) off the I/O thread; its response is sent on the connection's
  // strand. Empty: handlers run on the I/O thread (tests of the server alone).
  std::function<void(std::function<void()>)> run_handler;
};

// A Boost.Beast HTTP/1.1 server: one session per connection on its own strand, a fresh parser
// with a body limit per request, keep-alive, and a graceful drain.
class Server {
 public:
  // Connections are spread round-robin over `pool` (one io_context per thread, so a connection's
  // work never wakes another thread); `ioc` runs the acceptor and the drain timer.
  Server(boost::asio::io_context& ioc, const Router& router, ServerOptions options,
         Metrics* metrics, std::vector<boost::asio::io_context*> pool = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void start();  // binds and starts accepting; throws on failure
  unsigned short port() const;
  // Stops accepting; idle connections close now, busy ones after their response. `done` runs
  // (on an io thread) once no connection is left or the deadline has passed.
  void shutdown(std::chrono::milliseconds deadline, std::function<void()> done);
  std::size_t connections() const;

  struct State;  // shared with the sessions

 private:
  std::shared_ptr<State> state_;
};

}  // namespace al::http
