#pragma once
#include "common/metrics/metrics.hpp"

namespace al {

// The Prometheus client libraries' standard process metrics, read from /proc and getrusage at
// scrape time: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds.
void register_process_metrics(Metrics& metrics);

}  // namespace al
