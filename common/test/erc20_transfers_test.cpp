#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/chain/evm_jsonrpc.hpp"

namespace {
using namespace al::chain;
namespace json = boost::json;

const std::string kToken = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
const std::string kOther = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512";
const std::string kPayTo = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";
const std::string kBuyer = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
const std::string kStranger = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";

std::string topic(const std::string& address) { return "0x000000000000000000000000" + address.substr(2); }

json::object transfer_log(const std::string& token, const std::string& from, const std::string& to, const std::string& value_hex) {
  return json::object{{"address", token},
                      {"topics", json::array{std::string(kErc20TransferTopic), topic(from), topic(to)}},
                      {"data", value_hex},
                      {"removed", false}};
}

TEST(Erc20Transfers, ReadsTransferLogsAndSkipsEverythingElse) {
  json::array logs{
      transfer_log("0x5FbDB2315678afecb367f032d93F642f64180aa3", kBuyer, kPayTo, "0x00000000000000000000000000000000000000000000000000000000000f4240"),
      // An Approval log.
      json::object{{"address", kToken},
                   {"topics", json::array{"0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925", topic(kBuyer), topic(kPayTo)}},
                   {"data", "0x01"}},
      // ERC-721: the token id is a fourth topic, there is no amount.
      json::object{{"address", kOther},
                   {"topics", json::array{std::string(kErc20TransferTopic), topic(kBuyer), topic(kPayTo), topic(kBuyer)}},
                   {"data", "0x"}},
      // A log a reorganization removed.
      json::object{{"address", kToken},
                   {"topics", json::array{std::string(kErc20TransferTopic), topic(kBuyer), topic(kPayTo)}},
                   {"data", "0x05"},
                   {"removed", true}},
      json::string("not an object"),
  };
  auto transfers = erc20_transfers(logs);
  ASSERT_EQ(transfers.size(), 1u);
  EXPECT_EQ(transfers[0].token, kToken);  // lowercased
  EXPECT_EQ(transfers[0].from, kBuyer);
  EXPECT_EQ(transfers[0].to, kPayTo);
  EXPECT_EQ(transfers[0].value.to_decimal(), "1000000");
}

TEST(Erc20Transfers, JudgesEachOutcomeDistinctly) {
  auto required = *Uint256::from_token_amount("12.5", 6);
  auto judge = [&](std::vector<Erc20Transfer> transfers) { return judge_transfers(transfers, kToken, kPayTo, required, 6); };
  auto t = [](const std::string& token, const std::string& to, std::uint64_t value) {
    return Erc20Transfer{token, kBuyer, to, Uint256::from_u64(value)};
  };

  EXPECT_EQ(judge({t(kToken, kPayTo, 12'500'000)}).status, "");
  EXPECT_EQ(judge({t(kToken, kPayTo, 20'000'000)}).status, "");  // overpaying pays
  // Several transfers to pay_to in one transaction add up.
  auto split = judge({t(kToken, kPayTo, 10'000'000), t(kToken, kStranger, 1), t(kToken, kPayTo, 2'500'000)});
  EXPECT_EQ(split.status, "");
  EXPECT_EQ(split.paid.to_decimal(), "12500000");

  auto under = judge({t(kToken, kPayTo, 12'499'999)});
  EXPECT_EQ(under.status, "underpaid");
  EXPECT_NE(under.message.find("12.499999"), std::string::npos) << under.message;
  EXPECT_NE(under.message.find("12.5"), std::string::npos) << under.message;

  EXPECT_EQ(judge({t(kToken, kStranger, 12'500'000)}).status, "wrong_recipient");
  EXPECT_EQ(judge({t(kOther, kPayTo, 12'500'000)}).status, "wrong_token");
  EXPECT_EQ(judge({t(kOther, kStranger, 12'500'000)}).status, "wrong_token");
  auto native = judge({});
  EXPECT_EQ(native.status, "wrong_token");
  EXPECT_NE(native.message.find("native"), std::string::npos);
  // Mixed-case addresses in configuration compare equal to the lowercase ones logs carry.
  EXPECT_EQ(judge_transfers({t(kToken, kPayTo, 12'500'000)}, "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                            "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", required, 6).status, "");
}

TEST(Erc20Transfers, KnowsTheChainIdsOfTheDefaultNetworks) {
  EXPECT_EQ(known_chain_id("ethereum"), 1);
  EXPECT_EQ(known_chain_id("base"), 8453);
  EXPECT_EQ(known_chain_id("base-sepolia"), 84532);
  EXPECT_EQ(known_chain_id("sepolia"), 11155111);
  EXPECT_EQ(known_chain_id("optimism"), 10);
  EXPECT_EQ(known_chain_id("arbitrum"), 42161);
  EXPECT_EQ(known_chain_id("polygon"), 137);
  EXPECT_EQ(known_chain_id("anvil"), 0);
}
}  // namespace
