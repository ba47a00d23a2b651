// LoopAccess: how tulip's own sources reach the parts of an EventLoop that are
// not API. Not API.
//
// Thread-safety: loop thread only, except token() (the token is shared).
#pragma once

#include <cstdint>
#include <memory>

#include "tulip/event_loop.hpp"

namespace tulip::detail {

struct LoopAccess {
  /// Throws RuntimeError("Event loop is closed") if it is: the one spelling of that error.
  static void throw_if_closed(const EventLoop& loop) {
    if (loop.is_closed()) EventLoop::throw_closed();
  }
  static LoopInternals& internals(EventLoop& loop) noexcept { return *loop.internals_; }
  static IoBackend& backend(EventLoop& loop) noexcept { return *loop.backend_; }
  static const std::shared_ptr<LoopToken>& token(EventLoop& loop) noexcept { return loop.token_; }
  /// The loop's clock in nanoseconds (time() is this in seconds).
  static std::int64_t now_ns(const EventLoop& loop) noexcept { return loop.now_ns(); }
  static TimerHandle call_at_ns(EventLoop& loop, std::int64_t when_ns, Callback callback) {
    return loop.call_at_ns(when_ns, std::move(callback));
  }
  /// Whether the loop's next step is its wait for I/O: it runs, is not
  /// stopping, and no ready callback, cross-thread callback or due timer would
  /// run before that wait. A completion backend submits deferred requests then
  /// (uring_backend.cpp).
  static bool waits_next(const EventLoop& loop) noexcept {
    if (!loop.is_running() || loop.stopping_ || !loop.ready_.empty() ||
        loop.threadsafe_pending_.load(std::memory_order_relaxed)) {
      return false;
    }
    return loop.timers_.empty() || loop.timers_.front()->when_ns > loop.now_ns();
  }
  /// run_in_executor's untyped half (loop_executors.hpp).
  static void submit_job(EventLoop& loop, std::shared_ptr<Executor> executor, Executor::Job work,
                         Callback done) {
    loop.submit_job(std::move(executor), std::move(work), std::move(done));
  }
  /// The loop's tasks (task.hpp); made on first use. Defined in task.cpp.
  static TaskRegistry& task_registry(EventLoop& loop);
};

}  // namespace tulip::detail
