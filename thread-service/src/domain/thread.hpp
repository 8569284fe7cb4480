#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock/clock.hpp"
#include "common/money/decimal.hpp"
#include "common/service/verdict.hpp"

// Service listings and negotiation threads (seed 000) as pure state: no I/O, time and ids passed in.
namespace al::thread {

// What a service costs, or a quote's budget. A quote's fields may be partial while negotiating.
struct Budget {
  std::optional<Decimal> amount;
  std::optional<std::string> token;
  std::optional<std::string> network;
};

struct Terms {
  std::optional<std::string> deliverable;
  std::optional<Budget> budget;
  std::optional<std::string> timeline;
  std::optional<std::string> acceptance_criteria;
  std::optional<std::string> revision_boundary;
};

// The terms a lock needs, in the order they are reported.
inline constexpr std::string_view kRequiredTerms[] = {
    "deliverable", "budget.amount", "budget.token", "budget.network",
    "timeline", "acceptance_criteria", "revision_boundary"};

// The required terms that `terms` lacks. A value still holding a `<PLACEHOLDER>` of a prefilled
// next-step curl counts as missing.
std::vector<std::string> missing_terms(const std::optional<Terms>& terms);
bool is_placeholder(std::string_view value);

struct Service {
  long long row = 0;  // storage order (cursor); 0 until stored
  std::string id;
  std::string provider_id;
  std::string title;
  std::string description;
  std::string deliverable;
  Decimal price_amount;
  std::string price_token;
  std::string price_network;
  std::string timeline;
  std::vector<std::string> tags;
  bool active = true;
  Millis created_at = 0;
  Millis updated_at = 0;
  long long version = 0;
};

enum class Status { Negotiating, QuoteLocked, Offered, Closed };
std::string_view status_name(Status status);
std::optional<Status> parse_status(std::string_view name);

enum class Role { Requester, Provider, None };
std::string_view role_name(Role role);

enum class MessageType { Text, Scope, Quote, Milestone };
std::string_view message_type_name(MessageType type);
std::optional<MessageType> parse_message_type(std::string_view name);

struct Message {
  std::string id;
  long long seq = 0;  // 1, 2, … within the thread
  std::string sender_id;
  Role sender_role = Role::None;
  MessageType type = MessageType::Text;
  std::string body;
  std::optional<Terms> terms;
  Millis created_at = 0;
};

// The offer or contract a thread follows, as reported by offer-service.
struct Linked {
  std::string id;
  std::string status;
  long long seq = 0;  // last applied event's seq of that aggregate
};

struct Thread {
  long long row = 0;  // storage order (cursor); 0 until stored
  std::string id;
  std::string service_id;
  std::string service_title;
  Terms service_terms;  // deliverable, price and timeline of the service when the thread opened
  std::string requester_id;
  std::string provider_id;
  std::string mode = "quick_quote";
  Status status = Status::Negotiating;
  long long message_count = 0;
  // The latest quote from either member (the requester's is a counter-proposal).
  std::optional<std::string> latest_quote_message_id;
  std::optional<long long> latest_quote_seq;
  std::optional<Terms> latest_quote_terms;
  // The provider's latest quote: what lock-quote locks unless it names another of the provider's.
  std::optional<std::string> provider_quote_message_id;
  std::optional<long long> provider_quote_seq;
  std::optional<Terms> provider_quote_terms;
  std::optional<std::string> locked_quote_message_id;
  std::optional<long long> locked_quote_seq;
  std::optional<Terms> locked_terms;
  std::optional<Millis> quote_locked_at;
  std::optional<Linked> offer;
  std::optional<Linked> contract;
  std::optional<std::string> closed_reason;
  Millis created_at = 0;
  Millis updated_at = 0;
  long long version = 0;   // one per event; the CloudEvent seq
  long long revision = 0;  // one per stored change (some changes have no event); caches compare it
};

Role role_of(const Thread& thread, std::string_view agent);
// The latest quote is the requester's counter-proposal: the provider answers with its own quote.
bool latest_quote_is_requesters(const Thread& thread);

using al::Verdict;  // shared by every service (common/service/verdict.hpp)

struct Change {
  std::string event_type;  // thread.opened | thread.message_posted | thread.quote_locked | thread.status_changed | thread.closed
  std::optional<Status> from;
  std::optional<Status> to;
  std::optional<std::string> reason;
};

struct Outcome {
  Verdict verdict = Verdict::Applied;
  std::string message;
  std::vector<std::string> missing;  // with Unprocessable from a lock: the missing terms
  std::vector<Change> changes;
  std::string code;  // with Unprocessable from a lock: why (see kLock*)

  static Outcome unchanged() { return {Verdict::Unchanged, {}, {}, {}, {}}; }
  static Outcome fail(Verdict verdict, std::string message) { return {verdict, std::move(message), {}, {}, {}}; }
  static Outcome refuse_lock(std::string_view code, std::string message) {
    return {Verdict::Unprocessable, std::move(message), {}, {}, std::string(code)};
  }
};

inline constexpr std::string_view kNotMember = "Not authorized to access this thread";

// Why a lock is refused with Unprocessable (the 422's `code`).
inline constexpr std::string_view kLockNoQuote = "no_quote";                // the provider has not quoted
inline constexpr std::string_view kLockMissingTerms = "missing_terms";      // the quote lacks terms
inline constexpr std::string_view kLockMessageNotFound = "message_not_found";  // no message at message_seq
inline constexpr std::string_view kLockNotAQuote = "not_a_quote";           // message_seq is not a quote
inline constexpr std::string_view kLockNotProviderQuote = "not_provider_quote";  // it is the requester's

// Opens a thread on `service` for `requester`, with `first` (the opening message, type text).
Outcome open_thread(Thread& thread, const Service& service, std::string_view requester, Message& first,
                    Millis now);
// Appends `message` (id, type, body, terms set by the caller) from `actor`.
Outcome post_message(Thread& thread, std::string_view actor, Message& message, long long max_messages,
                     Millis now);
// Locks the provider's latest quote or, with `message_seq`, the provider's quote at that seq;
// `named` is the thread's message at `message_seq` (nullopt when it has none). A requester's
// quote is a counter-proposal and is never locked.
Outcome lock_quote(Thread& thread, std::string_view actor, Millis now,
                   std::optional<long long> message_seq = std::nullopt,
                   const std::optional<Message>& named = std::nullopt);
Outcome close_thread(Thread& thread, std::string_view actor, const std::optional<std::string>& reason,
                     Millis now);

// Offer/contract events from offer-service. Unchanged when stale, redundant or about another offer.
Outcome follow_offer(Thread& thread, std::string_view event_type, const std::string& offer_id, long long seq,
                     Millis now);
Outcome follow_contract(Thread& thread, std::string_view event_type, const std::string& contract_id,
                        const std::string& contract_status, long long seq, Millis now);

}  // namespace al::thread
