#include "domain/job.hpp"

namespace al::job {

std::string_view phase_name(Phase phase) {
  switch (phase) {
    case Phase::Request: return "REQUEST";
    case Phase::Negotiation: return "NEGOTIATION";
    case Phase::Transaction: return "TRANSACTION";
    case Phase::Evaluation: return "EVALUATION";
    case Phase::Completed: return "COMPLETED";
    case Phase::Rejected: return "REJECTED";
    case Phase::Expired: return "EXPIRED";
  }
  return "UNKNOWN";
}

bool is_terminal(Phase phase) {
  return phase == Phase::Completed || phase == Phase::Rejected || phase == Phase::Expired;
}

bool is_party(const Job& job, std::string_view agent) {
  return job.client_id == agent || job.provider_id == agent ||
         (job.evaluator_id && *job.evaluator_id == agent);
}

Outcome check_parties(std::string_view client, std::string_view provider,
                      const std::optional<std::string>& evaluator) {
  if (client == provider) return Outcome::fail(Verdict::Unprocessable, std::string(kClientIsProvider));
  if (evaluator && *evaluator == provider)
    return Outcome::fail(Verdict::Unprocessable, std::string(kEvaluatorIsProvider));
  return Outcome{};
}

const std::string& evaluator_of(const Job& job) {
  return job.evaluator_id && *job.evaluator_id != job.provider_id ? *job.evaluator_id : job.client_id;
}

namespace {
Change move_to(Job& job, Phase to, std::string action, Millis now,
               std::optional<std::string> reason = std::nullopt) {
  Change change{"job.phase_changed", std::move(action), job.phase, to, std::nullopt, reason};
  job.phase = to;
  job.updated_at = now;
  if (to == Phase::Rejected) {
    job.claim_status = "pending";
    job.rejection_reason = std::move(reason);
  }
  return change;
}

Change add_memo(Job& job, std::string_view sender, std::string content,
                const std::optional<PayableDetail>& payable, std::string action, Millis now) {
  Memo memo;
  memo.type = payable ? MemoType::PayableRequest : MemoType::Message;
  memo.content = std::move(content);
  memo.payable_detail = payable;
  memo.requires_approval = payable.has_value();
  memo.status = payable ? "pending" : "none";
  memo.sender_id = std::string(sender);
  memo.phase = job.phase;
  memo.created_at = now;
  job.memos.push_back(std::move(memo));
  job.updated_at = now;
  return Change{"job.memo_created", std::move(action), std::nullopt, std::nullopt,
                job.memos.size() - 1, std::nullopt};
}
}  // namespace

Outcome provider_accept(Job& job, std::string_view actor, bool accept,
                        const std::optional<std::string>& reason, Millis now) {
  if (job.provider_id != actor) return Outcome::fail(Verdict::Forbidden, std::string(kNotAuthorized));
  if (job.phase != Phase::Request) return Outcome::unchanged();  // seed: 204 once past phase 0
  Outcome out;
  if (accept) {
    if (reason && !reason->empty()) out.changes.push_back(add_memo(job, actor, *reason, std::nullopt, "accept", now));
    out.changes.push_back(move_to(job, Phase::Negotiation, "accept", now));
  } else {
    out.changes.push_back(move_to(job, Phase::Rejected, "reject", now, reason));
  }
  return out;
}

Outcome provider_negotiation(Job& job, std::string_view actor, bool accept,
                             const std::optional<std::string>& content, Millis now) {
  if (job.provider_id != actor) return Outcome::fail(Verdict::Forbidden, std::string(kNotAuthorized));
  if (job.phase != Phase::Negotiation) return Outcome::fail(Verdict::Conflict, std::string(kNotInNegotiation));
  if (accept && job.escrow_required()) return Outcome::fail(Verdict::Conflict, std::string(kEscrowNotVerified));
  Outcome out;
  if (content && !content->empty())
    out.changes.push_back(add_memo(job, actor, *content, std::nullopt, "negotiation", now));
  if (accept) {
    out.changes.push_back(move_to(job, Phase::Transaction, "negotiation", now));
  } else {
    out.changes.push_back(move_to(job, Phase::Rejected, "negotiation", now, content));
  }
  return out;
}

Outcome provider_requirement(Job& job, std::string_view actor, const std::string& content,
                             const std::optional<PayableDetail>& payable, Millis now) {
  if (job.provider_id != actor) return Outcome::fail(Verdict::Forbidden, std::string(kNotAuthorized));
  if (job.phase != Phase::Negotiation && job.phase != Phase::Transaction)
    return Outcome::fail(Verdict::Conflict, std::string(kNotInNegotiationOrTransaction));
  if (job.phase == Phase::Negotiation && job.escrow_required())
    return Outcome::fail(Verdict::Conflict, std::string(kEscrowNotVerified));
  Outcome out;
  out.changes.push_back(add_memo(job, actor, content, payable, "requirement", now));
  // Seed: in NEGOTIATION this atomically advances to TRANSACTION (same transaction as the memo).
  if (job.phase == Phase::Negotiation)
    out.changes.push_back(move_to(job, Phase::Transaction, "requirement", now));
  return out;
}

Outcome provider_deliverable(Job& job, std::string_view actor, const std::string& deliverable,
                             const std::optional<PayableDetail>& payable, Millis now) {
  if (job.provider_id != actor) return Outcome::fail(Verdict::Forbidden, std::string(kNotAuthorized));
  if (job.phase == Phase::Evaluation) return Outcome::unchanged();  // seed: idempotent 204
  if (job.phase != Phase::Transaction) return Outcome::fail(Verdict::Conflict, std::string(kNotInTransaction));
  job.deliverable = deliverable;
  job.deliverable_payable_detail = payable;
  job.deliverable_at = now;
  Outcome out;
  out.changes.push_back(move_to(job, Phase::Evaluation, "deliverable", now));
  return out;
}

Outcome check_escrow_allowed(const Job& job, std::string_view actor, const std::string& tx_hash) {
  if (job.client_id != actor) return Outcome::fail(Verdict::Forbidden, std::string(kNotAuthorized));
  if (job.escrow) {
    if (job.escrow->tx_hash == tx_hash) return Outcome::unchanged();
    return Outcome::fail(Verdict::Conflict, "Escrow already verified with another transaction");
  }
  if (job.phase != Phase::Request && job.phase != Phase::Negotiation)
    return Outcome::fail(Verdict::Conflict, std::string(kNotInEscrowPhase));
  if (job.budget.is_zero()) return Outcome::fail(Verdict::Conflict, "Job has no budget to escrow");
  return Outcome{};
}

Outcome client_escrow(Job& job, std::string_view actor, const std::string& tx_hash,
                      const std::string& verified_by, Millis now) {
  Outcome check = check_escrow_allowed(job, actor, tx_hash);
  if (check.verdict != Verdict::Applied) return check;
  job.escrow = Escrow{tx_hash, verified_by, now};
  job.updated_at = now;
  Outcome out;
  out.changes.push_back(Change{"job.escrow_verified", "escrow", std::nullopt, std::nullopt, std::nullopt, std::nullopt});
  return out;
}

Outcome evaluate(Job& job, std::string_view actor, bool accept,
                 const std::optional<std::string>& reason, Millis now) {
  // With a designated evaluator, the evaluator decides; otherwise the client does. Never the provider.
  if (evaluator_of(job) != actor || actor == job.provider_id)
    return Outcome::fail(Verdict::Forbidden, std::string(kNotAuthorized));
  if (job.phase == Phase::Completed && accept) return Outcome::unchanged();
  if (job.phase == Phase::Rejected && !accept && job.deliverable) return Outcome::unchanged();
  if (job.phase != Phase::Evaluation) return Outcome::fail(Verdict::Conflict, std::string(kNotInEvaluation));
  Outcome out;
  out.changes.push_back(move_to(job, accept ? Phase::Completed : Phase::Rejected, "evaluate", now, reason));
  return out;
}

Outcome decide_memo(Job& job, std::string_view actor, long long memo_id, bool approve,
                    const std::optional<std::string>& reason, Millis now) {
  if (job.client_id != actor) return Outcome::fail(Verdict::Forbidden, std::string(kNotAuthorized));
  for (std::size_t i = 0; i < job.memos.size(); ++i) {
    Memo& memo = job.memos[i];
    if (memo.id != memo_id) continue;
    if (!memo.requires_approval) return Outcome::fail(Verdict::Conflict, "Memo does not require approval");
    std::string wanted = approve ? "approved" : "rejected";
    if (memo.status == wanted) return Outcome::unchanged();
    if (memo.status != "pending") return Outcome::fail(Verdict::Conflict, "Memo already " + memo.status);
    if (is_terminal(job.phase)) return Outcome::fail(Verdict::Conflict, "Job is already " + std::string(phase_name(job.phase)));
    memo.status = wanted;
    memo.decided_at = now;
    memo.decision_reason = reason;
    job.updated_at = now;
    Outcome out;
    out.changes.push_back(Change{"job.memo_decided", approve ? "approve_memo" : "reject_memo", std::nullopt, std::nullopt, i, reason});
    return out;
  }
  return Outcome::fail(Verdict::NotFound, "Memo not found");
}

Outcome expire_if_due(Job& job, Millis now) {
  if (is_terminal(job.phase) || job.expired_at == 0 || now < job.expired_at) return Outcome::unchanged();
  Outcome out;
  out.changes.push_back(move_to(job, Phase::Expired, "expire", now));
  if (job.escrow) job.claim_status = "pending";  // the escrowed funds are claimable by the client
  return out;
}

}  // namespace al::job
