#pragma once
// Completions resume where their caller runs. Each thread that runs an executor (the HTTP I/O
// threads, the storage worker threads) names it here for its lifetime; a component that finishes
// work on a thread of its own (the database writer, a PostgreSQL pool thread, the chain client)
// captures the caller's executor when the work is handed over and posts the completion back to it.
// A caller on a thread with no executor (a consumer or relay thread that waits on a future) gets
// its completion on the finishing thread, which then only fulfils that future.
#include <functional>
#include <utility>

namespace al {

using Post = std::function<void(std::function<void()>)>;

class CallerExecutor {
 public:
  explicit CallerExecutor(Post post);  // this thread's executor until the object is destroyed
  ~CallerExecutor();
  CallerExecutor(const CallerExecutor&) = delete;
  CallerExecutor& operator=(const CallerExecutor&) = delete;

  // This thread's executor, or null.
  static const Post* current();

  // `completion` wrapped to run on the executor of the calling thread (unchanged when there is
  // none). Call it on the caller's thread, before handing the work over.
  template <class... Args>
  static std::function<void(Args...)> bind(std::function<void(Args...)> completion) {
    const Post* post = current();
    if (!post || !completion) return completion;
    return [post = *post, completion = std::move(completion)](Args... args) {
      post([completion, args...]() mutable { completion(std::move(args)...); });
    };
  }

 private:
  const Post* previous_;
  Post post_;
};

}  // namespace al
