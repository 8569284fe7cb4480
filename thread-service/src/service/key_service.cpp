#include "service/key_service.hpp"

#include <algorithm>
#include <memory>

#include "common/events/outbox.hpp"
#include "common/log/log.hpp"
#include "common/util/ids.hpp"
#include "common/util/time_format.hpp"
#include "storage/key_store.hpp"

namespace al::thread {
namespace bj = boost::json;

namespace {
constexpr const char* kAgentsTopic = "agentlancer.agents.v1";

events::CloudEvent agent_event(const std::string& type, const std::string& agent_id, long long seq, Millis now,
                               const trace::Cause& cause, bj::object data) {
  events::CloudEvent e;
  e.id = new_uuid_v7(now);
  e.type = type;
  e.source = "thread-service";
  e.subject = agent_id;
  e.time = now;
  e.seq = seq;
  e.audience = {agent_id};
  e.set_cause(cause);
  e.data = std::move(data);
  return e;
}

// Says one key stops at `effective_at`: recorded for this service's replicas (and this process,
// after the commit) and published as agent.key_revoked for every other service.
std::function<void()> announce_revocation(KeyTx& tx, key_revocations::Sync& sync, const keys::Key& key,
                                          Millis effective_at, const std::string& reason,
                                          const std::optional<std::string>& replaced_by, long long seq, Millis now,
                                          const trace::Cause& cause) {
  auto applied = sync.record(tx.connection(), {key.agent_id, key.key_id, effective_at});
  bj::object data{{"agent_id", key.agent_id},
                  {"key_id", key.key_id},
                  {"fingerprint", key.fingerprint},
                  {"reason", reason},
                  {"effective_at", format_rfc3339(effective_at)},
                  {"replaced_by", replaced_by ? bj::value(*replaced_by) : bj::value(nullptr)}};
  events::append_to_outbox(tx.connection(), kAgentsTopic,
                           agent_event(key_revocations::kRevokedEvent, key.agent_id, seq, now, cause, std::move(data)),
                           now);
  return applied;
}
}  // namespace

KeyService::KeyService(storage::Database& db, const auth::ApiKeyAuthority& auth, key_revocations::Sync& revocations,
                       const Clock& clock, KeyOptions options)
    : db_(db), auth_(auth), revocations_(revocations), clock_(clock), options_(options) {}

void KeyService::create(const std::string& agent_id, const std::string& caller_key_id,
                        const std::optional<std::string>& replaces, const trace::Cause& cause,
                        std::function<void(std::exception_ptr, Created)> done) {
  auto api_key = auth_.issue_additional(agent_id);
  auto result = std::make_shared<Created>();
  auto after_commit = std::make_shared<std::function<void()>>();
  db_.write(
      [=, this](storage::Connection& c) {
        *result = Created{};
        *after_commit = {};
        KeyTx tx(c);
        auto seq = tx.lock_agent(agent_id);
        if (!seq) {  // the key authenticated, so the agent exists; its row is missing only in a broken database
          result->refusal = keys::Refusal::KeyNotFound;
          return;
        }
        Millis now = clock_.now_ms();
        auto existing = tx.keys(agent_id);
        auto decision = keys::decide_create(existing, replaces, now, options_.rotation_grace_ms, options_.max_active_keys);
        if (decision.refusal != keys::Refusal::None) {
          result->refusal = decision.refusal;
          return;
        }
        keys::Key key{auth::ApiKeyAuthority::key_id(api_key), agent_id, auth::ApiKeyAuthority::fingerprint(api_key), now,
                      caller_key_id.empty() ? std::nullopt : std::optional<std::string>(caller_key_id), std::nullopt,
                      std::nullopt};
        tx.insert(key);
        bj::object data{{"agent_id", agent_id},
                        {"key_id", key.key_id},
                        {"fingerprint", key.fingerprint},
                        {"created_at", format_rfc3339(now)},
                        {"created_by", key.created_by ? bj::value(*key.created_by) : bj::value(nullptr)},
                        {"replaces", replaces ? bj::value(*replaces) : bj::value(nullptr)}};
        events::append_to_outbox(c, kAgentsTopic,
                                 agent_event(key_revocations::kCreatedEvent, agent_id, ++*seq, now, cause, std::move(data)),
                                 now);
        if (replaces) {
          auto replaced = *std::find_if(existing.begin(), existing.end(), [&](const keys::Key& k) { return k.key_id == *replaces; });
          replaced.expires_at = decision.replaced_expires_at;
          tx.set_expiry(replaced.key_id, *decision.replaced_expires_at, std::nullopt);
          *after_commit = announce_revocation(tx, revocations_, replaced, *decision.replaced_expires_at, "rotated",
                                              key.key_id, ++*seq, now, cause);
          result->replaced = replaced;
        }
        tx.set_event_seq(agent_id, *seq);
        result->key = key;
        result->api_key = api_key;
      },
      [result, after_commit, done = std::move(done)](std::exception_ptr error) {
        if (!error && *after_commit) (*after_commit)();
        done(error, error ? Created{} : std::move(*result));
      });
}

void KeyService::revoke(const std::string& agent_id, const std::string& key_id, const trace::Cause& cause,
                        std::function<void(std::exception_ptr, keys::Refusal)> done) {
  auto refusal = std::make_shared<keys::Refusal>(keys::Refusal::None);
  auto after_commit = std::make_shared<std::function<void()>>();
  db_.write(
      [=, this](storage::Connection& c) {
        *refusal = keys::Refusal::None;
        *after_commit = {};
        KeyTx tx(c);
        auto seq = tx.lock_agent(agent_id);
        if (!seq) {
          *refusal = keys::Refusal::KeyNotFound;
          return;
        }
        Millis now = clock_.now_ms();
        auto existing = tx.keys(agent_id);
        auto decision = keys::decide_revoke(existing, key_id, now);
        if (decision.refusal != keys::Refusal::None) {
          *refusal = decision.refusal;
          return;
        }
        auto key = *std::find_if(existing.begin(), existing.end(), [&](const keys::Key& k) { return k.key_id == key_id; });
        tx.set_expiry(key_id, decision.effective_at, now);
        *after_commit = announce_revocation(tx, revocations_, key, decision.effective_at, "revoked", std::nullopt,
                                            ++*seq, now, cause);
        tx.set_event_seq(agent_id, *seq);
      },
      [refusal, after_commit, done = std::move(done)](std::exception_ptr error) {
        if (!error && *after_commit) (*after_commit)();
        done(error, *refusal);
      });
}

std::vector<keys::Key> KeyService::active_keys(const std::string& agent_id) {
  auto all = load_keys(db_, agent_id);
  Millis now = clock_.now_ms();
  std::erase_if(all, [now](const keys::Key& k) { return !keys::active(k, now); });
  return all;
}

void KeyService::record_last_used() {
  auto last_used = auth_.take_last_used();
  if (last_used.empty()) return;
  db_.write([last_used](storage::Connection& c) { al::thread::record_last_used(c, last_used); },
            [](std::exception_ptr error) {
              if (error) log::warn("recording when API keys were last used failed");
            });
}

}  // namespace al::thread
