#include "common/http/server.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/service/module.hpp"
#include "common/service/worker_pool.hpp"
#include "http_client.hpp"

// accept(2) as the test sees it: while accepts_fail_with holds an error, accept fails with it (EMFILE
// as when the process is out of descriptors) and the connection stays in the listen backlog, as the
// kernel leaves it. Lowering RLIMIT_NOFILE instead does not work under UBSan: its vptr check probes
// memory through a pipe, and without a free descriptor it reports a false "invalid vptr" and aborts.
namespace {
std::atomic<int> accepts_fail_with{0};
}  // namespace

extern "C" int accept(int fd, sockaddr* __restrict address, socklen_t* __restrict length) {
  if (int error = accepts_fail_with.load()) {
    errno = error;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_accept4, fd, address, length, 0));
}

namespace {

namespace net = boost::asio;
namespace bj = boost::json;
using tcp = net::ip::tcp;
using verb = boost::beast::http::verb;
using al::http::Request;
using al::http::Responder;
using al::http::Response;
using al::testing::HttpClient;
using al::testing::HttpResult;
using namespace std::chrono_literals;

// Polls `condition` every 10 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 3000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

std::string header(const HttpResult& r, std::string name) {
  for (const auto& [k, v] : r.headers) {
    if (boost::beast::iequals(k, name)) return v;
  }
  return "<absent>";
}

bool is_hex(const std::string& s, std::size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A raw TCP connection with bounded, non-blocking reads (never hangs a test).
class RawConnection {
 public:
  explicit RawConnection(unsigned short port) : socket_(io_) { connect(port); }
  // Takes its descriptor now and connects later (connect() needs no new descriptor).
  struct Deferred {};
  explicit RawConnection(Deferred) : socket_(io_) { socket_.open(tcp::v4()); }
  void connect(unsigned short port) {
    boost::system::error_code ec;
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    connected_ = !ec;
    if (connected_) socket_.non_blocking(true);
  }
  bool connected() const { return connected_; }
  // False when the peer has already gone away.
  bool send(const std::string& data) {
    if (!connected_) return false;
    std::size_t sent = 0;
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (sent < data.size() && std::chrono::steady_clock::now() < deadline) {
      boost::system::error_code ec;
      sent += socket_.write_some(net::buffer(data.data() + sent, data.size() - sent), ec);
      if (ec == net::error::would_block) {
        std::this_thread::sleep_for(10ms);
      } else if (ec) {
        return false;
      }
    }
    return sent == data.size();
  }
  // Reads until `data` contains `marker` (true), the peer closes or the deadline passes (false).
  bool read_until(std::string& data, std::string_view marker, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (connected_ && data.find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      boost::system::error_code ec;
      std::size_t n = socket_.read_some(net::buffer(buf), ec);
      if (n > 0) data.append(buf, n);
      if (ec == net::error::would_block || ec == net::error::try_again) {
        std::this_thread::sleep_for(5ms);
      } else if (ec) {
        break;
      }
    }
    return data.find(marker) != std::string::npos;
  }
  // Reads until the peer closes (true) or the deadline passes (false); `data` gets what arrived.
  bool read_until_closed(std::string& data, std::chrono::milliseconds timeout) {
    if (!connected_) return true;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      boost::system::error_code ec;
      std::size_t n = socket_.read_some(net::buffer(buf), ec);
      if (n > 0) data.append(buf, n);
      if (ec == net::error::would_block || ec == net::error::try_again) {
        std::this_thread::sleep_for(10ms);
        continue;
      }
      if (ec) return true;  // eof, reset: closed
    }
    return false;
  }

 private:
  net::io_context io_;
  tcp::socket socket_;
  bool connected_ = false;
};

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() {
    router.add(verb::get, "/hello", [this](const Request& r, Responder respond) {
      ++hello_calls;
      {
        std::lock_guard lock(mutex);
        last_request_id = r.request_id;
      }
      respond(Response::json(200, bj::object{{"message", "hi"}, {"request_id", r.request_id}}));
    });
    router.add(verb::get, "/items/{id}", [](const Request& r, Responder respond) {
      bj::object o;
      o["id"] = r.param("id");
      o["path"] = r.path;
      o["target"] = r.target;
      o["route"] = r.route;
      o["x"] = r.query_value("x") ? bj::value(*r.query_value("x")) : bj::value(nullptr);
      o["y"] = r.query_value("y") ? bj::value(*r.query_value("y")) : bj::value(nullptr);
      o["remote"] = r.remote_address;
      o["custom"] = r.header("x-custom");
      respond(Response::json(200, o));
    });
    router.add(verb::post, "/echo", [](const Request& r, Responder respond) {
      respond(Response::json(200, bj::object{{"size", r.body.size()}, {"body", r.body}}));
    });
    router.add(verb::get, "/both", [](const Request&, Responder respond) { respond(Response::no_content()); });
    router.add(verb::post, "/both", [](const Request&, Responder respond) { respond(Response::no_content()); });
    router.add(verb::get, "/boom", [](const Request&, Responder) -> void {
      throw std::runtime_error("kaboom");
    });
    router.add(verb::get, "/async", [this](const Request& r, Responder respond) {
      spawn([respond, id = r.request_id] {
        std::this_thread::sleep_for(20ms);  // simulated work on another thread
        respond(Response::json(200, bj::object{{"async", true}, {"request_id", id}}));
      });
    });
    router.add(verb::get, "/slow", [this](const Request&, Responder respond) {
      slow_entered = true;
      spawn([this, respond] {
        std::this_thread::sleep_for(300ms);  // the slow request's own work
        slow_responded = true;
        respond(Response::json(200, bj::object{{"slow", true}}));
      });
    });
    router.add(verb::get, "/hang", [this](const Request&, Responder respond) {
      std::lock_guard lock(mutex);
      hanging = respond;
    });
    router.add(verb::post, "/object", [](const Request& r, Responder respond) {
      Response error;
      auto body = al::read_json_object(r, error);
      if (!body) return respond(std::move(error));
      respond(Response::json(200, bj::object{{"keys", body->size()}}));
    });
    router.add(verb::get, "/twice", [](const Request&, Responder respond) {
      respond(Response::json(200, bj::object{{"first", true}}));
      respond(Response::json(500, bj::object{{"second", true}}));  // ignored
    });
  }

  void start(al::http::ServerOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    options.access_log = false;
    server = std::make_unique<al::http::Server>(ioc, router, options, &metrics);
    server->start();
    port = server->port();
    ASSERT_NE(port, 0);
    for (int i = 0; i < 2; ++i) io_threads.emplace_back([this] { ioc.run(); });
  }

  void spawn(std::function<void()> f) {
    std::lock_guard lock(mutex);
    workers.emplace_back(std::move(f));
  }

  // Starts the drain and returns a flag set by its done callback.
  std::shared_ptr<std::atomic<bool>> begin_shutdown(std::chrono::milliseconds deadline,
                                                    std::function<void()> also = {}) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    shut_down = true;
    server->shutdown(deadline, [done, also] {
      if (also) also();
      done->store(true);
    });
    return done;
  }

  void TearDown() override {
    if (server && !shut_down) {
      auto done = begin_shutdown(2000ms);
      eventually([&] { return done->load(); }, 3000ms);
    }
    std::vector<std::thread> to_join;
    {
      std::lock_guard lock(mutex);
      to_join.swap(workers);
    }
    for (auto& t : to_join) t.join();
    {
      std::lock_guard lock(mutex);
      if (hanging) (*hanging)(Response::no_content());
      hanging.reset();
    }
    work.reset();
    ioc.stop();
    for (auto& t : io_threads) t.join();
    server.reset();
  }

  al::http::Router router;
  al::Metrics metrics;
  net::io_context ioc{2};
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
  std::unique_ptr<al::http::Server> server;
  unsigned short port = 0;
  std::vector<std::thread> io_threads;
  std::mutex mutex;
  std::vector<std::thread> workers;
  std::optional<Responder> hanging;
  std::string last_request_id;
  std::atomic<int> hello_calls{0};
  std::atomic<bool> slow_entered{false};
  std::atomic<bool> slow_responded{false};
  bool shut_down = false;
};

TEST_F(ServerTest, JsonResponse) {
  start();
  HttpClient client(port);
  auto r = client.get("/hello");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("message").as_string(), "hi");
  EXPECT_EQ(header(r, "content-type"), "application/json");
  EXPECT_EQ(header(r, "server"), "agentlancer");
  EXPECT_EQ(header(r, "content-length"), std::to_string(r.body.size()));
  EXPECT_EQ(hello_calls.load(), 1);
}

TEST_F(ServerTest, PathParamsQueryAndHeadersReachTheHandler) {
  start();
  HttpClient client(port);
  auto r = client.request(verb::get, "/items/it%20em-7?x=1&y=a%20b&x=2", "", {{"x-custom", "yes"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  auto j = r.json();
  EXPECT_EQ(j.at("id").as_string(), "it em-7");  // parameters are decoded after routing
  EXPECT_EQ(j.at("path").as_string(), "/items/it%20em-7");  // routing sees the encoded path
  EXPECT_EQ(j.at("target").as_string(), "/items/it%20em-7?x=1&y=a%20b&x=2");
  EXPECT_EQ(j.at("route").as_string(), "/items/{id}");
  EXPECT_EQ(j.at("x").as_string(), "1");  // first occurrence
  EXPECT_EQ(j.at("y").as_string(), "a b");
  EXPECT_EQ(j.at("remote").as_string(), "127.0.0.1");
  EXPECT_EQ(j.at("custom").as_string(), "yes");
}

TEST_F(ServerTest, PostBodyReachesTheHandler) {
  start();
  HttpClient client(port);
  auto r = client.post("/echo", std::string(R"({"a":1})"));
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("size").as_int64(), 7);
  EXPECT_EQ(r.json().at("body").as_string(), R"({"a":1})");
}

TEST_F(ServerTest, RequestIdEchoedWhenSane) {
  start();
  HttpClient client(port);
  auto r = client.request(verb::get, "/hello", "", {{"x-request-id", "abc-123_X.9"}});
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(header(r, "x-request-id"), "abc-123_X.9");
  EXPECT_EQ(r.json().at("request_id").as_string(), "abc-123_X.9");
}

TEST_F(ServerTest, RequestIdGeneratedWhenMissingOrInsane) {
  start();
  HttpClient client(port);
  auto a = client.get("/hello");
  std::string id_a = header(a, "x-request-id");
  EXPECT_TRUE(is_hex(id_a, 16)) << id_a;
  EXPECT_EQ(a.json().at("request_id").as_string(), id_a);  // the handler saw the same id
  auto b = client.get("/hello");
  EXPECT_TRUE(is_hex(header(b, "x-request-id"), 16));
  EXPECT_NE(header(b, "x-request-id"), id_a);

  for (std::string bad : {std::string(65, 'a'), std::string("has space"), std::string("a/b"),
                          std::string("<script>"), std::string("é")}) {
    auto r = client.request(verb::get, "/hello", "", {{"x-request-id", bad}});
    ASSERT_EQ(r.status, 200u);
    std::string id = header(r, "x-request-id");
    EXPECT_NE(id, bad);
    EXPECT_TRUE(is_hex(id, 16)) << "for " << bad << ": " << id;
  }
  // 64 characters is still accepted.
  auto ok = client.request(verb::get, "/hello", "", {{"x-request-id", std::string(64, 'b')}});
  EXPECT_EQ(header(ok, "x-request-id"), std::string(64, 'b'));
}

TEST_F(ServerTest, RequestIdOnErrorResponses) {
  start();
  HttpClient client(port);
  auto r = client.request(verb::get, "/missing", "", {{"x-request-id", "err-1"}});
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(header(r, "x-request-id"), "err-1");
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  start();
  HttpClient client(port);
  for (int i = 0; i < 5; ++i) {
    auto r = client.get("/hello");
    ASSERT_EQ(r.status, 200u);
    EXPECT_NE(header(r, "connection"), "close");
  }
  auto p = client.post("/echo", std::string("x"));
  EXPECT_EQ(p.status, 200u);
  EXPECT_EQ(hello_calls.load(), 5);
  EXPECT_EQ(server->connections(), 1u);
  client.close();
  EXPECT_TRUE(eventually([&] { return server->connections() == 0; }));
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

TEST_F(ServerTest, PipelinedRequestsAnsweredInOrderThenConnectionCloseHonoured) {
  start();
  RawConnection raw(port);
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.send(
      "GET /hello HTTP/1.1\r\nHost: x\r\nx-request-id: p1\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: x\r\nx-request-id: p2\r\n\r\n"
      "GET /hello HTTP/1.1\r\nHost: x\r\nx-request-id: p3\r\nConnection: close\r\n\r\n"));
  std::string data;
  EXPECT_TRUE(raw.read_until_closed(data, 2000ms)) << "Connection: close not honoured";
  EXPECT_EQ(count_of(data, "HTTP/1.1 "), 3u) << data;
  auto p1 = data.find("x-request-id: p1");
  auto p2 = data.find("x-request-id: p2");
  auto p3 = data.find("x-request-id: p3");
  ASSERT_NE(p1, std::string::npos) << data;
  ASSERT_NE(p2, std::string::npos) << data;
  ASSERT_NE(p3, std::string::npos) << data;
  EXPECT_LT(p1, p2);
  EXPECT_LT(p2, p3);
  EXPECT_NE(data.find("HTTP/1.1 404 "), std::string::npos);
  EXPECT_EQ(hello_calls.load(), 2);
}

TEST_F(ServerTest, Http10WithoutKeepAliveIsClosed) {
  start();
  RawConnection raw(port);
  ASSERT_TRUE(raw.send("GET /hello HTTP/1.0\r\n\r\n"));
  std::string data;
  EXPECT_TRUE(raw.read_until_closed(data, 2000ms));
  EXPECT_NE(data.find(" 200 "), std::string::npos) << data;
  EXPECT_NE(data.find(R"("message":"hi")"), std::string::npos) << data;
}

TEST_F(ServerTest, NotFoundJsonShape) {
  start();
  HttpClient client(port);
  auto r = client.get("/nope");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(header(r, "content-type"), "application/json");
  EXPECT_EQ(r.json(), (bj::value(bj::object{{"error", "Not found"}, {"code", "not_found"}})));
  // The connection stays usable.
  EXPECT_EQ(client.get("/hello").status, 200u);
}

TEST_F(ServerTest, MethodNotAllowedWithAllow) {
  start();
  HttpClient client(port);
  auto r = client.request(verb::delete_, "/both");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(header(r, "allow"), "GET, HEAD, POST");  // HEAD is served wherever GET is
  EXPECT_EQ(r.json(), (bj::value(bj::object{{"error", "Method not allowed"}, {"code", "method_not_allowed"}})));
  auto h = client.request(verb::post, "/hello", "{}");
  EXPECT_EQ(h.status, 405u);
  EXPECT_EQ(header(h, "allow"), "GET, HEAD");
  auto p = client.request(verb::put, "/echo", "{}");
  EXPECT_EQ(p.status, 405u);
  EXPECT_EQ(header(p, "allow"), "POST");
}

TEST_F(ServerTest, NoContent) {
  start();
  HttpClient client(port);
  auto r = client.get("/both");
  EXPECT_EQ(r.status, 204u);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(header(r, "content-type"), "<absent>");
}

TEST_F(ServerTest, BodyOverLimitIs413) {
  al::http::ServerOptions options;
  options.body_limit = 1024;
  start(options);
  {
    HttpClient client(port);
    auto ok = client.post("/echo", std::string(1024, 'a'));  // exactly at the limit
    EXPECT_EQ(ok.status, 200u);
    EXPECT_EQ(ok.json().at("size").as_int64(), 1024);
  }
  {
    HttpClient client(port);
    auto r = client.post("/echo", std::string(1025, 'a'));
    EXPECT_EQ(r.status, 413u);
    EXPECT_EQ(r.json(), (bj::value(bj::object{{"error", "Request body too large"}, {"code", "payload_too_large"}})));
    EXPECT_EQ(header(r, "connection"), "close");
  }
  {
    HttpClient client(port);
    auto big = client.post("/echo", std::string(8 * 1024, 'a'));
    EXPECT_EQ(big.status, 413u);
  }
  HttpClient after(port);
  EXPECT_EQ(after.get("/hello").status, 200u);
}

TEST_F(ServerTest, HeadersOverLimitIs431) {
  al::http::ServerOptions options;
  options.header_limit = 1024;
  start(options);
  HttpClient client(port);
  auto r = client.request(verb::get, "/hello", "", {{"x-big", std::string(2000, 'h')}});
  EXPECT_EQ(r.status, 431u);
  EXPECT_EQ(r.error(), "Request headers too large");
}

TEST_F(ServerTest, MalformedHttpGets400AndClose) {
  start();
  RawConnection raw(port);
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.send("THIS IS NOT HTTP AT ALL\r\n\r\n"));
  std::string data;
  EXPECT_TRUE(raw.read_until_closed(data, 2000ms)) << "connection not closed";
  EXPECT_EQ(data.rfind("HTTP/1.1 400 ", 0), 0u) << data;
  EXPECT_NE(data.find(R"({"error":"Malformed HTTP request","code":"bad_request"})"), std::string::npos) << data;
  // The server keeps serving others.
  HttpClient client(port);
  EXPECT_EQ(client.get("/hello").status, 200u);
}

TEST_F(ServerTest, BinaryGarbageGets400AndClose) {
  start();
  RawConnection raw(port);
  ASSERT_TRUE(raw.connected());
  std::string garbage = "\x01\x02\xff\xfe GET\r\n\r\n";
  raw.send(garbage);
  std::string data;
  EXPECT_TRUE(raw.read_until_closed(data, 2000ms));
  EXPECT_EQ(data.rfind("HTTP/1.1 400 ", 0), 0u) << data;
}

TEST_F(ServerTest, MalformedTargetIs400AndConnectionStaysUsable) {
  start();
  HttpClient client(port);
  auto absolute = client.get("http://example.com/hello");
  EXPECT_EQ(absolute.status, 400u);
  EXPECT_EQ(absolute.error(), "Malformed request target");
  auto bad_escape = client.get("/hello%zz");
  EXPECT_EQ(bad_escape.status, 400u);
  EXPECT_EQ(bad_escape.error(), "Malformed request target");
  EXPECT_EQ(client.get("/hello").status, 200u);
}

TEST_F(ServerTest, ThrowingHandlerGives500AndServerKeepsServing) {
  start();
  HttpClient client(port);
  auto r = client.get("/boom");
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(r.json(), (bj::value(bj::object{{"error", "Internal server error"}, {"code", "internal"}})));
  EXPECT_EQ(r.body.find("kaboom"), std::string::npos);  // the exception text is not leaked
  EXPECT_EQ(client.get("/hello").status, 200u);           // same connection
  HttpClient other(port);
  EXPECT_EQ(other.get("/boom").status, 500u);
  EXPECT_EQ(other.get("/hello").status, 200u);
}

TEST_F(ServerTest, AsynchronousReplyFromAnotherThread) {
  start();
  HttpClient client(port);
  for (int i = 0; i < 3; ++i) {
    auto r = client.request(verb::get, "/async", "", {{"x-request-id", "async-" + std::to_string(i)}});
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.json().at("async").as_bool(), true);
    EXPECT_EQ(r.json().at("request_id").as_string(), "async-" + std::to_string(i));
    EXPECT_EQ(header(r, "x-request-id"), "async-" + std::to_string(i));
  }
  EXPECT_EQ(client.get("/hello").status, 200u);  // keep-alive continues after async replies
}

TEST_F(ServerTest, SecondResponderCallIsIgnored) {
  start();
  HttpClient client(port);
  auto r = client.get("/twice");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("first").as_bool(), true);
  auto next = client.get("/hello");  // no stray second response on the connection
  EXPECT_EQ(next.status, 200u);
  EXPECT_EQ(next.json().at("message").as_string(), "hi");
}

TEST_F(ServerTest, ConcurrentClients) {
  start();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      HttpClient client(port);
      for (int i = 0; i < 10; ++i)
        if (client.get("/hello").status == 200) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_EQ(hello_calls.load(), 40);
}

TEST_F(ServerTest, ReadTimeoutClosesPartialRequest) {
  al::http::ServerOptions options;
  options.read_timeout = 300ms;
  start(options);
  RawConnection raw(port);
  ASSERT_TRUE(raw.connected());
  auto begin = std::chrono::steady_clock::now();
  ASSERT_TRUE(raw.send("GET /hello HTTP/1.1\r\nHost: x\r\n"));  // headers never finish
  std::string data;
  EXPECT_TRUE(raw.read_until_closed(data, 2000ms)) << "slow request not cut off";
  auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_TRUE(data.empty()) << data;  // closed without a response
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2000ms);
  EXPECT_TRUE(eventually([&] { return server->connections() == 0; }));
}

TEST_F(ServerTest, ReadTimeoutClosesIdleConnection) {
  al::http::ServerOptions options;
  options.read_timeout = 300ms;
  start(options);
  RawConnection idle(port);
  ASSERT_TRUE(idle.connected());
  std::string data;
  EXPECT_TRUE(idle.read_until_closed(data, 2000ms));
  EXPECT_TRUE(data.empty());
  // A request that arrives in time is served normally, and a keep-alive connection is closed
  // once it idles past the timeout.
  RawConnection prompt(port);
  ASSERT_TRUE(prompt.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string reply;
  EXPECT_TRUE(prompt.read_until_closed(reply, 2000ms));
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
  EXPECT_NE(reply.find(R"("message":"hi")"), std::string::npos);
}

TEST_F(ServerTest, SlowDripRequestIsCutOffAtTheDeadline) {
  // The timeout bounds the whole request, not each read: sending a byte every 50 ms does not
  // keep a connection alive past read_timeout.
  al::http::ServerOptions options;
  options.read_timeout = 300ms;
  start(options);
  RawConnection raw(port);
  ASSERT_TRUE(raw.connected());
  std::string request = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(100, 'p');
  auto begin = std::chrono::steady_clock::now();
  bool closed = false;
  for (char c : request) {
    if (!raw.send(std::string(1, c))) {
      closed = true;
      break;
    }
    std::string data;
    if (raw.read_until_closed(data, 50ms)) {
      closed = true;
      break;
    }
    if (std::chrono::steady_clock::now() - begin > 2000ms) break;
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 2000ms);
}

TEST_F(ServerTest, MaxConnections) {
  al::http::ServerOptions options;
  options.max_connections = 2;
  start(options);
  HttpClient a(port), b(port);
  ASSERT_EQ(a.get("/hello").status, 200u);
  ASSERT_EQ(b.get("/hello").status, 200u);
  ASSERT_EQ(server->connections(), 2u);

  RawConnection third(port);
  third.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string data;
  EXPECT_TRUE(third.read_until_closed(data, 2000ms)) << "third connection not closed";
  // A short 503 the client can act on, written without reading the request.
  EXPECT_EQ(data.rfind("HTTP/1.1 503 ", 0), 0u) << data;
  EXPECT_NE(data.find("\r\nRetry-After: 1\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find("\r\nConnection: close\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find(R"("code":"unavailable")"), std::string::npos) << data;
  EXPECT_EQ(server->connections(), 2u);
  EXPECT_EQ(server->rejected_connections(), 1u);
  EXPECT_EQ(hello_calls.load(), 2);
  EXPECT_NE(metrics.render().find("http_connections_rejected_total 1\n"), std::string::npos) << metrics.render();

  // Existing connections are unaffected; after one closes a new one is accepted.
  EXPECT_EQ(a.get("/hello").status, 200u);
  b.close();
  ASSERT_TRUE(eventually([&] { return server->connections() == 1; }));
  HttpClient c(port);
  EXPECT_EQ(c.get("/hello").status, 200u);
  EXPECT_EQ(server->connections(), 2u);
}

TEST_F(ServerTest, GracefulShutdownDrainsInFlightRequest) {
  start();
  HttpClient idle(port);
  ASSERT_EQ(idle.get("/hello").status, 200u);

  std::optional<HttpResult> slow_result;
  std::string slow_error;
  std::thread slow_client([&] {
    try {
      HttpClient client(port);
      slow_result = client.get("/slow");
    } catch (const std::exception& e) {
      slow_error = e.what();
    }
  });
  ASSERT_TRUE(eventually([&] { return slow_entered.load(); }));
  ASSERT_EQ(server->connections(), 2u);

  std::atomic<bool> responded_before_done{false};
  auto begin = std::chrono::steady_clock::now();
  auto done = begin_shutdown(5000ms, [&] { responded_before_done = slow_responded.load(); });

  // New connections are refused (or closed at once) while draining.
  RawConnection late(port);
  if (late.connected()) {
    late.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string data;
    EXPECT_TRUE(late.read_until_closed(data, 2000ms));
    EXPECT_EQ(data.find("HTTP/1.1 200"), std::string::npos) << data;
  }

  slow_client.join();
  ASSERT_TRUE(slow_result) << slow_error;
  EXPECT_EQ(slow_result->status, 200u);
  EXPECT_EQ(slow_result->json().at("slow").as_bool(), true);
  EXPECT_EQ(header(*slow_result, "connection"), "close");  // no keep-alive while draining

  ASSERT_TRUE(eventually([&] { return done->load(); }, 5000ms));
  EXPECT_TRUE(responded_before_done.load());
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 200ms);
  EXPECT_EQ(server->connections(), 0u);
  EXPECT_EQ(hello_calls.load(), 1);  // the late connection never reached a handler

  // The idle keep-alive connection was closed by the drain.
  EXPECT_ANY_THROW(idle.get("/hello"));
  // And the listener is gone.
  RawConnection after(port);
  EXPECT_FALSE(after.connected());
}

TEST_F(ServerTest, ShutdownWithNoConnectionsCompletesPromptly) {
  start();
  auto begin = std::chrono::steady_clock::now();
  auto done = begin_shutdown(5000ms);
  ASSERT_TRUE(eventually([&] { return done->load(); }, 2000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1000ms);
  RawConnection after(port);
  EXPECT_FALSE(after.connected());
}

TEST_F(ServerTest, ShutdownDeadlinePassesWithStuckRequest) {
  start();
  std::optional<HttpResult> result;
  std::thread client([&] {
    try {
      HttpClient c(port);
      result = c.get("/hang");
    } catch (const std::exception&) {
    }
  });
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return hanging.has_value();
  }));
  auto begin = std::chrono::steady_clock::now();
  auto done = begin_shutdown(300ms);
  ASSERT_TRUE(eventually([&] { return done->load(); }, 3000ms));
  auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_EQ(server->connections(), 1u);  // gave up waiting for it
  {
    std::lock_guard lock(mutex);
    (*hanging)(Response::json(200, bj::object{{"late", true}}));
    hanging.reset();
  }
  client.join();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200u);
  EXPECT_TRUE(eventually([&] { return server->connections() == 0; }));
}

TEST_F(ServerTest, MetricsCountRequestsByRouteAndStatus) {
  start();
  HttpClient client(port);
  EXPECT_EQ(client.get("/hello").status, 200u);
  EXPECT_EQ(client.get("/hello").status, 200u);
  EXPECT_EQ(client.get("/items/1").status, 200u);
  EXPECT_EQ(client.get("/nope").status, 404u);
  EXPECT_EQ(client.get("/boom").status, 500u);
  EXPECT_EQ(client.request(verb::delete_, "/both").status, 405u);
  // Metrics are recorded once the response is written, which may be just after the client read it.
  ASSERT_TRUE(eventually([&] {
    std::string text = metrics.render();
    return text.find(R"(http_requests_total{method="DELETE",route="-",status="405"} 1)") != std::string::npos &&
           text.find(R"(http_requests_total{method="GET",route="/hello",status="200"} 2)") != std::string::npos;
  })) << metrics.render();
  std::string text = metrics.render();
  EXPECT_NE(text.find("# TYPE http_requests_total counter"), std::string::npos);
  EXPECT_NE(text.find(R"(http_requests_total{method="GET",route="/items/{id}",status="200"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(http_requests_total{method="GET",route="-",status="404"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(http_requests_total{method="GET",route="/boom",status="500"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE http_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find(R"(http_request_duration_seconds_bucket{method="GET",route="/hello",le="+Inf"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(http_request_duration_seconds_bucket{method="GET",route="/hello",le="10"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(http_request_duration_seconds_count{method="GET",route="/hello"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(http_request_duration_seconds_sum{method="GET",route="/hello"} )"), std::string::npos) << text;
  // No per-path cardinality: the 404 path itself never appears as a label.
  EXPECT_EQ(text.find("/nope"), std::string::npos);
}

// ---- framing: Transfer-Encoding (RFC 9112 §6.1) --------------------------------------------------

constexpr const char* kSmuggled = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";

// Sends a POST with `framing` header lines and a body that is itself a request; returns what came back
// before the server closed (empty when it did not close within 2 s).
std::string post_with_framing(unsigned short port, const std::string& framing, bool& closed) {
  RawConnection raw(port);
  EXPECT_TRUE(raw.connected());
  raw.send("POST /echo HTTP/1.1\r\nHost: x\r\n" + framing + "\r\n" + kSmuggled);
  std::string data;
  closed = raw.read_until_closed(data, 2000ms);
  return data;
}

TEST_F(ServerTest, TransferCodingOtherThanChunkedIs400AndClosesSoNoBodyIsReadAsARequest) {
  start();
  for (std::string framing : {"Transfer-Encoding: chunked, identity\r\n", "Transfer-Encoding: xchunked\r\n",
                              "Transfer-Encoding: identity\r\n", "Transfer-Encoding: gzip\r\n",
                              "Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: chunked,\r\n",
                              "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                              "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                              "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"}) {
    bool closed = false;
    std::string data = post_with_framing(port, framing, closed);
    EXPECT_TRUE(closed) << framing;
    EXPECT_EQ(count_of(data, "HTTP/1.1 "), 1u) << framing << data;  // exactly one response, then EOF
    EXPECT_EQ(data.rfind("HTTP/1.1 400 ", 0), 0u) << framing << data;
    EXPECT_NE(data.find("\r\nConnection: close\r\n"), std::string::npos) << framing << data;
    EXPECT_NE(data.find(R"({"error":"Unsupported transfer coding: only Transfer-Encoding: chunked is accepted",)"
                        R"("code":"bad_request"})"),
              std::string::npos)
        << framing << data;
  }
  EXPECT_EQ(hello_calls.load(), 0);  // no smuggled request reached a handler
}

TEST_F(ServerTest, ContentLengthWithTransferEncodingIs400AndCloses) {
  start();
  for (std::string framing : {"Content-Length: 33\r\nTransfer-Encoding: chunked\r\n",
                              "Transfer-Encoding: chunked\r\nContent-Length: 33\r\n",
                              "Transfer-Encoding: CHUNKED\r\nContent-Length: 0\r\n"}) {
    bool closed = false;
    std::string data = post_with_framing(port, framing, closed);
    EXPECT_TRUE(closed) << framing;
    EXPECT_EQ(count_of(data, "HTTP/1.1 "), 1u) << framing << data;
    EXPECT_EQ(data.rfind("HTTP/1.1 400 ", 0), 0u) << framing << data;
    EXPECT_NE(data.find("\r\nConnection: close\r\n"), std::string::npos) << framing << data;
    EXPECT_NE(data.find("A request must not carry both Content-Length and Transfer-Encoding"), std::string::npos)
        << framing << data;
  }
  // With an unsupported coding the coding is what is refused; still 400 and closed.
  bool closed = false;
  std::string data = post_with_framing(port, "Content-Length: 33\r\nTransfer-Encoding: gzip\r\n", closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(count_of(data, "HTTP/1.1 "), 1u) << data;
  EXPECT_EQ(data.rfind("HTTP/1.1 400 ", 0), 0u) << data;
  EXPECT_EQ(hello_calls.load(), 0);
}

TEST_F(ServerTest, ChunkedBodiesStillWork) {
  start();
  RawConnection raw(port);
  ASSERT_TRUE(raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
                       "3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n"
                       "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string data;
  EXPECT_TRUE(raw.read_until_closed(data, 2000ms));
  EXPECT_EQ(data.rfind("HTTP/1.1 200 ", 0), 0u) << data;
  EXPECT_NE(data.find(R"({"size":7,"body":"{\"a\":1}"})"), std::string::npos) << data;
  EXPECT_EQ(count_of(data, "HTTP/1.1 200 "), 2u) << data;  // keep-alive goes on after a chunked body
}

// ---- 413 that a client can read --------------------------------------------------------------------

// What a plain blocking client (Python's urllib, curl without Expect) does with an upload: write the
// whole request, then read the response until the server closes.
struct Upload {
  bool wrote_all = false;
  int write_error = 0;
  std::string response;
  bool fin = false;  // the server closed with a FIN, not a reset
  int read_error = 0;
};

Upload upload_then_read(unsigned short port, const std::string& head, const std::string& body) {
  Upload out;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  timeval timeout{5, 0};  // never hang a test
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return out;
  }
  std::string request = head + body;
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, std::min<std::size_t>(64 * 1024, request.size() - sent), MSG_NOSIGNAL);
    if (n <= 0) {
      out.write_error = errno;
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  out.wrote_all = sent == request.size();
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.response.append(buf, static_cast<std::size_t>(n));
    } else {
      out.fin = n == 0;
      if (n < 0) out.read_error = errno;
      break;
    }
  }
  ::close(fd);
  return out;
}

std::string post_head(std::size_t length) {
  return "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(length) + "\r\n\r\n";
}

TEST_F(ServerTest, OversizedUploadIsAnswered413AndTheClientReadsItAfterWritingTheWholeBody) {
  start();  // body_limit 1 MiB
  for (std::size_t size : {std::size_t(1024 * 1024 + 1), std::size_t(4 * 1024 * 1024)}) {
    auto begin = std::chrono::steady_clock::now();
    Upload u = upload_then_read(port, post_head(size), std::string(size, 'a'));
    auto elapsed = std::chrono::steady_clock::now() - begin;
    EXPECT_TRUE(u.wrote_all) << size << ": write failed: " << std::strerror(u.write_error);
    EXPECT_EQ(u.response.rfind("HTTP/1.1 413 ", 0), 0u) << size << ": " << std::strerror(u.read_error);
    EXPECT_NE(u.response.find(R"({"error":"Request body too large","code":"payload_too_large"})"), std::string::npos);
    EXPECT_NE(u.response.find("\r\nConnection: close\r\n"), std::string::npos);
    EXPECT_TRUE(u.fin) << size << ": ended by " << std::strerror(u.read_error);
    EXPECT_LT(elapsed, 2500ms);
    std::cout << "[ figures  ] " << size << "-byte upload over the 1 MiB limit: 413 read after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms\n";
  }
  // A chunked body that grows past the limit: 413 once the limit is crossed, read the same way.
  std::string chunked;
  for (int i = 0; i < 64; ++i) chunked += "10000\r\n" + std::string(0x10000, 'b') + "\r\n";  // 4 MiB
  chunked += "0\r\n\r\n";
  Upload u = upload_then_read(port, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", chunked);
  EXPECT_TRUE(u.wrote_all) << std::strerror(u.write_error);
  EXPECT_EQ(u.response.rfind("HTTP/1.1 413 ", 0), 0u) << std::strerror(u.read_error);
  EXPECT_TRUE(u.fin) << std::strerror(u.read_error);
  // The server goes on.
  HttpClient client(port);
  EXPECT_EQ(client.get("/hello").status, 200u);
  EXPECT_TRUE(eventually([&] { return server->connections() == 1; }));
}

TEST_F(ServerTest, LingeringIsBoundedByTime) {
  al::http::ServerOptions options;
  options.body_limit = 1024;
  options.linger_timeout = 300ms;
  start(options);
  RawConnection raw(port);
  ASSERT_TRUE(raw.send(post_head(1 << 30)));  // declares 1 GiB, sends a trickle and never stops
  std::string data;
  ASSERT_TRUE(raw.read_until(data, "payload_too_large", 2000ms)) << data;
  auto begin = std::chrono::steady_clock::now();
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() - begin < 3000ms) {
    closed = !raw.send(std::string(512, 'a')) || server->connections() == 0;  // 25 KiB/s: far below linger_bytes
    std::this_thread::sleep_for(20ms);
  }
  auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_TRUE(closed);
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 1500ms);
}

TEST_F(ServerTest, LingeringIsBoundedByBytes) {
  al::http::ServerOptions options;
  options.body_limit = 1024;
  options.linger_bytes = 64 * 1024;
  start(options);
  Upload u = upload_then_read(port, post_head(64 * 1024 * 1024), std::string(64 * 1024 * 1024, 'a'));
  // 64 MiB are more than the linger reads and the socket buffers hold: the server gives up on it
  // (the client sees a reset on write) long before it could have read it all.
  EXPECT_FALSE(u.wrote_all);
  EXPECT_TRUE(u.write_error == ECONNRESET || u.write_error == EPIPE) << std::strerror(u.write_error);
  EXPECT_TRUE(eventually([&] { return server->connections() == 0; }, 1000ms));
}

TEST_F(ServerTest, ExpectContinueOverTheLimitIsAnswered413WithoutReadingTheBody) {
  start();
  RawConnection raw(port);
  ASSERT_TRUE(raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 4194304\r\nExpect: 100-continue\r\n\r\n"));
  std::string data;
  EXPECT_TRUE(raw.read_until_closed(data, 2000ms)) << data;  // our FIN follows the 413
  EXPECT_EQ(data.rfind("HTTP/1.1 413 ", 0), 0u) << data;
  EXPECT_EQ(data.find("100 Continue"), std::string::npos) << data;
}

TEST_F(ServerTest, ExpectContinueWithinTheLimitGets100ThenTheResponse) {
  start();
  RawConnection raw(port);
  ASSERT_TRUE(raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 7\r\nExpect: 100-continue\r\n\r\n"));
  std::string data;
  ASSERT_TRUE(raw.read_until(data, "\r\n\r\n", 2000ms)) << data;
  EXPECT_EQ(data, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(raw.send(R"({"a":1})"));
  ASSERT_TRUE(raw.read_until(data, R"({"size":7,)", 2000ms)) << data;
  EXPECT_NE(data.find("HTTP/1.1 200 "), std::string::npos) << data;
}

// ---- connection cap and accept backoff -----------------------------------------------------------

TEST(ServerLimits, ConnectionCapDerivedFromTheFileLimit) {
  using al::http::derive_max_connections;
  EXPECT_EQ(derive_max_connections(1024), 1024u - (102 + 64));
  EXPECT_EQ(derive_max_connections(20000), 20000u - (2000 + 64));
  EXPECT_EQ(derive_max_connections(65536), 20000u);  // never above 20000
  EXPECT_EQ(derive_max_connections(std::numeric_limits<std::uint64_t>::max()), 20000u);
  EXPECT_EQ(derive_max_connections(100), 100u - (10 + 64));
  EXPECT_EQ(derive_max_connections(64), 1u);  // all reserve: still one

  // 0 (the default) derives it from this process's soft limit; a number is taken as is.
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  net::io_context ioc;
  al::http::Router router;
  al::http::ServerOptions options;
  EXPECT_EQ(options.max_connections, 0u);
  al::http::Server derived(ioc, router, options, nullptr);
  EXPECT_EQ(derived.max_connections(),
            derive_max_connections(limit.rlim_cur == RLIM_INFINITY ? std::numeric_limits<std::uint64_t>::max()
                                                                   : limit.rlim_cur));
  options.max_connections = 7;
  al::http::Server fixed(ioc, router, options, nullptr);
  EXPECT_EQ(fixed.max_connections(), 7u);
}

TEST_F(ServerTest, AcceptBacksOffWhenOutOfDescriptorsAndServesOnceSomeAreFree) {
  start();
  std::vector<std::unique_ptr<RawConnection>> clients;
  auto failures_before = server->accept_failures();
  ::testing::internal::CaptureStderr();
  accepts_fail_with = EMFILE;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<RawConnection>(port));  // waits in the listen backlog
    ASSERT_TRUE(clients.back()->send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  }
  std::this_thread::sleep_for(1000ms);
  auto failures_in_a_second = server->accept_failures() - failures_before;
  std::this_thread::sleep_for(900ms);  // past the failure 1.55 s in, before the one at 2.55 s
  auto failures = server->accept_failures() - failures_before;
  accepts_fail_with = 0;
  std::string log = ::testing::internal::GetCapturedStderr();
  std::cout << "[ figures  ] accept failures without descriptors: " << failures_in_a_second << " in 1 s, "
            << failures << " in 1.9 s; warnings logged: " << count_of(log, R"("msg":"accept failed")") << "\n";
  EXPECT_GE(failures_in_a_second, 3u);  // it kept trying: after 50, 100, 200, 400 ms …
  EXPECT_LT(failures_in_a_second, 50u);  // but did not spin
  EXPECT_EQ(hello_calls.load(), 0);
  // At most one warning a second; the next one counts those it stood for.
  EXPECT_EQ(count_of(log, R"("msg":"accept failed")"), 2u) << log;
  EXPECT_NE(log.find(R"("what":"Too many open files")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("suppressed":)" + std::to_string(failures - 2)), std::string::npos) << log;

  // Descriptors are back: the waiting connections are accepted (after at most the 1 s backoff) and served.
  auto begin = std::chrono::steady_clock::now();
  for (auto& c : clients) {
    std::string data;
    EXPECT_TRUE(c->read_until_closed(data, 3000ms));
    EXPECT_EQ(data.rfind("HTTP/1.1 200 ", 0), 0u) << data;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1500ms);
  EXPECT_EQ(hello_calls.load(), 3);
  EXPECT_NE(metrics.render().find("http_accept_failures_total " + std::to_string(server->accept_failures()) + "\n"),
            std::string::npos);
  // A success ended the backoff: a new connection is served at once.
  begin = std::chrono::steady_clock::now();
  HttpClient client(port);
  EXPECT_EQ(client.get("/hello").status, 200u);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 500ms);
}

// ---- HEAD ------------------------------------------------------------------------------------------

struct RawResponse {
  std::string status_line;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// Splits pipelined responses; `bodiless[i]` tells whether response i answers a HEAD.
std::vector<RawResponse> split_responses(const std::string& data, const std::vector<bool>& bodiless) {
  std::vector<RawResponse> out;
  std::size_t pos = 0;
  for (bool head : bodiless) {
    std::size_t end = data.find("\r\n\r\n", pos);
    if (end == std::string::npos) break;
    RawResponse r;
    std::size_t line_end = data.find("\r\n", pos);
    r.status_line = data.substr(pos, line_end - pos);
    for (std::size_t at = line_end + 2; at < end;) {
      std::size_t next = data.find("\r\n", at);
      if (next == std::string::npos || next > end) next = end;
      std::string line = data.substr(at, next - at);
      auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = line.substr(colon + 2);
      at = next + 2;
    }
    pos = end + 4;
    std::size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    if (!head) {
      r.body = data.substr(pos, length);
      pos += length;
    }
    out.push_back(std::move(r));
  }
  if (pos != data.size()) out.push_back({"<trailing bytes: " + data.substr(pos) + ">", {}, {}});
  return out;
}

TEST_F(ServerTest, HeadRunsTheGetHandlerAndSendsItsHeadersWithoutTheBody) {
  start();
  RawConnection raw(port);
  ASSERT_TRUE(raw.send("HEAD /items/7?x=1 HTTP/1.1\r\nHost: x\r\nx-request-id: same\r\n\r\n"
                       "GET /items/7?x=1 HTTP/1.1\r\nHost: x\r\nx-request-id: same\r\n\r\n"
                       "HEAD /both HTTP/1.1\r\nHost: x\r\n\r\n"
                       "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n"
                       "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                       "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string data;
  EXPECT_TRUE(raw.read_until_closed(data, 2000ms));
  auto responses = split_responses(data, {true, false, true, true, true, true});
  ASSERT_EQ(responses.size(), 6u) << data;
  const auto& head = responses[0];
  const auto& get = responses[1];
  EXPECT_EQ(head.status_line, "HTTP/1.1 200 OK");
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.headers, get.headers);  // same status and headers, Content-Length of the GET's body
  EXPECT_EQ(head.headers.at("content-length"), std::to_string(get.body.size()));
  EXPECT_GT(get.body.size(), 0u);
  EXPECT_EQ(responses[2].status_line, "HTTP/1.1 204 No Content");
  // No GET on /echo: 405 with Allow as usual, and still no body.
  EXPECT_EQ(responses[3].status_line, "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(responses[3].headers["allow"], "POST");
  EXPECT_NE(responses[3].headers["content-length"], "0");
  EXPECT_EQ(responses[4].status_line, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(responses[5].status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(responses[5].headers["connection"], "close");
  EXPECT_EQ(hello_calls.load(), 1);  // HEAD ran the GET handler
  ASSERT_TRUE(eventually([&] {
    return metrics.render().find(R"(http_requests_total{method="HEAD",route="/items/{id}",status="200"} 1)") !=
           std::string::npos;
  })) << metrics.render();
}

// ---- JSON bodies: media type and duplicate keys ----------------------------------------------------

HttpResult post_typed(unsigned short port, const std::string& body, std::optional<std::string> content_type) {
  RawConnection raw(port);
  std::string head = "POST /object HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n";
  if (content_type) head += "Content-Type: " + *content_type + "\r\n";
  raw.send(head + "\r\n" + body);
  std::string data;
  raw.read_until_closed(data, 2000ms);
  auto responses = split_responses(data, {false});
  HttpResult out;
  if (responses.empty() || responses[0].status_line.size() < 12) return out;
  out.status = static_cast<unsigned>(std::stoul(responses[0].status_line.substr(9, 3)));
  out.body = responses[0].body;
  return out;
}

TEST_F(ServerTest, JsonBodiesNeedAJsonContentType) {
  start();
  for (std::string type : {"application/json", "application/json; charset=utf-8", "Application/JSON",
                           "application/merge-patch+json", "application/vnd.api+json;charset=UTF-8"}) {
    auto r = post_typed(port, R"({"a":1})", type);
    EXPECT_EQ(r.status, 200u) << type << ": " << r.body;
  }
  for (std::optional<std::string> type : {std::optional<std::string>{}, std::optional<std::string>{"text/plain"},
                                          std::optional<std::string>{"application/x-www-form-urlencoded"},
                                          std::optional<std::string>{"application/jsonx"},
                                          std::optional<std::string>{"application/+json"},
                                          std::optional<std::string>{"text/json"}}) {
    auto r = post_typed(port, R"({"a":1})", type);
    EXPECT_EQ(r.status, 415u) << type.value_or("<none>") << ": " << r.body;
    EXPECT_EQ(r.json(), (bj::value(bj::object{{"error", "Content-Type must be application/json"},
                                              {"code", "unsupported_media_type"}})))
        << r.body;
  }
  // An empty body is judged as before, whatever its type: 400, a JSON object is required.
  auto empty = post_typed(port, "", std::nullopt);
  EXPECT_EQ(empty.status, 400u);
  EXPECT_EQ(empty.json().at("code").as_string(), "invalid_json");
}

TEST_F(ServerTest, JsonBodyWithADuplicateKeyIs400) {
  start();
  HttpClient client(port);
  auto flat = client.post("/object", std::string(R"({"amount":"1","amount":"1000"})"));
  EXPECT_EQ(flat.status, 400u);
  EXPECT_EQ(flat.json(), (bj::value(bj::object{{"error", R"(Duplicate key "amount" in a JSON object)"},
                                               {"code", "invalid_json"}})));
  auto deep = client.post("/object", std::string(R"({"a":{"b":{"c":1,"\u0063":2}}})"));
  EXPECT_EQ(deep.status, 400u);
  EXPECT_EQ(deep.error(), R"(Duplicate key "c" in a JSON object)");
  EXPECT_EQ(client.post("/object", std::string(R"({"a":{"c":1},"c":2})")).status, 200u);
}

TEST(Metrics, RenderCountersGaugesAndEscaping) {
  al::Metrics m;
  m.observe_request("GET", "/a\"b\\c\nd", 200, 0.003);
  m.observe_request("GET", "/a\"b\\c\nd", 200, 20.0);
  m.add_counter("jobs_created_total", "Jobs created.");
  m.add_counter("jobs_created_total", "Jobs created.", 2);
  int reads = 0;
  m.register_gauge("queue_depth", "Items waiting.", [&] {
    ++reads;
    return 7.0;
  });
  std::string text = m.render();
  EXPECT_NE(text.find(R"(http_requests_total{method="GET",route="/a\"b\\c\nd",status="200"} 2)"), std::string::npos) << text;
  // 3 ms falls in buckets from le=0.005 upward; 20 s only in +Inf.
  EXPECT_NE(text.find(R"(le="0.0025"} 0)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(le="0.005"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(le="10"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(le="+Inf"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE jobs_created_total counter\njobs_created_total 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# HELP queue_depth Items waiting.\n# TYPE queue_depth gauge\nqueue_depth 7\n"), std::string::npos) << text;
  EXPECT_EQ(reads, 1);
}

}  // namespace

// Handlers that may wait on the database run on the handler executor, never on an I/O thread;
// memory-only ones (Runs::OnIo) stay on the I/O thread. Both answer on the connection's strand.
TEST(ServerHandlerExecutor, StorageHandlersRunOffTheIoThreadsAndInlineOnesOnThem) {
  al::WorkerPool workers("test-workers", 2);
  al::http::Router router;
  std::mutex mutex;
  std::thread::id off_io_thread, on_io_thread;
  router.add(verb::get, "/reads", [&](const Request&, Responder respond) {
    {
      std::lock_guard lock(mutex);
      off_io_thread = std::this_thread::get_id();
    }
    respond(Response::json(200, bj::object{{"where", "worker"}}));
  });
  router.add(verb::get, "/health", [&](const Request&, Responder respond) {
    {
      std::lock_guard lock(mutex);
      on_io_thread = std::this_thread::get_id();
    }
    respond(Response::no_content());
  }, al::http::Runs::OnIo);
  router.add(verb::get, "/throws", [](const Request&, Responder) -> void { throw std::runtime_error("off the io thread"); });

  net::io_context ioc{1};
  auto guard = net::make_work_guard(ioc);
  al::Metrics metrics;
  al::http::ServerOptions options;
  options.port = 0;
  options.access_log = false;
  options.run_handler = [&workers](std::function<void()> fn) { workers.post(std::move(fn)); };
  al::http::Server server(ioc, router, options, &metrics);
  server.start();
  std::thread::id io_thread_id;
  std::thread io_thread([&] {
    io_thread_id = std::this_thread::get_id();
    ioc.run();
  });

  HttpClient client(server.port());
  EXPECT_EQ(client.get("/reads").status, 200u);
  EXPECT_EQ(client.get("/health").status, 204u);
  EXPECT_EQ(client.get("/throws").status, 500u);  // a handler's exception on a worker is still answered
  EXPECT_EQ(client.get("/reads").status, 200u);   // and the connection goes on
  {
    std::lock_guard lock(mutex);
    EXPECT_NE(off_io_thread, std::thread::id{});
    EXPECT_NE(off_io_thread, io_thread_id);
    EXPECT_EQ(on_io_thread, io_thread_id);
  }

  auto drained = std::make_shared<std::atomic<bool>>(false);
  server.shutdown(2000ms, [drained] { drained->store(true); });
  EXPECT_TRUE(eventually([&] { return drained->load(); }));
  guard.reset();
  ioc.stop();
  io_thread.join();
  workers.stop();
}
