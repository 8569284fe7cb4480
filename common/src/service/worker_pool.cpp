#include "common/service/worker_pool.hpp"

#include <boost/asio/post.hpp>

#include "common/log/log.hpp"

namespace al {

WorkerPool::WorkerPool(std::string name, int threads)
    : name_(std::move(name)), io_(threads < 1 ? 1 : threads), guard_(boost::asio::make_work_guard(io_)) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    threads_.emplace_back([this] {
      CallerExecutor executor([this](std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); });
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {
          // A task's exception must not take the thread (and the process) down.
          log::error("worker task failed", {{"pool", name_}, {"what", e.what()}});
        }
      }
    });
  }
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::post(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }

void WorkerPool::stop() {
  guard_.reset();
  io_.stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

}  // namespace al
