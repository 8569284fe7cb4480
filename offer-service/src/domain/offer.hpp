#pragma once
#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock/clock.hpp"
#include "common/money/decimal.hpp"
#include "common/service/verdict.hpp"

// Offers and contracts (seed 000) as pure state: no I/O, time and ids passed in.
namespace al::offer {

// What offer-service knows of a thread, from thread-service's events.
struct ThreadView {
  std::string thread_id;
  std::string service_id;
  std::string requester_id;
  std::string provider_id;
  std::string status;  // negotiating | quote_locked | offered | closed
  std::optional<boost::json::object> locked_terms;
  std::optional<std::string> quote_message_id;
  long long seq = 0;  // of the last thread event applied
  std::optional<Millis> opened_at;        // when the thread was first seen (its opening event's time)
  std::optional<Millis> quote_locked_at;  // the latest lock's event time (ops funnel)
};

enum class OfferStatus { Open, Accepted, Rejected, Inactive };
std::string_view status_name(OfferStatus status);
std::optional<OfferStatus> parse_status(std::string_view name);

struct Offer {
  long long row = 0;  // storage order (cursor); 0 until stored
  std::string id;
  std::string thread_id;
  std::string service_id;
  std::string requester_id;
  std::string provider_id;
  OfferStatus status = OfferStatus::Open;
  boost::json::object terms;  // the locked quote's terms, as thread-service published them
  Decimal amount;
  std::string token;
  std::string token_address;  // the token's contract on `network` (from contracts.tokens, or the token itself)
  std::string network;
  std::string quote_message_id;
  Millis expires_at = 0;
  std::optional<Millis> decided_at;
  std::optional<std::string> decision_reason;
  std::optional<std::string> contract_id;
  Millis created_at = 0;
  Millis updated_at = 0;
  long long version = 0;  // one per event; the CloudEvent seq
};

struct Contract {
  std::string id;
  std::string offer_id;
  std::string thread_id;
  std::string buyer_id;     // the requester
  std::string provider_id;
  std::string status = "awaiting_payment";
  Decimal amount;
  std::string token;
  std::string token_address;
  std::string network;
  std::string deliverable;  // from the locked terms: what the provider's job is about
  std::string pay_to;
  int required_confirmations = 1;
  int confirmations = 0;
  std::optional<std::string> tx_hash;
  std::string chain_adapter;
  std::optional<Millis> payment_submitted_at;
  std::optional<Millis> funded_at;
  // Where the chain last saw the payment, and when (the watcher's reorganization check).
  std::optional<long long> payment_block_number;
  std::optional<std::string> payment_block_hash;
  std::optional<Millis> payment_seen_at;
  // The last payment the watcher turned down after accepting it (the contract went back to
  // awaiting_payment): its hash, the chain adapter's status, and when.
  std::optional<std::string> rejected_tx_hash;
  std::optional<std::string> rejected_code;
  std::optional<Millis> rejected_at;
  Millis created_at = 0;
  Millis updated_at = 0;
  long long version = 0;
};

using al::Verdict;  // shared by every service (common/service/verdict.hpp)

struct Outcome {
  Verdict verdict = Verdict::Applied;
  std::string message;
  std::string code;                  // for refusals: a stable machine-readable reason
  std::vector<std::string> events;   // offer.* types, in order
  static Outcome fail(Verdict v, std::string message, std::string code) { return {v, std::move(message), std::move(code), {}}; }
};

inline constexpr std::string_view kNotThreadMember = "Not authorized to access this thread";
inline constexpr std::string_view kNotOfferMember = "Not authorized to access this offer";

// Applies a thread.* event's thread summary to the view; false when it is not newer.
bool apply_thread_event(ThreadView& view, std::string_view type, const boost::json::object& data, long long seq,
                        Millis time = 0);

// Whether `actor` may create an offer on the thread now. `live_offer` is the thread's open or
// accepted offer, if any.
Outcome check_create(const std::optional<ThreadView>& thread, std::string_view actor,
                     const std::optional<Offer>& live_offer);
// The locked terms' budget, or a message saying what is wrong with them.
Outcome offer_from(const ThreadView& thread, Offer& offer, Millis now, Millis ttl_ms);

// Token symbols per network → token contract addresses, written "network:SYMBOL=0x…,…".
class TokenRegistry {
 public:
  static TokenRegistry parse(const std::string& text);  // throws ConfigError
  // `token` itself when it is an address, else the registered address of that symbol on `network`.
  std::optional<std::string> resolve(const std::string& network, const std::string& token) const;

 private:
  std::map<std::pair<std::string, std::string>, std::string> addresses_;
};

bool is_evm_address(std::string_view text);

// Provider's decision. An offer past its expiry becomes inactive first (and the decision fails).
Outcome respond(Offer& offer, std::string_view actor, bool accept, const std::optional<std::string>& reason,
                Millis now);
Outcome expire_if_due(Offer& offer, Millis now);

struct PaymentTerms {
  std::string pay_to;
  int required_confirmations = 1;
  std::string chain_adapter;
};
Contract contract_for(const Offer& offer, std::string id, const PaymentTerms& payment, Millis now);

inline constexpr std::string_view kNotContractParty = "Not authorized to act on this contract";

// Whether `actor` may submit `tx_hash` for the contract now (before asking the chain).
// Unchanged: the same hash was already accepted.
Outcome check_payment(const Contract& contract, std::string_view actor, const std::string& tx_hash);
// What the chain adapter saw of a payment (chain::PaymentCheck, without the I/O).
struct PaymentObservation {
  std::string status;  // verified | pending | not_found | failed | wrong_token | wrong_recipient | underpaid | wrong_network | …
  int confirmations = 0;
  long long block_number = 0;  // 0: not in a block
  std::string block_hash;
  bool reorged = false;        // it left the block the contract recorded
  std::string adapter;
};

// A payment the chain accepted (status verified or pending): verified with enough confirmations
// funds the contract; fewer, or still in the mempool, leaves it `payment_submitted` (watched).
// A reorganization that moved it is announced (contract.payment_reorged). Events in
// `Outcome::events` (contract.* types); Unchanged when only the confirmations moved.
Outcome apply_payment(Contract& contract, const std::string& tx_hash, const PaymentObservation& seen, Millis now);

// The watcher's later look at a `payment_submitted` contract's payment:
// - verified / pending: as apply_payment;
// - not_found after a reorganization dropped it: confirmations back to 0 (contract.payment_reorged);
//   not found for `give_up_ms` since it was last seen: the payment is turned down;
// - failed, wrong_token, wrong_recipient, underpaid, wrong_network (a reorganization can re-mine
//   it differently): the payment is turned down: back to `awaiting_payment`, the hash released
//   for this contract only (contract.payment_rejected);
// - unavailable and anything else: nothing changes.
Outcome observe_payment(Contract& contract, const PaymentObservation& seen, Millis now, Millis give_up_ms);

// The contract follows its job (job-service): COMPLETED (4) → completed, REJECTED (5) →
// refund_pending (the buyer's refund claim), EXPIRED (6) → expired. Unchanged otherwise, and once ended.
Outcome follow_job_phase(Contract& contract, int phase, Millis now);

}  // namespace al::offer
