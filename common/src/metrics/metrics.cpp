#include "common/metrics/metrics.hpp"

#include <sstream>

namespace al {
namespace {
std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}
std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    std::size_t next = key.find('\x1f', start);
    parts.push_back(key.substr(start, next - start));
    if (next == std::string::npos) break;
    start = next + 1;
  }
  return parts;
}
}  // namespace

void Metrics::observe_request(std::string_view method, std::string_view route, unsigned status,
                              double seconds) {
  std::string base = std::string(method) + '\x1f' + std::string(route);
  std::lock_guard lock(mutex_);
  ++request_counts_[base + '\x1f' + std::to_string(status)];
  Histogram& h = latencies_[base];
  for (std::size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

void Metrics::add_counter(const std::string& name, const std::string& help, double delta) {
  std::lock_guard lock(mutex_);
  Counter& c = counters_[name];
  c.help = help;
  c.value += delta;
}

void Metrics::register_gauge(const std::string& name, const std::string& help,
                             std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_[name] = Gauge{help, std::move(read)};
}

void Metrics::register_counter(const std::string& name, const std::string& help,
                               std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_[name] = Gauge{help, std::move(read), true};
}


namespace {
std::string render_labels(const Metrics::Labels& labels) {
  std::string rendered = "{";
  for (const auto& [label, value] : labels) {
    if (rendered.size() > 1) rendered += ",";
    rendered += label + "=\"";
    for (char c : value) {  // the text format's escapes
      if (c == '\\' || c == '"') rendered += '\\';
      if (c == '\n') {
        rendered += "\\n";
        continue;
      }
      rendered += c;
    }
    rendered += "\"";
  }
  return rendered + "}";
}
}  // namespace

void Metrics::register_info(const std::string& name, const std::string& help,
                            const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string rendered = render_labels(labels);
  std::lock_guard lock(mutex_);
  gauges_[name] = Gauge{help, [] { return 1.0; }, false, rendered};
}

void Metrics::register_gauge_series(const std::string& name, const std::string& help, const std::string& series,
                                    std::function<Series()> read) {
  std::lock_guard lock(mutex_);
  auto& family = families_[name];
  family.help = help;
  family.sources[series] = std::move(read);
}

void Metrics::remove_gauge_series(const std::string& name, const std::string& series) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it != families_.end()) it->second.sources.erase(series);
}

std::string Metrics::render() const {
  std::ostringstream out;
  std::lock_guard lock(mutex_);
  out << "# HELP http_requests_total HTTP requests by method, route and status.\n"
         "# TYPE http_requests_total counter\n";
  for (const auto& [key, count] : request_counts_) {
    auto p = split_key(key);
    out << "http_requests_total{method=\"" << escape_label(p[0]) << "\",route=\""
        << escape_label(p[1]) << "\",status=\"" << p[2] << "\"} " << count << "\n";
  }
  out << "# HELP http_request_duration_seconds HTTP request latency by method and route.\n"
         "# TYPE http_request_duration_seconds histogram\n";
  for (const auto& [key, h] : latencies_) {
    auto p = split_key(key);
    std::string labels =
        "method=\"" + escape_label(p[0]) + "\",route=\"" + escape_label(p[1]) + "\"";
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
      out << "http_request_duration_seconds_bucket{" << labels << ",le=\"" << kBuckets[i]
          << "\"} " << h.buckets[i] << "\n";
    out << "http_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << h.count
        << "\n";
    out << "http_request_duration_seconds_sum{" << labels << "} " << h.sum << "\n";
    out << "http_request_duration_seconds_count{" << labels << "} " << h.count << "\n";
  }
  for (const auto& [name, c] : counters_) {
    out << "# HELP " << name << " " << c.help << "\n# TYPE " << name << " counter\n"
        << name << " " << c.value << "\n";
  }
  for (const auto& [name, g] : gauges_) {
    out << "# HELP " << name << " " << g.help << "\n# TYPE " << name << (g.counter ? " counter\n" : " gauge\n")
        << name << g.labels << " " << g.read() << "\n";
  }
  for (const auto& [name, family] : families_) {
    out << "# HELP " << name << " " << family.help << "\n# TYPE " << name << " gauge\n";
    for (const auto& [series, read] : family.sources)
      for (const auto& [labels, value] : read()) out << name << render_labels(labels) << " " << value << "\n";
  }
  return out.str();
}

}  // namespace al
