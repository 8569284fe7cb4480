#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock/clock.hpp"
#include "common/money/decimal.hpp"
#include "common/service/verdict.hpp"

// The provider job of seed 001 as a pure state machine: no I/O, time passed in.
namespace al::job {

enum class Phase : int {
  Request = 0,
  Negotiation = 1,
  Transaction = 2,
  Evaluation = 3,
  Completed = 4,
  Rejected = 5,
  Expired = 6,
};
std::string_view phase_name(Phase phase);
bool is_terminal(Phase phase);

enum class MemoType : int { Message = 0, PayableRequest = 6 };

struct PayableDetail {
  Decimal amount;
  std::string token_address;
  std::optional<std::string> recipient;
};

struct Memo {
  long long id = 0;  // 0 until stored
  MemoType type = MemoType::Message;
  std::string content;
  std::optional<PayableDetail> payable_detail;
  bool requires_approval = false;
  std::string status = "none";  // none | pending | approved | rejected
  std::string sender_id;
  Phase phase = Phase::Request;  // the job's phase when the memo was sent
  Millis created_at = 0;
  std::optional<Millis> decided_at;
  std::optional<std::string> decision_reason;
};

struct Escrow {
  std::string tx_hash;
  std::string verified_by;  // the chain adapter, e.g. "sandbox"
  Millis verified_at = 0;
};

struct Job {
  long long id = 0;
  Phase phase = Phase::Request;
  std::string client_id;
  std::string provider_id;
  std::optional<std::string> evaluator_id;
  std::string service_requirement;
  Decimal budget;
  std::string token_address;
  std::optional<Escrow> escrow;
  std::string claim_status = "none";  // none | pending (the client's refund claim)
  std::optional<std::string> deliverable;
  std::optional<PayableDetail> deliverable_payable_detail;
  std::optional<Millis> deliverable_at;
  std::optional<std::string> rejection_reason;
  std::optional<std::string> client_operation_id;
  std::optional<std::string> contract_id;
  Millis expired_at = 0;
  Millis created_at = 0;
  Millis updated_at = 0;
  long long version = 0;  // one per event; the CloudEvent seq
  std::vector<Memo> memos;

  bool escrow_verified() const { return escrow.has_value(); }
  bool escrow_required() const { return !budget.is_zero() && !escrow_verified(); }
};

enum class Role { Client, Provider, Evaluator, Other };
// The roles an agent holds on a job (an agent can be client and evaluator at once).
bool is_party(const Job& job, std::string_view agent);

// What an action did. Applied/Unchanged map to 2xx; the rest carry the seed's message.
using al::Verdict;  // shared by every service (common/service/verdict.hpp)

struct Change {
  std::string event_type;  // job.phase_changed | job.memo_created | job.escrow_verified | job.memo_decided | job.created
  std::string action;      // accept | reject | negotiation | requirement | deliverable | evaluate | escrow | approve_memo | expire
  std::optional<Phase> from;
  std::optional<Phase> to;
  std::optional<std::size_t> memo_index;  // into job.memos
  std::optional<std::string> reason;
};

struct Outcome {
  Verdict verdict = Verdict::Applied;
  std::string message;
  std::vector<Change> changes;

  static Outcome unchanged() { return {Verdict::Unchanged, {}, {}}; }
  static Outcome fail(Verdict verdict, std::string message) { return {verdict, std::move(message), {}}; }
};

// Seed 001 messages, exactly.
inline constexpr std::string_view kNotAuthorized = "Not authorized to act on this job";
inline constexpr std::string_view kNotInRequest = "Job not found or not in REQUEST phase";
inline constexpr std::string_view kNotInNegotiation = "Job not found or not in NEGOTIATION phase";
inline constexpr std::string_view kNotInNegotiationOrTransaction =
    "Job not found or not in NEGOTIATION/TRANSACTION phase";
inline constexpr std::string_view kNotInTransaction = "Job not found or not in TRANSACTION phase";
inline constexpr std::string_view kEscrowNotVerified =
    "Escrow not verified. Client must deposit escrow before work begins.";
// Client-side messages (this project's, in the same style).
inline constexpr std::string_view kNotInEvaluation = "Job not found or not in EVALUATION phase";
inline constexpr std::string_view kNotInEscrowPhase = "Job not found or not in REQUEST/NEGOTIATION phase";
inline constexpr std::string_view kEvaluatorIsProvider =
    "evaluatorId must not be the provider: a provider cannot evaluate its own job";
inline constexpr std::string_view kClientIsProvider = "providerId must not be the client itself";
inline constexpr std::string_view kOperationReused =
    "clientOperationId was already used for a job with other parameters: use a new clientOperationId for a new job";

// Who may take part in a job: the provider never evaluates its own work, neither as the named
// evaluator nor as the client (who evaluates when no evaluator is named). Unprocessable with the
// reason, or Applied.
Outcome check_parties(std::string_view client, std::string_view provider,
                      const std::optional<std::string>& evaluator);
// Who decides in EVALUATION: the named evaluator, else the client. An evaluator that is the
// provider (stored before the rule existed) does not count: the client decides.
const std::string& evaluator_of(const Job& job);

// Provider actions (seed 001).
Outcome provider_accept(Job& job, std::string_view actor, bool accept,
                        const std::optional<std::string>& reason, Millis now);
Outcome provider_negotiation(Job& job, std::string_view actor, bool accept,
                             const std::optional<std::string>& content, Millis now);
Outcome provider_requirement(Job& job, std::string_view actor, const std::string& content,
                             const std::optional<PayableDetail>& payable, Millis now);
Outcome provider_deliverable(Job& job, std::string_view actor, const std::string& deliverable,
                             const std::optional<PayableDetail>& payable, Millis now);
// Client side.
Outcome client_escrow(Job& job, std::string_view actor, const std::string& tx_hash,
                      const std::string& verified_by, Millis now);
// Decides who may escrow before the chain is asked (403/409 without touching the chain).
Outcome check_escrow_allowed(const Job& job, std::string_view actor, const std::string& tx_hash);
Outcome evaluate(Job& job, std::string_view actor, bool accept,
                 const std::optional<std::string>& reason, Millis now);
Outcome decide_memo(Job& job, std::string_view actor, long long memo_id, bool approve,
                    const std::optional<std::string>& reason, Millis now);
// Moves an unfinished job past its expiry to EXPIRED. Applied or Unchanged.
Outcome expire_if_due(Job& job, Millis now);

}  // namespace al::job
