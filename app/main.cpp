// agentlancer: one binary, every service. `agentlancer all` is the embedded default.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "common/config/config.hpp"
#include "common/events/cloud_event.hpp"
#include "common/json/json.hpp"
#include "common/kafka/kafka.hpp"
#include "common/log/log.hpp"
#include "common/util/ids.hpp"
#include "host.hpp"

namespace al::build {
extern const char* const kVersion;  // generated: cmake/build_info.cmake
extern const char* const kCommit;
}  // namespace al::build

namespace {
constexpr const char* kUsage = R"(usage:
  agentlancer all [--key value ...]              every service in one process (embedded default)
  agentlancer thread-service|offer-service|job-service|notifier [...]  one service
  agentlancer tail-events [--bootstrap HOST:PORT] [--data-dir DIR] [--topic T] [--max N] [--to-end]
                                                 print CloudEvents from the broker (from the start;
                                                 --to-end: up to the current end, then exit)
  agentlancer config-table                       the configuration table (markdown)
  agentlancer routes                             every route each service registers (method, path,
                                                 service; tab-separated), for gateway and k8s checks
  agentlancer topics                             the Kafka topics the services produce and consume
  agentlancer --version                          the version and commit of this binary
Options are config keys (see `agentlancer config-table`), e.g. --port 8080 --data_dir ./data.
`agentlancer <command> --help` explains one command.
)";

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

// `agentlancer <command> --help`.
void print_help(const std::string& command) {
  if (command == "tail-events") {
    std::cout << R"(usage: agentlancer tail-events [--bootstrap HOST:PORT] [--data-dir DIR] [--topic T] [--max N] [--to-end]
Prints the CloudEvents on the broker, one JSON object per line, from the start of each topic.
  --bootstrap HOST:PORT  the Kafka broker (default: the one `make start` wrote to DIR/kafka.bootstrap)
  --data-dir DIR         where to find kafka.bootstrap (default ./data)
  --topic T              one topic (default: every topic; see `agentlancer topics`)
  --max N                stop after N events
  --to-end               read up to the current end of every partition, then exit (no consumer group)
)";
  } else if (command == "config-table") {
    std::cout << "usage: agentlancer config-table\n"
                 "Prints every configuration key with its default and meaning, as the markdown table of\n"
                 "docs/configuration.md.\n";
  } else if (command == "routes") {
    std::cout << "usage: agentlancer routes\n"
                 "Prints every route each service registers: method, path pattern and service, tab-separated\n"
                 "(\"*\" for the routes every process has). The gateway and k8s checks compare it with\n"
                 "deploy/gateway/routes.tsv.\n";
  } else if (command == "topics") {
    std::cout << "usage: agentlancer topics\nPrints the Kafka topics the services produce and consume, one per line.\n";
  } else {
    std::cout << "usage: agentlancer " << command << " [--key value ...]\n"
              << (command == "all" ? "Runs every service in one process (the embedded default: SQLite and an in-process\n"
                                     "Kafka broker unless storage.url and kafka.bootstrap say otherwise).\n"
                                   : "Runs " + command + " alone (the cluster and k8s run each service this way).\n")
              << "Each option is a configuration key, also settable as the environment variable\n"
                 "AGENTLANCER_<KEY> (dots and dashes as underscores, upper case), or in a file named by\n"
                 "--config FILE (key = value lines); flags win over the environment, which wins over the\n"
                 "file. Keys, defaults and meanings (docs/configuration.md):\n";
    for (const auto& e : al::all_config_entries()) {
      std::cout << "  --" << e.key;
      if (!e.secret && !e.default_value.empty()) std::cout << " (default " << e.default_value << ")";
      std::cout << "\n      " << e.description << "\n";
    }
  }
}

int tail_events(const std::vector<std::string>& args) {
  std::string bootstrap, data_dir = "./data", topic;
  long long max = -1;
  bool to_end = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--to-end") {
      to_end = true;
      continue;
    }
    if (i + 1 >= args.size()) throw al::ConfigError("option " + args[i] + " needs a value");
    const std::string& value = args[++i];
    if (args[i - 1] == "--bootstrap") bootstrap = value;
    else if (args[i - 1] == "--data-dir") data_dir = value;
    else if (args[i - 1] == "--topic") topic = value;
    else if (args[i - 1] == "--max") max = std::stoll(value);
    else throw al::ConfigError("unknown option " + args[i - 1]);
  }
  if (bootstrap.empty()) {
    std::ifstream in(data_dir + "/kafka.bootstrap");
    std::getline(in, bootstrap);
    if (bootstrap.empty()) throw al::ConfigError("no --bootstrap and no " + data_dir + "/kafka.bootstrap (is `make start` running?)");
  }
  std::vector<std::string> topics = topic.empty() ? al::kafka::all_topics() : std::vector<std::string>{topic};
  if (to_end) {
    // Every message there is now, each partition in order; no consumer group.
    long long printed = 0;
    bool complete = al::kafka::read_to_high_watermarks(bootstrap, topics, {}, 60000, [&](const al::kafka::Message& m) {
      if (max >= 0 && printed >= max) return;
      std::cout << m.topic << "\t" << m.key << "\t" << m.payload << "\n";
      ++printed;
    });
    std::cout.flush();
    if (!complete) al::log::error("tail-events: the broker could not be read to its end within 60 s");
    return complete ? 0 : 1;
  }
  // A fresh group each time so every run reads from the beginning.
  al::kafka::Consumer consumer(bootstrap, "tail-events-" + std::to_string(::getpid()) + "-" + std::to_string(time(nullptr)), topics);
  long long seen = 0;
  static std::atomic<bool> stop{false};
  std::signal(SIGINT, [](int) { stop = true; });
  while (!stop && (max < 0 || seen < max)) {
    auto m = consumer.poll(200);
    if (!m) continue;
    std::cout << m->topic << "\t" << m->key << "\t" << m->payload << std::endl;
    ++seen;
  }
  return 0;
}
}  // namespace

// Builds each service (embedded storage in a scratch directory, nothing started) and prints the
// routes its router holds; the probe and metrics routes every process has are printed once, as "*".
int print_routes() {
  char scratch_template[] = "/tmp/agentlancer-routes-XXXXXX";
  const char* scratch = ::mkdtemp(scratch_template);
  if (!scratch) throw std::runtime_error("routes: no scratch directory");
  std::set<std::pair<std::string, std::string>> common_routes;
  int rc = 0;
  try {
    for (std::string service : {"thread-service", "offer-service", "job-service", "notifier"}) {
      al::Config config(al::all_config_entries());
      // A broker address that is never dialled (nothing starts): no embedded broker either.
      config.load({"--data_dir", std::string(scratch) + "/" + service, "--kafka.bootstrap", "127.0.0.1:9",
                   "--auth.secrets", "k1:" + al::random_hex(32), "--log.level", "warn"}, {});
      al::Host host(config, {service});
      host.prepare();
      for (const auto& route : host.router().list()) {
        bool everywhere = route.pattern == "/healthz" || route.pattern == "/readyz" || route.pattern == "/metrics";
        if (everywhere) {
          if (common_routes.insert({route.method, route.pattern}).second)
            std::cout << route.method << "\t" << route.pattern << "\t*\n";
          continue;
        }
        std::cout << route.method << "\t" << route.pattern << "\t" << service << (route.upgrade ? "\tupgrade" : "") << "\n";
      }
    }
  } catch (...) {
    std::filesystem::remove_all(scratch);
    throw;
  }
  std::filesystem::remove_all(scratch);
  return rc;
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "agentlancer " << al::build::kVersion << " (commit " << al::build::kCommit << ")\n";
    return 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  const std::set<std::string> commands = {"all",        "thread-service", "offer-service", "job-service", "notifier",
                                          "tail-events", "config-table",  "routes",        "topics"};
  if (!commands.contains(command)) {
    std::cerr << "unknown command: " << command << "\n" << kUsage;
    return 2;
  }
  if (wants_help(args)) {
    print_help(command);
    return 0;
  }
  try {
    if (command == "config-table") {
      std::cout << al::Config(al::all_config_entries()).markdown_table();
      return 0;
    }
    if (command == "tail-events") return tail_events(args);
    if (command == "routes") return print_routes();
    if (command == "topics") {
      for (const auto& topic : al::kafka::all_topics()) std::cout << topic << "\n";
      return 0;
    }
    al::Config config(al::all_config_entries());
    config.load(args, al::Config::process_environment());
    al::Host host(config, {command}, al::SystemClock::instance(), al::BuildInfo{al::build::kVersion, al::build::kCommit});
    host.start();
    host.run_until_signal();
    return 0;
  } catch (const al::ConfigError& e) {
    al::log::error("configuration error", {{"what", e.what()}});
    return 2;
  } catch (const std::exception& e) {
    al::log::error("fatal", {{"what", e.what()}});
    return 1;
  }
}
