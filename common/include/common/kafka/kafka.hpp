#pragma once
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct rd_kafka_mock_cluster_s;

namespace al::kafka {

using Settings = std::map<std::string, std::string>;

// The topics of DESIGN §5, one per aggregate.
inline const std::vector<std::string>& all_topics() {
  static const std::vector<std::string> topics = {
      "agentlancer.agents.v1", "agentlancer.services.v1", "agentlancer.threads.v1", "agentlancer.offers.v1",
      "agentlancer.contracts.v1", "agentlancer.jobs.v1"};
  return topics;
}

struct Delivery {
  long long opaque;  // the caller's id for the message (the outbox sequence number)
  rd_kafka_resp_err_t error;
  std::string topic;
  int partition = -1;  // where it was written (when delivered)
  long long offset = -1;
};

// Idempotent producer. Delivery reports are collected per message and handed out by poll().
class Producer {
 public:
  Producer(const std::string& bootstrap, const Settings& extra = {});
  ~Producer();  // flushes (bounded), then purges what is left
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Enqueues with `headers` (name, value); false with `error` when the local queue refuses it.
  bool produce(const std::string& topic, const std::string& key, const std::string& payload,
               long long opaque, std::string& error,
               const std::vector<std::pair<std::string, std::string>>& headers = {});
  std::vector<Delivery> poll(int timeout_ms);
  void flush(int timeout_ms);
  std::optional<std::string> fatal_error();
  int outstanding() const { return rd_kafka_outq_len(rk_); }

  // Transactions (a producer made with `transactional.id`). Each returns the outcome of one call;
  // `fatal` (this producer is fenced or broken: make a new one) and `abort` (the transaction must
  // be aborted) come from librdkafka's classification of the error.
  struct TxnOutcome {
    bool ok = true;
    bool fatal = false;
    bool abort = false;
    bool retriable = false;
    std::string error;
  };
  // Registers the transactional id with its coordinator, fencing any earlier producer of the same
  // id and completing or aborting the transaction it left open.
  TxnOutcome init_transactions(int timeout_ms);
  TxnOutcome begin_transaction();
  // Flushes, then commits: every message produced since begin_transaction is then delivered and
  // visible to read_committed consumers, or (on failure) none is.
  TxnOutcome commit_transaction(int timeout_ms);
  TxnOutcome abort_transaction(int timeout_ms);
  // True when metadata for the cluster can be fetched within the timeout.
  bool reachable(int timeout_ms);

 private:
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque);
  rd_kafka_t* rk_ = nullptr;
  std::mutex mutex_;
  std::vector<Delivery> deliveries_;
};

struct Message {
  std::string topic;
  int partition = 0;
  long long offset = 0;
  std::string key;
  std::string payload;
  std::vector<std::pair<std::string, std::string>> headers;  // in order, as produced
};

// (topic, partition) → offset
using Offsets = std::map<std::pair<std::string, int>, long long>;

// Reads, without joining a consumer group, every message of `topics` after the offsets in
// `after` (a partition not named there, or one whose offsets went backwards because the topic was
// recreated: from its first retained message) up to each partition's high watermark as it was
// when the call began. `each` sees them in partition order. False when the cluster could not be
// read completely within `timeout_ms`.
bool read_to_high_watermarks(const std::string& bootstrap, const std::vector<std::string>& topics,
                             const Offsets& after, int timeout_ms, const std::function<void(const Message&)>& each,
                             const Settings& extra = {});

// Consumer-group member. Offsets are stored only when the caller says the effect is durable
// (enable.auto.offset.store=false) and committed from the stored offsets.
class Consumer {
 public:
  Consumer(const std::string& bootstrap, const std::string& group_id,
           const std::vector<std::string>& topics, const Settings& extra = {});
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // A message, nothing (timeout / partition EOF), or throws on a fatal error.
  std::optional<Message> poll(int timeout_ms);
  void store_offset(const Message& message);
  void commit();  // synchronous commit of stored offsets
  // True once the group has assigned this member its partitions (possibly none) at least once.
  bool joined() const { return joined_.load(); }
  struct PartitionLag {
    std::string topic;
    int partition = 0;
    long long lag = 0;
  };
  // Per assigned partition: the end of the partition as last fetched (the last stable offset
  // under read_committed) minus the next offset this consumer hands out. From librdkafka's
  // cached state: never blocks. A partition nothing was taken from yet counts from its start;
  // one whose end was never fetched is left out.
  std::vector<PartitionLag> lag();

 private:
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque);
  rd_kafka_t* rk_ = nullptr;
  std::atomic<bool> joined_{false};
};

// librdkafka's in-process mock cluster: a real Kafka-protocol listener on loopback that other
// clients (even in other processes) connect to. Data lives in memory only.
class EmbeddedCluster {
 public:
  explicit EmbeddedCluster(int brokers = 1, int partitions = 3);
  ~EmbeddedCluster();
  const std::string& bootstrap() const { return bootstrap_; }
  void create_topic(const std::string& topic, int partitions);
  void set_broker_down(int broker_id);
  void set_broker_up(int broker_id);

 private:
  rd_kafka_t* rk_ = nullptr;
  ::rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_;
};

}  // namespace al::kafka
