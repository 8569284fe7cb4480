#pragma once
// Reading what services published: the events of some aggregates from a topic, deduplicated,
// and checked against their schema in docs/events.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "common/kafka/kafka.hpp"
#include "json_schema.hpp"

namespace al::testing {

// The agent ids of an event's `audience` (one space-separated string).
inline std::set<std::string> audience_of(const boost::json::object& event) {
  std::set<std::string> ids;
  std::string_view rest = event.at("audience").as_string();
  while (!rest.empty()) {
    auto space = rest.find(' ');
    ids.emplace(rest.substr(0, space));
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  return ids;
}

// Reads the topic from the beginning with a fresh group until `want` distinct events for `subjects`
// have been seen (bounded). Tests sharing a broker can also match on an agent of the audience.
inline std::vector<boost::json::object> consume(const std::string& bootstrap, const std::string& topic,
                                                const std::set<std::string>& subjects, std::size_t want,
                                                const std::string& audience_member = "",
                                                std::chrono::seconds limit = std::chrono::seconds(60)) {
  static int group = 0;
  kafka::Consumer consumer(bootstrap, "events-test-" + std::to_string(::getpid()) + "-" + std::to_string(++group), {topic});
  std::vector<boost::json::object> out;
  std::set<std::string> ids;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (ids.size() < want && std::chrono::steady_clock::now() < deadline) {
    auto m = consumer.poll(200);
    if (!m) continue;
    auto v = boost::json::parse(m->payload).as_object();
    if (!subjects.count(std::string(v.at("subject").as_string()))) continue;
    if (!audience_member.empty() && !audience_of(v).count(audience_member)) continue;
    EXPECT_EQ(m->key, v.at("subject").as_string());  // keyed by aggregate id
    // The Kafka protocol binding of CloudEvents, structured mode.
    EXPECT_EQ(m->headers, (std::vector<std::pair<std::string, std::string>>{{"content-type", "application/cloudevents+json"}}));
    ids.insert(std::string(v.at("id").as_string()));
    out.push_back(std::move(v));
  }
  return out;
}

inline std::vector<boost::json::object> dedupe(const std::vector<boost::json::object>& events) {
  std::set<std::string> seen;
  std::vector<boost::json::object> out;
  for (const auto& e : events)
    if (seen.insert(std::string(e.at("id").as_string())).second) out.push_back(e);
  return out;
}

// `source_dir` is the repository root (AGENTLANCER_SOURCE_DIR).
inline void expect_schema_valid(const std::string& source_dir, const boost::json::object& event) {
  std::string type(event.at("type").as_string());
  auto schema = JsonSchema::load(source_dir + "/docs/events/" + type + ".schema.json");
  for (const auto& e : schema.validate(event)) ADD_FAILURE() << type << ": " << e;
}

}  // namespace al::testing
