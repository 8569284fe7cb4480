#pragma once
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
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
  // Open connections at most; one more is answered `503` (Retry-After: 1, Connection: close)
  // without reading its request, and closed. 0 derives it from the process's file limit:
  // min(20000, soft RLIMIT_NOFILE - (soft / 10 + 64)), at least 1, so the connections can never
  // take the descriptors the database, Kafka and the logs need (see derive_max_connections).
  std::size_t max_connections = 0;
  // After an error answered before its request was read to the end (413, 431, 400), the
  // connection is not reset at once (a reset could destroy the response before the client reads
  // it): our side is shut down and what the client still sends is read and dropped, for at most
  // linger_timeout or linger_bytes, whichever comes first; then it is closed. A zero
  // linger_timeout closes at once.
  std::chrono::milliseconds linger_timeout{2000};
  std::size_t linger_bytes = 4 * 1024 * 1024;
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

// The connection cap for a soft RLIMIT_NOFILE of `soft_file_limit` (ServerOptions::max_connections 0):
// min(20000, soft - (soft / 10 + 64)), at least 1. A 10% + 64 reserve stays for the database, Kafka,
// log and WebSocket descriptors.
std::size_t derive_max_connections(std::uint64_t soft_file_limit);

// A Boost.Beast HTTP/1.1 server: one session per connection on its own strand, a fresh parser
// with a body limit per request, keep-alive, and a graceful drain.
//
// Strict about framing (RFC 9112): a Transfer-Encoding other than exactly `chunked`, or one together
// with Content-Length, is refused with 400 and the connection closed, so a body can never be read
// as a further request. A Content-Length over body_limit is answered 413 before the body is read
// (and before any `100 Continue`). HEAD runs the GET route and answers its status and headers
// without the body. When accept fails (e.g. EMFILE) accepting pauses for 50 ms, doubling up to 1 s,
// back to none after a success; the failures are counted and logged at most once a second.
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
  std::size_t max_connections() const;  // the cap in force (derived when the option is 0)
  std::uint64_t accept_failures() const;        // accept() errors since start
  std::uint64_t rejected_connections() const;   // answered 503 for being over max_connections

  struct State;  // shared with the sessions

 private:
  std::shared_ptr<State> state_;
};

}  // namespace al::http
