#include "common/chain/chain.hpp"

namespace al::chain {

bool is_tx_hash(const std::string& text) {
  if (text.size() != 66 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) return false;
  for (std::size_t i = 2; i < text.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  return true;
}

void SandboxChain::verify(const PaymentExpectation& expectation, std::function<void(PaymentCheck)> done) {
  PaymentCheck check;
  check.adapter = name();
  check.required_confirmations = expectation.required_confirmations;
  if (!is_tx_hash(expectation.tx_hash)) {
    check.status = "invalid_hash";
    check.message = "txHash must be 0x followed by 64 hexadecimal digits";
  } else if (expectation.tx_hash.find_first_not_of('0', 2) == std::string::npos) {
    check.status = "not_found";
    check.message = "Sandbox chain: transaction not found";
  } else {
    check.status = "verified";
    check.confirmations = expectation.required_confirmations;  // the sandbox confirms at once
    check.message = "Sandbox chain: payment accepted without an on-chain check";
  }
  done(std::move(check));
}

}  // namespace al::chain
