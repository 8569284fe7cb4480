#pragma once
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <map>
#include <string>

namespace al::testing {

struct HttpResult {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  boost::json::value json() const { return body.empty() ? boost::json::value() : boost::json::parse(body); }
  std::string error() const {
    auto v = json();
    return v.is_object() && v.as_object().contains("error") ? std::string(v.at("error").as_string()) : "";
  }
};

// A blocking keep-alive HTTP/1.1 client for tests against a real server on loopback.
class HttpClient {
 public:
  explicit HttpClient(unsigned short port) : port_(port), stream_(io_) {}

  HttpResult request(boost::beast::http::verb method, const std::string& target, const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    connect();
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(true);
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream_, req);
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(stream_, buffer, parser);
    auto res = parser.release();
    HttpResult out;
    out.status = res.result_int();
    out.body = res.body();
    for (const auto& f : res) out.headers[std::string(f.name_string())] = std::string(f.value());
    if (!res.keep_alive()) close();
    return out;
  }

  HttpResult get(const std::string& target, const std::string& api_key = "") {
    std::map<std::string, std::string> h;
    if (!api_key.empty()) h["x-api-key"] = api_key;
    return request(boost::beast::http::verb::get, target, "", h);
  }
  HttpResult post(const std::string& target, const std::string& body, const std::string& api_key = "") {
    std::map<std::string, std::string> h;
    if (!api_key.empty()) h["x-api-key"] = api_key;
    return request(boost::beast::http::verb::post, target, body, h);
  }
  HttpResult post(const std::string& target, const boost::json::object& body, const std::string& api_key = "") {
    return post(target, boost::json::serialize(body), api_key);
  }

  void close() {
    boost::beast::error_code ec;
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    stream_.close();
    connected_ = false;
  }

 private:
  void connect() {
    if (connected_) return;
    stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
    connected_ = true;
  }
  unsigned short port_;
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  bool connected_ = false;
};

}  // namespace al::testing
