#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "domain/next_step.hpp"

namespace al::thread {
namespace {

constexpr std::string_view kBase = "https://agentlancer.example";

Thread thread_in(Status status) {
  Thread t;
  t.id = "thr_abc";
  t.requester_id = "agt_r";
  t.provider_id = "agt_p";
  t.status = status;
  t.service_terms = Terms{"A doc", Budget{*Decimal::parse("25.00"), "USDC", "base"}, "3 days", std::nullopt, std::nullopt};
  return t;
}

// The JSON after `-d '` in a curl, unquoted the way a POSIX shell would.
boost::json::value curl_body(const std::string& curl) {
  auto start = curl.find("-d '");
  EXPECT_NE(start, std::string::npos);
  std::string quoted = curl.substr(start + 3), text;
  bool in_quotes = false;
  for (std::size_t i = 0; i < quoted.size(); ++i) {
    if (quoted[i] == '\'') in_quotes = !in_quotes;
    else if (!in_quotes && quoted.compare(i, 2, "\\'") == 0) text += '\'', ++i;
    else text += quoted[i];
  }
  return boost::json::parse(text);
}

TEST(NextStep, QuoteLockedTellsTheRequesterToCreateTheOfferAsTheSeedWritesIt) {
  Thread t = thread_in(Status::QuoteLocked);
  NextStep s = next_step(t, Role::Requester, kBase);
  EXPECT_EQ(s.action, "create_offer");
  EXPECT_TRUE(s.you_act);
  ASSERT_TRUE(s.copy_paste_curl);
  EXPECT_EQ(*s.copy_paste_curl,
            "curl -sS -X POST https://agentlancer.example/api/agent/threads/thr_abc/create-offer -H 'content-type: "
            "application/json' -H 'x-api-key: <REQUESTER_AGENT_API_KEY>' -d '{}'");
  EXPECT_FALSE(s.monitor_curl);

  NextStep provider = next_step(t, Role::Provider, kBase);
  EXPECT_FALSE(provider.you_act);
  EXPECT_FALSE(provider.copy_paste_curl);
  EXPECT_EQ(*provider.monitor_curl,
            "curl -sS https://agentlancer.example/api/agent/threads/thr_abc/tx-status -H 'x-api-key: "
            "<PROVIDER_AGENT_API_KEY>'");
}

TEST(NextStep, NegotiatingWithoutACompleteQuoteAsksTheProviderForOnePrefilledFromTheService) {
  Thread t = thread_in(Status::Negotiating);
  t.latest_quote_message_id = t.provider_quote_message_id = "msg_1";
  t.latest_quote_seq = t.provider_quote_seq = 2;
  t.latest_quote_terms = Terms{};
  t.latest_quote_terms->acceptance_criteria = "It's reviewed";  // a quote in the shell word
  t.provider_quote_terms = t.latest_quote_terms;
  NextStep s = next_step(t, Role::Provider, kBase);
  EXPECT_EQ(s.action, "post_quote");
  EXPECT_EQ(s.endpoint, "/api/agent/threads/thr_abc/messages");
  ASSERT_TRUE(s.copy_paste_curl);
  auto body = curl_body(*s.copy_paste_curl).as_object();
  EXPECT_EQ(body.at("type"), "quote");
  const auto& terms = body.at("terms").as_object();
  EXPECT_EQ(terms.at("deliverable"), "A doc");
  EXPECT_EQ(terms.at("budget").at("amount"), "25");
  EXPECT_EQ(terms.at("acceptance_criteria"), "It's reviewed");
  EXPECT_EQ(terms.at("revision_boundary"), "<REVISION_BOUNDARY>");
  EXPECT_NE(s.description.find("revision_boundary"), std::string::npos);
  EXPECT_EQ(next_step(t, Role::Requester, kBase).action, "post_quote");
  EXPECT_TRUE(next_step(t, Role::Requester, kBase).monitor_curl);
}

TEST(NextStep, CompleteQuoteAsksTheProviderToLock) {
  Thread t = thread_in(Status::Negotiating);
  t.latest_quote_message_id = t.provider_quote_message_id = "msg_1";
  t.latest_quote_seq = t.provider_quote_seq = 2;
  t.latest_quote_terms = Terms{"A doc", Budget{*Decimal::parse("25"), "USDC", "base"}, "3 days", "ok", "two"};
  t.provider_quote_terms = t.latest_quote_terms;
  NextStep s = next_step(t, Role::Provider, kBase);
  EXPECT_EQ(s.action, "lock_quote");
  EXPECT_EQ(*s.copy_paste_curl,
            "curl -sS -X POST https://agentlancer.example/api/agent/threads/thr_abc/lock-quote -H 'content-type: "
            "application/json' -H 'x-api-key: <PROVIDER_AGENT_API_KEY>' -d '{}'");
}

TEST(NextStep, ARequestersCompleteQuoteIsNotLockedTheProviderAnswersWithItsOwn) {
  Thread t = thread_in(Status::Negotiating);
  t.latest_quote_message_id = "msg_counter";
  t.latest_quote_seq = 2;
  t.latest_quote_terms = Terms{"A doc", Budget{*Decimal::parse("20"), "USDC", "base"}, "1 day", "ok", "one"};
  NextStep s = next_step(t, Role::Provider, kBase);
  EXPECT_EQ(s.action, "post_quote");
  EXPECT_EQ(s.actor, Role::Provider);
  EXPECT_EQ(s.endpoint, "/api/agent/threads/thr_abc/messages");
  EXPECT_NE(s.description.find("(seq 2) is the requester's counter-proposal"), std::string::npos) << s.description;
  EXPECT_EQ(s.description.find("message_seq"), std::string::npos) << s.description;  // nothing of its own to lock
  ASSERT_TRUE(s.copy_paste_curl);
  // Posting the prefilled quote as is agrees to the requester's terms.
  auto body = curl_body(*s.copy_paste_curl).as_object();
  EXPECT_EQ(body.at("type"), "quote");
  EXPECT_EQ(body.at("terms").at("budget").at("amount"), "20");
  EXPECT_EQ(body.at("terms").at("timeline"), "1 day");
  EXPECT_EQ(body.at("terms").at("revision_boundary"), "one");
  NextStep requester = next_step(t, Role::Requester, kBase);
  EXPECT_EQ(requester.action, "post_quote");
  EXPECT_FALSE(requester.you_act);
  EXPECT_TRUE(requester.monitor_curl);
}

TEST(NextStep, ACounterAfterTheProvidersCompleteQuoteOffersBothAnswers) {
  Thread t = thread_in(Status::Negotiating);
  t.provider_quote_message_id = "msg_mine";
  t.provider_quote_seq = 2;
  t.provider_quote_terms = Terms{"A doc", Budget{*Decimal::parse("25"), "USDC", "base"}, "3 days", "ok", "two"};
  t.latest_quote_message_id = "msg_counter";
  t.latest_quote_seq = 3;
  t.latest_quote_terms = Terms{};
  t.latest_quote_terms->timeline = "1 day";  // a partial counter: only what the requester changes
  NextStep s = next_step(t, Role::Provider, kBase);
  EXPECT_EQ(s.action, "post_quote");
  EXPECT_NE(s.description.find("(seq 3) is the requester's counter-proposal"), std::string::npos) << s.description;
  EXPECT_NE(s.description.find("/api/agent/threads/thr_abc/lock-quote -d '{\"message_seq\":2}'"), std::string::npos)
      << s.description;
  // The provider's own terms, with the requester's change over them.
  auto terms = curl_body(*s.copy_paste_curl).at("terms").as_object();
  EXPECT_EQ(terms.at("timeline"), "1 day");
  EXPECT_EQ(terms.at("budget").at("amount"), "25");
  EXPECT_EQ(terms.at("revision_boundary"), "two");
}

TEST(NextStep, OfferedRowsPointAtTheOfferThenTheContract) {
  Thread t = thread_in(Status::Offered);
  t.offer = Linked{"off_1", "open", 1};
  NextStep respond = next_step(t, Role::Provider, kBase);
  EXPECT_EQ(respond.action, "respond_to_offer");
  EXPECT_EQ(*respond.copy_paste_curl,
            "curl -sS -X POST https://agentlancer.example/api/agent/offers/off_1/respond -H 'content-type: "
            "application/json' -H 'x-api-key: <PROVIDER_AGENT_API_KEY>' -d '{\"action\":\"accept\"}'");
  t.offer->status = "accepted";
  EXPECT_EQ(next_step(t, Role::Requester, kBase).action, "wait");
  t.contract = Linked{"ctr_1", "awaiting_payment", 1};
  NextStep pay = next_step(t, Role::Requester, kBase);
  EXPECT_EQ(pay.action, "pay_contract");
  EXPECT_TRUE(pay.you_act);
  EXPECT_EQ(*pay.monitor_curl, "curl -fsS 'https://agentlancer.example/api/contracts/ctr_1/tx-status'");
  t.contract->status = "funded";
  EXPECT_EQ(next_step(t, Role::Provider, kBase).action, "monitor_contract");
}

TEST(NextStep, ClosedHasNothingToDo) {
  Thread t = thread_in(Status::Closed);
  t.closed_reason = "closed_by_requester";
  NextStep s = next_step(t, Role::Provider, kBase);
  EXPECT_EQ(s.action, "none");
  EXPECT_FALSE(s.copy_paste_curl);
  EXPECT_FALSE(s.monitor_curl);
}

TEST(NextStep, ShellQuoteSurvivesSingleQuotes) {
  EXPECT_EQ(shell_quote("a'b"), "'a'\\''b'");
  EXPECT_EQ(shell_quote(""), "''");
}

}  // namespace
}  // namespace al::thread
