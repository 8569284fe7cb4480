#include <gtest/gtest.h>

#include "domain/thread.hpp"

namespace al::thread {
namespace {

Service active_service() {
  Service s;
  s.id = "svc_1";
  s.provider_id = "agt_provider";
  s.title = "Landing page copy";
  s.deliverable = "A markdown document";
  s.price_amount = *Decimal::parse("25.00");
  s.price_token = "USDC";
  s.price_network = "base";
  s.timeline = "3 days";
  return s;
}

Terms complete_terms() {
  return Terms{"A markdown document", Budget{*Decimal::parse("25"), "USDC", "base"}, "3 days",
               "Passes the review checklist", "Two rounds of revisions"};
}

Thread opened() {
  Thread t;
  t.id = "thr_1";
  Message first;
  first.id = "msg_1";
  first.body = "Hello";
  EXPECT_EQ(open_thread(t, active_service(), "agt_requester", first, 1000).verdict, Verdict::Applied);
  return t;
}

Message quote(std::optional<Terms> terms, std::string id = "msg_q") {
  Message m;
  m.id = std::move(id);
  m.type = MessageType::Quote;
  m.body = "quote";
  m.terms = std::move(terms);
  return m;
}

TEST(ThreadStateMachine, OpeningStartsNegotiatingWithTheRequestersFirstMessage) {
  Thread t;
  Message first;
  first.id = "msg_1";
  first.body = "Need copy";
  first.type = MessageType::Quote;  // the opening message is always text
  Outcome out = open_thread(t, active_service(), "agt_requester", first, 5000);
  ASSERT_EQ(out.verdict, Verdict::Applied);
  EXPECT_EQ(t.status, Status::Negotiating);
  EXPECT_EQ(t.requester_id, "agt_requester");
  EXPECT_EQ(t.provider_id, "agt_provider");
  EXPECT_EQ(t.message_count, 1);
  EXPECT_EQ(first.seq, 1);
  EXPECT_EQ(first.type, MessageType::Text);
  EXPECT_EQ(first.sender_role, Role::Requester);
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_EQ(out.changes[0].event_type, "thread.opened");
  ASSERT_TRUE(t.service_terms.budget);
  EXPECT_EQ(t.service_terms.budget->amount->to_string(), "25");
}

TEST(ThreadStateMachine, CannotOpenOnOwnOrInactiveService) {
  Thread t;
  Message first;
  EXPECT_EQ(open_thread(t, active_service(), "agt_provider", first, 1).verdict, Verdict::Unprocessable);
  Service inactive = active_service();
  inactive.active = false;
  EXPECT_EQ(open_thread(t, inactive, "agt_requester", first, 1).verdict, Verdict::Conflict);
}

TEST(ThreadStateMachine, NonMemberIsForbiddenBeforeAnyStateCheck) {
  Thread t = opened();
  t.status = Status::Closed;  // a member would get 409 here
  Message m = quote(complete_terms());
  EXPECT_EQ(post_message(t, "agt_other", m, 100, 1).verdict, Verdict::Forbidden);
  EXPECT_EQ(lock_quote(t, "agt_other", 1).verdict, Verdict::Forbidden);
  EXPECT_EQ(close_thread(t, "agt_other", std::nullopt, 1).verdict, Verdict::Forbidden);
  EXPECT_EQ(lock_quote(t, "agt_other", 1).message, kNotMember);
}

TEST(ThreadStateMachine, MissingTermsAreNamedInOrder) {
  Terms partial;
  partial.deliverable = "doc";
  partial.budget = Budget{*Decimal::parse("1"), std::nullopt, "base"};
  partial.timeline = "<TIMELINE>";  // a placeholder left in a prefilled quote counts as missing
  auto missing = missing_terms(partial);
  EXPECT_EQ(missing, (std::vector<std::string>{"budget.token", "timeline", "acceptance_criteria", "revision_boundary"}));
  EXPECT_EQ(missing_terms(std::nullopt).size(), 7u);
  EXPECT_TRUE(missing_terms(complete_terms()).empty());
  EXPECT_TRUE(is_placeholder("<ACCEPTANCE_CRITERIA>"));
  EXPECT_FALSE(is_placeholder("<not a placeholder>"));
}

TEST(ThreadStateMachine, LockNeedsTheProviderAndACompleteLatestProviderQuote) {
  Thread t = opened();
  Outcome none = lock_quote(t, "agt_provider", 2);
  EXPECT_EQ(none.verdict, Verdict::Unprocessable);
  EXPECT_EQ(none.code, kLockNoQuote);
  EXPECT_EQ(none.message, "No quote to lock: post a quote message with terms first");
  EXPECT_EQ(none.missing.size(), 7u);

  Terms partial = complete_terms();
  partial.revision_boundary.reset();
  Message q1 = quote(partial, "msg_q1");
  ASSERT_EQ(post_message(t, "agt_provider", q1, 100, 3).verdict, Verdict::Applied);
  Outcome incomplete = lock_quote(t, "agt_provider", 4);
  EXPECT_EQ(incomplete.verdict, Verdict::Unprocessable);
  EXPECT_EQ(incomplete.code, kLockMissingTerms);
  EXPECT_EQ(incomplete.missing, std::vector<std::string>{"revision_boundary"});
  EXPECT_NE(incomplete.message.find("revision_boundary"), std::string::npos);

  // A complete quote from the requester does not make the provider's incomplete one lockable.
  Message counter = quote(complete_terms(), "msg_counter");
  ASSERT_EQ(post_message(t, "agt_requester", counter, 100, 5).verdict, Verdict::Applied);
  EXPECT_EQ(lock_quote(t, "agt_requester", 6).verdict, Verdict::Forbidden);
  Outcome still = lock_quote(t, "agt_provider", 6);
  EXPECT_EQ(still.verdict, Verdict::Unprocessable);
  EXPECT_EQ(still.code, kLockMissingTerms);
  EXPECT_EQ(t.status, Status::Negotiating);

  Message q2 = quote(complete_terms(), "msg_q2");
  ASSERT_EQ(post_message(t, "agt_provider", q2, 100, 7).verdict, Verdict::Applied);
  Outcome locked = lock_quote(t, "agt_provider", 8);
  ASSERT_EQ(locked.verdict, Verdict::Applied);
  EXPECT_EQ(t.status, Status::QuoteLocked);
  EXPECT_EQ(t.locked_quote_message_id, "msg_q2");
  EXPECT_EQ(t.locked_quote_seq, q2.seq);
  EXPECT_EQ(t.quote_locked_at, 8);
  EXPECT_EQ(locked.changes.at(0).event_type, "thread.quote_locked");
  // Locking again changes nothing.
  EXPECT_EQ(lock_quote(t, "agt_provider", 9).verdict, Verdict::Unchanged);
}

TEST(ThreadStateMachine, TheRequestersQuoteIsACounterProposalThatIsNeverLocked) {
  Thread t = opened();
  Message counter = quote(complete_terms(), "msg_counter");
  ASSERT_EQ(post_message(t, "agt_requester", counter, 100, 2).verdict, Verdict::Applied);
  EXPECT_EQ(counter.sender_role, Role::Requester);
  EXPECT_EQ(t.latest_quote_message_id, "msg_counter");
  EXPECT_EQ(t.latest_quote_seq, 2);
  EXPECT_FALSE(t.provider_quote_message_id);
  EXPECT_TRUE(latest_quote_is_requesters(t));

  // Without a provider quote there is nothing to lock, and the refusal says why.
  Outcome none = lock_quote(t, "agt_provider", 3);
  EXPECT_EQ(none.verdict, Verdict::Unprocessable);
  EXPECT_EQ(none.code, kLockNoQuote);
  EXPECT_NE(none.message.find("requester's quote (seq 2) is a counter-proposal"), std::string::npos) << none.message;
  EXPECT_EQ(none.missing.size(), 7u);
  // Naming it does not help either.
  Outcome named = lock_quote(t, "agt_provider", 3, 2, counter);
  EXPECT_EQ(named.verdict, Verdict::Unprocessable);
  EXPECT_EQ(named.code, kLockNotProviderQuote);
  EXPECT_NE(named.message.find("Message seq 2 is the requester's quote"), std::string::npos) << named.message;
  EXPECT_TRUE(named.missing.empty());
  EXPECT_EQ(t.status, Status::Negotiating);
  EXPECT_FALSE(t.locked_terms);

  // The provider answers with its own quote (here: the requester's terms), which can be locked.
  Message answer = quote(complete_terms(), "msg_answer");
  ASSERT_EQ(post_message(t, "agt_provider", answer, 100, 4).verdict, Verdict::Applied);
  EXPECT_FALSE(latest_quote_is_requesters(t));
  ASSERT_EQ(lock_quote(t, "agt_provider", 5).verdict, Verdict::Applied);
  EXPECT_EQ(t.locked_quote_message_id, "msg_answer");
  EXPECT_EQ(t.locked_quote_seq, 3);
}

TEST(ThreadStateMachine, WithoutANameTheLockTakesTheProvidersLatestQuoteNotALaterCounter) {
  Thread t = opened();
  Message mine = quote(complete_terms(), "msg_mine");
  ASSERT_EQ(post_message(t, "agt_provider", mine, 100, 2).verdict, Verdict::Applied);
  Terms cheaper = complete_terms();
  cheaper.budget->amount = *Decimal::parse("10");
  Message counter = quote(cheaper, "msg_counter");
  ASSERT_EQ(post_message(t, "agt_requester", counter, 100, 3).verdict, Verdict::Applied);
  EXPECT_TRUE(latest_quote_is_requesters(t));
  EXPECT_EQ(t.provider_quote_message_id, "msg_mine");
  EXPECT_EQ(t.provider_quote_seq, 2);
  ASSERT_EQ(lock_quote(t, "agt_provider", 4).verdict, Verdict::Applied);
  EXPECT_EQ(t.locked_quote_message_id, "msg_mine");
  EXPECT_EQ(t.locked_quote_seq, 2);
  EXPECT_EQ(t.locked_terms->budget->amount->to_string(), "25");
}

TEST(ThreadStateMachine, LockNamesTheProvidersQuoteByItsSeq) {
  Thread t = opened();
  Message early = quote(complete_terms(), "msg_early");
  ASSERT_EQ(post_message(t, "agt_provider", early, 100, 2).verdict, Verdict::Applied);
  Terms partial = complete_terms();
  partial.timeline.reset();
  Message later = quote(partial, "msg_later");
  ASSERT_EQ(post_message(t, "agt_provider", later, 100, 3).verdict, Verdict::Applied);
  Message note;
  note.id = "msg_note";
  note.body = "see above";
  ASSERT_EQ(post_message(t, "agt_requester", note, 100, 4).verdict, Verdict::Applied);

  // The latest provider quote is incomplete; the earlier one can be named.
  EXPECT_EQ(lock_quote(t, "agt_provider", 5).code, kLockMissingTerms);
  Outcome missing = lock_quote(t, "agt_provider", 5, 3, later);
  EXPECT_EQ(missing.code, kLockMissingTerms);
  EXPECT_EQ(missing.missing, std::vector<std::string>{"timeline"});
  Outcome not_found = lock_quote(t, "agt_provider", 5, 99, std::nullopt);
  EXPECT_EQ(not_found.verdict, Verdict::Unprocessable);
  EXPECT_EQ(not_found.code, kLockMessageNotFound);
  EXPECT_EQ(not_found.message, "No message with seq 99 in this thread");
  Outcome text = lock_quote(t, "agt_provider", 5, 4, note);
  EXPECT_EQ(text.verdict, Verdict::Unprocessable);
  EXPECT_EQ(text.code, kLockNotAQuote);
  EXPECT_EQ(text.message, "Message seq 4 is a text message, not a quote: only a quote can be locked");
  EXPECT_EQ(t.status, Status::Negotiating);

  Outcome locked = lock_quote(t, "agt_provider", 6, 2, early);
  ASSERT_EQ(locked.verdict, Verdict::Applied);
  EXPECT_EQ(t.locked_quote_message_id, "msg_early");
  EXPECT_EQ(t.locked_quote_seq, 2);
  EXPECT_EQ(t.locked_terms->timeline, "3 days");
  // Again with the same seq (or none): unchanged; another seq: the lock cannot be replaced.
  EXPECT_EQ(lock_quote(t, "agt_provider", 7, 2, early).verdict, Verdict::Unchanged);
  EXPECT_EQ(lock_quote(t, "agt_provider", 7).verdict, Verdict::Unchanged);
  Outcome other = lock_quote(t, "agt_provider", 7, 3, later);
  EXPECT_EQ(other.verdict, Verdict::Conflict);
  EXPECT_EQ(other.message, "Thread is quote_locked: the quote at seq 2 is already locked");
  EXPECT_EQ(t.locked_quote_message_id, "msg_early");
}

TEST(ThreadStateMachine, MessagesFollowTheStatus) {
  Thread t = opened();
  Message q = quote(complete_terms());
  ASSERT_EQ(post_message(t, "agt_provider", q, 100, 2).verdict, Verdict::Applied);
  EXPECT_EQ(q.seq, 2);
  EXPECT_EQ(q.sender_role, Role::Provider);
  ASSERT_EQ(lock_quote(t, "agt_provider", 3).verdict, Verdict::Applied);
  Message again = quote(complete_terms());
  EXPECT_EQ(post_message(t, "agt_provider", again, 100, 4).verdict, Verdict::Conflict);
  Message scope;
  scope.type = MessageType::Scope;
  EXPECT_EQ(post_message(t, "agt_requester", scope, 100, 4).verdict, Verdict::Conflict);
  Message text;
  EXPECT_EQ(post_message(t, "agt_requester", text, 100, 4).verdict, Verdict::Applied);
  ASSERT_EQ(close_thread(t, "agt_requester", std::nullopt, 5).verdict, Verdict::Applied);
  EXPECT_EQ(t.closed_reason, "closed_by_requester");
  Message late;
  EXPECT_EQ(post_message(t, "agt_provider", late, 100, 6).verdict, Verdict::Conflict);
  EXPECT_EQ(close_thread(t, "agt_provider", std::nullopt, 7).verdict, Verdict::Unchanged);
}

TEST(ThreadStateMachine, MessageLimitIsEnforced) {
  Thread t = opened();
  Message m;
  EXPECT_EQ(post_message(t, "agt_requester", m, 2, 2).verdict, Verdict::Applied);
  Message over;
  Outcome out = post_message(t, "agt_requester", over, 2, 3);
  EXPECT_EQ(out.verdict, Verdict::Conflict);
  EXPECT_EQ(t.message_count, 2);
}

Thread locked_thread() {
  Thread t = opened();
  Message q = quote(complete_terms());
  EXPECT_EQ(post_message(t, "agt_provider", q, 100, 2).verdict, Verdict::Applied);
  EXPECT_EQ(lock_quote(t, "agt_provider", 3).verdict, Verdict::Applied);
  return t;
}

TEST(ThreadFollowsOffers, CreatedThenRejectedReturnsToNegotiating) {
  Thread t = locked_thread();
  Outcome created = follow_offer(t, "offer.created", "off_1", 1, 10);
  ASSERT_EQ(created.verdict, Verdict::Applied);
  EXPECT_EQ(t.status, Status::Offered);
  EXPECT_EQ(t.offer->status, "open");
  EXPECT_EQ(created.changes.at(0).event_type, "thread.status_changed");
  // Closing while an offer is in progress is refused.
  EXPECT_EQ(close_thread(t, "agt_requester", std::nullopt, 11).verdict, Verdict::Conflict);
  Outcome rejected = follow_offer(t, "offer.rejected", "off_1", 2, 12);
  ASSERT_EQ(rejected.verdict, Verdict::Applied);
  EXPECT_EQ(t.status, Status::Negotiating);
  EXPECT_EQ(t.offer->status, "rejected");
  EXPECT_EQ(rejected.changes.at(0).reason, "offer_rejected");
  // The same quote can be locked again and a new offer made.
  EXPECT_EQ(lock_quote(t, "agt_provider", 13).verdict, Verdict::Applied);
  EXPECT_EQ(follow_offer(t, "offer.created", "off_2", 1, 14).verdict, Verdict::Applied);
  EXPECT_EQ(t.offer->id, "off_2");
  // A late event about the old offer changes nothing.
  EXPECT_EQ(follow_offer(t, "offer.expired", "off_1", 3, 15).verdict, Verdict::Unchanged);
  EXPECT_EQ(t.status, Status::Offered);
}

TEST(ThreadFollowsOffers, RedeliveredAndStaleEventsChangeNothing) {
  Thread t = locked_thread();
  ASSERT_EQ(follow_offer(t, "offer.created", "off_1", 1, 10).verdict, Verdict::Applied);
  EXPECT_EQ(follow_offer(t, "offer.created", "off_1", 1, 11).verdict, Verdict::Unchanged);
  ASSERT_EQ(follow_offer(t, "offer.accepted", "off_1", 2, 12).verdict, Verdict::Applied);
  EXPECT_EQ(follow_offer(t, "offer.accepted", "off_1", 2, 13).verdict, Verdict::Unchanged);
  EXPECT_EQ(follow_offer(t, "offer.rejected", "off_1", 2, 13).verdict, Verdict::Unchanged);  // not newer
  EXPECT_EQ(t.offer->status, "accepted");
  EXPECT_EQ(t.status, Status::Offered);
  // Another offer cannot displace a live one.
  EXPECT_EQ(follow_offer(t, "offer.created", "off_9", 1, 14).verdict, Verdict::Unchanged);
  EXPECT_EQ(follow_offer(t, "offer.something_new", "off_1", 3, 15).verdict, Verdict::Unchanged);
}

TEST(ThreadFollowsOffers, ExpiredOfferMakesTheOfferInactive) {
  Thread t = locked_thread();
  ASSERT_EQ(follow_offer(t, "offer.created", "off_1", 1, 10).verdict, Verdict::Applied);
  ASSERT_EQ(follow_offer(t, "offer.expired", "off_1", 2, 11).verdict, Verdict::Applied);
  EXPECT_EQ(t.offer->status, "inactive");
  EXPECT_EQ(t.status, Status::Negotiating);
}

TEST(ThreadFollowsContracts, ContractEndClosesTheThread) {
  Thread t = locked_thread();
  ASSERT_EQ(follow_offer(t, "offer.created", "off_1", 1, 10).verdict, Verdict::Applied);
  ASSERT_EQ(follow_offer(t, "offer.accepted", "off_1", 2, 11).verdict, Verdict::Applied);
  Outcome created = follow_contract(t, "contract.created", "ctr_1", "awaiting_payment", 1, 12);
  ASSERT_EQ(created.verdict, Verdict::Applied);
  EXPECT_TRUE(created.changes.empty());  // the thread stays offered
  EXPECT_EQ(t.contract->status, "awaiting_payment");
  EXPECT_EQ(follow_contract(t, "contract.created", "ctr_1", "awaiting_payment", 1, 13).verdict, Verdict::Unchanged);
  ASSERT_EQ(follow_contract(t, "contract.funded", "ctr_1", "funded", 2, 14).verdict, Verdict::Applied);
  Outcome done = follow_contract(t, "contract.completed", "ctr_1", "completed", 3, 15);
  ASSERT_EQ(done.verdict, Verdict::Applied);
  EXPECT_EQ(t.status, Status::Closed);
  EXPECT_EQ(t.closed_reason, "contract_completed");
  ASSERT_EQ(done.changes.size(), 1u);
  EXPECT_EQ(done.changes[0].event_type, "thread.closed");
  EXPECT_EQ(done.changes[0].from, Status::Offered);
}

TEST(ThreadFollowsContracts, ContractBeforeOfferStillMarksTheThreadOffered) {
  Thread t = locked_thread();
  Outcome out = follow_contract(t, "contract.created", "ctr_1", "awaiting_payment", 1, 10);
  ASSERT_EQ(out.verdict, Verdict::Applied);
  EXPECT_EQ(t.status, Status::Offered);
  EXPECT_EQ(follow_contract(t, "contract.funded", "ctr_other", "funded", 2, 11).verdict, Verdict::Unchanged);
}

}  // namespace
}  // namespace al::thread
