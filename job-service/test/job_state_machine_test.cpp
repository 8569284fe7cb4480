// Every phase × action × role of the provider job (seed 001 and the client side).
#include <gtest/gtest.h>

#include "domain/job.hpp"

namespace al::job {
namespace {

constexpr Millis kNow = 1'800'000'000'000;
const std::string kClient = "agt_client";
const std::string kProvider = "agt_provider";
const std::string kEvaluator = "agt_evaluator";
const std::string kStranger = "agt_stranger";
const std::string kHash = "0x" + std::string(64, 'a');

Job make_job(Phase phase, bool escrowed, const std::string& budget = "10", bool with_evaluator = false) {
  Job j;
  j.id = 7;
  j.phase = phase;
  j.client_id = kClient;
  j.provider_id = kProvider;
  if (with_evaluator) j.evaluator_id = kEvaluator;
  j.budget = *Decimal::parse(budget);
  j.token_address = "0x" + std::string(40, '1');
  if (escrowed) j.escrow = Escrow{kHash, "sandbox", kNow - 10};
  j.expired_at = kNow + 1000;
  j.created_at = kNow - 100;
  return j;
}

enum class Act { AcceptTrue, AcceptFalse, NegotiationTrue, NegotiationFalse, Requirement, RequirementPayable, Deliverable, EvaluateTrue, EvaluateFalse };
const Act kAllActs[] = {Act::AcceptTrue, Act::AcceptFalse, Act::NegotiationTrue, Act::NegotiationFalse, Act::Requirement,
                        Act::RequirementPayable, Act::Deliverable, Act::EvaluateTrue, Act::EvaluateFalse};
const Phase kAllPhases[] = {Phase::Request, Phase::Negotiation, Phase::Transaction, Phase::Evaluation,
                            Phase::Completed, Phase::Rejected, Phase::Expired};

Outcome run(Job& j, Act a, const std::string& actor) {
  PayableDetail pay{*Decimal::parse("2.5"), "0x" + std::string(40, '1'), "0x" + std::string(40, '2')};
  switch (a) {
    case Act::AcceptTrue: return provider_accept(j, actor, true, std::nullopt, kNow);
    case Act::AcceptFalse: return provider_accept(j, actor, false, std::string("busy"), kNow);
    case Act::NegotiationTrue: return provider_negotiation(j, actor, true, std::nullopt, kNow);
    case Act::NegotiationFalse: return provider_negotiation(j, actor, false, std::string("no"), kNow);
    case Act::Requirement: return provider_requirement(j, actor, "need more", std::nullopt, kNow);
    case Act::RequirementPayable: return provider_requirement(j, actor, "pay me", pay, kNow);
    case Act::Deliverable: return provider_deliverable(j, actor, "done", std::nullopt, kNow);
    case Act::EvaluateTrue: return evaluate(j, actor, true, std::nullopt, kNow);
    case Act::EvaluateFalse: return evaluate(j, actor, false, std::string("bad"), kNow);
  }
  return {};
}

struct Expect {
  Verdict verdict;
  std::optional<Phase> phase_after;  // for Applied
  std::string message;               // for failures
};

// The rules of seed 001, written as a table per action: who may act, in which phase, and what
// happens. Independent of the implementation's structure on purpose.
Expect expected(Act a, Phase p, const std::string& actor, bool escrowed, bool evaluator_set) {
  bool provider_action = a != Act::EvaluateTrue && a != Act::EvaluateFalse;
  if (provider_action && actor != kProvider) return {Verdict::Forbidden, {}, "Not authorized to act on this job"};
  switch (a) {
    case Act::AcceptTrue:
    case Act::AcceptFalse:
      if (p != Phase::Request) return {Verdict::Unchanged, {}, ""};  // "204 if already past phase 0"
      return {Verdict::Applied, a == Act::AcceptTrue ? Phase::Negotiation : Phase::Rejected, ""};
    case Act::NegotiationTrue:
    case Act::NegotiationFalse:
      if (p != Phase::Negotiation) return {Verdict::Conflict, {}, "Job not found or not in NEGOTIATION phase"};
      if (a == Act::NegotiationTrue && !escrowed)
        return {Verdict::Conflict, {}, "Escrow not verified. Client must deposit escrow before work begins."};
      return {Verdict::Applied, a == Act::NegotiationTrue ? Phase::Transaction : Phase::Rejected, ""};
    case Act::Requirement:
    case Act::RequirementPayable:
      if (p != Phase::Negotiation && p != Phase::Transaction)
        return {Verdict::Conflict, {}, "Job not found or not in NEGOTIATION/TRANSACTION phase"};
      if (p == Phase::Negotiation && !escrowed)
        return {Verdict::Conflict, {}, "Escrow not verified. Client must deposit escrow before work begins."};
      return {Verdict::Applied, Phase::Transaction, ""};
    case Act::Deliverable:
      if (p == Phase::Evaluation) return {Verdict::Unchanged, {}, ""};
      if (p != Phase::Transaction) return {Verdict::Conflict, {}, "Job not found or not in TRANSACTION phase"};
      return {Verdict::Applied, Phase::Evaluation, ""};
    case Act::EvaluateTrue:
    case Act::EvaluateFalse: {
      const std::string& judge = evaluator_set ? kEvaluator : kClient;
      if (actor != judge) return {Verdict::Forbidden, {}, "Not authorized to act on this job"};
      if (p == Phase::Completed && a == Act::EvaluateTrue) return {Verdict::Unchanged, {}, ""};
      if (p != Phase::Evaluation) {
        // A rejection repeated after an evaluation (deliverable present) is idempotent.
        return {Verdict::Conflict, {}, "Job not found or not in EVALUATION phase"};
      }
      return {Verdict::Applied, a == Act::EvaluateTrue ? Phase::Completed : Phase::Rejected, ""};
    }
  }
  return {};
}

TEST(JobStateMachine, EveryPhaseActionRoleCombination) {
  int checked = 0;
  for (bool evaluator_set : {false, true}) {
    for (bool escrowed : {false, true}) {
      for (Phase p : kAllPhases) {
        for (Act a : kAllActs) {
          for (const auto& actor : {kClient, kProvider, kEvaluator, kStranger}) {
            Job j = make_job(p, escrowed, "10", evaluator_set);
            const Job before = j;
            Outcome out = run(j, a, actor);
            Expect want = expected(a, p, actor, escrowed, evaluator_set);
            SCOPED_TRACE("phase=" + std::string(phase_name(p)) + " act=" + std::to_string(static_cast<int>(a)) +
                         " actor=" + actor + " escrowed=" + std::to_string(escrowed) +
                         " evaluator=" + std::to_string(evaluator_set));
            ASSERT_EQ(out.verdict, want.verdict);
            if (want.verdict == Verdict::Applied) {
              EXPECT_EQ(j.phase, *want.phase_after);
              EXPECT_FALSE(out.changes.empty());
              EXPECT_EQ(j.updated_at, kNow);
            } else {
              // Refused or idempotent: nothing changed at all.
              EXPECT_EQ(j.phase, before.phase);
              EXPECT_EQ(j.memos.size(), before.memos.size());
              EXPECT_EQ(j.claim_status, before.claim_status);
              EXPECT_TRUE(out.changes.empty());
              EXPECT_EQ(out.message, want.message);
            }
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 2 * 2 * 7 * 9 * 4);
}

TEST(JobStateMachine, ZeroBudgetNeedsNoEscrow) {
  Job j = make_job(Phase::Negotiation, false, "0");
  EXPECT_EQ(provider_negotiation(j, kProvider, true, std::nullopt, kNow).verdict, Verdict::Applied);
  EXPECT_EQ(j.phase, Phase::Transaction);
  Job k = make_job(Phase::Negotiation, false, "0");
  EXPECT_EQ(provider_requirement(k, kProvider, "x", std::nullopt, kNow).verdict, Verdict::Applied);
  EXPECT_EQ(k.phase, Phase::Transaction);
}

TEST(JobStateMachine, RejectionSetsClaimPending) {
  Job a = make_job(Phase::Request, false);
  provider_accept(a, kProvider, false, std::string("busy"), kNow);
  EXPECT_EQ(a.phase, Phase::Rejected);
  EXPECT_EQ(a.claim_status, "pending");
  EXPECT_EQ(a.rejection_reason, "busy");

  Job b = make_job(Phase::Negotiation, true);
  provider_negotiation(b, kProvider, false, std::string("terms"), kNow);
  EXPECT_EQ(b.claim_status, "pending");

  Job c = make_job(Phase::Evaluation, true);
  evaluate(c, kClient, false, std::string("poor"), kNow);
  EXPECT_EQ(c.phase, Phase::Rejected);
  EXPECT_EQ(c.claim_status, "pending");

  Job d = make_job(Phase::Evaluation, true);
  evaluate(d, kClient, true, std::nullopt, kNow);
  EXPECT_EQ(d.phase, Phase::Completed);
  EXPECT_EQ(d.claim_status, "none");
}

TEST(JobStateMachine, RequirementMemoTypes) {
  Job j = make_job(Phase::Negotiation, true);
  Outcome out = provider_requirement(j, kProvider, "plain", std::nullopt, kNow);
  ASSERT_EQ(out.changes.size(), 2u);  // memo + the atomic 1 → 2 advance
  EXPECT_EQ(out.changes[0].event_type, "job.memo_created");
  EXPECT_EQ(out.changes[1].event_type, "job.phase_changed");
  ASSERT_EQ(j.memos.size(), 1u);
  EXPECT_EQ(j.memos[0].type, MemoType::Message);
  EXPECT_FALSE(j.memos[0].requires_approval);
  EXPECT_EQ(j.memos[0].phase, Phase::Negotiation);

  PayableDetail pay{*Decimal::parse("3"), "0x" + std::string(40, '1'), "0x" + std::string(40, '2')};
  out = provider_requirement(j, kProvider, "pay", pay, kNow);
  ASSERT_EQ(out.changes.size(), 1u);  // already in TRANSACTION: stays there
  ASSERT_EQ(j.memos.size(), 2u);
  EXPECT_EQ(j.memos[1].type, MemoType::PayableRequest);
  EXPECT_TRUE(j.memos[1].requires_approval);
  EXPECT_EQ(j.memos[1].status, "pending");
  EXPECT_EQ(j.phase, Phase::Transaction);
}

TEST(JobStateMachine, DeliverableStoredAndIdempotent) {
  Job j = make_job(Phase::Transaction, true);
  EXPECT_EQ(provider_deliverable(j, kProvider, "{\"type\":\"url\",\"value\":\"x\"}", std::nullopt, kNow).verdict, Verdict::Applied);
  EXPECT_EQ(j.deliverable, "{\"type\":\"url\",\"value\":\"x\"}");
  EXPECT_EQ(j.deliverable_at, kNow);
  EXPECT_EQ(provider_deliverable(j, kProvider, "other", std::nullopt, kNow + 5).verdict, Verdict::Unchanged);
  EXPECT_EQ(j.deliverable, "{\"type\":\"url\",\"value\":\"x\"}");  // the repeat changes nothing
}

TEST(JobStateMachine, EscrowRules) {
  Job j = make_job(Phase::Request, false);
  EXPECT_EQ(client_escrow(j, kProvider, kHash, "sandbox", kNow).verdict, Verdict::Forbidden);
  EXPECT_EQ(client_escrow(j, kStranger, kHash, "sandbox", kNow).verdict, Verdict::Forbidden);
  EXPECT_EQ(client_escrow(j, kClient, kHash, "sandbox", kNow).verdict, Verdict::Applied);
  ASSERT_TRUE(j.escrow_verified());
  EXPECT_EQ(j.escrow->verified_by, "sandbox");
  EXPECT_EQ(client_escrow(j, kClient, kHash, "sandbox", kNow).verdict, Verdict::Unchanged);
  EXPECT_EQ(client_escrow(j, kClient, "0x" + std::string(64, 'b'), "sandbox", kNow).verdict, Verdict::Conflict);

  Job t = make_job(Phase::Transaction, false);
  EXPECT_EQ(client_escrow(t, kClient, kHash, "sandbox", kNow).verdict, Verdict::Conflict);
  Job zero = make_job(Phase::Negotiation, false, "0");
  EXPECT_EQ(client_escrow(zero, kClient, kHash, "sandbox", kNow).verdict, Verdict::Conflict);
}

TEST(JobStateMachine, MemoDecisions) {
  Job j = make_job(Phase::Transaction, true);
  PayableDetail pay{*Decimal::parse("3"), "0x" + std::string(40, '1'), "0x" + std::string(40, '2')};
  provider_requirement(j, kProvider, "pay", pay, kNow);
  provider_requirement(j, kProvider, "plain", std::nullopt, kNow);
  j.memos[0].id = 11;
  j.memos[1].id = 12;
  EXPECT_EQ(decide_memo(j, kProvider, 11, true, std::nullopt, kNow).verdict, Verdict::Forbidden);
  EXPECT_EQ(decide_memo(j, kClient, 99, true, std::nullopt, kNow).verdict, Verdict::NotFound);
  EXPECT_EQ(decide_memo(j, kClient, 12, true, std::nullopt, kNow).verdict, Verdict::Conflict);
  EXPECT_EQ(decide_memo(j, kClient, 11, true, std::string("ok"), kNow).verdict, Verdict::Applied);
  EXPECT_EQ(j.memos[0].status, "approved");
  EXPECT_EQ(j.memos[0].decision_reason, "ok");
  EXPECT_EQ(decide_memo(j, kClient, 11, true, std::nullopt, kNow).verdict, Verdict::Unchanged);
  EXPECT_EQ(decide_memo(j, kClient, 11, false, std::nullopt, kNow).verdict, Verdict::Conflict);
}

TEST(JobStateMachine, ExpiryMovesUnfinishedJobsOnly) {
  for (Phase p : kAllPhases) {
    Job j = make_job(p, true);
    Outcome before = expire_if_due(j, j.expired_at - 1);
    EXPECT_EQ(before.verdict, Verdict::Unchanged);
    Outcome at = expire_if_due(j, j.expired_at);
    if (is_terminal(p)) {
      EXPECT_EQ(at.verdict, Verdict::Unchanged);
      EXPECT_EQ(j.phase, p);
    } else {
      EXPECT_EQ(at.verdict, Verdict::Applied);
      EXPECT_EQ(j.phase, Phase::Expired);
      EXPECT_EQ(j.claim_status, "pending");  // escrowed funds become claimable
    }
  }
  Job no_escrow = make_job(Phase::Request, false);
  expire_if_due(no_escrow, no_escrow.expired_at);
  EXPECT_EQ(no_escrow.claim_status, "none");
}

TEST(JobStateMachine, AProviderIsNeverTheEvaluatorOfItsOwnJob) {
  EXPECT_EQ(check_parties(kClient, kProvider, std::nullopt).verdict, Verdict::Applied);
  EXPECT_EQ(check_parties(kClient, kProvider, kEvaluator).verdict, Verdict::Applied);
  EXPECT_EQ(check_parties(kClient, kProvider, kClient).verdict, Verdict::Applied);  // the client may name itself
  Outcome self = check_parties(kClient, kProvider, kProvider);
  EXPECT_EQ(self.verdict, Verdict::Unprocessable);
  EXPECT_EQ(self.message, "evaluatorId must not be the provider: a provider cannot evaluate its own job");
  // Without a named evaluator the client evaluates: a client that is the provider is refused too.
  Outcome own = check_parties(kProvider, kProvider, std::nullopt);
  EXPECT_EQ(own.verdict, Verdict::Unprocessable);
  EXPECT_EQ(own.message, "providerId must not be the client itself");
}

TEST(JobStateMachine, AStoredProviderEvaluatorCannotApproveItsOwnDeliverableTheClientDecides) {
  // A job stored before the rule existed, naming its provider as evaluator.
  for (bool accept : {true, false}) {
    Job j = make_job(Phase::Evaluation, true);
    j.evaluator_id = kProvider;
    EXPECT_EQ(evaluator_of(j), kClient);
    Outcome by_provider = evaluate(j, kProvider, accept, std::nullopt, kNow);
    EXPECT_EQ(by_provider.verdict, Verdict::Forbidden);
    EXPECT_EQ(by_provider.message, "Not authorized to act on this job");
    EXPECT_EQ(j.phase, Phase::Evaluation);
    ASSERT_EQ(evaluate(j, kClient, accept, std::nullopt, kNow).verdict, Verdict::Applied);
    EXPECT_EQ(j.phase, accept ? Phase::Completed : Phase::Rejected);
  }
  Job named = make_job(Phase::Evaluation, true, "10", true);
  EXPECT_EQ(evaluator_of(named), kEvaluator);
  Job unnamed = make_job(Phase::Evaluation, true);
  EXPECT_EQ(evaluator_of(unnamed), kClient);
}

TEST(JobStateMachine, PhaseNames) {
  EXPECT_EQ(phase_name(Phase::Request), "REQUEST");
  EXPECT_EQ(phase_name(Phase::Expired), "EXPIRED");
  EXPECT_EQ(static_cast<int>(Phase::Completed), 4);
  EXPECT_EQ(static_cast<int>(Phase::Rejected), 5);
  EXPECT_EQ(static_cast<int>(Phase::Expired), 6);
}

}  // namespace
}  // namespace al::job
