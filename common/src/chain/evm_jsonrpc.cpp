#include "common/chain/evm_jsonrpc.hpp"

#include "common/util/caller_executor.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/json.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>

namespace al::chain {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {
std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string string_field(const json::object& object, std::string_view key) {
  const auto* v = object.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string{};
}

// A JSON-RPC QUANTITY ("0x1b4") as a number; throws RpcError when malformed (a node bug).
long long quantity(const json::value& value, std::string_view what) {
  const auto* s = value.if_string();
  long long out = 0;
  if (s && s->size() > 2 && (*s)[0] == '0' && (*s)[1] == 'x') {
    auto [end, ec] = std::from_chars(s->data() + 2, s->data() + s->size(), out, 16);
    if (ec == std::errc() && end == s->data() + s->size() && out >= 0) return out;
  }
  throw RpcError("node sent a malformed " + std::string(what));
}

std::string hex_quantity(long long value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
  return buffer;
}

// A 32-byte topic holding an address: its low 20 bytes.
std::optional<std::string> topic_address(const json::value& topic) {
  const auto* s = topic.if_string();
  if (!s || s->size() != 66) return std::nullopt;
  return "0x" + lower(std::string_view(*s).substr(26));
}

// The receipt of tx_hash, then `second` (with the hash as its parameter unless it takes none).
std::vector<std::pair<std::string, json::array>> lookups(const std::string& tx_hash, const std::string& second) {
  std::vector<std::pair<std::string, json::array>> calls(2);
  calls[0].first = "eth_getTransactionReceipt";
  calls[0].second.push_back(json::string(tx_hash));
  calls[1].first = second;
  if (second != "eth_blockNumber") calls[1].second.push_back(json::string(tx_hash));
  return calls;
}

bool is_address(const std::string& text) {
  if (text.size() != 42 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) return false;
  return std::all_of(text.begin() + 2, text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}
}  // namespace

std::vector<Erc20Transfer> erc20_transfers(const json::array& logs) {
  std::vector<Erc20Transfer> out;
  for (const auto& entry : logs) {
    const auto* log = entry.if_object();
    if (!log) continue;
    const auto* topics = log->if_contains("topics");
    if (!topics || !topics->is_array() || topics->get_array().size() != 3) continue;  // ERC-721 has 4
    const auto& t = topics->get_array();
    if (!t[0].is_string() || lower(std::string_view(t[0].get_string())) != kErc20TransferTopic) continue;
    auto from = topic_address(t[1]);
    auto to = topic_address(t[2]);
    auto value = Uint256::from_hex(string_field(*log, "data"));
    std::string token = lower(string_field(*log, "address"));
    if (log->if_contains("removed") && log->at("removed").is_bool() && log->at("removed").get_bool()) continue;
    if (!from || !to || !value || !is_address(token)) continue;
    out.push_back(Erc20Transfer{token, *from, *to, *value});
  }
  return out;
}

TransferVerdict judge_transfers(const std::vector<Erc20Transfer>& transfers, const std::string& token,
                                const std::string& pay_to, const Uint256& required, int decimals) {
  TransferVerdict verdict;
  std::string want_token = lower(token), want_to = lower(pay_to);
  bool right_token = false, other_token_to_pay_to = false;
  std::string other_recipient, other_token;
  for (const auto& t : transfers) {
    if (t.token == want_token) {
      right_token = true;
      if (t.to == want_to) verdict.paid = verdict.paid.saturating_add(t.value);
      else other_recipient = t.to;
    } else {
      other_token = t.token;
      if (t.to == want_to) other_token_to_pay_to = true;
    }
  }
  std::string amount = required.to_token_amount(decimals);
  if (verdict.paid.is_zero()) {
    if (transfers.empty()) {
      verdict.status = "wrong_token";
      verdict.message = "The transaction transfers no ERC-20 token (a native-coin payment is not accepted): pay " +
                        amount + " of token " + want_token + " to " + want_to;
    } else if (!right_token || other_token_to_pay_to) {
      verdict.status = "wrong_token";
      verdict.message = "The transaction transfers token " + other_token + ", not this contract's token " + want_token;
    } else {
      verdict.status = "wrong_recipient";
      verdict.message = "The token transfer goes to " + other_recipient + ", not to the contract's pay_to " + want_to;
    }
  } else if (verdict.paid < required) {
    verdict.status = "underpaid";
    verdict.message = "The transaction pays " + verdict.paid.to_token_amount(decimals) + " to " + want_to + ", the contract needs " + amount;
  }
  return verdict;
}

long long known_chain_id(const std::string& network) {
  static const std::map<std::string, long long> kChains = {
      {"ethereum", 1},      {"mainnet", 1},        {"sepolia", 11155111}, {"holesky", 17000},
      {"base", 8453},       {"base-sepolia", 84532}, {"optimism", 10},    {"optimism-sepolia", 11155420},
      {"arbitrum", 42161},  {"arbitrum-sepolia", 421614}, {"polygon", 137}, {"polygon-amoy", 80002},
  };
  auto it = kChains.find(network);
  return it == kChains.end() ? 0 : it->second;
}

EvmJsonRpcChain::EvmJsonRpcChain(asio::io_context& io, std::vector<EvmNetwork> networks, JsonRpcOptions options)
    : strand_(asio::make_strand(io)) {
  for (auto& network : networks) {
    Node node;
    node.client = std::make_unique<JsonRpcClient>(strand_, network.rpc_url, options);
    node.network = std::move(network);
    std::string name = node.network.name;
    nodes_.emplace(std::move(name), std::move(node));
  }
}

EvmJsonRpcChain::~EvmJsonRpcChain() = default;

void EvmJsonRpcChain::verify(const PaymentExpectation& expectation, std::function<void(PaymentCheck)> done) {
  // The answer resumes on the caller's executor (a worker), not on the chain client's I/O strand.
  asio::co_spawn(strand_, check(expectation),
                 [done = CallerExecutor::bind(std::move(done)), adapter = name()](std::exception_ptr error, PaymentCheck result) {
                   if (error) {  // check() turns RpcError into "unavailable"; anything else is a bug
                     result = PaymentCheck{};
                     result.adapter = adapter;
                     result.status = "unavailable";
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       result.message = std::string("Payment check failed: ") + e.what();
                     }
                   }
                   done(std::move(result));
                 });
}

asio::awaitable<void> EvmJsonRpcChain::confirm_chain_id(Node& node) {
  if (node.chain_id_confirmed) co_return;
  json::value chain_id = co_await node.client->call("eth_chainId", json::array());
  long long actual = quantity(chain_id, "chain id");
  if (node.network.chain_id == 0) node.network.chain_id = actual;
  if (actual != node.network.chain_id)
    throw RpcError("the node at " + node.client->display_url() + " is chain " + std::to_string(actual) + ", but network " +
                   node.network.name + " is chain " + std::to_string(node.network.chain_id) + " (contracts.rpc_urls)");
  node.chain_id_confirmed = true;
}

asio::awaitable<int> EvmJsonRpcChain::token_decimals(Node& node, const std::string& token) {
  std::string key = node.network.name + "/" + token;
  if (auto it = decimals_.find(key); it != decimals_.end()) co_return it->second;
  // decimals() — selector 0x313ce567.
  // (Arguments are built before co_await: GCC 12 miscompiles braced temporaries inside it.)
  json::object call;
  call["to"] = token;
  call["data"] = "0x313ce567";
  json::array params;
  params.push_back(std::move(call));
  params.push_back("latest");
  json::value reply = co_await node.client->call("eth_call", std::move(params));
  auto value = reply.is_string() ? Uint256::from_hex(std::string_view(reply.get_string())) : std::nullopt;
  if (!value || *value > Uint256::from_u64(77))
    throw RpcError("token " + token + " on " + node.network.name + " answers no decimals() (is contracts.tokens right?)");
  int decimals = std::stoi(value->to_decimal());
  decimals_[key] = decimals;
  co_return decimals;
}

asio::awaitable<std::string> EvmJsonRpcChain::find_elsewhere(const std::string& network, const std::string& tx_hash) {
  for (auto& [name, node] : nodes_) {
    if (name == network) continue;
    std::string found;
    try {
      co_await confirm_chain_id(node);
      auto calls = lookups(tx_hash, "eth_getTransactionByHash");
      auto replies = co_await node.client->batch(std::move(calls));
      if (!replies[0].is_null() || !replies[1].is_null()) found = name;
    } catch (const RpcError&) {
      // Another network's node being down must not decide this payment.
    }
    if (!found.empty()) co_return found;
  }
  co_return std::string{};
}

asio::awaitable<PaymentCheck> EvmJsonRpcChain::check(PaymentExpectation e) {
  PaymentCheck c;
  c.adapter = name();
  c.required_confirmations = e.required_confirmations;
  auto decide = [&c](std::string status, std::string message) {
    c.status = std::move(status);
    c.message = std::move(message);
    return c;
  };
  if (!is_tx_hash(e.tx_hash)) co_return decide("invalid_hash", "txHash must be 0x followed by 64 hexadecimal digits");
  auto node_it = nodes_.find(e.network);
  if (node_it == nodes_.end())
    co_return decide("unavailable", "No JSON-RPC node is configured for network \"" + e.network + "\" (contracts.rpc_urls)");
  if (!e.pay_to || e.token_address.empty())
    co_return decide("unavailable", "The contract has no pay_to address or token contract to check against");
  Node& node = node_it->second;
  std::string hash = lower(e.tx_hash);
  std::string failure;
  try {
    co_await confirm_chain_id(node);
    auto calls = lookups(hash, "eth_blockNumber");
    auto replies = co_await node.client->batch(std::move(calls));
    long long head = quantity(replies[1], "block number");
    if (replies[0].is_null()) {
      json::array by_hash;
      by_hash.push_back(json::string(hash));
      json::value pending = co_await node.client->call("eth_getTransactionByHash", std::move(by_hash));
      c.reorged = e.seen_block_hash.has_value();
      if (!pending.is_null())
        co_return decide("pending", c.reorged ? "A chain reorganization took the transaction out of its block; it waits in the mempool to be mined again"
                                              : "The transaction is in the mempool, not yet mined");
      if (c.reorged)
        co_return decide("not_found", "A chain reorganization dropped the transaction: it is in no block and not in the mempool");
      std::string elsewhere = co_await find_elsewhere(e.network, hash);
      if (!elsewhere.empty())
        co_return decide("wrong_network", "The transaction is on " + elsewhere + ", but this contract is paid on " + e.network);
      co_return decide("not_found", "No transaction with this hash on " + e.network);
    }
    const auto* receipt = replies[0].if_object();
    if (!receipt) throw RpcError("node sent a malformed receipt");
    c.block_number = quantity(receipt->contains("blockNumber") ? receipt->at("blockNumber") : json::value{}, "receipt block number");
    c.block_hash = lower(string_field(*receipt, "blockHash"));
    c.reorged = e.seen_block_hash && lower(*e.seen_block_hash) != c.block_hash;
    // A node in the middle of a reorganization may still serve the receipt of a replaced block.
    json::array block_params;
    block_params.push_back(json::string(hex_quantity(c.block_number)));
    block_params.push_back(false);
    json::value block = co_await node.client->call("eth_getBlockByNumber", std::move(block_params));
    if (!block.is_object() || lower(string_field(block.get_object(), "hash")) != c.block_hash) {
      c.reorged = true;
      c.block_number = 0;
      c.block_hash.clear();
      co_return decide("pending", "The block holding the transaction is being replaced by a chain reorganization; checking again");
    }
    if (string_field(*receipt, "status") == "0x0")
      co_return decide("failed", "The transaction failed on chain (receipt status 0): it transferred nothing");
    std::string token = lower(e.token_address);
    int decimals = co_await token_decimals(node, token);
    auto required = Uint256::from_token_amount(e.amount.to_string(), decimals);
    if (!required) co_return decide("unavailable", "The contract amount cannot be expressed in the token's base units");
    const auto* logs = receipt->if_contains("logs");
    TransferVerdict verdict = judge_transfers(erc20_transfers(logs && logs->is_array() ? logs->get_array() : json::array{}),
                                              token, *e.pay_to, *required, decimals);
    if (!verdict.status.empty()) co_return decide(verdict.status, verdict.message);
    long long confirmations = head >= c.block_number ? head - c.block_number + 1 : 0;
    c.confirmations = static_cast<int>(std::min<long long>(confirmations, 1'000'000));
    if (c.confirmations >= e.required_confirmations)
      co_return decide("verified", "Paid " + verdict.paid.to_token_amount(decimals) + " in block " + std::to_string(c.block_number) +
                                       ", " + std::to_string(c.confirmations) + " confirmations");
    co_return decide("pending", "Paid in block " + std::to_string(c.block_number) + "; " + std::to_string(c.confirmations) +
                                    " of " + std::to_string(e.required_confirmations) + " confirmations");
  } catch (const RpcError& error) {
    failure = error.what();
  }
  c.confirmations = 0;
  co_return decide("unavailable", "The " + e.network + " node cannot be asked right now: " + failure);
}

}  // namespace al::chain
