#pragma once
#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace al {

// A small Prometheus text-format registry: per-route request counters and latency histograms,
// plain counters, and gauges evaluated at scrape time.
class Metrics {
 public:
  static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                                      5,      10};

  void observe_request(std::string_view method, std::string_view route, unsigned status,
                       double seconds);
  void add_counter(const std::string& name, const std::string& help, double delta = 1);
  void register_gauge(const std::string& name, const std::string& help,
                      std::function<double()> read);
  // A counter kept by its owner (e.g. an atomic on a hot path), read at scrape time.
  void register_counter(const std::string& name, const std::string& help,
                        std::function<double()> read);
  // An info metric (`name{label="value",…} 1`), e.g. the build's version and commit.
  void register_info(const std::string& name, const std::string& help,
                     const std::vector<std::pair<std::string, std::string>>& labels);
  // One series of a gauge family (`name{label="value",…}`), read at scrape time; several owners
  // (each consumer, each relay) add their own series to one family. `series` names this one.
  using Labels = std::vector<std::pair<std::string, std::string>>;
  using Series = std::vector<std::pair<Labels, double>>;
  void register_gauge_series(const std::string& name, const std::string& help, const std::string& series,
                             std::function<Series()> read);
  void remove_gauge_series(const std::string& name, const std::string& series);
  std::string render() const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct Gauge {
    std::string help;
    std::function<double()> read;
    bool counter = false;
    std::string labels;  // rendered `{…}`, or empty
  };
  struct Counter {
    std::string help;
    double value = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> request_counts_;  // key: method\x1froute\x1fstatus
  std::map<std::string, Histogram> latencies_;           // key: method\x1froute
  std::map<std::string, Counter> counters_;
  std::map<std::string, Gauge> gauges_;
  struct Family {
    std::string help;
    std::map<std::string, std::function<Series()>> sources;
  };
  std::map<std::string, Family> families_;
};

}  // namespace al
