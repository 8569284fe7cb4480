#include "common/chain/json_rpc_client.hpp"

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <optional>

namespace al::chain {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {
std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// One kept-alive connection: plain TCP or TLS over TCP.
struct Connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};
}  // namespace

struct JsonRpcClient::Impl {
  asio::any_io_executor executor;
  JsonRpcOptions options;
  bool https = false;
  std::string host, port, target, authorization, display;
  std::optional<asio::ssl::context> tls_context;
  std::vector<std::unique_ptr<Connection>> idle;
  long long next_id = 1;

  asio::awaitable<std::unique_ptr<Connection>> connect() {
    auto conn = std::make_unique<Connection>();
    tcp::resolver resolver(executor);
    auto endpoints = co_await resolver.async_resolve(host, port, use_awaitable);
    if (https) {
      conn->tls.emplace(executor, *tls_context);
      if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), host.c_str()))
        throw RpcError("cannot set the TLS server name for " + display);
      conn->tls->set_verify_callback(asio::ssl::host_name_verification(host));
    } else {
      conn->plain.emplace(executor);
    }
    conn->lowest().expires_after(options.timeout);
    co_await conn->lowest().async_connect(endpoints, use_awaitable);
    if (https) {
      conn->lowest().expires_after(options.timeout);
      co_await conn->tls->async_handshake(asio::ssl::stream_base::client, use_awaitable);
    }
    co_return conn;
  }

  template <class Stream>
  asio::awaitable<std::pair<bool, std::string>> exchange_on(Stream& stream, Connection& conn, const std::string& body) {
    http::request<http::string_body> request{http::verb::post, target, 11};
    request.set(http::field::host, host);
    request.set(http::field::content_type, "application/json");
    request.set(http::field::accept, "application/json");
    request.set(http::field::user_agent, "agentlancer-evm-jsonrpc");
    if (!authorization.empty()) request.set(http::field::authorization, authorization);
    request.keep_alive(true);
    request.body() = body;
    request.prepare_payload();
    conn.lowest().expires_after(options.timeout);
    co_await http::async_write(stream, request, use_awaitable);
    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_response_bytes);
    conn.lowest().expires_after(options.timeout);
    co_await http::async_read(stream, conn.buffer, parser, use_awaitable);
    auto response = parser.release();
    if (response.result() != http::status::ok)
      throw RpcError(display + " answered HTTP " + std::to_string(response.result_int()));
    co_return std::pair{response.keep_alive(), std::move(response.body())};
  }

  // POSTs one JSON body; a kept-alive connection the server closed meanwhile is retried once on a
  // fresh one (these calls are all reads, so repeating one is harmless).
  asio::awaitable<std::string> post(const std::string& body) {
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> conn;
      bool reused = false;
      if (!idle.empty()) {
        conn = std::move(idle.back());
        idle.pop_back();
        reused = true;
      }
      std::string failure;
      try {
        if (!conn) conn = co_await connect();
        // (if/else, not ?: — GCC 12 destroys the result of a ?: with co_await in both arms twice.)
        std::pair<bool, std::string> reply;
        if (conn->tls) reply = co_await exchange_on(*conn->tls, *conn, body);
        else reply = co_await exchange_on(*conn->plain, *conn, body);
        if (reply.first && idle.size() < options.max_idle_connections) idle.push_back(std::move(conn));
        co_return std::move(reply.second);
      } catch (const RpcError&) {
        throw;
      } catch (const boost::system::system_error& e) {
        failure = e.code() == beast::error::timeout ? "timed out" : e.code().message();
      }
      if (!(reused && attempt == 0)) throw RpcError(display + ": " + failure);
      idle.clear();  // the node closed one kept-alive connection: the others are likely closed too
    }
  }

  static json::value result_of(const json::value& reply, const std::string& method) {
    const auto* object = reply.if_object();
    if (!object) throw RpcError("malformed JSON-RPC reply to " + method);
    if (const auto* error = object->if_contains("error"); error && !error->is_null()) {
      std::string message = "node refused " + method;
      if (const auto* e = error->if_object())
        if (const auto* m = e->if_contains("message"); m && m->is_string()) message += ": " + std::string(m->get_string());
      throw RpcError(message);
    }
    const auto* result = object->if_contains("result");
    if (!result) throw RpcError("JSON-RPC reply to " + method + " has no result");
    return *result;
  }

  static json::value parse(const std::string& text) {
    boost::system::error_code ec;
    json::value value = json::parse(text, ec);
    if (ec) throw RpcError("node answered with invalid JSON");
    return value;
  }
};

JsonRpcClient::JsonRpcClient(asio::any_io_executor executor, const std::string& url, JsonRpcOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->executor = std::move(executor);
  impl_->options = std::move(options);
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw std::invalid_argument("not a URL: " + url);
  std::string scheme(parsed->scheme());
  if (scheme != "http" && scheme != "https") throw std::invalid_argument("JSON-RPC URL must be http or https: " + url);
  impl_->https = scheme == "https";
  impl_->host = std::string(parsed->host_address());
  if (impl_->host.empty()) throw std::invalid_argument("JSON-RPC URL has no host: " + url);
  impl_->port = parsed->has_port() ? std::string(parsed->port()) : (impl_->https ? "443" : "80");
  impl_->target = std::string(parsed->encoded_target());
  if (impl_->target.empty() || impl_->target.front() != '/') impl_->target.insert(0, "/");
  if (parsed->has_userinfo()) impl_->authorization = "Basic " + base64(std::string(parsed->userinfo()));
  impl_->display = scheme + "://" + impl_->host + ":" + impl_->port;
  if (impl_->https) {
    impl_->tls_context.emplace(asio::ssl::context::tls_client);
    impl_->tls_context->set_default_verify_paths();
    if (!impl_->options.ca_file.empty()) impl_->tls_context->load_verify_file(impl_->options.ca_file);
    impl_->tls_context->set_verify_mode(asio::ssl::verify_peer);
  }
}

JsonRpcClient::~JsonRpcClient() = default;

const std::string& JsonRpcClient::display_url() const { return impl_->display; }

asio::awaitable<json::value> JsonRpcClient::call(std::string_view method, json::array params) {
  json::object request{{"jsonrpc", "2.0"}, {"id", impl_->next_id++}, {"method", method}, {"params", std::move(params)}};
  std::string text = co_await impl_->post(json::serialize(request));
  co_return Impl::result_of(Impl::parse(text), std::string(method));
}

asio::awaitable<std::vector<json::value>> JsonRpcClient::batch(std::vector<std::pair<std::string, json::array>> calls) {
  json::array requests;
  long long first_id = impl_->next_id;
  for (auto& [method, params] : calls)
    requests.push_back(json::object{{"jsonrpc", "2.0"}, {"id", impl_->next_id++}, {"method", method}, {"params", std::move(params)}});
  std::string text = co_await impl_->post(json::serialize(requests));
  json::value reply = Impl::parse(text);
  const auto* replies = reply.if_array();
  if (!replies) {
    // A node that does not take batches answers with one error object.
    Impl::result_of(reply, "a batch");
    throw RpcError("node answered a batch with a single reply");
  }
  std::vector<json::value> results(calls.size());
  std::vector<bool> seen(calls.size(), false);
  for (const auto& item : *replies) {  // replies may come in any order: match them by id
    const auto* object = item.if_object();
    const auto* id = object ? object->if_contains("id") : nullptr;
    if (!id || !id->is_int64()) throw RpcError("malformed JSON-RPC batch reply");
    auto index = id->get_int64() - first_id;
    if (index < 0 || index >= static_cast<long long>(calls.size())) throw RpcError("JSON-RPC batch reply with an unknown id");
    results[static_cast<std::size_t>(index)] = Impl::result_of(item, calls[static_cast<std::size_t>(index)].first);
    seen[static_cast<std::size_t>(index)] = true;
  }
  for (bool s : seen)
    if (!s) throw RpcError("JSON-RPC batch reply is missing an answer");
  co_return results;
}

}  // namespace al::chain
