#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace al::chain {

// The node could not be reached, timed out, answered with a non-200 status, unparseable JSON or a
// JSON-RPC error object.
struct RpcError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct JsonRpcOptions {
  std::chrono::milliseconds timeout{5000};        // per connect, write and read
  std::size_t max_response_bytes = 16 << 20;      // receipts with many logs are large
  std::size_t max_idle_connections = 4;           // kept-alive connections reused by later calls
  std::string ca_file;                            // https: extra CA bundle (default: the system's)
};

// A JSON-RPC 2.0 client over HTTP/1.1 or HTTPS (Beast), with kept-alive connections. All calls
// run on the executor given (use a strand when the io_context has several threads).
class JsonRpcClient {
 public:
  // url: http://host:port/path or https://…; user:password@ becomes Basic authorization.
  JsonRpcClient(boost::asio::any_io_executor executor, const std::string& url, JsonRpcOptions options = {});
  ~JsonRpcClient();
  JsonRpcClient(const JsonRpcClient&) = delete;
  JsonRpcClient& operator=(const JsonRpcClient&) = delete;

  // The call's `result` (null included); throws RpcError.
  boost::asio::awaitable<boost::json::value> call(std::string_view method, boost::json::array params);
  // Several calls in one request (a JSON-RPC batch); results in the order given; throws RpcError
  // if any call failed.
  boost::asio::awaitable<std::vector<boost::json::value>> batch(
      std::vector<std::pair<std::string, boost::json::array>> calls);

  // scheme://host:port, without the path or credentials (providers put API keys there).
  const std::string& display_url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace al::chain
