#include "process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

namespace al {
namespace {
// /proc/self/statm: sizes in pages; field 0 the virtual size, field 1 the resident set.
double statm_bytes(int field) {
  std::ifstream in("/proc/self/statm");
  double pages = 0;
  for (int i = 0; i <= field && in; ++i) in >> pages;
  return in ? pages * static_cast<double>(::sysconf(_SC_PAGESIZE)) : 0;
}

double open_fds() {
  std::error_code ec;
  double n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
  return n > 0 ? n - 1 : 0;  // the iterator's own descriptor
}
}  // namespace

void register_process_metrics(Metrics& metrics) {
  metrics.register_counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", [] {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
  });
  metrics.register_gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [] { return statm_bytes(1); });
  metrics.register_gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", [] { return statm_bytes(0); });
  metrics.register_gauge("process_open_fds", "Open file descriptors.", [] { return open_fds(); });
  metrics.register_gauge("process_max_fds", "The soft limit on open file descriptors.", [] {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return -1.0;
    return static_cast<double>(limit.rlim_cur);
  });
  double started = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  metrics.register_gauge("process_start_time_seconds", "When the process started serving, in seconds since the Unix epoch.",
                         [started] { return started; });
}

}  // namespace al
