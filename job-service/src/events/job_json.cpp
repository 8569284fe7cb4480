#include "events/job_json.hpp"

#include "common/util/time_format.hpp"

namespace al::job {
namespace {
boost::json::value opt(const std::optional<std::string>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}
boost::json::value opt_time(const std::optional<Millis>& v) {
  return v ? boost::json::value(format_rfc3339(*v)) : boost::json::value(nullptr);
}
}  // namespace

boost::json::object to_json(const PayableDetail& d) {
  boost::json::object o{{"amount", d.amount.to_string()}, {"tokenAddress", d.token_address}};
  if (d.recipient) o["recipient"] = *d.recipient;
  return o;
}

boost::json::object to_json(const Memo& m) {
  return {
      {"id", m.id},
      {"type", static_cast<int>(m.type)},
      {"typeName", m.type == MemoType::PayableRequest ? "PAYABLE_REQUEST" : "MESSAGE"},
      {"content", m.content},
      {"payableDetail", m.payable_detail ? boost::json::value(to_json(*m.payable_detail)) : nullptr},
      {"requiresApproval", m.requires_approval},
      {"status", m.status},
      {"senderId", m.sender_id},
      {"phase", static_cast<int>(m.phase)},
      {"createdAt", format_rfc3339(m.created_at)},
      {"decidedAt", opt_time(m.decided_at)},
      {"decisionReason", opt(m.decision_reason)},
  };
}

boost::json::object to_json(const Job& j) {
  boost::json::array memos;
  for (const auto& m : j.memos) memos.push_back(to_json(m));
  boost::json::value escrow = nullptr;
  if (j.escrow)
    escrow = boost::json::object{{"txHash", j.escrow->tx_hash},
                                 {"verifiedBy", j.escrow->verified_by},
                                 {"verifiedAt", format_rfc3339(j.escrow->verified_at)}};
  return {
      {"id", j.id},
      {"phase", static_cast<int>(j.phase)},
      {"phaseName", phase_name(j.phase)},
      {"clientId", j.client_id},
      {"providerId", j.provider_id},
      {"evaluatorId", opt(j.evaluator_id)},
      {"serviceRequirement", j.service_requirement},
      {"budget", j.budget.to_string()},
      {"tokenAddress", j.token_address},
      {"escrowVerified", j.escrow_verified()},
      {"escrow", std::move(escrow)},
      {"claimStatus", j.claim_status},
      {"memos", std::move(memos)},
      {"deliverable", opt(j.deliverable)},
      {"deliverablePayableDetail",
       j.deliverable_payable_detail ? boost::json::value(to_json(*j.deliverable_payable_detail)) : nullptr},
      {"deliveredAt", opt_time(j.deliverable_at)},
      {"rejectionReason", opt(j.rejection_reason)},
      {"clientOperationId", opt(j.client_operation_id)},
      {"contractId", opt(j.contract_id)},
      {"expiredAt", j.expired_at ? boost::json::value(format_rfc3339(j.expired_at)) : nullptr},
      {"createdAt", format_rfc3339(j.created_at)},
      {"updatedAt", format_rfc3339(j.updated_at)},
      {"version", j.version},
  };
}

}  // namespace al::job
