#include "common/kafka/kafka.hpp"

#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "common/log/log.hpp"

namespace al::kafka {
namespace {
rd_kafka_conf_t* make_conf(const Settings& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), error, sizeof error) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::invalid_argument("kafka config " + k + ": " + error);
    }
  }
  return conf;
}
void log_callback(const rd_kafka_t*, int level, const char* facility, const char* message) {
  // librdkafka levels are syslog levels; 3 = error, 4 = warning.
  if (level <= 4)
    log::warn("kafka", {{"facility", facility}, {"message", message}});
}
}  // namespace

Producer::Producer(const std::string& bootstrap, const Settings& extra) {
  Settings settings = {
      {"bootstrap.servers", bootstrap},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "10"},
      {"message.timeout.ms", "30000"},
      {"socket.keepalive.enable", "true"},
      {"log.connection.close", "false"},
  };
  for (const auto& [k, v] : extra) settings[k] = v;
  rd_kafka_conf_t* conf = make_conf(settings);
  rd_kafka_conf_set_dr_msg_cb(conf, &Producer::on_delivery);
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_log_cb(conf, log_callback);
  char error[512];
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("kafka producer: ") + error);
  }
}

Producer::~Producer() {
  rd_kafka_flush(rk_, 5000);
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_, 0);
  rd_kafka_destroy(rk_);
}

void Producer::on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  auto id = reinterpret_cast<std::intptr_t>(message->_private);
  std::lock_guard lock(self->mutex_);
  self->deliveries_.push_back({static_cast<long long>(id), message->err, rd_kafka_topic_name(message->rkt),
                               message->partition, message->offset});
}

bool Producer::produce(const std::string& topic, const std::string& key, const std::string& payload,
                       long long opaque, std::string& error,
                       const std::vector<std::pair<std::string, std::string>>& headers) {
  rd_kafka_headers_t* message_headers = nullptr;
  if (!headers.empty()) {
    message_headers = rd_kafka_headers_new(headers.size());
    for (const auto& [name, value] : headers)
      rd_kafka_header_add(message_headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
  }
  rd_kafka_resp_err_t err = rd_kafka_producev(
      rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
      RD_KAFKA_V_HEADERS(message_headers), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::intptr_t>(opaque))), RD_KAFKA_V_END);
  if (err) {
    // On failure the headers stay ours to free; on success the message owns them.
    if (message_headers) rd_kafka_headers_destroy(message_headers);
    error = rd_kafka_err2str(err);
    return false;
  }
  return true;
}

std::vector<Delivery> Producer::poll(int timeout_ms) {
  rd_kafka_poll(rk_, timeout_ms);
  std::lock_guard lock(mutex_);
  std::vector<Delivery> out;
  out.swap(deliveries_);
  return out;
}

void Producer::flush(int timeout_ms) { rd_kafka_flush(rk_, timeout_ms); }

std::optional<std::string> Producer::fatal_error() {
  char error[512];
  if (rd_kafka_fatal_error(rk_, error, sizeof error) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return std::string(error);
  return std::nullopt;
}

namespace {
Producer::TxnOutcome outcome_of(rd_kafka_error_t* error) {
  Producer::TxnOutcome out;
  if (!error) return out;
  out.ok = false;
  out.fatal = rd_kafka_error_is_fatal(error);
  out.abort = rd_kafka_error_txn_requires_abort(error);
  out.retriable = rd_kafka_error_is_retriable(error);
  out.error = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return out;
}
}  // namespace

Producer::TxnOutcome Producer::init_transactions(int timeout_ms) {
  return outcome_of(rd_kafka_init_transactions(rk_, timeout_ms));
}
Producer::TxnOutcome Producer::begin_transaction() { return outcome_of(rd_kafka_begin_transaction(rk_)); }
Producer::TxnOutcome Producer::commit_transaction(int timeout_ms) {
  return outcome_of(rd_kafka_commit_transaction(rk_, timeout_ms));
}
Producer::TxnOutcome Producer::abort_transaction(int timeout_ms) {
  return outcome_of(rd_kafka_abort_transaction(rk_, timeout_ms));
}

bool Producer::reachable(int timeout_ms) {
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, nullptr, &metadata, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  bool ok = metadata->broker_cnt > 0;
  rd_kafka_metadata_destroy(metadata);
  return ok;
}

Consumer::Consumer(const std::string& bootstrap, const std::string& group_id,
                   const std::vector<std::string>& topics, const Settings& extra) {
  Settings settings = {
      {"bootstrap.servers", bootstrap},
      {"group.id", group_id},
      {"enable.auto.commit", "true"},
      {"auto.commit.interval.ms", "500"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", "false"},
      // Only what the outbox relays committed (their transactions), never an aborted batch.
      {"isolation.level", "read_committed"},
      // A member that died (kill -9) is noticed after this, so its partitions move on quickly.
      {"session.timeout.ms", "10000"},
      {"heartbeat.interval.ms", "3000"},
      {"topic.metadata.refresh.interval.ms", "5000"},
      {"log.connection.close", "false"},
  };
  for (const auto& [k, v] : extra) settings[k] = v;
  rd_kafka_conf_t* conf = make_conf(settings);
  rd_kafka_conf_set_log_cb(conf, log_callback);
  rd_kafka_conf_set_rebalance_cb(conf, &Consumer::on_rebalance);
  rd_kafka_conf_set_opaque(conf, this);
  char error[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("kafka consumer: ") + error);
  }
  rd_kafka_poll_set_consumer(rk_);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()));
  for (const auto& t : topics) rd_kafka_topic_partition_list_add(list, t.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err) {
    rd_kafka_destroy(rk_);
    throw std::runtime_error(std::string("kafka subscribe: ") + rd_kafka_err2str(err));
  }
}

void Consumer::on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    rd_kafka_assign(rk, partitions);
    self->joined_ = true;
  } else {
    // Revoked (or an error): give up the partitions; offsets already stored stay committed.
    rd_kafka_assign(rk, nullptr);
  }
}

Consumer::~Consumer() {
  rd_kafka_consumer_close(rk_);
  rd_kafka_destroy(rk_);
}

std::optional<Message> Consumer::poll(int timeout_ms) {
  rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, timeout_ms);
  if (!m) return std::nullopt;
  std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> guard(m, rd_kafka_message_destroy);
  if (m->err) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return std::nullopt;
    char fatal[512];
    if (rd_kafka_fatal_error(rk_, fatal, sizeof fatal))
      throw std::runtime_error(std::string("kafka consumer fatal: ") + fatal);
    log::warn("kafka consume error", {{"error", rd_kafka_message_errstr(m)}});
    return std::nullopt;
  }
  Message out;
  out.topic = rd_kafka_topic_name(m->rkt);
  out.partition = m->partition;
  out.offset = m->offset;
  if (m->key) out.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload) out.payload.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
      out.headers.emplace_back(name, value ? std::string(static_cast<const char*>(value), size) : std::string());
  }
  return out;
}

void Consumer::store_offset(const Message& message) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, message.topic.c_str(), message.partition)->offset =
      message.offset + 1;
  rd_kafka_resp_err_t err = rd_kafka_offsets_store(rk_, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err && err != RD_KAFKA_RESP_ERR__STATE)
    log::warn("kafka offset store failed", {{"error", rd_kafka_err2str(err)}});
}

std::vector<Consumer::PartitionLag> Consumer::lag() {
  std::vector<PartitionLag> out;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR || !assignment) return out;
  std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)> guard(
      assignment, rd_kafka_topic_partition_list_destroy);
  if (rd_kafka_position(rk_, assignment) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  for (int i = 0; i < assignment->cnt; ++i) {
    const auto& p = assignment->elems[i];
    long long low = 0, high = 0;
    if (rd_kafka_get_watermark_offsets(rk_, p.topic, p.partition, reinterpret_cast<int64_t*>(&low),
                                       reinterpret_cast<int64_t*>(&high)) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0)
      continue;
    // No position yet (nothing taken from it since the assignment): what it holds counts.
    long long position = p.offset >= 0 ? p.offset : std::max(0LL, low);
    out.push_back({p.topic, p.partition, std::max(0LL, high - position)});
  }
  return out;
}

void Consumer::commit() {
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_, nullptr, 0);
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    log::warn("kafka commit failed", {{"error", rd_kafka_err2str(err)}});
}

bool read_to_high_watermarks(const std::string& bootstrap, const std::vector<std::string>& topics,
                             const Offsets& after, int timeout_ms, const std::function<void(const Message&)>& each,
                             const Settings& extra) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left_ms = [&] {
    return static_cast<int>(std::max<long long>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
  };
  Settings settings = {
      {"bootstrap.servers", bootstrap},
      // Never joins: partitions are assigned by hand and no offset is ever committed.
      {"group.id", "agentlancer-read-back"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      // The end of a partition is also reported when its last offsets hold no message to hand out.
      {"enable.partition.eof", "true"},
      {"isolation.level", "read_committed"},
      {"log.connection.close", "false"},
  };
  for (const auto& [k, v] : extra) settings[k] = v;
  rd_kafka_conf_t* conf = make_conf(settings);
  rd_kafka_conf_set_log_cb(conf, log_callback);
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("kafka read-back: ") + error);
  }
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> guard(rk, [](rd_kafka_t* h) {
    rd_kafka_consumer_close(h);
    rd_kafka_destroy(h);
  });
  rd_kafka_poll_set_consumer(rk);

  std::map<std::pair<std::string, int>, long long> last_wanted;  // the offset to read up to, inclusive
  std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)> assignment(
      rd_kafka_topic_partition_list_new(8), rd_kafka_topic_partition_list_destroy);
  for (const auto& topic : topics) {
    rd_kafka_topic_t* handle = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* metadata = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, handle, &metadata, left_ms());
    rd_kafka_topic_destroy(handle);
    if (err) return false;
    std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> md(metadata, rd_kafka_metadata_destroy);
    if (md->topic_cnt != 1 || md->topics[0].err) return false;
    for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
      int partition = md->topics[0].partitions[i].id;
      int64_t low = 0, high = 0;
      if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, left_ms())) return false;
      long long start = low;
      if (auto it = after.find({topic, partition}); it != after.end() && it->second + 1 <= high)
        start = std::max<long long>(low, it->second + 1);
      if (start >= high) continue;
      rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), partition)->offset = start;
      last_wanted[{topic, partition}] = high - 1;
    }
  }
  if (last_wanted.empty()) return true;
  if (rd_kafka_assign(rk, assignment.get())) return false;
  while (!last_wanted.empty()) {
    if (Clock::now() >= deadline) return false;
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, std::min(200, left_ms()));
    if (!m) continue;
    std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> message(m, rd_kafka_message_destroy);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->rkt) {
      auto it = last_wanted.find({rd_kafka_topic_name(m->rkt), m->partition});
      if (it != last_wanted.end() && m->offset > it->second) last_wanted.erase(it);
      continue;
    }
    if (m->err) {
      log::warn("kafka read-back error", {{"error", rd_kafka_message_errstr(m)}});
      continue;
    }
    Message out;
    out.topic = rd_kafka_topic_name(m->rkt);
    out.partition = m->partition;
    out.offset = m->offset;
    auto it = last_wanted.find({out.topic, out.partition});
    if (it == last_wanted.end()) continue;
    if (m->key) out.key.assign(static_cast<const char*>(m->key), m->key_len);
    if (m->payload) out.payload.assign(static_cast<const char*>(m->payload), m->len);
    if (out.offset <= it->second) each(out);
    if (out.offset >= it->second) last_wanted.erase(it);
  }
  return true;
}

EmbeddedCluster::EmbeddedCluster(int brokers, int partitions) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  rd_kafka_conf_set_log_cb(conf, log_callback);
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("embedded kafka: ") + error);
  }
  cluster_ = rd_kafka_mock_cluster_new(rk_, brokers);
  if (!cluster_) {
    rd_kafka_destroy(rk_);
    throw std::runtime_error("embedded kafka: cannot create the mock cluster");
  }
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  for (const auto& topic : all_topics()) create_topic(topic, partitions);
}

EmbeddedCluster::~EmbeddedCluster() {
  rd_kafka_mock_cluster_destroy(cluster_);
  rd_kafka_destroy(rk_);
}

void EmbeddedCluster::create_topic(const std::string& topic, int partitions) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
  if (err) throw std::runtime_error("embedded kafka: create topic " + topic + ": " + rd_kafka_err2str(err));
}

void EmbeddedCluster::set_broker_down(int broker_id) { rd_kafka_mock_broker_set_down(cluster_, broker_id); }
void EmbeddedCluster::set_broker_up(int broker_id) { rd_kafka_mock_broker_set_up(cluster_, broker_id); }

}  // namespace al::kafka
