#pragma once
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/util/caller_executor.hpp"

namespace al {

// Threads for work that may wait on the database: request handlers, sweeps, a socket's backlog
// reads. The I/O threads hand such work here and are never blocked by it. Each thread names the
// pool as its executor (CallerExecutor), so a unit of work started here completes here.
class WorkerPool {
 public:
  WorkerPool(std::string name, int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  boost::asio::io_context& context() { return io_; }
  void post(std::function<void()> fn);
  // Work not yet started is dropped; returns once no thread of the pool runs any. Idempotent.
  void stop();
  int size() const { return static_cast<int>(threads_.size()); }

 private:
  std::string name_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

}  // namespace al
