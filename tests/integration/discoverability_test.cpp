// What a newcomer finds without reading the repository: the OpenAPI document served by the running
// build (byte for byte the repository's), and the metrics an operator scrapes first — the build's
// version and commit, and the standard process metrics.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <thread>
#include <sstream>

#include "support/test_stack.hpp"

namespace al::testing {
namespace {

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(Discoverability, TheOpenApiDocumentIsServedAsInTheRepository) {
  TestStack stack;
  HttpClient http(stack.port());
  auto r = http.get("/openapi.yaml");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.headers["Content-Type"], "application/yaml");
  std::string expected = file_text(std::string(AGENTLANCER_SOURCE_DIR) + "/docs/openapi.yaml");
  ASSERT_FALSE(expected.empty());
  EXPECT_TRUE(r.body == expected) << "served " << r.body.size() << " bytes, the repository has " << expected.size();
}

TEST(Discoverability, MetricsNameTheBuildAndTheProcess) {
  TestStack stack;
  HttpClient http(stack.port());
  auto body = http.get("/metrics").body;
  // A Host built without the generated build info (tests) reports "dev"; the binary its version.
  EXPECT_NE(body.find("agentlancer_build_info{version=\"dev\",commit=\"unknown\"} 1\n"), std::string::npos) << body;
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                           "process_open_fds", "process_max_fds", "process_start_time_seconds"}) {
    auto at = body.find(std::string("\n") + name + " ");
    ASSERT_NE(at, std::string::npos) << name;
    double value = std::stod(body.substr(at + std::string(name).size() + 2));
    EXPECT_GT(value, 0) << name;
  }
  // The open descriptors move with the process: more sockets, more descriptors.
  auto fds = [&] {
    auto text = http.get("/metrics").body;
    auto at = text.find("\nprocess_open_fds ");
    return std::stod(text.substr(at + 18));
  };
  double before = fds();
  std::vector<std::unique_ptr<HttpClient>> held;
  for (int i = 0; i < 20; ++i) {
    held.push_back(std::make_unique<HttpClient>(stack.port()));
    held.back()->get("/healthz");
  }
  EXPECT_GE(fds(), before + 20);
}

TEST(Discoverability, MetricsShowConsumerLagAndOutboxAgeThatFallToZero) {
  TestStack stack;
  HttpClient http(stack.port());
  stack.signup("lag-watcher");  // agent.registered: on the outbox, then on Kafka, then consumed
  // Every series of both families, by its labels.
  auto series = [&](const std::string& family) {
    std::map<std::string, double> out;
    auto body = http.get("/metrics").body;
    std::istringstream lines(body);
    for (std::string line; std::getline(lines, line);) {
      if (!line.starts_with(family + "{")) continue;
      auto space = line.rfind(' ');
      out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return out;
  };
  bool settled = false;
  std::map<std::string, double> lag, age;
  for (int i = 0; i < 200 && !settled; ++i) {
    lag = series("kafka_consumer_lag");
    age = series("outbox_oldest_unpublished_age_seconds");
    bool notifier_reports = false;
    for (const auto& [labels, value] : lag)
      notifier_reports = notifier_reports || labels.find(R"(group="notifier",topic="agentlancer.agents.v1")") != std::string::npos;
    settled = notifier_reports && age.size() == 3;
    for (const auto& [labels, value] : lag) settled = settled && value == 0;
    for (const auto& [labels, value] : age) settled = settled && value == 0;
    if (!settled) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(settled) << "lag and outbox age did not fall to 0";
  std::string names;
  for (const auto& [labels, value] : lag) names += labels + "\n";
  EXPECT_NE(names.find(R"(group="notifier",topic="agentlancer.agents.v1")"), std::string::npos) << names;
  for (const char* relay : {"thread-service", "offer-service", "job-service"})
    EXPECT_TRUE(age.count(std::string(R"(outbox_oldest_unpublished_age_seconds{relay=")") + relay + "\"}")) << relay;
}

}  // namespace
}  // namespace al::testing
