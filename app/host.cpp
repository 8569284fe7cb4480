#include "host.hpp"
#include "process_metrics.hpp"

#include <sys/stat.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <future>
#include <thread>

#include "common/log/log.hpp"
#include "common/service/durable.hpp"
#include "common/util/ids.hpp"
#include "job_module.hpp"
#include "notifier_module.hpp"
#include "offer_module.hpp"
#include "thread_module.hpp"

namespace al {
namespace embedded {
extern const std::string_view kOpenApiYaml;  // generated: docs/openapi.yaml (app/CMakeLists.txt)
}  // namespace embedded


std::vector<ConfigEntry> all_config_entries() {
  std::vector<ConfigEntry> entries = {
      {"http.address", "127.0.0.1", "Address the HTTP server binds.", {}},
      {"http.port", "8080", "HTTP port (0 picks a free one). `--port` is a short form.", {"PORT"}},
      {"http.threads", "2", "I/O threads serving HTTP.", {}},
      {"http.trusted_proxies", "", "Comma list of networks (CIDR) or addresses of the gateway: only a request from one of them has its `X-Forwarded-For` believed, and the client address (used for per-address limits and logs) is then the rightmost entry that is not itself a trusted proxy. Empty: the header is ignored and the client is the TCP peer.", {}},
      {"http.worker_threads", "auto", "Threads that run request handlers, sweeps and socket backlog reads, so an I/O thread never waits on the database. `auto`: the number of CPUs with SQLite (reads are local), `storage.pool_size` with PostgreSQL (each waits a network round trip).", {}},
      {"http.body_limit", "1048576", "Largest request body in bytes (larger: 413).", {}},
      {"http.read_timeout_ms", "15000", "A whole request must arrive within this time (slowloris guard, idle keep-alive limit).", {}},
      {"http.max_connections", "0", "Open HTTP connections at most; one more is answered 503 with `Retry-After: 1` and closed. 0: min(20000, the soft file limit (`ulimit -n`) minus 10% and 64 kept for the database, Kafka and logs).", {}},
      {"http.access_log", "true", "One JSON log line per request.", {}},
      {"http.public_base_url", "", "Base URL agents reach the API at (e.g. `https://agentlancer.example`), used in the absolute `copy_paste_curl`/`monitor_curl` of responses. Empty: `http://<http.address>:<port>` of this process.", {"PUBLIC_BASE_URL"}},
      {"data_dir", "./data", "Directory of the SQLite databases (one per service) and the generated auth secret.", {"DATA_DIR"}},
      {"kafka.bootstrap", "", "Kafka bootstrap servers. Empty: start the embedded in-process broker (librdkafka mock cluster).", {"KAFKA_BOOTSTRAP"}},
      {"kafka.embedded_partitions", "3", "Partitions per topic on the embedded broker.", {}},
      {"kafka.linger_ms", "10", "Producers' linger.ms: how long a relay gathers events into one batch. Larger batches cost the embedded broker less (it scans its log per fetch, batch by batch) and real Kafka fewer requests; each hop's event delay grows by up to this much.", {}},
      {"kafka.transactions", "auto", "Outbox relays publish each batch in a Kafka transaction, so a new publisher fences one that stalled past its lease (exactly once on Kafka with replicas). `auto`: on with a real broker, off with the embedded one (one process; librdkafka's mock cluster does not fence). `off`: for a Kafka-compatible service without transactions; a stalled publisher may then publish a batch twice (consumers still dedupe by event id).", {}},
      {"kafka.fetch_wait_max_ms", "", "Consumers' fetch.wait.max.ms. Empty: 10 on the embedded broker (it does not answer a waiting fetch early: this bounds the added delay, at about 3% of a core when idle), 500 on real Kafka (which answers as soon as data arrives).", {}},
      {"auth.secrets", "", "API-key signing secrets as `kid:secret[,kid:secret…]` (each secret ≥ 32 bytes). Empty: read `auth.secret_file`, else generate one under `data_dir`.", {}, true},
      {"auth.secret_file", "", "File with `kid:secret` lines (a mounted Secret in k8s).", {}},
      {"auth.signing_kid", "k1", "Key id that signs new API keys; the others still verify.", {}},
      {"storage.url", "", "Where the services keep their data. Empty: one SQLite file per service under `data_dir` (the embedded default). A libpq URI (`postgresql://user[:password]@host:port/db`): PostgreSQL, each service in its own schema (`job_service`, `thread_service`, `offer_service`, `notifier`) of that database, migrated at start under an advisory lock (replicas may start at once). One URL may serve all four services, or each service process its own database.", {"STORAGE_URL"}, true},
      {"storage.pool_size", "8", "PostgreSQL: connections (and threads) per service that run write transactions; reads use a pool of the same size.", {}},
      {"storage.max_attempts", "10", "PostgreSQL: runs of a write transaction that meets a serialization failure, a deadlock or a concurrent update before the request fails.", {}},
      {"storage.read_cache", "auto", "In-memory read caches of jobs, threads and contracts: `on`, `off`, or `auto` (on with SQLite, off with PostgreSQL). A cache learns only of its own process's commits: keep it off when several replicas of a service share one database, so a read on any replica sees a write made through another.", {}},
      {"db.synchronous", "FULL", "SQLite `synchronous` pragma. FULL: a change is on disk before the client hears of it.", {}},
      {"rate_limit.enabled", "true", "Per-client rate limits (token buckets; 429 with `Retry-After`, `RateLimit-Policy` and `RateLimit` headers). See docs/security.md.", {}},
      {"rate_limit.reads", "100/1s", "GET/HEAD requests per API key: `<count>/<n><s|m|h>` (a bucket of `count` refilled over the window) or `off`.", {}},
      {"rate_limit.writes", "100/1s", "POST/PATCH/DELETE requests per API key (same format).", {}},
      {"rate_limit.signup", "20/1h", "Signups per client address (same format).", {}},
      {"rate_limit.public", "50/1s", "Requests without a valid API key per client address (public routes; same format).", {}},
      {"rate_limit.replicas", "1", "Replicas a client's requests are spread over: each enforces limit / replicas, so a client gets at most the limit in total (less when the gateway spreads unevenly). Set it to the replica count (with an autoscaler: its minimum; see docs/security.md).", {}},
      {"idempotency.retention_ms", "86400000", "How long an `Idempotency-Key` and its response are remembered per agent (ms; default 24 h): a retry within it replays the response.", {}},
      {"idempotency.lock_ms", "60000", "How long a request holds its `Idempotency-Key` before a retry may take it over (only after the holder died without committing; ms).", {}},
      {"outbox.retention_ms", "604800000", "How long published outbox rows are kept (ms; default 7 days).", {}},
      {"log.level", "info", "debug, info, warn or error.", {}},
      {"shutdown.drain_ms", "10000", "On SIGTERM: how long in-flight requests may take to finish.", {}},
  };
  for (auto& e : thread_service::thread_config_entries()) entries.push_back(std::move(e));
  for (auto& e : offer::offer_config_entries()) entries.push_back(std::move(e));
  for (auto& e : job::job_config_entries()) entries.push_back(std::move(e));
  for (auto& e : notifier::notifier_config_entries()) entries.push_back(std::move(e));
  return entries;
}

namespace {
std::map<std::string, std::string> parse_secrets(const std::string& text) {
  std::map<std::string, std::string> out;
  std::string item;
  std::stringstream in(text);
  while (std::getline(in, item, item.find('\n') != std::string::npos ? '\n' : ',')) {
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t\r\n"));
      s.erase(s.find_last_not_of(" \t\r\n") + 1);
      return s;
    };
    item = trim(item);
    if (item.empty() || item[0] == '#') continue;
    auto colon = item.find(':');
    if (colon == std::string::npos) throw ConfigError("auth secrets must be kid:secret");
    out[trim(item.substr(0, colon))] = trim(item.substr(colon + 1));
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::map<std::string, std::string> load_secrets(const Config& config, const std::string& data_dir) {
  if (!config.get("auth.secrets").empty()) return parse_secrets(config.get("auth.secrets"));
  if (!config.get("auth.secret_file").empty()) {
    std::string text = read_file(config.get("auth.secret_file"));
    std::string lines;
    for (char c : text) lines.push_back(c == ',' ? '\n' : c);
    return parse_secrets(lines + "\n");
  }
  // Embedded default: a random secret generated once and kept with the data, so keys survive
  // restarts. Distributed deployments pass the same secret to every service instead.
  std::string path = data_dir + "/auth.secret";
  if (!std::filesystem::exists(path)) {
    std::string secret = "k1:" + random_hex(32) + "\n";
    std::ofstream out(path);
    out << secret;
    out.close();
    ::chmod(path.c_str(), 0600);
    log::warn("generated an API-key signing secret", {{"path", path}});
  }
  return parse_secrets(read_file(path));
}

long long worker_threads(const Config& config) {
  std::string text = config.get("http.worker_threads");
  if (text != "auto") {
    long long n = config.get_int("http.worker_threads");
    if (n < 1 || n > 256) throw ConfigError("http.worker_threads must be auto or 1..256");
    return n;
  }
  if (!config.get("storage.url").empty()) return std::max<long long>(2, config.get_int("storage.pool_size"));
  return std::max<unsigned>(2, std::thread::hardware_concurrency());
}
}  // namespace

Host::Host(const Config& config, std::vector<std::string> services, const Clock& clock, BuildInfo build)
    : config_(config), services_(std::move(services)), clock_(clock), build_(std::move(build)) {}

std::string_view openapi_document() { return embedded::kOpenApiYaml; }

Host::~Host() { stop(); }

void Host::start() {
  prepare();
  serve();
}

void Host::prepare() {
  if (prepared_) return;
  prepared_ = true;
  log::Level level;
  if (!log::parse_level(config_.get("log.level"), level)) throw ConfigError("log.level must be debug, info, warn or error");
  log::set_level(level);
  std::string data_dir = config_.get("data_dir");
  std::filesystem::create_directories(data_dir);
  auth_ = std::make_unique<auth::ApiKeyAuthority>(load_secrets(config_, data_dir), config_.get("auth.signing_kid"), clock_);

  bootstrap_ = config_.get("kafka.bootstrap");
  bool embedded = bootstrap_.empty();
  if (embedded) {
    embedded_ = std::make_unique<kafka::EmbeddedCluster>(1, static_cast<int>(config_.get_int("kafka.embedded_partitions")));
    bootstrap_ = embedded_->bootstrap();
    std::ofstream(data_dir + "/kafka.bootstrap") << bootstrap_ << "\n";
    log::info("embedded Kafka broker started", {{"bootstrap", bootstrap_}});
  }
  workers_ = std::make_unique<WorkerPool>("workers", static_cast<int>(worker_threads(config_)));
  scheduler_ = std::make_unique<AsioScheduler>(workers_->context());
  runtime_ = std::make_unique<Runtime>(
      Runtime{config_, clock_, metrics_, *auth_, io_, *workers_, *scheduler_, bootstrap_, embedded, data_dir, {}, {}, {}});
  // The embedded broker answers a fetch only after fetch.wait.max.ms even when data arrives
  // meanwhile (a real broker answers at once), so its consumers ask often.
  std::string fetch_wait = config_.get("kafka.fetch_wait_max_ms");
  if (fetch_wait.empty()) fetch_wait = embedded ? "10" : "500";
  if (!build_.version.empty()) runtime_->version = build_.version;
  runtime_->consumer_settings["fetch.wait.max.ms"] = fetch_wait;
  runtime_->producer_settings["linger.ms"] = config_.get("kafka.linger_ms");
  std::string transactions = config_.get("kafka.transactions");
  if (transactions != "auto" && transactions != "off") throw ConfigError("kafka.transactions must be auto or off");
  runtime_->kafka_transactions = transactions == "auto" && !embedded;
  runtime_->storage = storage::StorageSettings{config_.get("storage.url"), data_dir, config_.get("db.synchronous"),
                                               static_cast<int>(config_.get_int("storage.pool_size")),
                                               static_cast<int>(config_.get_int("storage.max_attempts"))};
  std::string read_cache = config_.get("storage.read_cache");
  if (read_cache != "auto" && read_cache != "on" && read_cache != "off")
    throw ConfigError("storage.read_cache must be auto, on or off");
  runtime_->storage.read_cache = read_cache == "on" || (read_cache == "auto" && runtime_->storage.url.empty());
  std::string public_base = config_.get("http.public_base_url");
  while (!public_base.empty() && public_base.back() == '/') public_base.pop_back();
  if (!public_base.empty() && public_base.rfind("http://", 0) != 0 && public_base.rfind("https://", 0) != 0)
    throw ConfigError("http.public_base_url must start with http:// or https://");
  for (char c : public_base)
    if (std::isspace(static_cast<unsigned char>(c)) || c == '\'' || c == '"' || c == '\\')
      throw ConfigError("http.public_base_url must not contain spaces or quotes (it goes into shell commands)");
  runtime_->public_base_url = [this, public_base] {
    if (!public_base.empty()) return public_base;
    std::string address = config_.get("http.address");
    if (address == "0.0.0.0" || address.empty()) address = "127.0.0.1";
    if (address.find(':') != std::string::npos) address = "[" + address + "]";
    return "http://" + address + ":" + std::to_string(server_ ? server_->port() : config_.get_int("http.port"));
  };

  auto wants = [&](const std::string& name) {
    for (const auto& s : services_)
      if (s == "all" || s == name) return true;
    return false;
  };
  if (wants("thread-service")) modules_.push_back(thread_service::make_thread_module(*runtime_));
  if (wants("offer-service")) modules_.push_back(offer::make_offer_module(*runtime_));
  if (wants("job-service")) modules_.push_back(job::make_job_module(*runtime_));
  if (wants("notifier")) modules_.push_back(notifier::make_notifier_module(*runtime_));
  if (modules_.empty()) throw ConfigError("no known service selected");

  using verb = http::bhttp::verb;
  router_.add(verb::get, "/healthz", [](const http::Request&, http::Responder reply) {
    reply(http::Response::json(200, boost::json::object{{"status", "ok"}}));
  }, http::Runs::OnIo);
  router_.add(verb::get, "/readyz", [this](const http::Request& req, http::Responder reply) {
    // `?exclude=kafka` (kube-apiserver's convention): leave the broker out, as a Kubernetes
    // readiness probe must — writes go on into the outbox while Kafka is down, and a probe that
    // failed every replica at once would turn that outage into the API's.
    bool check_broker = true;
    for (const auto& [key, value] : req.query) {
      if (key != "exclude") continue;
      if (value != "kafka")
        return reply(http::Response::error(400, "exclude names a check /readyz does not have (kafka)", "validation_error"));
      check_broker = false;
    }
    boost::json::array services;
    for (auto& m : modules_) {
      std::string reason;
      if (!m->ready(reason, check_broker))
        return reply(http::Response::json(503, boost::json::object{{"status", "not_ready"}, {"reason", reason}}));
      services.emplace_back(m->name());
    }
    reply(http::Response::json(200, boost::json::object{{"status", "ready"}, {"services", std::move(services)}}));
  }, http::Runs::OnIo);  // every module answers ready() from cached probes
  router_.add(verb::get, "/metrics", [this](const http::Request&, http::Responder reply) {
    reply(http::Response::text(200, metrics_.render(), "text/plain; version=0.0.4"));
  }, http::Runs::OnIo);
  // The API description of this build (RFC 9512 media type), with the agent-facing front door:
  // thread-service (signup) serves it, so the gateway routes it there.
  if (wants("thread-service")) {
    router_.add(verb::get, "/openapi.yaml", [](const http::Request&, http::Responder reply) {
      reply(http::Response::text(200, std::string(openapi_document()), "application/yaml"));
    }, http::Runs::OnIo);
  }
  metrics_.register_info("agentlancer_build_info", "The version and commit of this binary (always 1).",
                         {{"version", build_.version}, {"commit", build_.commit}});
  register_process_metrics(metrics_);
  rate_limit::Settings limits;
  try {
    limits.enabled = config_.get_bool("rate_limit.enabled");
    limits.reads = rate_limit::parse_policy(config_.get("rate_limit.reads"));
    limits.writes = rate_limit::parse_policy(config_.get("rate_limit.writes"));
    limits.signup = rate_limit::parse_policy(config_.get("rate_limit.signup"));
    limits.public_routes = rate_limit::parse_policy(config_.get("rate_limit.public"));
    limits.replicas = static_cast<int>(config_.get_int("rate_limit.replicas"));
    limiter_ = std::make_unique<rate_limit::Limiter>(limits, *auth_);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("rate_limit: ") + e.what());
  }
  http::Router::DecoratorScope limited(router_, limiter_->decorator());
  for (auto& m : modules_) m->add_routes(router_);
}

void Host::serve() {
  http::ServerOptions options;
  options.address = config_.get("http.address");
  options.port = static_cast<unsigned short>(config_.get_int("http.port"));
  options.body_limit = static_cast<std::size_t>(config_.get_int("http.body_limit"));
  options.read_timeout = std::chrono::milliseconds(config_.get_int("http.read_timeout_ms"));
  options.max_connections = static_cast<std::size_t>(config_.get_int("http.max_connections"));
  options.access_log = config_.get_bool("http.access_log");
  for (std::string_view rest = config_.get("http.trusted_proxies"); !rest.empty();) {
    auto comma = rest.find(',');
    std::string item(rest.substr(0, comma));
    if (item.find_first_not_of(" \t") != std::string::npos) options.trusted_proxies.push_back(item);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  // A read that cannot reach the database: 503 with Retry-After, like a write (durable.hpp).
  options.map_exception = [](const std::exception& e) -> std::optional<http::Response> {
    if (database_unavailable(e)) return refusal(ResultKind::Unavailable, kDatabaseUnavailable);
    return std::nullopt;
  };
  options.run_handler = [workers = workers_.get()](std::function<void()> fn) { workers->post(std::move(fn)); };
  long long threads = std::max<long long>(1, config_.get_int("http.threads"));
  std::vector<boost::asio::io_context*> pool{&io_};
  for (long long i = 1; i < threads; ++i) {
    extra_io_.push_back(std::make_unique<boost::asio::io_context>(1));
    pool.push_back(extra_io_.back().get());
  }
  try {
    server_ = std::make_unique<http::Server>(io_, router_, options, &metrics_, pool);
  } catch (const std::invalid_argument& e) {  // the only configuration the server parses itself
    throw ConfigError(std::string("http.trusted_proxies: ") + e.what());
  }

  for (auto& m : modules_) m->start();
  server_->start();
  for (auto* context : pool) {
    threads_.emplace_back([context] {
      auto guard = boost::asio::make_work_guard(*context);
      CallerExecutor executor([context](std::function<void()> fn) { boost::asio::post(*context, std::move(fn)); });
      context->run();
    });
  }
  log::info("serving", {{"address", options.address}, {"port", server_->port()}, {"kafka", bootstrap_},
                        {"max_connections", server_->max_connections()}});
}

void Host::stop() {
  if (stopped_ || !server_) return;
  stopped_ = true;
  std::promise<void> drained;
  server_->shutdown(std::chrono::milliseconds(config_.get_int("shutdown.drain_ms")), [&drained] { drained.set_value(); });
  drained.get_future().wait();
  // No request is in flight any more; a sweep still running finishes before the modules stop.
  workers_->stop();
  // Modules stop after the last response: their relays flush what those requests committed.
  for (auto it = modules_.rbegin(); it != modules_.rend(); ++it) (*it)->stop();
  io_.stop();
  for (auto& context : extra_io_) context->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  log::info("stopped");
}

void Host::run_until_signal() {
  std::promise<int> signalled;
  boost::asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([&signalled](const boost::system::error_code&, int signal) { signalled.set_value(signal); });
  int signal = signalled.get_future().get();
  log::info("signal received, draining", {{"signal", signal}});
  stop();
}

}  // namespace al
