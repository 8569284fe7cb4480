#pragma once
#include <functional>
#include <optional>
#include <string>

#include "common/money/decimal.hpp"

namespace al::chain {

struct PaymentExpectation {
  std::string tx_hash;
  Decimal amount;
  std::string token_address;
  std::optional<std::string> pay_to;
  std::string network;
  int required_confirmations = 1;
  // The block hash a previous check saw the transaction in: a different (or no) block now means a
  // reorganization moved or dropped it.
  std::optional<std::string> seen_block_hash;
};

struct PaymentCheck {
  // verified | pending | not_found | invalid_hash | failed | wrong_token | wrong_recipient |
  // underpaid | wrong_network | unavailable (docs/offer-service.md, "Payment verification")
  std::string status;
  std::string message;
  std::string adapter;  // which adapter decided ("sandbox", "evm-jsonrpc")
  int confirmations = 0;
  int required_confirmations = 0;
  long long block_number = 0;  // the block the transaction is in (0: not mined, or no chain)
  std::string block_hash;
  bool reorged = false;        // it left the block seen_block_hash named
  bool verified() const { return status == "verified"; }
};

// Verifies on-chain payments. Asynchronous: a real node is a network call.
class ChainAdapter {
 public:
  virtual ~ChainAdapter() = default;
  virtual std::string name() const = 0;
  virtual void verify(const PaymentExpectation& expectation, std::function<void(PaymentCheck)> done) = 0;
};

bool is_tx_hash(const std::string& text);  // 0x + 64 hex digits

// The embedded default: no chain at all. Every well-formed hash counts as a confirmed payment of
// exactly the expected amount, except the all-zero hash, which is reported as not found (so the
// failure path can be exercised). Every result says adapter "sandbox".
class SandboxChain final : public ChainAdapter {
 public:
  std::string name() const override { return "sandbox"; }
  void verify(const PaymentExpectation& expectation, std::function<void(PaymentCheck)> done) override;
};

}  // namespace al::chain
