#include "offer_module.hpp"

#include <boost/asio/steady_timer.hpp>

#include "common/chain/chain.hpp"
#include "common/chain/evm_jsonrpc.hpp"
#include "common/events/outbox.hpp"
#include "common/log/log.hpp"
#include "common/service/idempotency.hpp"
#include "common/service/key_revocations.hpp"
#include "common/service/lifecycle.hpp"
#include "common/util/ids.hpp"
#include "handlers/offer_handlers.hpp"
#include "service/offer_service.hpp"
#include "storage/sql_offer_store.hpp"

namespace al::offer {

std::vector<ConfigEntry> offer_config_entries() {
  return {
      {"offers.ttl_ms", "259200000", "How long an offer stays open before it becomes `inactive` (ms; default 72 h).", {}},
      {"offers.expiry_sweep_ms", "1000", "How often open offers past their expiry are made inactive, and submitted payments not yet final are checked again (ms).", {}},
      {"offers.projection_wait_ms", "2000", "How long create-offer waits (polling its projection, no writes) for a just-locked quote to reach offer-service before answering 404/409 (ms).", {}},
      {"contracts.pay_to", "*:0x0000000000000000000000000000000000a11ce5", "Address buyers pay, per network: `network:address[,…]`, `*` for any other network. Set it for a real deployment.", {}},
      {"contracts.confirmations", "*:1", "Confirmations a payment needs, per network: `network:n[,…]`, e.g. `base:3,ethereum:12,*:1`.", {}},
      {"contracts.tokens",
       "base:USDC=0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913,base-sepolia:USDC=0x036CbD53842c5426634e7929541eC2318f3dCF7e,"
       "ethereum:USDC=0xA0b86991c6218b36c1d19D4a2E9Eb0cE3606eB48,sepolia:USDC=0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238,"
       "optimism:USDC=0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85,arbitrum:USDC=0xaf88d065e77c8cC2239327C5EDb3A432268e5831,"
       "polygon:USDC=0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359",
       "Token contracts by network and symbol, `network:SYMBOL=0x…[,…]` (defaults: Circle's USDC). A quote may also name the token by its address. Offers in other tokens are refused (409 `token_not_supported`).", {}},
      {"ops.feedback_per_minute", "10", "Feedback messages one client address may send per minute (more: 429 with Retry-After).", {}},
      {"contracts.chain_adapter", "sandbox", "Payment verification: `sandbox` (embedded default; accepts any well-formed hash except all zeros, and every contract response says so) or `evm-jsonrpc` (real nodes, `contracts.rpc_urls`; see docs/offer-service.md).", {}},
      {"contracts.rpc_urls", "", "`evm-jsonrpc`: the JSON-RPC node of each network, `network:url[,…]`, e.g. `base:https://mainnet.base.org`. Payments on a network without one get 503.", {}, true},
      {"contracts.chain_ids", "", "`evm-jsonrpc`: chain ids of networks it does not know, `network:id[,…]` (known: ethereum, sepolia, holesky, base, base-sepolia, optimism, optimism-sepolia, arbitrum, arbitrum-sepolia, polygon, polygon-amoy). A node answering another chain id is refused.", {}},
      {"contracts.rpc_timeout_ms", "5000", "`evm-jsonrpc`: timeout of each connect, write and read to a node (ms).", {}},
      {"contracts.rpc_ca_file", "", "`evm-jsonrpc`: extra CA bundle (PEM) for https nodes; the system's CAs are always trusted.", {}},
      {"contracts.payment_give_up_ms", "3600000", "A submitted payment the chain no longer (or never) shows for this long is turned down: the contract returns to `awaiting_payment` (ms; default 1 h).", {}},
  };
}

namespace {
std::unique_ptr<chain::ChainAdapter> chain_adapter_from(const Config& config, boost::asio::io_context& io) {
  if (config.get("contracts.chain_adapter") != "evm-jsonrpc") return std::make_unique<chain::SandboxChain>();
  auto urls = PerNetwork::parse(config.get("contracts.rpc_urls"));
  auto ids = PerNetwork::parse(config.get("contracts.chain_ids"));
  if (urls.values().empty()) throw ConfigError("contracts.chain_adapter=evm-jsonrpc needs contracts.rpc_urls (network:url[,…])");
  std::vector<chain::EvmNetwork> networks;
  for (const auto& [network, url] : urls.values()) {
    if (network == "*") throw ConfigError("contracts.rpc_urls: name each network (a node serves one chain)");
    long long id = chain::known_chain_id(network);
    if (auto configured = ids.values().find(network); configured != ids.values().end()) {
      if (!parse_positive_int64(configured->second, id)) throw ConfigError("contracts.chain_ids: " + network + " needs a positive chain id");
    }
    if (id == 0) throw ConfigError("contracts.chain_ids: give the chain id of network " + network);
    networks.push_back(chain::EvmNetwork{network, url, id});
  }
  chain::JsonRpcOptions options;
  options.timeout = std::chrono::milliseconds(config.get_int("contracts.rpc_timeout_ms"));
  options.ca_file = config.get("contracts.rpc_ca_file");
  try {
    return std::make_unique<chain::EvmJsonRpcChain>(io, std::move(networks), options);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("contracts.rpc_urls: ") + e.what());
  } catch (const std::exception& e) {  // e.g. an unreadable CA file
    throw ConfigError(std::string("contracts.rpc_ca_file: ") + e.what());
  }
}

OfferServiceOptions options_from(const Config& config) {
  OfferServiceOptions o;
  o.ttl_ms = config.get_int("offers.ttl_ms");
  o.projection_wait_ms = config.get_int("offers.projection_wait_ms");
  o.pay_to = PerNetwork::parse(config.get("contracts.pay_to"));
  o.confirmations = PerNetwork::parse(config.get("contracts.confirmations"));
  o.tokens = TokenRegistry::parse(config.get("contracts.tokens"));
  o.chain_adapter = config.get("contracts.chain_adapter");
  if (o.chain_adapter != "sandbox" && o.chain_adapter != "evm-jsonrpc")
    throw ConfigError("contracts.chain_adapter must be sandbox or evm-jsonrpc, got \"" + o.chain_adapter + "\"");
  o.payment_give_up_ms = config.get_int("contracts.payment_give_up_ms");
  if (o.payment_give_up_ms < 1) throw ConfigError("contracts.payment_give_up_ms must be positive");
  if (o.ttl_ms < 1) throw ConfigError("offers.ttl_ms must be positive");
  if (!o.pay_to.get("*")) throw ConfigError("contracts.pay_to needs a default (`*:0x…`)");
  for (const auto& [network, n] : o.confirmations.values()) {
    long long value = 0;
    if (!parse_positive_int64(n, value) || value > 1000)
      throw ConfigError("contracts.confirmations: " + network + " needs 1..1000 confirmations, got \"" + n + "\"");
  }
  return o;
}

class OfferModule final : public Module {
 public:
  explicit OfferModule(Runtime& rt)
      : rt_(rt),
        chain_(chain_adapter_from(rt.config, rt.io)),
        db_(storage::open_database(rt.storage, "offer-service")),
        store_(*db_, rt.clock, rt.storage.read_cache ? 100'000 : 0),
        service_(store_, *chain_, rt.clock, rt.scheduler, options_from(rt.config)),
        relay_(*db_, rt.kafka_bootstrap, rt.clock, &rt.metrics,
               events::RelayOptions{.name = "offer-service",
                                    .replay_published_on_start = rt.embedded_kafka,
                                    .retention_ms = rt.config.get_int("outbox.retention_ms"),
                                    .transactional = rt.kafka_transactions},
               rt.producer_settings),
        // The locked quotes come from thread-service's events (no request calls it).
        // and a contract follows its job (job-service); revoked API keys come from the agents topic.
        threads_("offer-service.events", rt.kafka_bootstrap, "offer-service",
                 {"agentlancer.threads.v1", "agentlancer.jobs.v1", "agentlancer.agents.v1"}, *db_, rt.clock,
                 events::ConsumerLoop::ApplyThen{[this](storage::Connection& c, const events::CloudEvent& e) {
                   if (e.type.rfind("agent.", 0) == 0) return revocations_.apply(c, e);
                   auto written = std::make_shared<std::vector<std::string>>();
                   auto tx = store_.tx_on(c, written.get());
                   if (e.type.rfind("job.", 0) == 0) service_.follow_job(*tx, e);
                   else service_.follow_thread(*tx, e);
                   std::function<void()> after_commit;
                   if (!written->empty()) after_commit = [this, written] { store_.contracts_committed(*written); };
                   return after_commit;
                 }},
                 &rt.metrics, rt.consumer_settings),
        idempotency_(*db_, rt.auth, rt.clock, "offer-service",
                     idempotency::Options{rt.config.get_int("idempotency.retention_ms"), rt.config.get_int("idempotency.lock_ms")}),
        revocations_(*db_, rt.auth.revocations(), rt.clock),
        lifecycle_("offer-service", *db_, rt.workers.context()) {
    db_->migrate(offer_migrations());
    revocations_.load_all();
    lifecycle_.every("key revocations", key_revocations::kPollInterval, [this] { revocations_.poll(); });
    lifecycle_.every("idempotency key expiry", std::chrono::minutes(10), [this] { idempotency_.purge(); });
    lifecycle_.relay(relay_, rt.metrics)
        .consumer(threads_)
        .every("offer expiry and payment sweep", std::chrono::milliseconds(rt.config.get_int("offers.expiry_sweep_ms")),
               [this] {
                 service_.expire_due();
                 service_.watch_payments();
               });
  }

  std::string name() const override { return "offer-service"; }
  void add_routes(http::Router& router) override {
    http::Router::DecoratorScope idempotent(router, idempotency_.decorator());
    add_offer_routes(router, service_, store_, rt_.auth, rt_.clock, rt_.public_base_url,
                     FeedbackLimits{static_cast<int>(rt_.config.get_int("ops.feedback_per_minute")), std::chrono::minutes(1)});
  }

  void start() override { lifecycle_.start(); }
  void stop() override { lifecycle_.stop(); }
  bool ready(std::string& reason, bool check_broker) override { return lifecycle_.ready(reason, check_broker); }

 private:
  Runtime& rt_;
  std::unique_ptr<chain::ChainAdapter> chain_;
  std::unique_ptr<storage::Database> db_;
  SqlOfferStore store_;
  OfferService service_;
  events::OutboxRelay relay_;
  events::ConsumerLoop threads_;
  idempotency::Guard idempotency_;
  key_revocations::Sync revocations_;
  Lifecycle lifecycle_;
};
}  // namespace

std::unique_ptr<Module> make_offer_module(Runtime& runtime) { return std::make_unique<OfferModule>(runtime); }

}  // namespace al::offer
