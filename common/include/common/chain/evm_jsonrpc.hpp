#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/array.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/chain/chain.hpp"
#include "common/chain/json_rpc_client.hpp"
#include "common/chain/uint256.hpp"

namespace al::chain {

// keccak256("Transfer(address,address,uint256)"): topic 0 of every ERC-20 Transfer log.
inline constexpr std::string_view kErc20TransferTopic =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

struct Erc20Transfer {
  std::string token;  // lowercase 0x address of the emitting contract
  std::string from;   // lowercase
  std::string to;     // lowercase
  Uint256 value;
};

// The ERC-20 Transfer logs of a receipt's `logs` (ERC-721 transfers, which index the value as a
// fourth topic, and malformed entries are skipped).
std::vector<Erc20Transfer> erc20_transfers(const boost::json::array& logs);

struct TransferVerdict {
  std::string status;   // "" when the transfers pay enough; else wrong_token | wrong_recipient | underpaid
  std::string message;
  Uint256 paid;         // to pay_to on the right token, summed over the transaction's transfers
};

// Do these transfers pay `required` base units of `token` to `pay_to`? Every transfer of the right
// token to pay_to in the transaction counts (a batch payment may split it).
TransferVerdict judge_transfers(const std::vector<Erc20Transfer>& transfers, const std::string& token,
                                const std::string& pay_to, const Uint256& required, int decimals);

struct EvmNetwork {
  std::string name;      // as contracts name it: "base", "ethereum", …
  std::string rpc_url;   // http(s)://…
  long long chain_id = 0;
};

// The EIP-155 chain id of a well-known network name, 0 when unknown.
long long known_chain_id(const std::string& network);

// Verifies ERC-20 payments against real nodes over JSON-RPC (see docs/offer-service.md, "Payment
// verification"): receipt status, the Transfer logs to pay_to on the contract's token, the
// confirmations from the head, and a reorganization that moved or dropped the transaction.
class EvmJsonRpcChain final : public ChainAdapter {
 public:
  EvmJsonRpcChain(boost::asio::io_context& io, std::vector<EvmNetwork> networks, JsonRpcOptions options = {});
  ~EvmJsonRpcChain() override;
  std::string name() const override { return "evm-jsonrpc"; }
  void verify(const PaymentExpectation& expectation, std::function<void(PaymentCheck)> done) override;

 private:
  struct Node {
    EvmNetwork network;
    std::unique_ptr<JsonRpcClient> client;
    bool chain_id_confirmed = false;
  };
  boost::asio::awaitable<PaymentCheck> check(PaymentExpectation expectation);
  boost::asio::awaitable<void> confirm_chain_id(Node& node);
  boost::asio::awaitable<int> token_decimals(Node& node, const std::string& token);
  boost::asio::awaitable<std::string> find_elsewhere(const std::string& network, const std::string& tx_hash);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  std::map<std::string, Node> nodes_;
  std::map<std::string, int> decimals_;  // "network/token" → the token's decimals()
};

}  // namespace al::chain
