#include <gtest/gtest.h>

#include "domain/offer.hpp"
#include "ops/feedback.hpp"
#include "ops/handoff.hpp"
#include "service/offer_service.hpp"

namespace al::offer {
namespace {
namespace bj = boost::json;

const bj::object kTerms = {{"deliverable", "doc"},
                           {"budget", bj::object{{"amount", "30"}, {"token", "USDC"}, {"network", "base"}}},
                           {"timeline", "2 days"},
                           {"acceptance_criteria", "ok"},
                           {"revision_boundary", "two"}};

bj::object thread_event(std::string status, bool locked) {
  bj::object thread{{"id", "thr_1"},         {"service_id", "svc_1"}, {"requester_id", "agt_r"},
                    {"provider_id", "agt_p"}, {"status", status},     {"locked_terms", locked ? bj::value(kTerms) : nullptr}};
  return {{"thread", thread}, {"quote_message_id", "msg_q"}};
}

ThreadView locked_view() {
  ThreadView v;
  EXPECT_TRUE(apply_thread_event(v, "thread.quote_locked", thread_event("quote_locked", true), 3));
  return v;
}

Offer open_offer(Millis now = 1000, Millis ttl = 500) {
  Offer o;
  o.id = "off_1";
  EXPECT_EQ(offer_from(locked_view(), o, now, ttl).verdict, Verdict::Applied);
  return o;
}

TEST(ThreadProjection, FollowsTheNewestThreadEventOnly) {
  ThreadView v = locked_view();
  EXPECT_EQ(v.status, "quote_locked");
  EXPECT_EQ(v.quote_message_id, "msg_q");
  ASSERT_TRUE(v.locked_terms);
  EXPECT_FALSE(apply_thread_event(v, "thread.quote_locked", thread_event("quote_locked", true), 3));  // redelivered
  EXPECT_FALSE(apply_thread_event(v, "thread.message_posted", thread_event("negotiating", false), 2));  // stale
  EXPECT_EQ(v.status, "quote_locked");
  EXPECT_TRUE(apply_thread_event(v, "thread.status_changed", thread_event("offered", true), 4));
  EXPECT_EQ(v.status, "offered");
}

TEST(CreateOffer, OnlyTheRequesterOfALockedThreadWithoutALiveOffer) {
  ThreadView v = locked_view();
  EXPECT_EQ(check_create(std::nullopt, "agt_r", std::nullopt).verdict, Verdict::NotFound);
  EXPECT_EQ(check_create(v, "agt_x", std::nullopt).message, kNotThreadMember);
  Outcome provider = check_create(v, "agt_p", std::nullopt);
  EXPECT_EQ(provider.verdict, Verdict::Forbidden);
  EXPECT_EQ(provider.message, "Only the requester can create the offer");
  EXPECT_EQ(check_create(v, "agt_r", std::nullopt).verdict, Verdict::Applied);
  EXPECT_EQ(check_create(v, "agt_r", open_offer()).code, "offer_exists");
  ThreadView negotiating = v;
  negotiating.status = "negotiating";
  EXPECT_EQ(check_create(negotiating, "agt_r", std::nullopt).code, "quote_not_locked");
}

TEST(CreateOffer, TheOfferCarriesTheLockedTerms) {
  Offer o = open_offer(1000, 500);
  EXPECT_EQ(o.status, OfferStatus::Open);
  EXPECT_EQ(o.amount.to_string(), "30");
  EXPECT_EQ(o.token, "USDC");
  EXPECT_EQ(o.network, "base");
  EXPECT_EQ(o.terms, kTerms);
  EXPECT_EQ(o.expires_at, 1500);
  EXPECT_EQ(o.requester_id, "agt_r");
  ThreadView broken = locked_view();
  broken.locked_terms->erase("budget");
  Offer none;
  EXPECT_EQ(offer_from(broken, none, 1, 1).verdict, Verdict::Conflict);
}

TEST(Respond, ProviderDecidesOnceAndRepeatsAreUnchanged) {
  Offer o = open_offer();
  EXPECT_EQ(respond(o, "agt_x", true, std::nullopt, 1100).message, kNotOfferMember);
  EXPECT_EQ(respond(o, "agt_r", true, std::nullopt, 1100).message, "Only the provider can respond to this offer");
  Outcome accepted = respond(o, "agt_p", true, std::nullopt, 1100);
  ASSERT_EQ(accepted.verdict, Verdict::Applied);
  EXPECT_EQ(accepted.events, std::vector<std::string>{"offer.accepted"});
  EXPECT_EQ(o.status, OfferStatus::Accepted);
  EXPECT_EQ(respond(o, "agt_p", true, std::nullopt, 1200).verdict, Verdict::Unchanged);
  EXPECT_EQ(respond(o, "agt_p", false, std::nullopt, 1200).code, "offer_decided");
}

TEST(Respond, AnExpiredOfferBecomesInactiveAndRefusesTheDecision) {
  Offer o = open_offer(1000, 500);
  Outcome late = respond(o, "agt_p", true, std::nullopt, 1500);
  EXPECT_EQ(late.verdict, Verdict::Conflict);
  EXPECT_EQ(late.code, "offer_expired");
  EXPECT_EQ(late.events, std::vector<std::string>{"offer.expired"});  // kept although refused
  EXPECT_EQ(o.status, OfferStatus::Inactive);
  Offer swept = open_offer(1000, 500);
  EXPECT_EQ(expire_if_due(swept, 1499).verdict, Verdict::Unchanged);
  EXPECT_EQ(expire_if_due(swept, 1500).events, std::vector<std::string>{"offer.expired"});
}

TEST(Contract, AcceptedOfferMakesAContractAwaitingPayment) {
  Offer o = open_offer();
  ASSERT_EQ(respond(o, "agt_p", true, std::nullopt, 1100).verdict, Verdict::Applied);
  Contract c = contract_for(o, "ctr_1", PaymentTerms{"0xabc", 3, "sandbox"}, 1100);
  EXPECT_EQ(c.status, "awaiting_payment");
  EXPECT_EQ(c.buyer_id, "agt_r");
  EXPECT_EQ(c.amount.to_string(), "30");
  EXPECT_EQ(c.pay_to, "0xabc");
  EXPECT_EQ(c.required_confirmations, 3);
}

TEST(PerNetwork, ParsesNetworkValuesWithADefault) {
  auto p = PerNetwork::parse("base:3,ethereum:12,*:1");
  EXPECT_EQ(p.get("base"), "3");
  EXPECT_EQ(p.get("ethereum"), "12");
  EXPECT_EQ(p.get("polygon"), "1");
  EXPECT_FALSE(PerNetwork::parse("base:3").get("polygon"));
  EXPECT_THROW(PerNetwork::parse("base"), ConfigError);
  EXPECT_THROW(PerNetwork::parse(":3"), ConfigError);
}

TEST(TokenRegistry, ResolvesSymbolsPerNetworkAndAcceptsAddresses) {
  auto r = TokenRegistry::parse("base:USDC=0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913,ethereum:usdc=0xA0b86991c6218b36c1d19D4a2E9Eb0cE3606eB48");
  EXPECT_EQ(r.resolve("base", "usdc"), "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");
  EXPECT_EQ(r.resolve("ethereum", "USDC"), "0xA0b86991c6218b36c1d19D4a2E9Eb0cE3606eB48");
  EXPECT_FALSE(r.resolve("polygon", "USDC"));
  EXPECT_FALSE(r.resolve("base", "DAI"));
  std::string address = "0x" + std::string(40, 'b');
  EXPECT_EQ(r.resolve("anything", address), address);
  EXPECT_THROW(TokenRegistry::parse("base:USDC=0x1234"), ConfigError);
  EXPECT_THROW(TokenRegistry::parse("USDC=0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"), ConfigError);
}

TEST(Contract, FollowsItsJobToTheEndOnce) {
  Offer o = open_offer();
  Contract c = contract_for(o, "ctr_1", PaymentTerms{"0xabc", 1, "sandbox"}, 1100);
  EXPECT_EQ(c.deliverable, "doc");
  EXPECT_EQ(follow_job_phase(c, 2, 1200).verdict, Verdict::Unchanged);  // TRANSACTION: not an end
  Outcome done = follow_job_phase(c, 4, 1300);
  EXPECT_EQ(done.events, std::vector<std::string>{"contract.completed"});
  EXPECT_EQ(c.status, "completed");
  EXPECT_EQ(follow_job_phase(c, 5, 1400).verdict, Verdict::Unchanged);  // ended already
  Contract rejected = contract_for(o, "ctr_2", PaymentTerms{"0xabc", 1, "sandbox"}, 1100);
  EXPECT_EQ(follow_job_phase(rejected, 5, 1500).events, std::vector<std::string>{"contract.refunded"});
  EXPECT_EQ(rejected.status, "refund_pending");
  Contract expired = contract_for(o, "ctr_3", PaymentTerms{"0xabc", 1, "sandbox"}, 1100);
  EXPECT_EQ(follow_job_phase(expired, 6, 1500).events, std::vector<std::string>{"contract.expired"});
}

PaymentObservation seen_in(const std::string& status, int confirmations, long long block, const std::string& hash,
                           bool reorged = false) {
  return PaymentObservation{status, confirmations, block, hash, reorged, "evm-jsonrpc"};
}

TEST(Contract, PaymentFundsOnlyWithEnoughConfirmations) {
  Offer o = open_offer();
  Contract c = contract_for(o, "ctr_1", PaymentTerms{"0xabc", 3, "sandbox"}, 1100);
  Outcome seen = apply_payment(c, "0xhash", seen_in("pending", 1, 7, "0xb7"), 1200);
  EXPECT_EQ(seen.events, std::vector<std::string>{"contract.payment_submitted"});
  EXPECT_EQ(c.status, "payment_submitted");
  EXPECT_EQ(c.payment_block_number, 7);
  EXPECT_EQ(c.payment_block_hash, "0xb7");
  EXPECT_EQ(c.payment_seen_at, 1200);
  EXPECT_EQ(apply_payment(c, "0xhash", seen_in("pending", 2, 7, "0xb7"), 1300).verdict, Verdict::Unchanged);
  EXPECT_EQ(c.confirmations, 2);
  EXPECT_EQ(apply_payment(c, "0xhash", seen_in("verified", 3, 7, "0xb7"), 1400).events,
            std::vector<std::string>{"contract.funded"});
  EXPECT_EQ(c.status, "funded");
  EXPECT_EQ(check_payment(c, "agt_r", "0xhash").verdict, Verdict::Unchanged);
  EXPECT_EQ(check_payment(c, "agt_r", "0xother").code, "contract_not_awaiting_payment");
  EXPECT_EQ(check_payment(c, "agt_p", "0xhash").message, "Only the buyer can submit the payment");
  // A funded contract is final: later looks change nothing.
  EXPECT_EQ(observe_payment(c, seen_in("not_found", 0, 0, ""), 1500, 1000).verdict, Verdict::Unchanged);
  EXPECT_EQ(c.status, "funded");
}

TEST(Contract, AReorganizationThatMovesThePaymentIsAnnouncedAndCountedAgain) {
  Offer o = open_offer();
  Contract c = contract_for(o, "ctr_1", PaymentTerms{"0xabc", 3, "evm-jsonrpc"}, 1100);
  apply_payment(c, "0xhash", seen_in("pending", 2, 7, "0xb7"), 1200);
  // Re-mined in another block at the same height: the confirmations start again from there.
  Outcome moved = observe_payment(c, seen_in("pending", 1, 7, "0xc7", true), 1300, 60'000);
  EXPECT_EQ(moved.events, std::vector<std::string>{"contract.payment_reorged"});
  EXPECT_EQ(c.payment_block_hash, "0xc7");
  EXPECT_EQ(c.confirmations, 1);
  EXPECT_EQ(c.status, "payment_submitted");
  Outcome funded = observe_payment(c, seen_in("verified", 3, 7, "0xc7"), 1400, 60'000);
  EXPECT_EQ(funded.events, std::vector<std::string>{"contract.funded"});
}

TEST(Contract, ADroppedPaymentWaitsToComeBackThenIsTurnedDown) {
  Offer o = open_offer();
  Contract c = contract_for(o, "ctr_1", PaymentTerms{"0xabc", 3, "evm-jsonrpc"}, 1100);
  apply_payment(c, "0xhash", seen_in("pending", 1, 7, "0xb7"), 1200);
  // The block that held it is gone, and so is the transaction.
  Outcome dropped = observe_payment(c, seen_in("not_found", 0, 0, "", true), 1300, 60'000);
  EXPECT_EQ(dropped.events, std::vector<std::string>{"contract.payment_reorged"});
  EXPECT_EQ(c.status, "payment_submitted");
  EXPECT_EQ(c.confirmations, 0);
  EXPECT_FALSE(c.payment_block_hash);
  // Still missing, but not for long: nothing happens (it may be mined again).
  EXPECT_EQ(observe_payment(c, seen_in("not_found", 0, 0, ""), 1200 + 59'999, 60'000).verdict, Verdict::Unchanged);
  EXPECT_EQ(observe_payment(c, seen_in("unavailable", 0, 0, ""), 1200 + 90'000, 60'000).verdict, Verdict::Unchanged);
  // Missing since it was last seen for the whole give-up time: turned down, the contract can be paid again.
  Outcome gone = observe_payment(c, seen_in("not_found", 0, 0, ""), 1200 + 60'000, 60'000);
  EXPECT_EQ(gone.events, std::vector<std::string>{"contract.payment_rejected"});
  EXPECT_EQ(c.status, "awaiting_payment");
  EXPECT_FALSE(c.tx_hash);
  EXPECT_EQ(c.rejected_tx_hash, "0xhash");
  EXPECT_EQ(c.rejected_code, "not_found");
  EXPECT_EQ(check_payment(c, "agt_r", "0xhash").verdict, Verdict::Applied);
}

TEST(Contract, APaymentReMinedWrongIsTurnedDownAtOnce) {
  for (std::string status : {"failed", "wrong_token", "wrong_recipient", "underpaid", "wrong_network"}) {
    Offer o = open_offer();
    Contract c = contract_for(o, "ctr_1", PaymentTerms{"0xabc", 3, "evm-jsonrpc"}, 1100);
    apply_payment(c, "0xhash", seen_in("pending", 0, 0, ""), 1200);  // seen in the mempool only
    Outcome out = observe_payment(c, seen_in(status, 0, 9, "0xb9"), 1300, 60'000);
    EXPECT_EQ(out.events, std::vector<std::string>{"contract.payment_rejected"}) << status;
    EXPECT_EQ(c.status, "awaiting_payment") << status;
    EXPECT_EQ(c.rejected_code, status);
    EXPECT_FALSE(c.payment_submitted_at);
  }
}

TEST(Ops, LeadingDropoffIsTheStepAfterTheLargestDrop) {
  OpsCounts n;
  EXPECT_EQ(leading_dropoff(n), "discovery");  // nobody opened a thread
  n.window_threads_opened = 10;
  n.window_quotes_locked = 8;
  n.window_offers_created = 2;
  n.window_offers_accepted = 2;
  n.window_payments_submitted = 1;
  n.window_payments_confirmed = 1;
  EXPECT_EQ(leading_dropoff(n), "offer_creation");
  n.window_quotes_locked = 3;
  EXPECT_EQ(leading_dropoff(n), "quote_lock");
  OpsCounts flat;
  flat.window_threads_opened = flat.window_quotes_locked = flat.window_offers_created = flat.window_offers_accepted =
      flat.window_payments_submitted = flat.window_payments_confirmed = 4;
  EXPECT_EQ(leading_dropoff(flat), "none");
}

TEST(Ops, WindowsAreHoursOrDaysUpToThirtyDays) {
  EXPECT_EQ(parse_window("24h"), 86'400'000);
  EXPECT_EQ(parse_window("7d"), 7 * 86'400'000LL);
  EXPECT_EQ(parse_window("1h"), 3'600'000);
  EXPECT_FALSE(parse_window("0h"));
  EXPECT_FALSE(parse_window("31d"));
  EXPECT_FALSE(parse_window("24"));
  EXPECT_FALSE(parse_window("-1h"));
  EXPECT_FALSE(parse_window("99999h"));
}

TEST(Ops, HandoffFiguresComeFromTheCounts) {
  OpsCounts n;
  n.threads_total = 5;
  n.threads_quote_locked = 2;
  n.threads_offered = 1;
  n.offers_total = 3;
  n.offers_open = 1;
  n.offers_accepted = 1;
  n.offers_rejected = 1;
  n.window_threads_opened = 5;
  n.window_quotes_locked = 4;
  n.window_offers_created = 1;
  auto doc = quote_to_offer_handoff(n, "24h", "https://example.test", 0);
  EXPECT_EQ(doc.at("observed").at("quote_to_offer_gap").as_int64(), 3);
  EXPECT_EQ(doc.at("observed").at("current_quote_to_offer_gap").as_int64(), 2);
  EXPECT_EQ(doc.at("current_quote_to_offer_snapshot").at("offer_summary").at("thread_linked_offers").as_int64(), 3);
  EXPECT_EQ(doc.at("action_packet").at("endpoints").at("blocker_feedback"), "https://example.test/api/public/feedback");
  EXPECT_EQ(doc.at("status"), "current_quote_locked_thread_waiting_for_offer_creation_or_blocker_feedback");
  EXPECT_EQ(doc.at("refreshed_at"), "1970-01-01T00:00:00.000Z");
}

TEST(Feedback, SecretsAreRedactedAndNamed) {
  std::string text =
      "my key alk.k1.agt_abcdefghijklmnopqrstuvwxyz.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-xy and wallet "
      "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318 password=hunter22 bearer "
      "abcdefghijklmnopqrstuvwxyz012345";
  auto kinds = redact_secrets(text);
  EXPECT_EQ(text.find("alk.k1"), std::string::npos) << text;
  EXPECT_EQ(text.find("4c0883a6"), std::string::npos) << text;
  EXPECT_EQ(text.find("hunter22"), std::string::npos) << text;
  EXPECT_EQ(text.find("abcdefghijklmnopqrstuvwxyz012345"), std::string::npos) << text;
  EXPECT_NE(text.find("[redacted:api_key]"), std::string::npos) << text;
  EXPECT_NE(text.find("[redacted:private_key]"), std::string::npos) << text;
  EXPECT_EQ(kinds, (std::vector<std::string>{"api_key", "private_key", "secret"}));
  std::string pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI...\n-----END EC PRIVATE KEY----- thanks";
  EXPECT_EQ(redact_secrets(pem), std::vector<std::string>{"private_key"});
  EXPECT_EQ(pem, "[redacted:private_key] thanks");
  std::string clean = "Quote-to-offer blocked because reason=thread_lookup. No secrets included.";
  EXPECT_TRUE(redact_secrets(clean).empty());
  EXPECT_EQ(clean, "Quote-to-offer blocked because reason=thread_lookup. No secrets included.");
}

TEST(Feedback, SeedPhrasesAreRedactedHoweverTheyAreWritten) {
  const std::string kBip39Vector = "legal winner thank year wave sausage worth useful legal winner thank yellow";
  std::string bare = "my wallet: " + kBip39Vector + " thanks";
  EXPECT_EQ(redact_secrets(bare), std::vector<std::string>{"seed_phrase"});
  EXPECT_EQ(bare, "my wallet: [redacted:seed_phrase] thanks");
  // List words right after it belong to the run: redacted with it.
  std::string longer = kBip39Vector + " please help me";
  EXPECT_TRUE(redact_seed_phrases(longer));
  EXPECT_EQ(longer, "[redacted:seed_phrase] me");

  std::string numbered =
      "Restore words 1. Legal 2. WINNER 3. thank 4. year 5. wave 6. sausage 7. worth 8. useful 9. legal 10. winner "
      "11. thank 12. yellow. Then it failed.";
  EXPECT_EQ(redact_secrets(numbered), std::vector<std::string>{"seed_phrase"});
  EXPECT_EQ(numbered, "Restore words 1. [redacted:seed_phrase]. Then it failed.");

  std::string commas = "abandon, abandon, abandon, abandon, abandon, abandon, abandon, abandon, abandon, abandon, "
                       "abandon, about";
  EXPECT_TRUE(redact_seed_phrases(commas));
  EXPECT_EQ(commas, "[redacted:seed_phrase]");

  // 24 words over lines and in parenthesised numbering are one phrase.
  std::string lines = "1) zoo\n2) zone\n3) zero\n4) zebra\n5) youth\n6) young\n7) you\n8) yellow\n9) year\n10) yard\n"
                      "11) wrong\n12) write\n13) wrist\n14) wrestle\n15) wreck\n16) wrap\n17) worth\n18) worry\n"
                      "19) world\n20) work\n21) word\n22) wool\n23) wood\n24) wonder\ndone";
  EXPECT_TRUE(redact_seed_phrases(lines));
  EXPECT_EQ(lines, "1) [redacted:seed_phrase]\ndone");

  // Introduced as one: still named a seed phrase (and the introduction a secret).
  std::string introduced = "seed phrase: " + kBip39Vector;
  EXPECT_EQ(redact_secrets(introduced), (std::vector<std::string>{"seed_phrase", "secret"}));
  EXPECT_EQ(introduced.find("sausage"), std::string::npos) << introduced;
}

TEST(Feedback, OrdinaryProseFullOfWordlistWordsIsNotRedacted) {
  // "able", "about", "also", "actual", "budget", "above", "please", "review", "draft", "again" are
  // all BIP-39 words; none of these has 12 of them in a row.
  for (std::string prose : {
           std::string("I am able to start about noon; also, the actual budget is above what we agreed, so please "
                       "review the draft again."),
           std::string("Please review the final draft again before you approve it: the budget, the timeline and the "
                       "scope all match the quote we agreed about last week, so it is ready to lock."),
           // 11 list words in a row ("you can add one more small feature later, like this example").
           std::string("You can add one more small feature later, like this example? Thanks."),
           // 11 + a word off the list + 11: two runs of 11, not one of 23.
           std::string("legal winner thank year wave sausage worth useful legal winner thank and legal winner thank "
                       "year wave sausage worth useful legal winner thank"),
           // Twelve list words glued by something other than a separator are not a phrase.
           std::string("legal-winner-thank-year-wave-sausage-worth-useful-legal-winner-thank-yellow"),
       }) {
    std::string text = prose;
    EXPECT_TRUE(redact_secrets(text).empty()) << prose;
    EXPECT_EQ(text, prose);
  }
  // One more list word makes twelve in a row: redacted (the rule, not a guess at meaning).
  std::string twelve = "You can add one more small feature later, like this simple example";
  EXPECT_TRUE(redact_seed_phrases(twelve));
  EXPECT_EQ(twelve, "[redacted:seed_phrase]");
}

TEST(Feedback, SurfacesLoseTheirIds) {
  EXPECT_EQ(normalize_surface("/api/agent/threads/thr_abcdefgh234567/create-offer"),
            "/api/agent/threads/{thread_id}/create-offer");
  EXPECT_EQ(normalize_surface("/api/contracts/ctr_abc234/tx-status"), "/api/contracts/{contract_id}/tx-status");
  EXPECT_EQ(normalize_surface("/api/agents/jobs/42/evaluate"), "/api/agents/jobs/{job_id}/evaluate");
  EXPECT_EQ(normalize_surface("/api/agent/threads/{thread_id}/create-offer"), "/api/agent/threads/{thread_id}/create-offer");
}

TEST(Feedback, RateLimitIsPerClientAndWindow) {
  RateLimiter limiter(2, std::chrono::seconds(60));
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_FALSE(limiter.acquire("a", t0));
  EXPECT_FALSE(limiter.acquire("a", t0));
  auto wait = limiter.acquire("a", t0 + std::chrono::seconds(10));
  ASSERT_TRUE(wait);
  EXPECT_GE(*wait, 50);
  EXPECT_LE(*wait, 51);
  EXPECT_FALSE(limiter.acquire("b", t0));  // another address has its own window
  EXPECT_FALSE(limiter.acquire("a", t0 + std::chrono::seconds(60)));  // a new window
}

TEST(Ops, SessionJourneysCountHowFarThreadsGotAndMedianStepTimes) {
  std::vector<Journey> journeys(3);
  journeys[0].opened_at = 0;  // opened only
  journeys[1].opened_at = 0;  // locked after 2 min, offered after 4 more
  journeys[1].quote_locked_at = 120'000;
  journeys[1].offer_created_at = 360'000;
  journeys[2].opened_at = 0;  // all the way: lock 4 min, offer 2, accept 1, pay 1, confirmed 1
  journeys[2].quote_locked_at = 240'000;
  journeys[2].offer_created_at = 360'000;
  journeys[2].offer_accepted_at = 420'000;
  journeys[2].payment_submitted_at = 480'000;
  journeys[2].funded_at = 540'000;
  auto doc = session_journeys(journeys, "24h", 0);
  EXPECT_EQ(doc.at("journeys_counted").as_int64(), 3);
  EXPECT_EQ(doc.at("reached").at("thread_opened").as_int64(), 3);
  EXPECT_EQ(doc.at("reached").at("quote_locked").as_int64(), 2);
  EXPECT_EQ(doc.at("reached").at("payment_confirmed").as_int64(), 1);
  EXPECT_EQ(doc.at("furthest_stage").at("thread_opened").as_int64(), 1);
  EXPECT_EQ(doc.at("furthest_stage").at("offer_created").as_int64(), 1);
  EXPECT_EQ(doc.at("furthest_stage").at("payment_confirmed").as_int64(), 1);
  EXPECT_DOUBLE_EQ(doc.at("median_minutes").at("open_to_quote_lock").as_double(), 3.0);  // (2 + 4) / 2
  EXPECT_DOUBLE_EQ(doc.at("median_minutes").at("quote_lock_to_offer").as_double(), 3.0);  // (4 + 2) / 2
  EXPECT_DOUBLE_EQ(doc.at("median_minutes").at("payment_to_confirmation").as_double(), 1.0);
  EXPECT_TRUE(session_journeys({}, "24h", 0).at("median_minutes").at("offer_to_acceptance").is_null());
}

TEST(Ops, FirstPaymentHandoffSaysWhatWaits) {
  OpsCounts n;
  n.contracts_total = 2;
  n.contracts_awaiting_payment = 1;
  n.contracts_funded = 1;
  n.window_offers_accepted = 2;
  n.window_payments_submitted = 1;
  auto doc = first_payment_handoff(n, "24h", "https://example.test", 0);
  EXPECT_EQ(doc.at("status"), "accepted_contract_waiting_for_buyer_payment");
  EXPECT_EQ(doc.at("observed").at("acceptance_to_payment_gap").as_int64(), 1);
  EXPECT_EQ(doc.at("current_contract_snapshot").at("current_payment_gap").as_int64(), 1);
  n.contracts_awaiting_payment = 0;
  EXPECT_EQ(first_payment_handoff(n, "24h", "https://example.test", 0).at("status"), "no_contract_waiting_for_payment");
}

}  // namespace
}  // namespace al::offer
