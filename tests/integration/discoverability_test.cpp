// What a newcomer finds without reading the repository: the OpenAPI document served by the running
// build (byte for byte the repository's), and the metrics an operator scrapes first — the build's
// version and commit, and the standard process metrics.
#include <gtest/gtest.h>

#include <fstream>
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

}  // namespace
}  // namespace al::testing
